from django.db import models


class Platform(models.Model):
    """An ad platform we can push audiences to. The rows follow the adapter registry (platforms/adapters/registry.py
    ``sync_platforms``, after every migrate); connections point at them."""

    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=100)
    active = models.BooleanField(default=True)
    docs_url = models.CharField(
        max_length=300, help_text="Platform docs, or our partner contract for partner integrations."
    )
    is_partner_integration = models.BooleanField(
        default=False, help_text="No public API: integrated through a partner contract of our own."
    )

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def adapter_class(self):
        from platforms.adapters import get_adapter_class

        return get_adapter_class(self.code)
