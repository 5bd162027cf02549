"""The sync engine: keep an audience in step with a platform audience, in checkpointed batches.

A run, end to end (``execute_run``):

1. **Claim.** The run moves queued -> running, or is taken over when it is "running" with a heartbeat
   older than ``SYNC_STALE_AFTER`` (its worker died). The heartbeat timestamp this worker wrote is its
   lease: every later heartbeat and checkpoint only applies while the row still carries it, so a run
   taken over by another worker (watchdog + resume) is never written by two workers.
2. **Platform audience.** Created on the first run of a sync; its id is stored on the sync.
3. **Plan.** The difference between the audience's current generation and the members this sync
   already confirmed (``SyncMember``): adds = members not confirmed; removes (mirror only) = confirmed
   members no longer in the audience. The plan is written as ``SyncBatch`` rows, each a keyset range
   of fingerprints of at most the adapter's ``batch_size``. Nothing is held in memory beyond one batch.
   Removes go first: on platforms that remove by identifier (Meta), a member whose phone changed is
   "remove old, add new", and the other order would remove the new one by its email.
   A platform without per-person removal but with a replace operation (The Trade Desk) mirrors with a
   replace session over the whole audience, only on runs that have something to remove.
4. **Send.** Each pending batch goes through the adapter (rate limiter + retry policy), then, in one
   transaction, the batch is marked sent, the ``SyncMember`` rows are written (or deleted, for removes)
   and the run's counters move. A restarted run skips sent batches: at most the batch in flight when
   a worker died is sent twice. Heartbeat and cancellation are checked between batches.
5. **Status.** The platform's size / match figures go onto the run.

Errors: ``RateLimited`` / ``TransientError`` are retried (platforms/retry.py); once the attempts run
out the run fails and can be resumed. ``PermanentError`` fails that batch only (the run ends
"partial"). ``AuthError`` stops the run and turns the connection to error with the platform's message.
"""

from __future__ import annotations

import logging
import math
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import closing, suppress
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, IntegrityError, close_old_connections, connection, transaction
from django.db.models import BooleanField, Exists, F, Max, Min, OuterRef, Q
from django.db.models.expressions import RawSQL
from django.utils import timezone

from audiences.housekeeping import vacuum_analyze
from audiences.models import Audience, ImportJob, Member, MemberChange, Sync, SyncBatch, SyncMember, SyncRun
from credentials.models import Connection
from credentials.scrub import scrub
from platforms.adapters.base import Operation, PlatformAdapter, UploadSession
from platforms.errors import AuthError, PermanentError, PlatformError, RateLimited, TransientError
from platforms.matchkeys import platform_values
from platforms.ratelimit import RateLimiter, limiter_for
from platforms.retry import RetryPolicy

logger = logging.getLogger(__name__)

Status = SyncRun.Status
Kind = SyncBatch.Kind
ACTIVE = (Status.QUEUED, Status.RUNNING)
FINISHED = (Status.SUCCEEDED, Status.PARTIAL, Status.FAILED, Status.CANCELLED)

# Schedule -> django-celery-beat interval (every, period).
SCHEDULE_INTERVALS = {
    Sync.Schedule.HOURLY: (1, "hours"),
    Sync.Schedule.DAILY: (1, "days"),
    Sync.Schedule.WEEKLY: (7, "days"),
}
SCHEDULED_TASK = "audiences.sync_tasks.run_scheduled_sync"
# Meta's session ids are per advertiser and must be unique: derived from the run and the kind.
SESSION_KIND_OFFSET = {Kind.ADD: 1, Kind.REMOVE: 2, Kind.REPLACE: 3}
# Longest single sleep while waiting (retry / rate limit), so the heartbeat keeps beating.
PAUSE_SLICE = 60.0
STALE_MESSAGE = (
    "The worker stopped responding (no heartbeat for {minutes} minutes). Nothing after the last sent batch "
    "was lost: resume the run to continue from the first unsent batch."
)


QUEUED_STALE_MESSAGE = (
    "No worker picked this run up within {minutes} minutes (are the Celery workers running?). Resume it to "
    "queue it again."
)


