"""Syncs: create, update and delete them, and keep their beat schedules in step (writes; reads are in
syncs/selectors.py, runs in syncs/runs.py, the engine in the syncs/engine/ package)."""

from __future__ import annotations

import datetime
import logging
import re
import zoneinfo
from functools import lru_cache

from django.db import IntegrityError, transaction

from audiences.models import Audience
from credentials.models import Connection
from syncs.models import Sync, SyncMember, SyncRun

logger = logging.getLogger(__name__)

SCHEDULED_TASK = "syncs.run_scheduled_sync"
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


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


@lru_cache(maxsize=1)
def time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def clean_schedule_time(value: object) -> datetime.time:
    """A time of day from a form or a command: "HH:MM" (24-hour)."""
    if isinstance(value, datetime.time):
        return value.replace(second=0, microsecond=0)
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})(?::\d{2})?\s*", str(value or ""))
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise SyncError("The time of day is HH:MM on a 24-hour clock, e.g. 06:30.", field="schedule_time")
    return datetime.time(int(match[1]), int(match[2]))


def clean_weekday(value: object) -> int:
    """A weekday, 0 (Monday) to 6 (Sunday), or its English name."""
    text = str(value if value is not None else "").strip()
    names = {name.lower(): index for index, name in enumerate(WEEKDAYS)}
    if text.lower() in names:
        return names[text.lower()]
    if text.isdigit() and int(text) < 7:
        return int(text)
    raise SyncError("Choose a weekday (Monday to Sunday).", field="schedule_weekday")


def clean_timezone(value: object) -> str:
    """An IANA time zone name ("Europe/Paris", "UTC")."""
    name = str(value or "").strip()
    if name not in time_zones():
        raise SyncError("Choose a time zone by its name, e.g. Europe/Paris or America/New_York.",
                        field="schedule_timezone")
    return name


def _schedule_fields(schedule_time, schedule_weekday, schedule_timezone) -> dict:
    """The schedule fields given (None: not given), cleaned."""
    fields = {}
    if schedule_time not in (None, ""):
        fields["schedule_time"] = clean_schedule_time(schedule_time)
    if schedule_weekday not in (None, ""):
        fields["schedule_weekday"] = clean_weekday(schedule_weekday)
    if schedule_timezone not in (None, ""):
        fields["schedule_timezone"] = clean_timezone(schedule_timezone)
    return fields


def create_sync(*, owner, audience: Audience, connection_id, mode: str = Sync.Mode.ADD, schedule: str = "",
                schedule_time: object = None, schedule_weekday: object = None,
                schedule_timezone: object = None) -> Sync:
    """Link ``audience`` to one of the owner's active connections (one sync per pair); a daily / weekly schedule runs
    at ``schedule_time`` ("HH:MM") on ``schedule_weekday`` (weekly) in ``schedule_timezone`` (IANA name)."""
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
    timing = _schedule_fields(schedule_time, schedule_weekday, schedule_timezone)
    if Sync.objects.filter(audience=audience, connection=conn).exists():
        raise SyncError(f"This audience already syncs to {conn}.", field="connection")
    try:
        with transaction.atomic():
            sync = Sync.objects.create(owner=owner, audience=audience, connection=conn, mode=mode, schedule=schedule,
                                       **timing)
            _apply_schedule(sync)
    except IntegrityError:  # a concurrent request created the same pair first
        raise SyncError(f"This audience already syncs to {conn}.", field="connection") from None
    logger.info("sync %s created (audience=%s connection=%s mode=%s schedule=%s)",
                sync.pk, audience.pk, conn.pk, mode, schedule or "manual")
    return sync


def update_sync(*, sync: Sync, mode: str | None = None, schedule: str | None = None,
                hold_threshold: object = None, schedule_time: object = None, schedule_weekday: object = None,
                schedule_timezone: object = None) -> Sync:
    """Change a sync's mode, schedule (and its time of day, weekday, time zone) or hold threshold. A new mode means
    the platform is no longer known to hold exactly what that mode would leave, so the next run compares the whole
    audience."""
    fields = ["updated_at"]
    for name, value in _schedule_fields(schedule_time, schedule_weekday, schedule_timezone).items():
        setattr(sync, name, value)
        fields.append(name)
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


CHANGE_CONNECTION_WARNING = (
    "This sync already has an audience on {platform} ({audience_id}). With another connection, the next run creates "
    "a new audience there and sends everyone again; the old audience stays on {platform} as it is, and this sync "
    "forgets it. Confirm to change the connection."
)


