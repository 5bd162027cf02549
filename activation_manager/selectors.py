"""Reads for the dashboard: everything a marketer should see first, in a fixed number of queries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import OuterRef, Subquery
from django.utils import timezone

from audiences.models import Audience, ImportJob
from credentials.models import Connection
from syncs.models import Sync, SyncRun

RECENT_RUNS = 10
ATTENTION_WINDOW = timedelta(days=14)


@dataclass
class AttentionItem:
    kind: str  # "connection" | "run" | "import"
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

    # A sync needs attention when its latest run failed or partly failed (a later success clears it).
    since = timezone.now() - ATTENTION_WINDOW
    latest_per_sync = SyncRun.objects.filter(sync=OuterRef("pk")).order_by("-created_at")
    troubled_syncs = (
        Sync.objects.filter(owner=user).exclude(audience__status=Audience.Status.DELETING)
        .annotate(latest_run_id=Subquery(latest_per_sync.values("pk")[:1]))
        .values_list("latest_run_id", flat=True)
    )
    failed_runs = (
        SyncRun.objects.filter(
            pk__in=[pk for pk in troubled_syncs if pk is not None],
            status__in=[SyncRun.Status.FAILED, SyncRun.Status.PARTIAL],
            created_at__gte=since,
        )
        .select_related("sync__audience", "sync__connection__platform")
        .only(*RUN_ROW_FIELDS, "error_message")
        .order_by("-created_at")
    )
    attention += [
        AttentionItem(
            "run",
            f"{run.sync.audience.name} → {run.sync.connection.platform.name} ({run.sync.connection.label})",
            run.error_message or run.get_status_display(),
            run,
        )
        for run in failed_runs
    ]

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

    return Dashboard(attention=attention, connections=connections, audiences=audiences, recent_runs=recent_runs,
                     upcoming=upcoming_runs(user))


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