class SyncError(Exception):
    """A request about syncs that cannot be honoured; ``message`` is safe to show."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


# Syncs ------------------------------------------------------------------------------------------

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


def update_sync(*, sync: Sync, mode: str | None = None, schedule: str | None = None) -> Sync:
    if mode is not None:
        sync.mode = _check_choice(mode, Sync.Mode.choices, "mode", "mode")
    if schedule is not None:
        sync.schedule = _check_choice(schedule, Sync.Schedule.choices, "schedule", "schedule")
    with transaction.atomic():
        sync.save(update_fields=["mode", "schedule", "updated_at"])
        _apply_schedule(sync)
    return sync


def delete_sync(*, sync: Sync) -> None:
    """Delete the sync, its runs and its schedule (the platform audience itself is left in place)."""
    with transaction.atomic():
        task = sync.periodic_task
        sync.delete()
        if task is not None:
            task.delete()


def delete_audience(*, audience: Audience, on_platforms: bool = False) -> list[str]:
    """Delete the audience: it leaves every page at once, and its members, syncs, runs and files are removed
    in the background (``purge_audience``: a ten-million-member audience takes longer than a web request may).
    Its schedules stop and its running syncs are cancelled now; an import still running stops at its next
    checkpoint. With ``on_platforms``, the audiences its syncs created on the platforms are deleted too (one
    task each, retried on transient errors). Returns the names of the destinations being cleaned up."""
    syncs = list(audience.syncs.select_related("connection__platform"))
    targets = [(s.connection_id, s.platform_audience_id, f"{s.connection.platform.name} · {s.connection.label}")
               for s in syncs if on_platforms and s.platform_audience_id]
    now = timezone.now()
    with transaction.atomic():
        Audience.objects.filter(pk=audience.pk).update(status=Audience.Status.DELETING, updated_at=now)
        SyncRun.objects.filter(sync__audience=audience, status__in=SyncRun.ACTIVE_STATUSES).update(
            status=Status.CANCELLED, finished_at=now, error_message="The audience was deleted.")
        tasks = [s.periodic_task_id for s in syncs if s.periodic_task_id]
        if tasks:
            from django_celery_beat.models import PeriodicTask

            PeriodicTask.objects.filter(pk__in=tasks).delete()
        for connection_id, platform_audience_id, _ in targets:
            transaction.on_commit(
                lambda c=connection_id, a=platform_audience_id: _queue_platform_delete(c, a)
            )
        transaction.on_commit(lambda: _queue_purge(audience.pk))
    audience.status = Audience.Status.DELETING
    return [name for _, _, name in targets]


# Rows deleted per statement by the purge: small enough that no statement holds locks for long.
PURGE_SLICE = 20_000


def _queue_purge(audience_id: int) -> None:
    from audiences.sync_tasks import purge_audience as purge_task

    purge_task.delay(audience_id)


def purge_audience(*, audience_id: int) -> bool:
    """Remove an audience being deleted, its biggest tables in slices (each slice moves ``updated_at``, which
    the watchdog reads as a heartbeat). True when the audience is gone; False while an import of it is still
    running (it stops at its next checkpoint; try again shortly). Safe to run twice."""
    from audiences import imports

    audience = Audience.objects.filter(pk=audience_id, status=Audience.Status.DELETING).first()
    if audience is None:
        return True
    fresh = timezone.now() - timedelta(seconds=settings.SYNC_STALE_AFTER)
    if audience.imports.filter(status=ImportJob.Status.RUNNING, heartbeat_at__gte=fresh).exists():
        return False
    big_tables = ((SyncMember, {"sync__audience_id": audience_id}), (Member, {"audience_id": audience_id}),
                  (MemberChange, {"audience_id": audience_id}))
    for model, where in big_tables:
        while ids := list(model.objects.filter(**where).values_list("pk", flat=True)[:PURGE_SLICE]):
            model.objects.filter(pk__in=ids).delete()
            Audience.objects.filter(pk=audience_id).update(updated_at=timezone.now())
    for job in audience.imports.exclude(stored_path=""):
        imports.delete_upload(job)
    audience.delete()  # what is left (syncs, runs, batches, import reports) is small
    logger.info("audience %s deleted", audience_id)
    return True


def requeue_stale_deletions(*, now=None) -> list[int]:
    """Audiences left "deleting" without progress for SYNC_STALE_AFTER seconds (their purge task was lost with
    its worker, or gave up waiting on an import): queue the purge again."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.SYNC_STALE_AFTER)
    stale = list(Audience.objects.filter(status=Audience.Status.DELETING, updated_at__lt=cutoff)
                 .values_list("pk", flat=True))
    for audience_id in stale:
        Audience.objects.filter(pk=audience_id).update(updated_at=timezone.now())
        _queue_purge(audience_id)
        logger.warning("audience %s: deletion had stalled, queued again", audience_id)
    return stale


def _queue_platform_delete(connection_id: int, platform_audience_id: str) -> None:
    from audiences.sync_tasks import delete_platform_audience

    delete_platform_audience.delay(connection_id, platform_audience_id)


def delete_platform_audience(*, connection_id: int, platform_audience_id: str) -> bool:
    """Delete one audience on its platform; False when the connection is gone or no longer usable."""
    connection = Connection.objects.filter(pk=connection_id).select_related("platform").first()
    if connection is None or connection.status != Connection.Status.ACTIVE:
        logger.warning("platform audience of connection %s not deleted: connection missing or inactive",
                       connection_id)
        return False
    connection.adapter().delete_audience(platform_audience_id)
    logger.info("deleted platform audience on connection %s", connection_id)
    return True


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


# Runs -------------------------------------------------------------------------------------------

def enqueue_run(run_id: int) -> None:
    """Hand the run to a worker (called once the run row is committed)."""
    from audiences.sync_tasks import run_sync

    try:
        run_sync.delay(run_id)
    except Exception as exc:  # noqa: BLE001 — broker down: say so on the run, never a 500
        logger.error("could not queue sync run %s (%s)", run_id, type(exc).__name__)
        SyncRun.objects.filter(pk=run_id, status=Status.QUEUED).update(
            status=Status.FAILED, finished_at=timezone.now(),
            error_message="The run could not be queued (the task queue is unavailable). Resume it to try again.",
        )


def _queue(run: SyncRun) -> None:
    transaction.on_commit(lambda: enqueue_run(run.pk))


def active_run(sync: Sync) -> SyncRun | None:
    return sync.runs.filter(status__in=ACTIVE).order_by("-created_at").first()


def start_run(*, sync: Sync, trigger: str = SyncRun.Trigger.MANUAL) -> SyncRun:
    """Queue a run of ``sync``; if one is already queued or running, that one is returned instead."""
    with transaction.atomic():
        Sync.objects.select_for_update().filter(pk=sync.pk).first()  # one starter at a time per sync
        current = active_run(sync)
        if current is not None:
            return current
        run = SyncRun.objects.create(sync=sync, trigger=trigger)
        _queue(run)
    logger.info("sync run %s queued (sync=%s trigger=%s)", run.pk, sync.pk, trigger)
    return run


def start_scheduled_run(*, sync_id: int) -> SyncRun | None:
    """The schedule fired: a new run, unless the sync is gone, its connection is not active or a run is active."""
    sync = Sync.objects.select_related("connection").exclude(audience__status=Audience.Status.DELETING).filter(
        pk=sync_id).first()
    if sync is None:
        return None
    if sync.connection.status != Connection.Status.ACTIVE:
        logger.info("scheduled sync %s skipped: connection %s is %s", sync.pk, sync.connection_id,
                    sync.connection.status)
        return None
    if active_run(sync) is not None:
        logger.info("scheduled sync %s skipped: a run is already active", sync.pk)
        return None
    return start_run(sync=sync, trigger=SyncRun.Trigger.SCHEDULE)


def cancel_run(*, run: SyncRun) -> SyncRun:
    """Ask a run to stop. A queued run stops at once; a running one after its current batch."""
    now = timezone.now()
    SyncRun.objects.filter(pk=run.pk, status=Status.QUEUED).update(
        status=Status.CANCELLED, cancel_requested=True, finished_at=now, error_message="Cancelled before it started."
    )
    SyncRun.objects.filter(pk=run.pk, status=Status.RUNNING).update(cancel_requested=True)
    run.refresh_from_db()
    return run


def can_resume(run: SyncRun) -> bool:
    """A failed run resumes while its plan still matches the audience (same generation) and no other run is active."""
    if run.status != Status.FAILED:
        return False
    audience_generation = run.sync.audience.generation
    if run.audience_generation is not None and run.audience_generation != audience_generation:
        return False
    return not run.sync.runs.filter(status__in=ACTIVE).exclude(pk=run.pk).exists()


