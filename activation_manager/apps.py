from django.apps import AppConfig


class ActivationManagerConfig(AppConfig):
    name = "activation_manager"
    verbose_name = "Activation Manager"

    def ready(self):
        from django.apps import apps
        from django.db.models.signals import post_migrate

        from activation_manager import checks  # noqa: F401 — registers the deployment checks
        from activation_manager.schedules import install

        # Sent once per app with models after the whole migrate (this app has none): tied to django_celery_beat's.
        post_migrate.connect(install, sender=apps.get_app_config("django_celery_beat"),
                             dispatch_uid="activation_manager.schedules")
