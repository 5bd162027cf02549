"""Alerts: each user's channels and chosen events, the incidents raised for them, and each message sent.

An incident is one thing that went wrong (a connection broke, a run failed ...), identified by a ``key``: while it is
open, raising it again only counts another occurrence, so a connection that fails every minute sends one message,
not sixty. It closes when the thing recovers (the connection works again, a scheduled run starts), and the next
failure is a new incident.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q


class Event(models.TextChoices):
    CONNECTION_BROKEN = "connection_broken", "A connection stopped working"
    CONNECTION_EXPIRING = "connection_expiring", "A connection will expire soon (14, 7 and 1 days ahead)"
    RUN_FAILED = "run_failed", "A sync run failed"
    RUN_PARTIAL = "run_partial", "A sync run partly failed"
    RUN_HELD = "run_held", "A sync run was held for review"
    RUN_ATTENTION = "run_attention", "A sync run needs attention"
    SCHEDULE_SKIPPED = "schedule_skipped", "A scheduled run was skipped"
    TEST = "test", "Test alert"


# What a user may choose (a test alert is always sent when asked for).
CHOOSABLE_EVENTS = [choice for choice in Event.choices if choice[0] != Event.TEST]


def all_events() -> list[str]:
    return [value for value, _ in CHOOSABLE_EVENTS]


class AlertSettings(models.Model):
    """One user's channels and events. Absent: e-mail to the account's address, every event."""

    owner = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alert_settings")
    email_enabled = models.BooleanField(default=True)
    # Blank: the account's own address.
    email = models.EmailField(blank=True)
    webhook_enabled = models.BooleanField(default=False)
    # A Slack-compatible incoming webhook (a user-set URL: checked and sent through activation_manager/egress.py).
    webhook_url = models.CharField(max_length=500, blank=True)
    events = models.JSONField(default=all_events)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "alert settings"

    def __str__(self):
        return f"Alerts of {self.owner}"

    def address(self) -> str:
        return self.email or getattr(self.owner, "email", "") or ""

    def wants(self, event: str) -> bool:
        return event == Event.TEST or event in (self.events or [])


class Incident(models.Model):
    """Something that went wrong for one user; one message per open incident."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="incidents")
    event = models.CharField(max_length=32, choices=Event.choices)
    # What it is about ("connection:12:broken", "run:40", "sync:7:skipped"): one open incident per key.
    key = models.CharField(max_length=200)
    # The message: our own words (names the user chose, counts); never a secret, a platform's raw text or PII.
    subject = models.CharField(max_length=200)
    body = models.TextField()
    # The page it is about (a path on this site).
    path = models.CharField(max_length=300, blank=True)
    occurrences = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    last_seen_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "key"], condition=Q(resolved_at__isnull=True),
                                    name="one_open_incident_per_key"),
        ]

    def __str__(self):
        return self.subject

    def url(self) -> str:
        return f"{settings.SITE_URL}{self.path}" if self.path else settings.SITE_URL


class Delivery(models.Model):
    """One message of an incident through one channel."""

    class Channel(models.TextChoices):
        EMAIL = "email", "E-mail"
        WEBHOOK = "webhook", "Webhook"

    class Status(models.TextChoices):
        PENDING = "pending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Why the last attempt failed, in our words (no address, no URL, no server answer).
    error = models.CharField(max_length=300, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["incident", "channel"]
        constraints = [models.UniqueConstraint(fields=["incident", "channel"], name="one_delivery_per_channel")]
