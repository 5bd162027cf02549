"""Runs of a sync: start, cancel, resume, and the watchdog (the sending itself is the syncs/engine/ package)."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from activation_manager import leases
from alerts import services as alerts
from audiences.models import Audience
from credentials.models import Connection
from syncs.engine.context import RUN_JOB
from syncs.models import Sync, SyncRun
from syncs.services import SyncError

logger = logging.getLogger(__name__)

Status = SyncRun.Status
ACTIVE = (Status.QUEUED, Status.RUNNING)
# A sync has at most one of these at a time: a held run waits for its marketer, and blocks new runs meanwhile.
PENDING = SyncRun.PENDING_STATUSES
FINISHED = (Status.SUCCEEDED, Status.PARTIAL, Status.FAILED, Status.CANCELLED, Status.ATTENTION)

STALE_MESSAGE = (
    "The worker running this run stopped responding {times} times (no heartbeat for {minutes} minutes each time); "
    "it was not handed to another worker again. Nothing after the last sent batch was lost: resume the run to "
    "continue from the first unsent batch."
)


QUEUED_STALE_MESSAGE = (
    "No worker picked this run up within {minutes} minutes (are the Celery workers running?). Resume it to "
    "queue it again."
)



def enqueue_run(run_id: int) -> None:
    """Hand the run to a worker (called once the run row is committed)."""
    from syncs.tasks import run_sync

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
    """The sync's queued, running or held run, if any."""
    return sync.runs.filter(status__in=PENDING).order_by("-created_at").first()


def start_run(*, sync: Sync, trigger: str = SyncRun.Trigger.MANUAL, enqueue: bool = True) -> SyncRun:
    """Queue a run of ``sync``; if one is already queued, running or held for review, that one is returned.
    ``enqueue=False``: the caller runs it in its own process (``manage.py sync_audience --wait`` without a broker
    server) instead of handing it to a worker."""
    with transaction.atomic():
        Sync.objects.select_for_update().filter(pk=sync.pk).first()  # one starter at a time per sync
        current = active_run(sync)
        if current is not None:
            return current
        run = SyncRun.objects.create(sync=sync, trigger=trigger)
        if enqueue:
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
        alerts.schedule_skipped(sync=sync, reason=f"its connection is {sync.connection.get_status_display().lower()}.")
        return None
    if (current := active_run(sync)) is not None:
        logger.info("scheduled sync %s skipped: a run is already queued, running or held", sync.pk)
        alerts.schedule_skipped(sync=sync, reason=f"the previous run is still {current.get_status_display().lower()}.")
        return None
    alerts.scheduled_run_started(sync=sync)  # a skipped-schedule alert closes
    return start_run(sync=sync, trigger=SyncRun.Trigger.SCHEDULE)


def cancel_run(*, run: SyncRun) -> SyncRun:
    """Ask a run to stop. A queued or held run stops at once (a held one sent nothing: the platform still holds
    what it held, so the sync's confirmed generation comes back); a running one after its current batch."""
    now = timezone.now()
    with transaction.atomic():
        SyncRun.objects.filter(pk=run.pk, status=Status.QUEUED).update(
            status=Status.CANCELLED, cancel_requested=True, finished_at=now,
            error_message="Cancelled before it started.")
        held = SyncRun.objects.filter(pk=run.pk, status=Status.HELD).update(
            status=Status.CANCELLED, cancel_requested=True, finished_at=now,
            error_message="Cancelled after review: nothing was sent.")
        if held:
            _restore_confirmed(run)
        SyncRun.objects.filter(pk=run.pk, status=Status.RUNNING).update(cancel_requested=True)
    run.refresh_from_db()
    return run


def _restore_confirmed(run: SyncRun) -> None:
    """A held run sent nothing: if the last finished run left the platform exact, it still is."""
    previous = (SyncRun.objects.filter(sync_id=run.sync_id, finished_at__isnull=False).exclude(pk=run.pk)
                .order_by("-finished_at").first())
    if previous is not None and previous.status == Status.SUCCEEDED and previous.leaves_exact:
        Sync.objects.filter(pk=run.sync_id, confirmed_generation__isnull=True).update(
            confirmed_generation=previous.audience_generation)


