import math

from django.conf import settings
from django.db import models
from django.utils import timezone

from credentials.fields import EncryptedJSONField


class Connection(models.Model):
    """One ad-platform account a user connected. Secrets are one encrypted JSON blob."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        ERROR = "error", "Error"
        DISCONNECTED = "disconnected", "Disconnected"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="connections")
    platform = models.ForeignKey("platforms.Platform", on_delete=models.PROTECT, related_name="connections")
    label = models.CharField(max_length=100, help_text="Your name for this account, e.g. “EU brand account”.")
    # Non-secret identifiers (ad account id, customer id, consent flags): safe to show.
    config = models.JSONField(default=dict, blank=True)
    # Everything secret (tokens, app secrets, API keys): ciphertext at rest, never rendered.
    secrets = EncryptedJSONField()
    class AuthMethod(models.TextChoices):
        TOKEN = "token", "Pasted credentials"
        OAUTH = "oauth", "Signed in with the platform"

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    last_validated_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    auth_method = models.CharField(max_length=8, choices=AuthMethod.choices, default=AuthMethod.TOKEN)
    # When the credentials stop working unless renewed, as the platform reports it (null: it reports no end).
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # What lapses then ("access token", "data access", "refresh token"), and whether revalidation renews it itself.
    expiry_what = models.CharField(max_length=32, blank=True)
    expiry_renewable = models.BooleanField(default=False)
    expiry_checked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["platform__name", "label"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "platform", "label"], name="unique_connection_label_per_platform")
        ]

    def __str__(self):
        return f"{self.platform.name} — {self.label}"

    @property
    def credentials(self) -> dict:
        """What the adapter needs: identifiers and secrets together."""
        return {**self.config, **(self.secrets or {})}

    def adapter(self):
        """This connection's platform adapter, built from its credentials (never logged: see its repr)."""
        from platforms.adapters import get_adapter_class

        return get_adapter_class(self.platform.code)(self.credentials)

    @property
    def expires_in_days(self) -> int | None:
        """Whole days until ``expires_at`` (rounded up: 0 means today or past); None without an expiry."""
        if self.expires_at is None:
            return None
        return max(0, math.ceil((self.expires_at - timezone.now()).total_seconds() / 86_400))

    @property
    def expiry_warning(self) -> int | None:
        """The warning step this connection is in (14, 7 or 1 days ahead; 0 once expired), or None.

        A token the platform renews without the person (revalidation refreshes it) does not warn until its last day.
        """
        days = self.expires_in_days
        if days is None or self.status == self.Status.DISCONNECTED:
            return None
        if self.expires_at <= timezone.now():
            return 0
        steps = sorted(settings.EXPIRY_WARNING_DAYS)
        if self.expiry_renewable:
            steps = steps[:1]
        return next((step for step in steps if days <= step), None)

    @property
    def expiry_text(self) -> str:
        """"expires in 12 days" / "expires today" / "expired" / "" (no expiry reported): the pages' words."""
        days = self.expires_in_days
        if days is None:
            return ""
        if self.expires_at <= timezone.now():
            return "expired"
        if days == 0:
            return "expires today"
        return f"expires in {days} day{'s' if days != 1 else ''}"

    def masked_secrets(self) -> dict[str, str]:
        """Masked tails (••••1234) of each stored secret: the only form that may reach a page."""
        return {name: mask_secret(value) for name, value in (self.secrets or {}).items() if value}


def mask_secret(value: str) -> str:
    value = str(value)
    tail = value[-4:] if len(value) >= 12 else ""
    return f"••••{tail}"


class ConnectionEvent(models.Model):
    """Audit trail of what happened to a connection. Messages never carry secrets."""

    class Kind(models.TextChoices):
        CONNECTED = "connected", "Connected"
        UPDATED = "updated", "Updated"
        TEST_OK = "test_ok", "Tested OK"
        TEST_FAILED = "test_failed", "Test failed"
        REVALIDATED_OK = "revalidated_ok", "Revalidated OK"
        REVALIDATION_FAILED = "revalidation_failed", "Revalidation failed"
        DISCONNECTED = "disconnected", "Disconnected"
        RECONNECTED = "reconnected", "Reconnected"
        DELETED = "deleted", "Deleted"
        KEY_ROTATED = "key_rotated", "Key rotated"
        AUTH_FAILED = "auth_failed", "Authorization failed during a sync"
        REFRESHED = "refreshed", "Token renewed"
        REFRESH_FAILED = "refresh_failed", "Token renewal failed"
        EXPIRING = "expiring", "Expiry warning"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="connection_events")
    # Kept after the connection is deleted, so the audit trail survives.
    connection = models.ForeignKey(
        Connection, on_delete=models.SET_NULL, null=True, blank=True, related_name="events"
    )
    connection_label = models.CharField(max_length=200)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    message = models.TextField(blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.get_kind_display()} — {self.connection_label}"
