from django.conf import settings
from django.db import models


class AudienceQuerySet(models.QuerySet):
    def visible(self):
        """Audiences a marketer sees: not those being deleted in the background."""
        return self.exclude(status=Audience.Status.DELETING)


class Audience(models.Model):
    """A marketer's customer list: people, stored as hashed match keys only."""

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
    # Each import that changes the membership makes a new generation, applied in one transaction: a failed
    # import leaves the membership as it was.
    generation = models.PositiveIntegerField(default=0)
    member_count = models.PositiveIntegerField(default=0)
    # Which key says who a member is across imports (platforms.matchkeys.PERSON_KEYS); chosen on the mapping page
    # of the first import and remembered.
    person_key = models.CharField(max_length=16, blank=True, default="")
    # The last import's mapping, by column header (header -> match key, "" for a column left out): a re-import
    # starts from it.
    last_mapping = models.JSONField(default=dict, blank=True)
    # MemberChange rows hold every change of every generation after this one (None: none recorded).
    changes_recorded_from = models.PositiveIntegerField(null=True, blank=True)
    key_coverage = models.JSONField(default=dict, blank=True, help_text="match key -> members carrying it")
    # Platform code -> how many members it can use by the keys it takes.
    platform_coverage = models.JSONField(default=dict, blank=True)
    # The first import writing its people straight into this audience (audiences.filling): until it applies they
    # are nobody's members.
    filling_import = models.ForeignKey("ImportJob", null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="+", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = AudienceQuerySet.as_manager()

    class Meta:
        ordering = ["-updated_at", "-id"]
        indexes = [models.Index(fields=["owner", "-updated_at"])]

    def __str__(self):
        return self.name


class MemberRecord(models.Model):
    """The match keys of one person, as stored (platforms.matchkeys): SHA-256 digests, short codes that are
    hashed when sent (a handful of possible values each, so a hash would protect nothing), and the values
    platforms take unhashed. Never raw PII otherwise."""

    # SHA-256 digests (32 bytes). e: email; eg / eu / et: Google's, UID2's, TikTok's form where it differs;
    # p / pd: phone E.164 with and without "+"; fn / ln: names (letters only); fng / lng: Google's form of the
    # names where it differs; ct: city.
    e = models.BinaryField(null=True)
    eg = models.BinaryField(null=True)
    eu = models.BinaryField(null=True)
    et = models.BinaryField(null=True)
    p = models.BinaryField(null=True)
    pd = models.BinaryField(null=True)
    fn = models.BinaryField(null=True)
    ln = models.BinaryField(null=True)
    fng = models.BinaryField(null=True)
    lng = models.BinaryField(null=True)
    ct = models.BinaryField(null=True)
    # NULL, not "", for a key a member lacks: it costs nothing in the row, and the platforms' key chains
    # (COALESCE(eg, e) ...) read past it.
    # Codes: first initial, state or region, date of birth (YYYYMMDD as a number), gender ("m" / "f").
    fi = models.CharField(max_length=4, null=True)  # noqa: DJ001
    st = models.CharField(max_length=64, null=True)  # noqa: DJ001
    dob = models.PositiveIntegerField(null=True)
    g = models.CharField(max_length=1, null=True)  # noqa: DJ001
    # Taken unhashed by some platform: postal code, country (ISO alpha-2), external id, mobile advertiser id
    # (the UUID's 16 bytes).
    z = models.CharField(max_length=16, null=True)  # noqa: DJ001
    # Google's form of a US ZIP+4 ("94105-1234"), where the input carried the extension (Data Manager).
    zg = models.CharField(max_length=10, null=True)  # noqa: DJ001
    c = models.CharField(max_length=2, null=True)  # noqa: DJ001
    x = models.CharField(max_length=256, null=True)  # noqa: DJ001
    m = models.BinaryField(null=True)

    class Meta:
        abstract = True


class Member(MemberRecord):
    """One person of an audience, identified across imports by ``person`` (platforms.matchkeys.person_id: the
    audience's person key, else the fallbacks). ``generation`` is the import that made this version of the
    record current; a person whose phone or address changes is updated in place, not a leave and a join."""

    pk = models.CompositePrimaryKey("audience", "person")
    # The primary key's index leads with the audience: no index of its own. No database constraint either: its
    # check of every new row at commit cost a tenth of a large import (2.7 s per million rows, docs/performance.md).
    # What it guarded is kept by how rows are written: every writer holds the audience row and finds it there
    # (audiences.filling.check, imports.apply), and the purge takes that row before the delete that cascades
    # (audiences.services.purge_audience), so no row outlives its audience.
    audience = models.ForeignKey(Audience, on_delete=models.CASCADE, related_name="members", db_index=False,
                                 db_constraint=False)
    person = models.BinaryField(max_length=12)
    generation = models.PositiveIntegerField()


class MemberVersion(MemberRecord):
    """An earlier version of a member's record (or the record of a member who left) that a sync still holds on
    its platform: what that sync must remove the identifiers of. Kept only while some sync holds it."""

    pk = models.CompositePrimaryKey("audience", "person", "generation")
    audience = models.ForeignKey(Audience, on_delete=models.CASCADE, related_name="member_versions",
                                 db_index=False)
    person = models.BinaryField(max_length=12)
    # Negative for records brought over from the storage before person ids (see audiences/migrations).
    generation = models.IntegerField()


class MemberChange(models.Model):
    """A person who joined, changed or left with ``generation``, recorded by the import that made it: a sync whose
    platform held the audience exactly as of an earlier generation plans from these few rows instead of joining
    the whole audience."""

    pk = models.CompositePrimaryKey("audience", "generation", "person")
    audience = models.ForeignKey(Audience, on_delete=models.CASCADE, related_name="changes", db_index=False)
    generation = models.PositiveIntegerField()
    person = models.BinaryField(max_length=12)


class ImportJob(models.Model):
    """One uploaded file being mapped and imported into an audience."""

    class Status(models.TextChoices):
        UPLOADED = "uploaded", "Waiting for column mapping"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Importing"
        SUCCEEDED = "succeeded", "Imported"
        FAILED = "failed", "Failed"
        # Waited too long for its mapping: the file was deleted (audiences.uploads.expire_pending_uploads).
        EXPIRED = "expired", "Expired"

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
    # Which key says who a member is (platforms.matchkeys.PERSON_KEYS); becomes the audience's on success.
    person_key = models.CharField(max_length=16, blank=True, default="")
    target_generation = models.PositiveIntegerField(null=True, blank=True)
    bytes_processed = models.BigIntegerField(default=0)
    rows_total = models.PositiveIntegerField(default=0)
    rows_imported = models.PositiveIntegerField(default=0)
    rows_rejected = models.PositiveIntegerField(default=0)
    # Rows merged into an earlier row of the same person.
    rows_duplicate = models.PositiveIntegerField(default=0)
    # What the import changed in the audience, in people.
    members_joined = models.PositiveIntegerField(default=0)
    members_changed = models.PositiveIntegerField(default=0)
    members_left = models.PositiveIntegerField(default=0)
    # Rejected rows by reason: each rejected row counted once.
    rejections_by_reason = models.JSONField(default=dict, blank=True)
    # Per mapped column, in file order, what became of its values (one per row read): {"column", "key", "used",
    # "dropped": {reason: values}, "empty", "in_rejected_rows"}.
    column_counts = models.JSONField(default=list, blank=True)
    error_message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # The worker's lease and how often a silent worker's import was handed to another (activation_manager.leases).
    lease = models.PositiveIntegerField(default=0, editable=False)
    takeovers = models.PositiveSmallIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]

    @property
    def encoding_label(self) -> str:
        """The encoding the file is read in, in words ("Western European (Windows-1252)")."""
        from audiences.sniffing import encoding_label

        return encoding_label(self.encoding) if self.encoding else ""

    @property
    def person_key_label(self) -> str:
        from platforms.matchkeys import PERSON_KEY_LABELS

        return PERSON_KEY_LABELS.get(self.person_key, self.person_key)