def change_connection(*, sync: Sync, connection, confirmed: bool = False) -> Sync:
    """Point the sync at another of its owner's connections. What the sync knew about the old platform audience
    (its id, who it holds, the confirmed generation) no longer describes anything the new connection holds, so it
    is cleared — after the caller confirmed it, when there was a platform audience (``CHANGE_CONNECTION_WARNING``).
    Refused while a run is queued, running or held."""
    from syncs.engine.checkpoint import drop_unheld_versions

    if connection.pk == sync.connection_id:
        return sync
    if connection.owner_id != sync.owner_id:
        raise SyncError(Sync.OWNERS_DIFFER, field="connection")
    if sync.runs.filter(status__in=SyncRun.PENDING_STATUSES).exists():
        raise SyncError("A run of this sync is queued, running or held: wait for it or cancel it first.",
                        field="connection")
    knows = bool(sync.platform_audience_id) or SyncMember.objects.filter(sync_id=sync.pk).exists()
    if knows and not confirmed:
        raise SyncError(CHANGE_CONNECTION_WARNING.format(platform=sync.connection.platform.name,
                                                         audience_id=sync.platform_audience_id or "not named yet"),
                        field="confirm")
    with transaction.atomic():
        Sync.objects.select_for_update().filter(pk=sync.pk).first()
        SyncMember.objects.filter(sync_id=sync.pk).delete()
        sync.connection = connection
        sync.platform_audience_id = ""
        sync.confirmed_generation = None
        sync.save(update_fields=["connection", "platform_audience_id", "confirmed_generation", "updated_at"])
        drop_unheld_versions(sync.audience_id, None)  # versions kept only for what this sync held
    logger.info("sync %s now sends to connection %s (platform audience forgotten)", sync.pk, connection.pk)
    return sync


def delete_sync(*, sync: Sync) -> None:
    """Delete the sync, its runs and its schedule (the platform audience itself is left in place)."""
    from syncs.engine.checkpoint import drop_unheld_versions

    with transaction.atomic():
        task = sync.periodic_task
        audience_id = sync.audience_id
        sync.delete()
        if task is not None:
            task.delete()
        drop_unheld_versions(audience_id, None)  # earlier versions kept only because this sync held them


def crontab_fields(sync: Sync) -> dict[str, str]:
    """The django-celery-beat crontab of a sync's schedule: its minute (hourly), its time of day (daily), its time on
    its weekday (weekly), in its own time zone. Crontab counts weekdays from Sunday = 0; ours from Monday = 0."""
    at = sync.schedule_time
    fields = {"minute": str(at.minute), "hour": "*", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"}
    if sync.schedule in (Sync.Schedule.DAILY, Sync.Schedule.WEEKLY):
        fields["hour"] = str(at.hour)
    if sync.schedule == Sync.Schedule.WEEKLY:
        fields["day_of_week"] = str((sync.schedule_weekday + 1) % 7)
    return fields


def schedule_name(sync: Sync) -> str:
    """The beat row's name says what it does: "Daily sync of VIP customers to Meta · EU account (sync 12)"."""
    connection = sync.connection
    name = (f"{sync.get_schedule_display()} sync of {sync.audience.name} to {connection.platform.name} · "
            f"{connection.label}")
    suffix = f" (sync {sync.pk})"  # beat names are unique; two users may name things alike
    return name[:200 - len(suffix)] + suffix


def describe_schedule(sync: Sync) -> str:
    """The schedule in words: "Daily at 06:30 (Europe/Paris)", "Weekly on Monday at 06:00 (UTC)"."""
    if not sync.schedule:
        return "Manual only"
    at = sync.schedule_time
    if sync.schedule == Sync.Schedule.HOURLY:
        return f"Hourly at minute {at.minute:02d}"
    when = f"at {at:%H:%M} ({sync.schedule_timezone})"
    if sync.schedule == Sync.Schedule.WEEKLY:
        return f"Weekly on {WEEKDAYS[sync.schedule_weekday]} {when}"
    return f"Daily {when}"


def _apply_schedule(sync: Sync) -> None:
    """Create, update or delete the sync's django-celery-beat PeriodicTask to match ``sync.schedule``: a crontab in
    the sync's time zone, named after what it does."""
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    task = sync.periodic_task
    if not sync.schedule:
        if task is not None:
            sync.periodic_task = None
            sync.save(update_fields=["periodic_task"])
            task.delete()
        return
    crontab_values = {**crontab_fields(sync), "timezone": zoneinfo.ZoneInfo(sync.schedule_timezone)}
    crontab = CrontabSchedule.objects.filter(**crontab_values).first()
    if crontab is None:
        crontab = CrontabSchedule.objects.create(**crontab_values)
    fields = {
        "name": schedule_name(sync),
        "task": SCHEDULED_TASK,
        "interval": None,
        "crontab": crontab,
        "args": f"[{sync.pk}]",
        "enabled": True,
        "description": f"{describe_schedule(sync)}: audience {sync.audience_id} to connection {sync.connection_id}.",
    }
    if task is None:
        task = PeriodicTask.objects.create(**fields)
        sync.periodic_task = task
        sync.save(update_fields=["periodic_task"])
    else:
        for name, value in fields.items():
            setattr(task, name, value)
        task.save()
