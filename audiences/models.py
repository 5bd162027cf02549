from django.conf import settings
from django.db import models


class AudienceQuerySet(models.QuerySet):
    def visible(self):
        """Audiences a marketer sees: not those being deleted in the background."""
        return self.exclude(status=Audience.Status.DELETING)


class Audience(models.Model):
    """A marketer's customer list, stored as hashed match keys only."""

    class Status(models.TextChoices):
        EMPTY = "empty", "No members yet"
        IMPORTING = "importing", "Importing"
        READY = "ready", "Ready"
        FAILED = "failed", "Last import failed"
        DELETING = "deleting", "Being deleted"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="audiences")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    default_country = models.CharField(
        max_length=2, help_text="ISO 3166-1 alpha-2 country used for phone numbers and addresses without one."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.EMPTY)
    # Membership is versioned: an import writes generation N+1 and swaps it in when complete,
    # so a re-import replaces membership atomically and a failed import leaves the old one.
    generation = models.PositiveIntegerField(default=0)
    member_count = models.PositiveIntegerField(default=0)
    # The generation the current one's recorded MemberChanges are relative to (None: none recorded, e.g. the
    # first import, or a re-import that replaced most of the audience).
    changes_base_generation = models.PositiveIntegerField(null=True, blank=True)
    key_coverage = models.JSONField(default=dict, blank=True, help_text="match key -> members carrying it")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = AudienceQuerySet.as_manager()

    class Meta:
        ordering = ["-updated_at", "-id"]
        indexes = [models.Index(fields=["owner", "-updated_at"])]

    def __str__(self):
        return self.name


class Member(models.Model):
    """One de-duplicated person of an audience: prepared (hashed) match keys, never raw PII.

    ``keys`` maps a stored variant (see platforms.matchkeys) to its prepared value;
    ``fingerprint`` is a SHA-256 over those values and identifies the member for
    de-duplication and for sync diffs.
    """

    audience = models.ForeignKey(Audience, on_delete=models.CASCADE, related_name="members")
    generation = models.PositiveIntegerField()
    fingerprint = models.CharField(max_length=64)
    keys = models.JSONField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["audience", "generation", "fingerprint"], name="unique_member_per_generation"
            )
        ]


class MemberChange(models.Model):
    """A member who joined (or left) the audience with its current generation, against the generation before
    it, recorded by the import that made it. A sync whose platform holds exactly the previous generation plans
    from these few rows instead of joining two whole generations."""

    audience = models.ForeignKey(Audience, on_delete=models.CASCADE, related_name="changes")
    generation = models.PositiveIntegerField()
    fingerprint = models.CharField(max_length=64)
    removed = models.BooleanField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["audience", "generation", "fingerprint"],
                                               name="unique_member_change")]


class ImportJob(models.Model):
    """One uploaded file being mapped and imported into an audience."""

    class Status(models.TextChoices):
        UPLOADED = "uploaded", "Waiting for column mapping"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Importing"
        SUCCEEDED = "succeeded", "Imported"
        FAILED = "failed", "Failed"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="import_jobs")
    audience = models.ForeignKey(Audience, on_delete=models.CASCADE, related_name="imports")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UPLOADED, db_index=True)
    original_filename = models.CharField(max_length=255)
    # Absolute path under settings.UPLOAD_DIR; emptied once the file is deleted.
    stored_path = models.CharField(max_length=500, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    encoding = models.CharField(max_length=32, blank=True)
    delimiter = models.CharField(max_length=4, blank=True)
    headers = models.JSONField(default=list, blank=True)
    # header index (as str) -> match key, or "" for an ignored column
    column_mapping = models.JSONField(default=dict, blank=True)
    target_generation = models.PositiveIntegerField(null=True, blank=True)
    bytes_processed = models.BigIntegerField(default=0)
    rows_total = models.PositiveIntegerField(default=0)
    rows_imported = models.PositiveIntegerField(default=0)
    rows_rejected = models.PositiveIntegerField(default=0)
    rows_duplicate = models.PositiveIntegerField(default=0)
    rejections_by_reason = models.JSONField(default=dict, blank=True)
    error_message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]


class RejectedRow(models.Model):
    """One of the first rejections of an import: where and why, never the raw value."""

    import_job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="rejected_rows")
    row_number = models.PositiveIntegerField()
    column = models.CharField(max_length=255, blank=True)
    reason = models.CharField(max_length=255)

    class Meta:
        ordering = ["row_number", "id"]