class RejectedRow(models.Model):
    """One of the first rejections of an import: where and why, never the raw value."""

    import_job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="rejected_rows")
    row_number = models.PositiveIntegerField()
    column = models.CharField(max_length=255, blank=True)
    reason = models.CharField(max_length=255)

    class Meta:
        ordering = ["row_number", "id"]


class PlatformDeletion(models.Model):
    """What became of an audience's copy on a platform (the audience one of its syncs created there) once the marketer
    deleted the audience and asked for its platform copies to go too: deleted there, or not deleted and why. Outlives
    the audience, whose name it copies, so the audience list and the dashboard can say afterwards what happened."""

    class Status(models.TextChoices):
        PENDING = "pending", "Deleting"
        DELETED = "deleted", "Deleted"
        FAILED = "failed", "Not deleted"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="platform_deletions")
    connection = models.ForeignKey("credentials.Connection", on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    # The deleted audience (no foreign key: its row is purged soon after).
    former_audience_id = models.PositiveBigIntegerField(db_index=True)
    audience_name = models.CharField(max_length=200)
    # "Meta · EU account", as it was when the audience was deleted.
    destination = models.CharField(max_length=200)
    platform_audience_id = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    # Why a copy was not deleted, in the platform's words where it gave any (never a secret).
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["owner", "-created_at"])]

    def __str__(self):
        return f"{self.audience_name} on {self.destination}: {self.get_status_display()}"
