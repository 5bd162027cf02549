"""Reads of syncs and runs for pages: a run's progress, the sync panel of an audience page, the preview of a sync's
next run, a run page's history."""

from __future__ import annotations

import datetime
import zoneinfo
from dataclasses import dataclass

from django.db.models import OuterRef, Subquery
from django.utils import timezone

from audiences.models import Audience
from syncs import charts, engine, platform_reports
from syncs.engine.plan import plan_source
from syncs.models import Sync, SyncBatch, SyncRun
from syncs.runs import ACTIVE, FINISHED
from syncs.services import WEEKDAYS, active_connections_for, crontab_fields, describe_schedule

Status = SyncRun.Status


@dataclass
class Progress:
    run: SyncRun
    percent: int
    eta_seconds: int | None
    failed_batches: list[SyncBatch]
    reports: dict | None = None  # the platform's reports on the run's requests (syncs.platform_reports)

    @property
    def active(self) -> bool:
        return self.run.status in ACTIVE


def progress_of(run: SyncRun) -> Progress:
    if run.status in (Status.SUCCEEDED, Status.ATTENTION) or (run.status in FINISHED and run.total_batches == 0
                                          and run.status != Status.FAILED and run.status != Status.CANCELLED):
        percent = 100
    elif run.total_batches:
        percent = min(100, int(run.done_batches * 100 / run.total_batches))
    else:
        percent = 0
    eta = None
    if run.status == Status.RUNNING and run.started_at and 0 < run.done_batches < run.total_batches:
        elapsed = (timezone.now() - run.started_at).total_seconds()
        eta = int(elapsed / run.done_batches * (run.total_batches - run.done_batches))
    failed = list(run.batches.filter(status=SyncBatch.Status.FAILED).order_by("seq")[:20])
    return Progress(run=run, percent=percent, eta_seconds=eta, failed_batches=failed,
                    reports=platform_reports.summary(run))


def audience_sync_panel(audience) -> dict:
    """The audience's syncs with their latest run, and the owner's active connections (three queries)."""
    latest = SyncRun.objects.filter(sync=OuterRef("pk")).order_by("-created_at", "-id")
    syncs = list(
        Sync.objects.filter(audience=audience, owner_id=audience.owner_id)
        .select_related("connection__platform")
        .annotate(latest_run_id=Subquery(latest.values("pk")[:1]))
        .order_by("created_at", "id")
    )
    runs = SyncRun.objects.in_bulk([s.latest_run_id for s in syncs if s.latest_run_id])
    for sync in syncs:
        sync.latest_run = runs.get(sync.latest_run_id)
        sync.consent = consent_summary(sync)
        sync.preview_loads_itself = preview_loads_itself(sync, audience)
        sync.next_run_at = next_run_at(sync)
        sync.schedule_text = describe_schedule(sync)
    used = {s.connection_id for s in syncs}
    connections = [c for c in active_connections_for(audience.owner) if c.pk not in used]
    return {
        "syncs": syncs,
        "connections": connections,
        "modes": Sync.Mode.choices,
        "schedules": Sync.Schedule.choices,
        **schedule_choices(),
    }


@dataclass(frozen=True)
class ConsentStatement:
    """One consent the marketer stated for a sync's destination, as the connection's form words it."""

    label: str  # e.g. "ad user data"
    value: str  # the choice's label ("Granted", "Denied", ...), or "not stated"
    stated: bool


def consent_summary(sync: Sync) -> list[ConsentStatement] | None:
    """What the sync's connection states about consent (its form's ``consent_*`` fields), for the sync's row; None
    when the platform asks for no consent. Reads the connection's non-secret config only: no query, no secret."""
    from platforms.adapters.registry import get_adapter_class
    from platforms.errors import UnknownPlatform

    try:
        form_class = get_adapter_class(sync.connection.platform.code).credentials_form
    except UnknownPlatform:
        return None
    fields = {name: field for name, field in form_class.base_fields.items() if name.startswith("consent_")}
    if not fields:
        return None
    config = sync.connection.config or {}
    statements = []
    for name, field in fields.items():
        chosen = str(config.get(name) or "")
        labels = {str(value): str(text) for value, text in getattr(field, "choices", ()) if value}
        label = str(field.label or name).removeprefix("Consent:").strip()
        statements.append(ConsentStatement(label=label, value=labels.get(chosen, "not stated"),
                                           stated=chosen in labels))
    return statements


# Up to this many members the preview loads by itself on the audience page (a full comparison of a few hundred
# thousand people takes well under a second); above it, only when the marketer asks, unless the plan would read
# the recorded changes alone (a few rows) or nothing at all.
PREVIEW_AUTOLOAD_MEMBERS = 200_000
HISTORY_RUNS = 30