def resume_run(*, run: SyncRun) -> SyncRun:
    """Queue a failed run again; its worker skips every batch already sent."""
    if not can_resume(run):
        raise SyncError(
            "This run cannot be resumed (it did not fail, another run is active, or the audience changed since: "
            "start a new sync run instead)."
        )
    with transaction.atomic():
        updated = SyncRun.objects.filter(pk=run.pk, status=Status.FAILED).update(
            # heartbeat_at marks when it was queued again (see fail_stale_runs)
            status=Status.QUEUED, error_message="", finished_at=None, cancel_requested=False,
            heartbeat_at=timezone.now()
        )
        if updated:
            _queue(run)
    run.refresh_from_db()
    logger.info("sync run %s resumed", run.pk)
    return run


def fail_stale_runs(*, now=None) -> list[int]:
    """The watchdog: running runs without a heartbeat for SYNC_STALE_AFTER seconds, and queued runs no worker
    picked up within SYNC_QUEUED_STALE_AFTER, become failed with a message saying how to resume them.

    A queued run's ``heartbeat_at`` is when it was (re)queued (None: at creation).
    """
    now = now or timezone.now()
    stale_after = settings.SYNC_STALE_AFTER
    running_cutoff = now - timedelta(seconds=stale_after)
    queued_cutoff = now - timedelta(seconds=settings.SYNC_QUEUED_STALE_AFTER)
    silent = Q(status=Status.RUNNING) & (
        Q(heartbeat_at__lt=running_cutoff) | Q(heartbeat_at__isnull=True, created_at__lt=running_cutoff)
    )
    waiting = Q(status=Status.QUEUED) & (
        Q(heartbeat_at__lt=queued_cutoff) | Q(heartbeat_at__isnull=True, created_at__lt=queued_cutoff)
    )
    messages = {
        "silent": (silent, STALE_MESSAGE.format(minutes=max(1, round(stale_after / 60)))),
        "waiting": (waiting, QUEUED_STALE_MESSAGE.format(minutes=max(1, round(settings.SYNC_QUEUED_STALE_AFTER / 60)))),
    }
    failed: list[int] = []
    for condition, message in messages.values():
        ids = list(SyncRun.objects.filter(condition).values_list("pk", flat=True))
        if not ids:
            continue
        # The condition again in the UPDATE: a heartbeat (or a claim) that arrived meanwhile keeps the run alive.
        SyncRun.objects.filter(condition, pk__in=ids).update(status=Status.FAILED, finished_at=now,
                                                              error_message=message)
        failed += list(SyncRun.objects.filter(pk__in=ids, status=Status.FAILED, finished_at=now)
                       .values_list("pk", flat=True))
    if failed:
        logger.warning("watchdog failed %s stale sync run(s): %s", len(failed), failed)
    return sorted(failed)


