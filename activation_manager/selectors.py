"""Reads for the dashboard: everything a marketer should see first, in a fixed number of queries; and what became
of deleted audiences' copies on the platforms (the dashboard and the audience list)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from audiences.models import Audience, ImportJob, PlatformDeletion
from credentials.models import Connection
from syncs.models import Sync, SyncRun

RECENT_RUNS = 10
ATTENTION_WINDOW = timedelta(days=14)
# Deleted audiences' platform copies are listed this long after the deletion.
DELETIONS_WINDOW = timedelta(days=14)
# The audience list re-reads itself while a copy is being deleted, for this long at most (a lost task stays
# "deleting"; the page need not poll for ever).
DELETING_POLL_FOR = timedelta(minutes=30)


@dataclass
class AttentionItem:
    kind: str  # "held" | "connection" | "run" | "import" | "deletion"
    title: str
    detail: str
    obj: object


@dataclass
class Dashboard:
    attention: list[AttentionItem] = field(default_factory=list)
    connections: list[Connection] = field(default_factory=list)
    audiences: list[Audience] = field(default_factory=list)
    recent_runs: list[SyncRun] = field(default_factory=list)
    # The scheduled syncs that run next: (sync, when), soonest first.
    upcoming: list[tuple[Sync, object]] = field(default_factory=list)

    @property
    def is_new_user(self) -> bool:
        return not (self.connections or self.audiences)

    @property
    def version_warnings(self) -> list[ApiVersionWarning]:
        """Sunsets coming for the API versions of the platforms this user is connected to (no query)."""
        return api_version_warnings(platform_codes={c.platform.code for c in self.connections})


# The dashboard warns this long before a platform stops serving the API version an adapter speaks.
SUNSET_WARNING = timedelta(days=30)


@dataclass(frozen=True)
class ApiVersionWarning:
    platform: str  # the platform's name
    version: str
    sunset: datetime.date
    days_left: int  # negative once the date has passed
    estimated: bool  # our estimate from the platform's published policy, not a date it published
    source: str


def api_version_warnings(
    *, platform_codes, today: datetime.date | None = None, within: timedelta = SUNSET_WARNING
) -> list[ApiVersionWarning]:
    """The platforms among ``platform_codes`` whose adapter's ``api_version`` sunsets within ``within`` of
    ``today`` (or already has), soonest first. Read from each adapter's ``api_version``; unknown codes are skipped."""
    from platforms.adapters.registry import all_adapter_classes

    today = today or timezone.localdate()
    warnings = []
    for code, adapter in all_adapter_classes().items():
        version = adapter.api_version
        if code not in platform_codes or version is None or version.sunset is None:
            continue
        days_left = (version.sunset - today).days
        if days_left <= within.days:
            warnings.append(ApiVersionWarning(platform=adapter.name, version=version.version, sunset=version.sunset,
                                              days_left=days_left, estimated=version.estimated,
                                              source=version.source))
    return sorted(warnings, key=lambda w: (w.sunset, w.platform))


# The columns a run row on the dashboard shows (and links by); nothing else is loaded, secrets least of all.
RUN_ROW_FIELDS = (
    "status", "created_at", "sent", "match_rate", "sync__audience__name",
    "sync__connection__label", "sync__connection__platform__name",
)