def confirm_run(*, run: SyncRun, enqueue: bool = True) -> SyncRun:
    """The marketer reviewed a held run and wants it sent. If the audience was re-imported since, the plan is out
    of date: the held run is cancelled and a new run starts (it plans again, and may be held again).
    ``enqueue=False`` as for ``start_run``."""
    run.refresh_from_db()
    if run.status != Status.HELD:
        raise SyncError("This run is not waiting for review.")
    if run.audience_generation != Audience.objects.values_list("generation", flat=True).get(pk=run.sync.audience_id):
        with transaction.atomic():
            SyncRun.objects.filter(pk=run.pk, status=Status.HELD).update(
                status=Status.CANCELLED, finished_at=timezone.now(),
                error_message="The audience was re-imported after this run was planned; a new run was started.")
        return start_run(sync=run.sync, enqueue=enqueue)
    with transaction.atomic():
        updated = SyncRun.objects.filter(pk=run.pk, status=Status.HELD).update(
            status=Status.QUEUED, hold_confirmed=True, error_message="", heartbeat_at=timezone.now())
        if updated and enqueue:
            _queue(run)
    logger.info("sync run %s confirmed after review", run.pk)
    run.refresh_from_db()
    return run


def can_resume(run: SyncRun) -> bool:
    """A failed run resumes while its plan still matches the audience (same generation) and no other run is active."""
    if run.status != Status.FAILED:
        return False
    audience_generation = run.sync.audience.generation
    if run.audience_generation is not None and run.audience_generation != audience_generation:
        return False
    return not run.sync.runs.filter(status__in=PENDING).exclude(pk=run.pk).exists()


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
            heartbeat_at=timezone.now(), takeovers=0,  # the marketer's resume: automatic takeovers start again
        )
        if updated:
            _queue(run)
    run.refresh_from_db()
    logger.info("sync run %s resumed", run.pk)
    return run


def watchdog(*, now=None) -> leases.Takeovers:
    """The watchdog (every minute).

    - A running run whose worker went silent for SYNC_STALE_AFTER seconds (killed, or its machine gone) is handed
      to another worker, which continues from the last sent batch: at most JOB_MAX_TAKEOVERS times, then it
      fails with a message saying how to resume it.
    - A queued run no worker picked up within SYNC_QUEUED_STALE_AFTER fails (are the workers running?). A queued
      run's ``heartbeat_at`` is when it was (re)queued (None: at creation).
    """
    now = now or timezone.now()
    outcome = leases.take_over_silent(
        RUN_JOB, stale_after=settings.SYNC_STALE_AFTER, max_takeovers=settings.JOB_MAX_TAKEOVERS,
        queued=Status.QUEUED, requeue=lambda pk: enqueue_run(pk), failed=Status.FAILED, now=now,
        give_up=lambda pk: {"finished_at": now, "error_message": STALE_MESSAGE.format(
            times=settings.JOB_MAX_TAKEOVERS, minutes=max(1, round(settings.SYNC_STALE_AFTER / 60)))},
    )
    queued_cutoff = now - timedelta(seconds=settings.SYNC_QUEUED_STALE_AFTER)
    waiting = Q(status=Status.QUEUED) & (
        Q(heartbeat_at__lt=queued_cutoff) | Q(heartbeat_at__isnull=True, created_at__lt=queued_cutoff)
    )
    message = QUEUED_STALE_MESSAGE.format(minutes=max(1, round(settings.SYNC_QUEUED_STALE_AFTER / 60)))
    for pk in SyncRun.objects.filter(waiting).values_list("pk", flat=True):
        # The condition again in the UPDATE: a claim that arrived meanwhile keeps the run.
        if SyncRun.objects.filter(waiting, pk=pk).update(status=Status.FAILED, finished_at=now,
                                                         error_message=message):
            outcome.failed.append(pk)
    if outcome.failed:
        logger.warning("watchdog failed %s sync run(s): %s", len(outcome.failed), outcome.failed)
    for run_id in outcome.failed:
        alerts.run_ended(run_id=run_id)  # alert: failed (the worker stopped, or none picked the run up)
    return outcome