def preview_loads_itself(sync: Sync, audience: Audience) -> bool:
    """Whether the audience page fetches this sync's preview as soon as it is shown: when it is cheap."""
    if audience.member_count <= PREVIEW_AUTOLOAD_MEMBERS:
        return True
    return plan_source(sync, audience.generation, audience.changes_recorded_from) is not None


@dataclass
class SyncPreview:
    """What a run of the sync started now would do (syncs.engine.preview), in the words of the audience page."""

    sync: Sync
    figures: engine.Preview
    # A queued, running or held run of the sync: "Sync now" opens it instead of starting another.
    pending_run: SyncRun | None
    # The sync's latest run that recorded the platform's own figures (its audience size, matched people).
    last_reported: SyncRun | None = None

    @property
    def platform(self) -> str:
        return self.sync.connection.platform.name

    @property
    def mirror(self) -> bool:
        return self.sync.mode == Sync.Mode.MIRROR

    @property
    def adds(self) -> int:
        """People sent: those joining, and those whose record changed (re-sent with their new details)."""
        return self.figures.joining + self.figures.changed

    @property
    def removes(self) -> int:
        return self.figures.leaving if self.figures.removes else 0

    @property
    def nothing_to_send(self) -> bool:
        return not self.adds and not self.removes

    @property
    def keyless_adds(self) -> int:
        """Of the people the run would send, how many have no key the platform takes (the run reports them as
        rejected, whether it skips them or the platform refuses them). Known when the run sends every member (a
        first run, say); otherwise 0: the preview knows how many members lack a key, not which of them it sends."""
        f = self.figures
        if self.adds and self.adds == f.members and f.usable < f.members:
            return f.members - f.usable
        return 0

    @property
    def adds_detail(self) -> str:
        """The words after "Will add N": who they are, and how many of them will be rejected ("" when nothing)."""
        f, parts = self.figures, []
        if f.changed:
            parts.append(f"{f.joining:,} new, {f.changed:,} with changed details")
        if keyless := self.keyless_adds:
            parts.append(f"{keyless:,} of them {'has' if keyless == 1 else 'have'} no key {self.platform} takes and "
                         "will be rejected")
        return "; ".join(parts)

    @property
    def holds(self) -> str:
        """When there is nothing to send: what the platform was sent (the members with a key it takes) and, a
        different figure, the size it last reported (a platform counts the people it matched to its users)."""
        f, platform = self.figures, self.platform
        if not f.members:
            return f"the audience has no members. {self.reported}".rstrip()
        who = "current members" if f.leaving and not f.removes else "people"
        text = f"{platform} has the {f.usable:,} {who} sent to it"
        if f.usable < f.members:
            others = f.members - f.usable
            text += (f"; the other {others:,} {'member has' if others == 1 else 'members have'} no key {platform} "
                     "takes")
        return f"{text}. {self.reported}".rstrip()

    @property
    def reported(self) -> str:
        """The platform's own last figures, in a sentence ("" before it reported any)."""
        run = self.last_reported
        if run is None or run.audience_size is None:
            return ""
        size = run.audience_size
        if run.matched == size:
            return f"{self.platform} last reported {size:,} matched."
        matched = f" ({run.matched:,} matched)" if run.matched is not None else ""
        return f"{self.platform} last reported an audience size of {size:,}{matched}."

    @property
    def usable_percent(self) -> int | None:
        """The share of members the platform can use, never "100 %" while some cannot be sent (2,979 of 2,988 is
        99 %, not the 100 % it rounds to), nor "0 %" while some can."""
        members, usable = self.figures.members, self.figures.usable
        if not members:
            return None
        percent = round(usable * 100 / members)
        if usable < members:
            percent = min(percent, 99)
        return max(percent, 1) if usable else 0

    @property
    def below_minimum(self) -> str:
        """When the members the platform can use are fewer than it needs to serve an audience
        (``Capabilities.min_audience_size``), a sentence saying so ("" otherwise)."""
        from platforms.adapters import get_adapter_class

        minimum = get_adapter_class(self.sync.connection.platform.code).capabilities.min_audience_size
        usable = self.figures.usable
        if not minimum or not self.figures.members or usable >= minimum:
            return ""
        return (f"{self.platform} serves an audience once about {minimum:,} of its people are matched; this one has "
                f"{usable:,} {'member' if usable == 1 else 'members'} it can use, so expect it not to be usable in "
                "campaigns yet.")

    @property
    def leaving_percent(self) -> float | None:
        share = self.figures.leaving_share
        return None if share is None else share * 100

    @property
    def leavers(self) -> str:
        """What happens to the people who left the audience, by mode ("" when nobody left)."""
        n = self.figures.leaving
        if not n:
            return ""
        who = f"{n:,} {'person' if n == 1 else 'people'} left the audience"
        if self.figures.removes:
            return f"{who}: removed from {self.platform} (mirror mode)."
        if self.mirror:
            return f"{who}: kept on {self.platform}, which cannot remove people from an audience."
        return f"{who}: kept on {self.platform} (add-only mode; mirror mode would remove them)."

    @property
    def hold(self) -> str:
        """Whether the run would be held for review, and why ("" when the question does not arise)."""
        threshold = self.sync.hold_threshold
        if not self.figures.removes and not self.figures.would_hold:
            return ""
        if not self.figures.leaving:
            if not threshold:
                return "Runs of this sync are never held for review (threshold 0 %)."
            return (f"A run that would remove more than {threshold} % of the people on {self.platform} is held for "
                    "review before anything is sent.")
        share = self.leaving_percent
        of_held = (f"{self.figures.leaving:,} of the {self.figures.held:,} people {self.platform} holds "
                   f"({share:.1f} %)") if share is not None else f"{self.figures.leaving:,} people"
        if self.figures.would_hold:
            return (f"This run would be held for review: it removes {of_held}, more than this sync's {threshold} % "
                    "threshold. Nothing is sent until you confirm it on the run page.")
        if not threshold:
            return f"It removes {of_held}; runs of this sync are never held for review (threshold 0 %)."
        return f"It removes {of_held}, within this sync's {threshold} % threshold: it is sent without review."


