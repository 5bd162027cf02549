from django.apps import AppConfig
from django.db.models.signals import post_migrate


class PlatformsConfig(AppConfig):
    name = "platforms"

    def ready(self):
        from platforms.adapters.registry import sync_platforms

        # After every migrate (and after a test flush re-runs it), the Platform rows follow the registry.
        post_migrate.connect(sync_platforms, sender=self, dispatch_uid="platforms.sync_platforms")
