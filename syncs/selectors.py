"""Reads of syncs and runs for pages: a run's progress, the sync panel of an audience page."""

from __future__ import annotations

import datetime
import zoneinfo
from dataclasses import dataclass

from django.db.models import OuterRef, Subquery
from django.utils import timezone

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
    return Progress(run=run, percent=percent, eta_seconds=eta, failed_batches=failed)


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