def sync_preview(sync: Sync) -> SyncPreview:
    """The preview of ``sync``'s next run. Costs what planning the run costs (a comparison of the whole audience
    unless the platform holds a generation whose changes were recorded): never call it while rendering a page."""
    pending = sync.runs.filter(status__in=SyncRun.PENDING_STATUSES).order_by("-created_at").first()
    reported = sync.runs.filter(audience_size__isnull=False).order_by("-created_at", "-id").first()
    return SyncPreview(sync=sync, figures=engine.preview(sync), pending_run=pending, last_reported=reported)


def run_history(run: SyncRun) -> list[SyncRun]:
    """The sync's latest runs, newest first, always including ``run`` itself (its row is updated while it runs)."""
    history = list(run.sync.runs.order_by("-created_at", "-id")[:HISTORY_RUNS])
    if all(r.pk != run.pk for r in history):
        history.append(run)
    return history


def history_charts(history: list[SyncRun]) -> list[charts.Chart]:
    """The charts of a run page, from its history (newest first): finished runs only."""
    return charts.history_charts([r for r in reversed(history) if r.status in FINISHED])


def next_run_at(sync: Sync, *, now: datetime.datetime | None = None) -> datetime.datetime | None:
    """When the sync's schedule fires next (aware, in the sync's time zone), computed as celery-beat computes it from
    the sync's crontab; None for a manual sync."""
    if not sync.schedule:
        return None
    from django_celery_beat.tzcrontab import TzAwareCrontab

    # The very schedule class beat runs the row with (times taken in the schedule's zone), on our clock.
    zone = zoneinfo.ZoneInfo(sync.schedule_timezone)
    local_now = (now or timezone.now()).astimezone(zone)
    crontab = TzAwareCrontab(tz=zone, **crontab_fields(sync))
    crontab.nowfun = lambda: local_now
    # The estimate is real elapsed time: add it in UTC (an aware add in the zone would be wall-clock, off by an hour
    # across a daylight-saving change).
    at = local_now.astimezone(datetime.UTC) + crontab.remaining_estimate(local_now)
    # celery answers a microsecond before the minute: round to the minute it means.
    return (at + datetime.timedelta(seconds=30)).replace(second=0, microsecond=0).astimezone(zone)


def schedule_text(sync: Sync) -> str:
    """The schedule in words ("Daily at 06:30 (Europe/Paris)")."""
    return describe_schedule(sync)


def schedule_choices() -> dict:
    """What a schedule form offers: weekdays and time zones (common ones first)."""
    from syncs.services import time_zones

    common = ["UTC", "Europe/London", "Europe/Paris", "Europe/Berlin", "America/New_York", "America/Chicago",
              "America/Los_Angeles", "Asia/Tokyo", "Australia/Sydney"]
    return {"weekdays": list(enumerate(WEEKDAYS)), "time_zones": common + sorted(time_zones() - set(common))}
