"""Syncs: an audience kept in step with one connection's platform audience, its runs, their batches, and what
each sync has confirmed on its platform."""

import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models


class Sync(models.Model):
    """An audience kept in step with one connection's platform audience."""

    class Mode(models.TextChoices):
        ADD = "add", "Add only"
        MIRROR = "mirror", "Mirror (add and remove)"

    class Schedule(models.TextChoices):
        MANUAL = "", "Manual only"
        HOURLY = "hourly", "Hourly"
        DAILY = "daily", "Daily"
        WEEKLY = "weekly", "Weekly"

    DEFAULT_HOLD_THRESHOLD = 20

    # 32-bit: every synced member's row (SyncMember) carries it.
    id = models.AutoField(primary_key=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="syncs")
    audience = models.ForeignKey("audiences.Audience", on_delete=models.CASCADE, related_name="syncs")
    connection = models.ForeignKey("credentials.Connection", on_delete=models.CASCADE, related_name="syncs")
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.ADD)
    schedule = models.CharField(max_length=8, choices=Schedule.choices, blank=True, default="")
    # When a scheduled sync runs, in its own time zone: the time of day (hourly: its minute), and the weekday of a
    # weekly one (0 = Monday). The beat row is a crontab in that zone (syncs/services.py).
    schedule_time = models.TimeField(default=datetime.time(6, 0))
    schedule_weekday = models.PositiveSmallIntegerField(default=0)
    schedule_timezone = models.CharField(max_length=64, default="UTC")
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    platform_audience_id = models.CharField(max_length=200, blank=True)
    # A run that would remove more than this share (%) of the people the platform holds waits for the marketer to
    # confirm it; 0: never hold.
    hold_threshold = models.PositiveSmallIntegerField(
        default=DEFAULT_HOLD_THRESHOLD,
        help_text="Hold a run for review when it would remove more than this % of the people on the platform "
        "(0: never hold).",
    )
    # Set when a run succeeded leaving the platform with exactly that generation of the audience: every member's
    # current record held (and, in mirror mode, nothing else); cleared as soon as another run starts sending.
    confirmed_generation = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["audience", "connection"], name="one_sync_per_audience_connection")
        ]

    def __str__(self):
        return f"{self.audience} → {self.connection}"

    OWNERS_DIFFER = ("A sync sends an audience with a connection's credentials: the audience, the connection and "
                     "the sync must belong to the same user.")

    def save(self, *args, **kwargs):
        # Whatever the path (a service, the admin, the shell): never one user's audience through another's account.
        if not self._owners_match():
            raise ValidationError(self.OWNERS_DIFFER)
        super().save(*args, **kwargs)

    def clean(self):
        super().clean()
        if self.audience_id and self.connection_id and not self._owners_match():
            raise ValidationError({"connection": self.OWNERS_DIFFER})

    def _owners_match(self) -> bool:
        return self.owner_id == self.audience.owner_id == self.connection.owner_id


class SyncRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        PARTIAL = "partial", "Partly failed"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"
        # Planned, not sent: it would remove more people than the sync's hold threshold allows.
        HELD = "held", "Held for review"
        # Sent, but the audience size the platform reports fell by more than the plan explains.
        ATTENTION = "attention", "Needs attention"

    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)
    # A sync has at most one run in these at a time (a held run waits for its marketer).
    PENDING_STATUSES = (Status.QUEUED, Status.RUNNING, Status.HELD)

    class Trigger(models.TextChoices):
        MANUAL = "manual", "Manual"
        SCHEDULE = "schedule", "Schedule"

    sync = models.ForeignKey(Sync, on_delete=models.CASCADE, related_name="runs")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    audience_generation = models.PositiveIntegerField(null=True, blank=True)
    total_batches = models.PositiveIntegerField(default=0)
    done_batches = models.PositiveIntegerField(default=0)
    # The plan, in people: who joins, whose record changed (re-sent, their old identifiers removed), who left.
    to_add = models.PositiveIntegerField(default=0)
    to_update = models.PositiveIntegerField(default=0)
    to_remove = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    # People the platform held (by this sync's records) when the run was planned: the base of the hold threshold.
    held_before = models.PositiveIntegerField(null=True, blank=True)
    # Set by the plan: when every batch goes through, the platform holds exactly the planned generation (all its
    # adds, and every confirmed member who left it removed).
    leaves_exact = models.BooleanField(default=False)
    # The marketer confirmed a run that was held for review.
    hold_confirmed = models.BooleanField(default=False)
    processed = models.PositiveIntegerField(default=0)
    sent = models.PositiveIntegerField(default=0)
    removed = models.PositiveIntegerField(default=0)
    # Leavers with nothing to remove: every identifier they had is a current member's too.
    kept = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    # Why the platform rejected members, as it said it (no values): {message: batches that reported it}.
    rejection_reasons = models.JSONField(default=dict, blank=True)
    # The audience size the platform reported before the run (audience_size: after it).
    size_before = models.PositiveBigIntegerField(null=True, blank=True)
    matched = models.PositiveBigIntegerField(null=True, blank=True)
    audience_size = models.PositiveBigIntegerField(null=True, blank=True)
    match_rate = models.FloatField(null=True, blank=True, help_text="0..1, as reported by the platform")
    error_message = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # The worker's lease (activation_manager.leases): bumped by every claim; a worker writes only while the row
    # still carries the number it claimed. takeovers: how often a silent worker's run was handed to another.
    lease = models.PositiveIntegerField(default=0, editable=False)
    takeovers = models.PositiveSmallIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["sync", "-created_at"])]


class PlatformRequest(models.Model):
    """A request a platform processes after answering it (Google's Data Manager: ``request_id``), whose report
    (records, match-rate range, rejections by reason) is read later by ``syncs.check_platform_reports``."""

    run = models.ForeignKey("SyncRun", on_delete=models.CASCADE, related_name="platform_requests")
    request_id = models.CharField(max_length=200)
    kind = models.CharField(max_length=8)  # the batch's kind: add / remove / replace
    sent_at = models.DateTimeField()
    next_check_at = models.DateTimeField(db_index=True)
    checks = models.PositiveSmallIntegerField(default=0)
    done = models.BooleanField(default=False, db_index=True)
    rejected = models.PositiveIntegerField(null=True, blank=True)
    # The platform's report in words (counts and reasons, never a value), one line per destination.
    report = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["sent_at", "id"]
        constraints = [models.UniqueConstraint(fields=["run", "request_id"], name="one_row_per_platform_request")]

    def __str__(self):
        return self.request_id


class SyncBatch(models.Model):
    """A checkpoint: one platform-sized slice of a run's adds or removes."""

    class Kind(models.TextChoices):
        ADD = "add", "Add"
        REMOVE = "remove", "Remove"
        # Mirror on a platform without per-person removal: the whole audience in one replace session.
        REPLACE = "replace", "Replace"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="batches")
    seq = models.PositiveIntegerField()
    kind = models.CharField(max_length=8, choices=Kind.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    size = models.PositiveIntegerField()
    # The people of the batch (their 12-byte ids, ascending, concatenated), fixed when the run is planned and
    # emptied once the batch is sent.
    persons = models.BinaryField(default=b"")
    # A sent removal's versions (12-byte person + 4-byte generation each) that the sync still counts as held: an
    # identifier they share with a current member stayed on the platform, and that member is not there yet. The
    # run's end forgets them once it is (syncs.engine.finish.settle); until then the next run plans them again.
    deferred = models.BinaryField(default=b"")
    attempts = models.PositiveSmallIntegerField(default=0)
    error_message = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["seq"]
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="unique_batch_seq_per_run")]


class SyncMember(models.Model):
    """A version of a member's record (``generation``) that this sync put on its platform and has not removed.
    Usually one per person; two while a changed person's old identifiers are still to be removed."""

    pk = models.CompositePrimaryKey("sync", "person", "generation")
    sync = models.ForeignKey(Sync, on_delete=models.CASCADE, related_name="confirmed_members", db_index=False)
    person = models.BinaryField(max_length=12)
    generation = models.IntegerField()