# Progress (for the run page) -------------------------------------------------------------------

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
    if run.status == Status.SUCCEEDED or (run.status in FINISHED and run.total_batches == 0
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


# The engine -----------------------------------------------------------------------------------

PLAN_PAGE = 50_000
# Rows fetched at a time from the plan's join (and queued at most twice over by its helper thread): a first run
# streams every member through it, so this bounds the plan's memory (about 2 MB a page).
CHANGES_PAGE = 10_000
# The plan's join is split at this fingerprint (the middle of the hex space) to run on two connections.
PLAN_SPLIT = "8"
HEARTBEAT_EVERY = 500_000
# A planned batch whose fingerprint range spans more than this many times its own size lists its fingerprints.
SPARSE_SPAN = 2
# Rows changed by a run above which PostgreSQL's statistics of SyncMember are refreshed (see _refresh_statistics).
ANALYZE_AFTER = 50_000


class _Chunker:
    """Cuts an ascending stream of fingerprints into (first, last, count, listed) bounds of at most ``size``.

    A chunk whose fingerprint range holds many more rows than the chunk itself (a re-run after a small change:
    10,000 adds scattered over a million members) also lists its fingerprints, so the batch is read and
    checkpointed by exact lookups instead of a range scan. Fingerprints are SHA-256 hex, spread evenly, so
    the rows in a range are estimated from its width: ``population`` rows over the whole hex space.
    """

    def __init__(self, size: int, population: int):
        self.size = size
        self.population = population
        self.chunks: list[tuple[str, str, int, list[str]]] = []
        self.total = 0
        self._fingerprints: list[str] = []

    def take(self, fingerprint: str) -> None:
        self._fingerprints.append(fingerprint)
        self.total += 1
        if len(self._fingerprints) == self.size:
            self.done()

    def done(self) -> _Chunker:
        fingerprints = self._fingerprints
        if fingerprints:
            first, last = fingerprints[0], fingerprints[-1]
            count = len(fingerprints)
            # The estimate of a dense chunk's rows has a spread of about sqrt(count): the margin keeps small
            # contiguous chunks from reading as sparse by chance.
            sparse = self._rows_between(first, last) > SPARSE_SPAN * count + 4 * math.sqrt(count) + 4
            self.chunks.append((first, last, len(fingerprints), fingerprints if sparse else []))
            self._fingerprints = []
        return self

    def _rows_between(self, first: str, last: str) -> float:
        try:
            width = (int(last[:_WIDTH_DIGITS], 16) - int(first[:_WIDTH_DIGITS], 16)) / 16 ** _WIDTH_DIGITS
        except ValueError:  # not a hex fingerprint: read it as a range
            return 0.0
        return width * self.population


_WIDTH_DIGITS = 15  # 60 bits of the fingerprint: plenty to measure a range's share of the space


def _pieces(items: list[str], size: int = 5_000) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _fingerprint_conditions(column: str, batch: SyncBatch) -> Iterator[tuple[str, list]]:
    """SQL conditions (with parameters) selecting a batch's fingerprints: its listed ones, else its range.

    Listed ones are one array parameter on PostgreSQL (10,000 placeholders cost more to build and parse than
    the lookups), and IN lists in pieces elsewhere (SQLite caps a statement's parameters).
    """
    if not batch.fingerprints:
        yield f"{column} >= %s AND {column} <= %s", [batch.first_fingerprint, batch.last_fingerprint]
    elif connection.vendor == "postgresql":
        yield f"{column} = ANY(%s)", [batch.fingerprints.split()]
    else:
        for piece in _pieces(batch.fingerprints.split()):
            yield f"{column} IN ({', '.join(['%s'] * len(piece))})", piece


class _LeaseLost(Exception):
    """Another worker (or the watchdog) took the run: stop without writing anything more."""


class _Stop(Exception):
    def __init__(self, status: str, message: str = ""):
        super().__init__(message)
        self.status = status
        self.message = message


def execute_run(
    *,
    run_id: int,
    adapter: PlatformAdapter | None = None,
    sleep: Callable[[float], None] = time.sleep,
    limiter: RateLimiter | None = None,
) -> SyncRun | None:
    """Run (or continue) one sync run. Returns the run, or None when it was not ours to run.

    ``adapter``, ``sleep`` and ``limiter`` are for tests and benchmarks (a fake adapter, recorded waits).
    """
    lease = _claim(run_id)
    if lease is None:
        logger.info("sync run %s not claimed (finished, cancelled or running elsewhere)", run_id)
        return SyncRun.objects.filter(pk=run_id).first()
    run = SyncRun.objects.select_related("sync__audience", "sync__connection__platform").get(pk=run_id)
    engine = _Engine(run, lease=lease, adapter=adapter, sleep=sleep, limiter=limiter)
    engine.execute()
    return SyncRun.objects.filter(pk=run_id).first()


def _claim(run_id: int):
    """queued -> running, or take over a running run whose heartbeat is stale. Returns the lease timestamp."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.SYNC_STALE_AFTER)
    claimed = SyncRun.objects.filter(pk=run_id).filter(
        Q(status=Status.QUEUED) | Q(status=Status.RUNNING, heartbeat_at__lt=stale)
        | Q(status=Status.RUNNING, heartbeat_at__isnull=True)
    ).update(status=Status.RUNNING, heartbeat_at=now)
    if not claimed:
        return None
    SyncRun.objects.filter(pk=run_id, started_at__isnull=True).update(started_at=now)
    return now


class _Engine:
    def __init__(self, run: SyncRun, *, lease, adapter, sleep, limiter):
        self.run = run
        self.sync = run.sync
        self.audience = run.sync.audience
        self.connection = run.sync.connection
        self.code = self.connection.platform.code
        self.lease = lease
        self._adapter = adapter
        self._sleep = sleep
        self._limiter = limiter
        self.policy = RetryPolicy(sleep=self._pause)
        self._checkpoints = 0

    # Plumbing ---------------------------------------------------------------------------
    @property
    def adapter(self) -> PlatformAdapter:
        if self._adapter is None:
            try:
                self._adapter = self.connection.adapter()
            except (LookupError, ImportError, AttributeError):
                logger.error("sync run %s: no adapter for platform %s", self.run.pk, self.code)
                raise _Stop(Status.FAILED, f"Syncing to {self.connection.platform.name} is not available "
                                           "(its adapter is missing).") from None
        return self._adapter

    @property
    def limiter(self) -> RateLimiter:
        if self._limiter is None:
            adapter = self.adapter
            account = adapter.account_id or f"connection-{self.connection.pk}"
            self._limiter = limiter_for(self.code, account, adapter.capabilities.rate_limit, sleep=self._pause)
        return self._limiter

    def _call(self, fn):
        """One platform call: a rate-limit token per attempt, retried per the policy."""

        def attempt():
            self.limiter.acquire()
            return fn()

        return self.policy.call(attempt)

    def _heartbeat(self, **fields) -> None:
        """Renew the lease (and write ``fields``); raises _LeaseLost if the run is no longer ours."""
        now = timezone.now()
        updated = SyncRun.objects.filter(pk=self.run.pk, status=Status.RUNNING, heartbeat_at=self.lease).update(
            heartbeat_at=now, **fields
        )
        if not updated:
            raise _LeaseLost()
        self.lease = now

    def _pause(self, seconds: float) -> None:
        """Sleep for a retry or a rate-limit token, beating the heartbeat and honouring cancel meanwhile."""
        remaining = float(seconds)
        while remaining > 0:
            step = min(remaining, PAUSE_SLICE)
            self._sleep(step)
            remaining -= step
            if remaining > 0:
                self._heartbeat()
                self._check_cancel()

    def _check_cancel(self) -> None:
        if SyncRun.objects.filter(pk=self.run.pk, cancel_requested=True).exists():
            raise _Stop(Status.CANCELLED, "Cancelled by the user; batches sent before stay on the platform.")

    def _check_generation(self) -> None:
        generation = Audience.objects.filter(pk=self.audience.pk).values_list("generation", flat=True).first()
        if self.run.audience_generation is not None and generation != self.run.audience_generation:
            raise _Stop(Status.FAILED, "The audience was re-imported while this run was sending. "
                                       "Start a new run to send the new membership.")

    # The run ----------------------------------------------------------------------------
    def execute(self) -> None:
        try:
            if self.connection.status != Connection.Status.ACTIVE:
                raise _Stop(Status.FAILED, f"The connection {self.connection} is "
                                           f"{self.connection.get_status_display().lower()}: reconnect it on the "
                                           "Platforms page, then resume this run.")
            self._ensure_platform_audience()
            self._plan()
            self._send_all()
            self._finish()
        except _LeaseLost:
            logger.warning("sync run %s: lease lost (taken over or failed by the watchdog); stopping", self.run.pk)
        except _Stop as stop:
            self._end(stop.status, stop.message)
        except AuthError as exc:
            self._auth_failed(exc)
        except (TransientError, RateLimited) as exc:
            self._end(Status.FAILED, f"{self.connection.platform.name} kept failing after "
                                     f"{self.policy.attempts} attempts: {exc.message} Resume the run to continue "
                                     "from the first unsent batch.")
        except PlatformError as exc:
            self._end(Status.FAILED, exc.message)
        except DatabaseError as exc:
            logger.error("sync run %s: database error (%s)", self.run.pk, type(exc).__name__)
            self._end_after_db_error()
        except Exception as exc:
            # The message may carry anything (an URL with a token): log the type and the frames, never the text.
            logger.error("sync run %s failed unexpectedly (%s) at\n%s", self.run.pk, type(exc).__name__,
                         "".join(traceback.format_tb(exc.__traceback__)[-5:]))
            self._end(Status.FAILED, "The run stopped on an unexpected error. Resume it to continue; if it fails "
                                     "again, contact support with the run number.")

    def _safe(self, message: str) -> str:
        """A platform's message as it may be shown and stored: any of the connection's secret values masked."""
        return scrub(message, self.connection.secrets)

    def _end(self, status: str, message: str = "") -> None:
        message = self._safe(message)
        now = timezone.now()
        updated = SyncRun.objects.filter(pk=self.run.pk, heartbeat_at=self.lease, status=Status.RUNNING).update(
            status=status, error_message=message, finished_at=now, heartbeat_at=now
        )
        if updated:
            logger.info("sync run %s ended: %s", self.run.pk, status)

    def _end_after_db_error(self) -> None:
        # The connection may be broken (PostgreSQL restarted): drop it and try once more with a fresh one;
        # if the database is still away, the watchdog fails the run later (it is never stuck "running").
        try:
            if not connection.in_atomic_block:  # (tests run inside a transaction: keep its connection)
                connection.close()  # a fresh connection for the next query
                close_old_connections()
            self._end(Status.FAILED, "The database connection was lost during the run. Resume it to continue "
                                     "from the first unsent batch.")
        except DatabaseError:
            logger.error("sync run %s: database still unavailable; the watchdog will mark it", self.run.pk)

    def _auth_failed(self, exc: AuthError) -> None:
        from credentials.services import mark_auth_failed_during_sync

        platform = self.connection.platform.name
        mark_auth_failed_during_sync(connection_id=self.connection.pk, message=exc.message)
        self._end(Status.FAILED, f"{platform} refused the connection's credentials: {exc.message} "
                                 "Reconnect it on the Platforms page, then resume this run.")

    def _ensure_platform_audience(self) -> None:
        if self.sync.platform_audience_id:
            return
        name = self.audience.name
        description = f"Kept in sync by Activation Manager (audience {self.audience.pk})."
        audience_id = self._call(lambda: self.adapter.create_audience(name, description))
        Sync.objects.filter(pk=self.sync.pk).update(platform_audience_id=str(audience_id))
        self.sync.platform_audience_id = str(audience_id)
        logger.info("sync %s: created platform audience on %s", self.sync.pk, self.code)

    # Planning ---------------------------------------------------------------------------
    def _members(self, generation: int):
        return Member.objects.filter(audience_id=self.audience.pk, generation=generation)

    def _add_candidates(self, generation: int, bounds: dict | None = None):
        # The batch's range is repeated inside the subquery: it bounds the confirmed rows PostgreSQL may look at
        # even when its statistics are stale and it picks the plain sync_id index for the anti-join.
        confirmed = SyncMember.objects.filter(sync_id=self.sync.pk, fingerprint=OuterRef("fingerprint"),
                                              **(bounds or {}))
        return self._members(generation).filter(~Exists(confirmed))

    def _remove_candidates(self, generation: int):
        present = Member.objects.filter(
            audience_id=self.audience.pk, generation=generation, fingerprint=OuterRef("fingerprint")
        )
        return SyncMember.objects.filter(sync_id=self.sync.pk).filter(~Exists(present))

    @staticmethod
    def _fingerprints(model, **where) -> Iterator[str]:
        """Every fingerprint of ``model`` rows matching ``where`` (equalities), ascending, in keyset pages.

        Plain SQL: the ORM's per-row cost dominated planning of large audiences (3x slower than this).
        """
        qn = connection.ops.quote_name
        conditions = " AND ".join(f"{qn(column)} = %s" for column in where)
        sql = (
            f"SELECT fingerprint FROM {qn(model._meta.db_table)} WHERE {conditions} "  # noqa: S608 — names from _meta
            "AND fingerprint > %s ORDER BY fingerprint LIMIT %s"
        )
        after = ""
        while True:
            with connection.cursor() as cursor:
                cursor.execute(sql, [*where.values(), after, PLAN_PAGE])
                page = cursor.fetchall()
            for (fingerprint,) in page:
                # The merge below compares in Python; hex fingerprints sort the same in every collation.
                if fingerprint <= after:
                    raise RuntimeError("fingerprints did not arrive in ascending order")
                after = fingerprint
                yield fingerprint
            if len(page) < PLAN_PAGE:
                return

    def _changes(self, generation: int) -> Iterator[tuple[str, bool]]:
        """(fingerprint, is_removal), ascending, for every member not confirmed yet and every confirmed one that
        is no longer a member: a full join in the database, streamed (a merge of both sets in Python cost
        2.3 s per million members, most of it fetching a million unchanged fingerprints twice).

        On PostgreSQL the two halves of the fingerprint space are joined at once on two connections (the join
        is CPU work, and a full join does not run in parallel workers): the upper half in a helper thread,
        handed over in pages through a small queue, while this thread streams the lower half.
        """
        if connection.vendor != "postgresql" or connection.in_atomic_block:
            yield from self._change_rows(generation, None, None)
            return
        import queue
        import threading

        from django.db import connections

        pages: queue.Queue = queue.Queue(maxsize=2)
        stop = threading.Event()

        def upper_half() -> None:
            try:
                for page in self._change_pages(generation, PLAN_SPLIT, None):
                    while not stop.is_set():
                        try:
                            pages.put(page, timeout=0.5)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                pages.put(None)
            except BaseException as exc:  # handed to the consumer, which raises it
                pages.put(exc)
            finally:
                connections.close_all()  # this thread's own connection

        helper = threading.Thread(target=upper_half, name=f"sync-run-{self.run.pk}-plan", daemon=True)
        helper.start()
        try:
            yield from self._change_rows(generation, None, PLAN_SPLIT)
            while (page := pages.get()) is not None:
                if isinstance(page, BaseException):
                    raise page
                for fingerprint, removal in page:
                    yield fingerprint, bool(removal)
        finally:
            stop.set()
            while helper.is_alive():  # unblock a helper waiting on a full queue, then let it finish
                with suppress(queue.Empty):
                    pages.get(timeout=0.1)
            helper.join()

    def _change_rows(self, generation: int, low: str | None, high: str | None) -> Iterator[tuple[str, bool]]:
        for page in self._change_pages(generation, low, high):
            for fingerprint, removal in page:
                yield fingerprint, bool(removal)

    def _change_pages(self, generation: int, low: str | None, high: str | None) -> Iterator[list[tuple]]:
        """Pages of the full join for fingerprints in [low, high) (None: unbounded)."""
        qn = connection.ops.quote_name
        member, confirmed = qn(Member._meta.db_table), qn(SyncMember._meta.db_table)
        bounds, bound_params = "", []
        if low is not None:
            bounds += " AND fingerprint >= %s"
            bound_params.append(low)
        if high is not None:
            bounds += " AND fingerprint < %s"
            bound_params.append(high)
        sql = (
            "SELECT COALESCE(m.fingerprint, c.fingerprint) AS fingerprint, m.fingerprint IS NULL AS removal "  # noqa: S608
            f"FROM (SELECT fingerprint FROM {member} WHERE audience_id = %s AND generation = %s{bounds}) m "
            f"FULL JOIN (SELECT fingerprint FROM {confirmed} WHERE sync_id = %s{bounds}) c "
            "ON m.fingerprint = c.fingerprint "
            "WHERE m.fingerprint IS NULL OR c.fingerprint IS NULL ORDER BY 1"
        )
        params = [self.audience.pk, generation, *bound_params, self.sync.pk, *bound_params]
        # A server-side cursor on PostgreSQL: a first run streams every member without holding them all.
        with connection.chunked_cursor() as cursor:
            cursor.execute(sql, params)
            while page := cursor.fetchmany(CHANGES_PAGE):
                yield page

    def _recorded_changes(self, generation: int) -> Iterator[tuple[str, bool]]:
        """The changes the import recorded for ``generation`` (MemberChange), ascending: what a sync whose
        platform holds exactly the previous generation has to send. A few rows instead of a join of two
        whole generations."""
        yield from (MemberChange.objects.filter(audience_id=self.audience.pk, generation=generation)
                    .order_by("fingerprint").values_list("fingerprint", "removed").iterator(chunk_size=CHANGES_PAGE))

    def _diff(self, changes: Iterator[tuple[str, bool]], members: int, size: int) -> tuple[_Chunker, _Chunker]:
        """Chunk bounds of the adds and of the removes, each in batches of ``size``."""
        # The confirmed set is about the audience's size (it is what the last run sent), so both are scaled by it.
        adds, removes = _Chunker(size, members), _Chunker(size, members)
        for step, (fingerprint, removal) in enumerate(changes, start=1):
            if step % HEARTBEAT_EVERY == 0:  # planning tens of millions takes a while: stay visibly alive
                self._heartbeat()
            (removes if removal else adds).take(fingerprint)
        return adds.done(), removes.done()

    def _everyone(self, generation: int, members: int, size: int) -> _Chunker:
        """Chunk bounds of the whole audience, for a replace."""
        everyone = _Chunker(size, members)
        for step, fingerprint in enumerate(
                self._fingerprints(Member, audience_id=self.audience.pk, generation=generation), start=1):
            if step % HEARTBEAT_EVERY == 0:
                self._heartbeat()
            everyone.take(fingerprint)
        return everyone.done()

    def _plan(self) -> None:
        run = SyncRun.objects.get(pk=self.run.pk)
        if run.audience_generation is not None:  # planned by an earlier attempt of this run
            self.run = run
            return
        generation, members, changes_base = Audience.objects.filter(pk=self.audience.pk).values_list(
            "generation", "member_count", "changes_base_generation").get()
        confirmed = Sync.objects.filter(pk=self.sync.pk).values_list("confirmed_generation", flat=True).get()
        caps = self.adapter.capabilities
        if confirmed is not None and confirmed == generation:
            changes = iter(())  # the platform holds exactly this generation already: nothing to send
        elif changes_base is not None and changes_base == confirmed:
            # The platform holds exactly the generation the import recorded this one's changes against.
            changes = self._recorded_changes(generation)
        else:
            changes = self._changes(generation)
        adds, removes = self._diff(changes, members, caps.batch_size)
        mirror = self.sync.mode == Sync.Mode.MIRROR
        removals = mirror and removes.total > 0
        note = ""
        planned: list[tuple[str, str, str, int, list[str]]] = []
        to_add = to_remove = 0
        if removals and Operation.REMOVE not in caps.operations and Operation.REPLACE in caps.operations:
            everyone = self._everyone(generation, members, caps.batch_size)
            planned = [(Kind.REPLACE, *bounds) for bounds in everyone.chunks]
            to_add, to_remove = everyone.total, removes.total
        else:
            if removals and Operation.REMOVE in caps.operations:
                planned = [(Kind.REMOVE, *bounds) for bounds in removes.chunks]
                to_remove = removes.total
            elif removals:
                note = (f"{self.connection.platform.name} cannot remove people from an audience; "
                        "only additions were sent.")
            planned += [(Kind.ADD, *bounds) for bounds in adds.chunks]
            to_add = adds.total
        with transaction.atomic():
            # Written only if this worker still holds the run (and nobody planned it meanwhile).
            updated = SyncRun.objects.filter(
                pk=self.run.pk, status=Status.RUNNING, heartbeat_at=self.lease, audience_generation__isnull=True
            ).update(
                audience_generation=generation, total_batches=len(planned), to_add=to_add, to_remove=to_remove,
                error_message=note, leaves_exact=removes.total == 0 or to_remove == removes.total,
            )
            if not updated:
                raise _LeaseLost()
            # From the first checkpoint on, what is confirmed is no longer exactly one generation.
            Sync.objects.filter(pk=self.sync.pk).update(confirmed_generation=None)
            SyncBatch.objects.bulk_create(
                [
                    SyncBatch(run_id=self.run.pk, seq=seq, kind=kind, first_fingerprint=first, last_fingerprint=last,
                              size=count, fingerprints=" ".join(listed))
                    for seq, (kind, first, last, count, listed) in enumerate(planned, start=1)
                ],
                batch_size=500,
            )
        self.run = SyncRun.objects.get(pk=self.run.pk)
        logger.info("sync run %s planned: %s batches, %s to add, %s to remove", self.run.pk, len(planned), to_add,
                    to_remove)

    # Sending ----------------------------------------------------------------------------
    def _send_all(self) -> None:
        spans = {
            row["kind"]: (row["first"], row["last"])
            for row in self.run.batches.values("kind").annotate(first=Min("seq"), last=Max("seq"))
        }
        pending = list(self.run.batches.filter(status=SyncBatch.Status.PENDING).order_by("seq"))
        # closing(): on a stop or an error the reader thread is wound down here, not whenever GC gets to it.
        with closing(self._with_values(pending)) as batches:
            for batch, values in batches:
                self._check_cancel()
                self._check_generation()
                self._heartbeat()
                first, last = spans[batch.kind]
                session = UploadSession(
                    session_id=self.run.pk * 4 + SESSION_KIND_OFFSET[batch.kind],
                    batch_seq=batch.seq - first + 1,
                    last_batch=batch.seq == last,
                    estimated_total=self.run.to_remove if batch.kind == Kind.REMOVE else self.run.to_add,
                )
                self._send(batch, session, values)

    def _values(self, batch: SyncBatch) -> list[dict]:
        """The batch's members as the platform takes them (read by keyset range, decoded, mapped)."""
        code = self.code
        return [platform_values(code, keys) for keys in self._batch_rows(batch)]

    def _values_in_thread(self, batch: SyncBatch) -> list[dict]:
        return self._values(batch)

    def _with_values(self, batches: list[SyncBatch]) -> Iterator[tuple[SyncBatch, list[dict]]]:
        """Each batch with its values; the next batch is read in a helper thread while this one is on the wire.

        Safe because batches cover disjoint fingerprint ranges: sending and checkpointing batch N changes
        nothing batch N+1 reads. Not inside an outer transaction (tests), whose rows another connection
        could not see: there it reads inline.
        """
        if len(batches) < 2 or connection.in_atomic_block:
            for batch in batches:
                yield batch, self._values(batch)
            return
        from concurrent.futures import ThreadPoolExecutor

        from django.db import connections

        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sync-run-{self.run.pk}-read")
        try:
            future = pool.submit(self._values_in_thread, batches[0])
            for index, batch in enumerate(batches):
                values = future.result()
                if index + 1 < len(batches):
                    future = pool.submit(self._values_in_thread, batches[index + 1])
                yield batch, values
        finally:
            pool.submit(connections.close_all).result()  # the helper thread's own database connection
            pool.shutdown(wait=True)

    def _batch_rows(self, batch: SyncBatch):
        generation = self.run.audience_generation
        if batch.fingerprints:
            return self._listed_rows(batch)
        bounds = {"fingerprint__gte": batch.first_fingerprint, "fingerprint__lte": batch.last_fingerprint}
        if batch.kind == Kind.ADD:
            qs = self._add_candidates(generation, bounds)
        elif batch.kind == Kind.REPLACE:
            qs = self._members(generation)
        else:
            qs = self._remove_candidates(generation)
        return qs.filter(**bounds).order_by("fingerprint").values_list("keys", flat=True)

    def _listed_rows(self, batch: SyncBatch) -> list:
        """A sparse batch's rows by exact lookups. The plan chose exactly these fingerprints, so the add / remove
        test is not repeated: the generation is fixed for the run, and only this batch's own checkpoint (in
        the transaction that marks it sent) confirms or unconfirms them."""
        if batch.kind == Kind.REMOVE:
            qs = SyncMember.objects.filter(sync_id=self.sync.pk)
        else:
            qs = self._members(self.run.audience_generation)
        rows = []
        column = f"{connection.ops.quote_name(qs.model._meta.db_table)}.{connection.ops.quote_name('fingerprint')}"
        for condition, params in _fingerprint_conditions(column, batch):
            selected = RawSQL(condition, params, output_field=BooleanField())  # noqa: S611 — our SQL, bound values
            rows += qs.filter(selected).order_by("fingerprint").values_list("keys", flat=True)
        return rows

    def _send(self, batch: SyncBatch, session: UploadSession, values: list[dict]) -> None:
        if len(values) > batch.size:
            # The range holds more than planned: the membership changed under the run. Never remove (or
            # replace) more than was planned.
            raise _Stop(Status.FAILED, "The audience changed while this run was sending. Start a new run.")
        members = [v for v in values if v]
        skipped = len(values) - len(members)
        audience_id = self.sync.platform_audience_id
        attempts = batch.attempts
        result = None
        error = ""
        try:
            if members:
                attempts += 1
                if batch.kind == Kind.ADD:
                    result = self._call(lambda: self.adapter.add_members(audience_id, members, session=session))
                elif batch.kind == Kind.REMOVE:
                    result = self._call(lambda: self.adapter.remove_members(audience_id, members, session=session))
                else:
                    result = self._call(lambda: self.adapter.replace_members(audience_id, members, session=session))
        except PermanentError as exc:
            error = exc.message or "The platform refused this batch."
        if error:
            self._checkpoint_failed(batch, attempts, error)
        else:
            invalid = (result.invalid if result is not None else 0) + skipped
            self._checkpoint_sent(batch, attempts, len(values), invalid)

    def _checkpoint_sent(self, batch: SyncBatch, attempts: int, count: int, invalid: int) -> None:
        """Batch sent: mark it, confirm (or unconfirm) its members and move the counters, all at once."""
        now = timezone.now()
        counters = {"done_batches": F("done_batches") + 1, "processed": F("processed") + count,
                    "rejected": F("rejected") + invalid}
        if batch.kind == Kind.REMOVE:
            counters["removed"] = F("removed") + count
        else:
            counters["sent"] = F("sent") + count
        with transaction.atomic():
            updated = SyncRun.objects.filter(pk=self.run.pk, status=Status.RUNNING, heartbeat_at=self.lease).update(
                heartbeat_at=now, **counters
            )
            if not updated:
                raise _LeaseLost()
            SyncBatch.objects.filter(pk=batch.pk).update(status=SyncBatch.Status.SENT, sent_at=now, attempts=attempts)
            if batch.kind == Kind.REMOVE:
                self._unconfirm(batch)
            else:
                if batch.kind == Kind.REPLACE and batch.seq == 1:
                    # The replace session's first batch: from here the platform holds only the session's members.
                    SyncMember.objects.filter(sync_id=self.sync.pk).delete()
                self._confirm(batch)
        self.lease = now
        self._checkpoints += 1
        if self._checkpoints & (self._checkpoints - 1) == 0 and self._grows_confirmed():  # checkpoint 1, 2, 4, ...
            self._analyze_confirmed()

    def _checkpoint_failed(self, batch: SyncBatch, attempts: int, message: str) -> None:
        now = timezone.now()
        with transaction.atomic():
            updated = SyncRun.objects.filter(pk=self.run.pk, status=Status.RUNNING, heartbeat_at=self.lease).update(
                heartbeat_at=now, done_batches=F("done_batches") + 1
            )
            if not updated:
                raise _LeaseLost()
            SyncBatch.objects.filter(pk=batch.pk).update(
                status=SyncBatch.Status.FAILED, attempts=attempts, error_message=self._safe(message)[:2000]
            )
        self.lease = now
        logger.warning("sync run %s: batch %s failed permanently", self.run.pk, batch.seq)

    def _confirm(self, batch: SyncBatch) -> None:
        """SyncMember rows for the batch's range, copied in SQL from the members (keys never pass through Python)."""
        sm, member = SyncMember._meta.db_table, Member._meta.db_table
        qn = connection.ops.quote_name
        select = (
            f"INSERT INTO {qn(sm)} (sync_id, fingerprint, {qn('keys')}) "  # noqa: S608 — table names from _meta
            f"SELECT %s, m.fingerprint, m.{qn('keys')} FROM {qn(member)} m "
            "WHERE m.audience_id = %s AND m.generation = %s AND {} "
            "ON CONFLICT (sync_id, fingerprint) DO NOTHING"
        )
        head = [self.sync.pk, self.audience.pk, self.run.audience_generation]
        with connection.cursor() as cursor:
            for condition, params in _fingerprint_conditions("m.fingerprint", batch):
                cursor.execute(select.format(condition), [*head, *params])

    def _unconfirm(self, batch: SyncBatch) -> None:
        sm, member = SyncMember._meta.db_table, Member._meta.db_table
        qn = connection.ops.quote_name
        delete = f"DELETE FROM {qn(sm)} WHERE sync_id = %s AND {{}}"  # noqa: S608 — table names from _meta
        tail = []
        if not batch.fingerprints:  # a range also holds confirmed people who are still members: keep those
            delete += (f" AND NOT EXISTS (SELECT 1 FROM {qn(member)} m WHERE m.audience_id = %s "  # noqa: S608
                       f"AND m.generation = %s AND m.fingerprint = {qn(sm)}.fingerprint)")
            tail = [self.audience.pk, self.run.audience_generation]
        with connection.cursor() as cursor:
            for condition, params in _fingerprint_conditions("fingerprint", batch):
                cursor.execute(delete.format(condition), [self.sync.pk, *params, *tail])

    # Finishing --------------------------------------------------------------------------
    def _finish(self) -> None:
        self._heartbeat()
        self._refresh_statistics()
        failed = self.run.batches.filter(status=SyncBatch.Status.FAILED).count()
        figures = self._status_figures()
        status = Status.PARTIAL if failed else Status.SUCCEEDED
        message = SyncRun.objects.filter(pk=self.run.pk).values_list("error_message", flat=True).get()
        if failed:
            message = (f"{failed} batch{'es' if failed != 1 else ''} failed; the rest were sent. The people of a "
                       "failed batch are not confirmed, so the next run sends them again once the problem is fixed. "
                       + message).strip()
        now = timezone.now()
        with transaction.atomic():
            updated = SyncRun.objects.filter(pk=self.run.pk, status=Status.RUNNING, heartbeat_at=self.lease).update(
                status=status, finished_at=now, heartbeat_at=now, error_message=message, **figures
            )
            if updated and status == Status.SUCCEEDED and self.run.leaves_exact:
                # Every add and every remove went through: the platform holds exactly this generation, which
                # lets the next run plan from the changes the next import records.
                Sync.objects.filter(pk=self.sync.pk).update(confirmed_generation=self.run.audience_generation)
        if updated:
            logger.info("sync run %s ended: %s", self.run.pk, status)

    def _grows_confirmed(self) -> bool:
        """Whether this run more than doubles the confirmed set (a first run does): then the statistics from
        before it mislead the planner. A small re-run leaves them right, and an ANALYZE of a million confirmed
        rows costs about 0.2 s."""
        before = max(0, self.audience.member_count - self.run.to_add) + self.run.to_remove
        return self.run.to_add > before

    def _analyze_confirmed(self) -> None:
        """PostgreSQL: refresh the statistics of SyncMember while this run grows it (0 -> N rows), so the
        planner keeps choosing index lookups for the next batches' reads (stale statistics saying "empty" made
        it scan every confirmed row per member: minutes per batch)."""
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"ANALYZE {connection.ops.quote_name(SyncMember._meta.db_table)}")

    def _refresh_statistics(self) -> None:
        """After a large run, refresh PostgreSQL's statistics of the confirmed members, which the next run's plan
        joins against the audience: statistics from before this run (autovacuum not caught up yet) mislead the
        planner on a set that just grew from nothing to millions."""
        run = SyncRun.objects.filter(pk=self.run.pk).values("sent", "removed").get()
        if connection.vendor != "postgresql" or run["sent"] + run["removed"] < ANALYZE_AFTER:
            return
        vacuum_analyze(SyncMember)

    def _status_figures(self) -> dict:
        if Operation.STATUS not in self.adapter.capabilities.operations:
            return {}
        try:
            status = self._call(lambda: self.adapter.status(self.sync.platform_audience_id))
        except PlatformError as exc:
            logger.info("sync run %s: no status from the platform (%s)", self.run.pk, type(exc).__name__)
            return {}
        figures = {}
        if status.size is not None:
            figures["audience_size"] = status.size
        matched = status.matched if status.matched is not None else status.size
        if matched is not None:
            figures["matched"] = matched
        rate = status.match_rate
        if rate is None and matched is not None:
            confirmed = SyncMember.objects.filter(sync_id=self.sync.pk).count()
            rate = min(1.0, matched / confirmed) if confirmed else None
        if rate is not None:
            figures["match_rate"] = rate
        return figures


def history_chart(runs: list[SyncRun], *, width: int = 320, height: int = 80) -> dict | None:
    """Points for the small SVG chart of match rate (0..1) and audience size over finished runs, oldest first."""
    runs = [r for r in runs if r.match_rate is not None or r.audience_size is not None]
    if len(runs) < 2:
        return None
    step = width / (len(runs) - 1)
    biggest = max((r.audience_size or 0) for r in runs) or 1

    def points(values):
        return " ".join(
            f"{i * step:.1f},{height - v * height:.1f}" for i, v in enumerate(values) if v is not None
        )

    return {
        "width": width,
        "height": height,
        "match_rate": points([r.match_rate for r in runs]),
        "size": points([(r.audience_size / biggest) if r.audience_size is not None else None for r in runs]),
        "biggest": biggest,
    }