def dashboard_for(user) -> Dashboard:
    """The dashboard of one user: attention items first, then connections, audiences, runs."""
    connections = list(
        # The dashboard never shows secrets: skip loading (and decrypting) them.
        Connection.objects.filter(owner=user).select_related("platform")
        .only("label", "status", "last_error", "last_validated_at", "platform__name", "platform__code",
              "expires_at", "expiry_what", "expiry_renewable")
        .order_by("platform__name", "label")
    )

    latest_run = SyncRun.objects.filter(sync__audience=OuterRef("pk")).order_by("-created_at")
    audiences = list(
        Audience.objects.visible().filter(owner=user)
        .only("name", "status", "member_count")
        .annotate(
            last_sync_at=Subquery(latest_run.values("created_at")[:1]),
            last_sync_status=Subquery(latest_run.values("status")[:1]),
        )
        .order_by("-updated_at")[:20]
    )

    recent_runs = list(
        SyncRun.objects.filter(sync__owner=user).exclude(sync__audience__status=Audience.Status.DELETING)
        .select_related("sync__audience", "sync__connection__platform")
        .only(*RUN_ROW_FIELDS)
        .order_by("-created_at")[:RECENT_RUNS]
    )

    attention = [
        AttentionItem("connection", f"{c.platform.name} · {c.label}", c.last_error or "The connection failed.", c)
        for c in connections
        if c.status == Connection.Status.ERROR
    ]

    # A connection whose token expires within a warning step (14, 7, 1 days) or has expired.
    attention += [
        AttentionItem("expiring", f"{c.platform.name} · {c.label}",
                      f"The {c.expiry_what or 'access token'} {c.expiry_text} ({c.expires_at:%Y-%m-%d}).", c)
        for c in connections
        if c.status != Connection.Status.ERROR and c.expiry_warning is not None
    ]

    # A sync needs attention when its latest run failed, partly failed or saw the platform's size fall unexplained
    # (a later success clears it); a held run waits for its marketer however old it is, and comes first of all.
    since = timezone.now() - ATTENTION_WINDOW
    latest_per_sync = SyncRun.objects.filter(sync=OuterRef("pk")).order_by("-created_at")
    troubled_syncs = (
        Sync.objects.filter(owner=user).exclude(audience__status=Audience.Status.DELETING)
        .annotate(latest_run_id=Subquery(latest_per_sync.values("pk")[:1]))
        .values_list("latest_run_id", flat=True)
    )
    troubled_runs = (
        SyncRun.objects.filter(pk__in=[pk for pk in troubled_syncs if pk is not None])
        .filter(Q(status=SyncRun.Status.HELD) | Q(
            status__in=[SyncRun.Status.FAILED, SyncRun.Status.PARTIAL, SyncRun.Status.ATTENTION],
            created_at__gte=since))
        .select_related("sync__audience", "sync__connection__platform")
        .only(*RUN_ROW_FIELDS, "error_message", "to_remove", "held_before", "size_before", "audience_size",
              "sync__hold_threshold")
        .order_by("-created_at")
    )
    held, runs = [], []
    for run in troubled_runs:
        item = AttentionItem(
            "held" if run.status == SyncRun.Status.HELD else "run",
            f"{run.sync.audience.name} → {run.sync.connection.platform.name} ({run.sync.connection.label})",
            run.error_message or run.get_status_display(),
            run,
        )
        (held if item.kind == "held" else runs).append(item)
    attention = held + attention + runs

    latest_import = ImportJob.objects.filter(audience=OuterRef("audience_id")).order_by("-created_at")
    failed_imports = (
        ImportJob.objects.filter(owner=user, status=ImportJob.Status.FAILED, created_at__gte=since)
        .annotate(latest_id=Subquery(latest_import.values("pk")[:1]))
        .select_related("audience")
        .order_by("-created_at")
    )
    attention += [
        AttentionItem("import", f"Import into {job.audience.name}", job.error_message or "The import failed.", job)
        for job in failed_imports
        if job.latest_id == job.pk
    ]

    attention += [
        AttentionItem("deletion", f"“{d.audience_name}” on {d.destination}", d.message, d)
        for d in PlatformDeletion.objects.filter(owner=user, status=PlatformDeletion.Status.FAILED,
                                                 created_at__gte=timezone.now() - DELETIONS_WINDOW)[:20]
    ]

    return Dashboard(attention=attention, connections=connections, audiences=audiences, recent_runs=recent_runs,
                     upcoming=upcoming_runs(user))


@dataclass
class DeletedAudience:
    """A deleted audience and what became of each of its copies on the platforms."""

    name: str
    deleted_at: object
    copies: list[PlatformDeletion]

    @property
    def pending(self) -> bool:
        return any(c.status == PlatformDeletion.Status.PENDING for c in self.copies)

    @property
    def worth_polling(self) -> bool:
        """Whether a page should re-read this soon: a copy is still being deleted, and recently."""
        return self.pending and self.deleted_at > timezone.now() - DELETING_POLL_FOR


def deleted_audiences(user, *, limit: int = 100) -> list[DeletedAudience]:
    """The user's audiences deleted in the last DELETIONS_WINDOW that had copies on platforms, newest first, each
    with its copies' fates (one query)."""
    groups: dict[int, DeletedAudience] = {}
    rows = (PlatformDeletion.objects.filter(owner=user, created_at__gte=timezone.now() - DELETIONS_WINDOW)
            .order_by("-created_at", "id")[:limit])
    for row in rows:
        group = groups.setdefault(row.former_audience_id, DeletedAudience(row.audience_name, row.created_at, []))
        group.copies.append(row)
    return list(groups.values())



UPCOMING = 5


def upcoming_runs(user) -> list[tuple[Sync, object]]:
    """The user's scheduled syncs by their next run (syncs.selectors.next_run_at), soonest first."""
    from syncs.selectors import next_run_at

    syncs = (Sync.objects.filter(owner=user).exclude(schedule="").exclude(audience__status=Audience.Status.DELETING)
             .select_related("audience", "connection__platform")
             .only("schedule", "schedule_time", "schedule_weekday", "schedule_timezone", "audience__name",
                   "connection__label", "connection__status", "connection__platform__name"))
    timed = [(sync, next_run_at(sync)) for sync in syncs]
    return sorted(timed, key=lambda pair: pair[1])[:UPCOMING]
