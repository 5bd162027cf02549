from django.apps import AppConfig


class ActivationManagerConfig(AppConfig):
    name = "activation_manager"
    verbose_name = "Activation Manager"
