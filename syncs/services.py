"""Syncs: create, update and delete them, and keep their beat schedules in step (writes; reads are in
syncs/selectors.py, runs in syncs/runs.py, the engine in syncs/engine.py)."""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction

from audiences.models import Audience
from credentials.models import Connection
from syncs.models import Sync

logger = logging.getLogger(__name__)

# Schedule -> django-celery-beat interval (every, period).
SCHEDULE_INTERVALS = {
    Sync.Schedule.HOURLY: (1, "hours"),
    Sync.Schedule.DAILY: (1, "days"),
    Sync.Schedule.WEEKLY: (7, "days"),
}
SCHEDULED_TASK = "syncs.run_scheduled_sync"


class SyncError(Exception):
    """A request about syncs that cannot be honoured; ``message`` is safe to show."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


def active_connections_for(owner):
    """Connections a sync may use: the owner's, active only."""
    return (
        Connection.objects.filter(owner=owner, status=Connection.Status.ACTIVE)
        .select_related("platform")
        .order_by("platform__name", "label")
    )


def _check_choice(value: str, choices, field: str, what: str) -> str:
    valid = {c for c, _ in choices}
    if value not in valid:
        raise SyncError(f"Choose a {what}: {', '.join(repr(c) for c in sorted(valid) if c) or 'none'}.", field=field)
    return value


def create_sync(*, owner, audience: Audience, connection_id, mode: str = Sync.Mode.ADD, schedule: str = "") -> Sync:
    """Link ``audience`` to one of the owner's active connections (one sync per pair)."""
    if audience.owner_id != owner.pk:
        raise SyncError("Audience not found.")
    try:
        connection_id = int(connection_id)
    except (TypeError, ValueError):
        raise SyncError("Choose a connection.", field="connection") from None
    conn = Connection.objects.filter(owner=owner, pk=connection_id).select_related("platform").first()
    if conn is None:
        raise SyncError("Choose one of your connections.", field="connection")
    if conn.status != Connection.Status.ACTIVE:
        raise SyncError(f"{conn} is {conn.get_status_display().lower()}: reconnect it first.", field="connection")
    mode = _check_choice(mode or Sync.Mode.ADD, Sync.Mode.choices, "mode", "mode")
    schedule = _check_choice(schedule or "", Sync.Schedule.choices, "schedule", "schedule")
    if Sync.objects.filter(audience=audience, connection=conn).exists():
        raise SyncError(f"This audience already syncs to {conn}.", field="connection")
    try:
        with transaction.atomic():
            sync = Sync.objects.create(owner=owner, audience=audience, connection=conn, mode=mode, schedule=schedule)
            _apply_schedule(sync)
    except IntegrityError:  # a concurrent request created the same pair first
        raise SyncError(f"This audience already syncs to {conn}.", field="connection") from None
    logger.info("sync %s created (audience=%s connection=%s mode=%s schedule=%s)",
                sync.pk, audience.pk, conn.pk, mode, schedule or "manual")
    return sync


def update_sync(*, sync: Sync, mode: str | None = None, schedule: str | None = None,
                hold_threshold: object = None) -> Sync:
    """Change a sync's mode, schedule or hold threshold. A new mode means the platform is no longer known to hold
    exactly what that mode would leave, so the next run compares the whole audience."""
    fields = ["updated_at"]
    if mode is not None:
        mode = _check_choice(mode, Sync.Mode.choices, "mode", "mode")
        if mode != sync.mode:
            sync.mode, sync.confirmed_generation = mode, None
            fields += ["mode", "confirmed_generation"]
    if schedule is not None:
        sync.schedule = _check_choice(schedule, Sync.Schedule.choices, "schedule", "schedule")
        fields.append("schedule")
    if hold_threshold not in (None, ""):
        sync.hold_threshold = clean_threshold(hold_threshold)
        fields.append("hold_threshold")
    with transaction.atomic():
        sync.save(update_fields=fields)
        _apply_schedule(sync)
    return sync


def clean_threshold(value: object) -> int:
    """A hold threshold from a form or a command: a whole percentage, 0 to 100."""
    try:
        threshold = int(str(value).strip().rstrip("%"))
    except (TypeError, ValueError):
        raise SyncError("The hold threshold is a whole percentage between 0 and 100.", field="hold_threshold") from None
    if not 0 <= threshold <= 100:
        raise SyncError("The hold threshold is a whole percentage between 0 and 100.", field="hold_threshold")
    return threshold


def delete_sync(*, sync: Sync) -> None:
    """Delete the sync, its runs and its schedule (the platform audience itself is left in place)."""
    with transaction.atomic():
        task = sync.periodic_task
        sync.delete()
        if task is not None:
            task.delete()



def _apply_schedule(sync: Sync) -> None:
    """Create, update or delete the sync's django-celery-beat PeriodicTask to match ``sync.schedule``."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    task = sync.periodic_task
    if not sync.schedule:
        if task is not None:
            sync.periodic_task = None
            sync.save(update_fields=["periodic_task"])
            task.delete()
        return
    every, period = SCHEDULE_INTERVALS[sync.schedule]
    interval, _ = IntervalSchedule.objects.get_or_create(every=every, period=period)
    fields = {
        "name": f"Sync {sync.pk}: audience {sync.audience_id} to connection {sync.connection_id}",
        "task": SCHEDULED_TASK,
        "interval": interval,
        "args": f"[{sync.pk}]",
        "enabled": True,
        "description": f"{sync.get_schedule_display()} sync of audience {sync.audience_id}.",
    }
    if task is None:
        task = PeriodicTask.objects.create(**fields)
        sync.periodic_task = task
        sync.save(update_fields=["periodic_task"])
    else:
        for name, value in fields.items():
            setattr(task, name, value)
        task.save()
