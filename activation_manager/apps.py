from django.apps import AppConfig


class ActivationManagerConfig(AppConfig):
    name = "activation_manager"
    verbose_name = "Activation Manager"

    def ready(self):
        from activation_manager import checks  # noqa: F401 — registers the deployment checks
