"""One run, end to end (``execute_run``); the stages live in their own modules:

1. **Claim** the run (queued -> running, or take over a "running" run whose worker stopped beating: see
   activation_manager.leases). Every later write applies only while this worker still holds the lease.
2. **Platform audience**: created on a sync's first run; its id is stored on the sync.
3. **Plan** (syncs/engine/plan.py): who joins, whose record changed, who left; batches written; a run removing
   more than the sync's hold threshold is held for review here.
4. **Send** each pending batch (syncs/engine/send.py; syncs/engine/read.py reads it; the adapter sends it behind
   the rate limiter and the retry policy) and **checkpoint** it (syncs/engine/checkpoint.py). Cancel, heartbeat
   and "was the audience re-imported meanwhile" are checked between batches; the next batch is read while this one
   is on the wire.
5. **Finish** (syncs/engine/finish.py): the platform's figures, the end status.

Errors: ``RateLimited`` / ``TransientError`` are retried (platforms/retry.py); once the attempts run out the run
fails and can be resumed. ``PermanentError`` fails that batch only (the run ends "partial"). ``AuthError`` stops the
run and turns the connection to error with the platform's message.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.utils import timezone

from activation_manager import leases
from activation_manager.leases import Lease
from alerts import services as alerts
from credentials.models import Connection
from platforms.adapters.base import PlatformAdapter
from platforms.errors import AuthError, PlatformError, RateLimited, TransientError
from platforms.ratelimit import RateLimiter
from syncs.engine import finish, plan, send
from syncs.engine.context import RUN_JOB, LeaseLost, RunContext, Stop
from syncs.models import Sync, SyncBatch, SyncRun

logger = logging.getLogger(__name__)

Status = SyncRun.Status
Kind = SyncBatch.Kind


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
    lease = claim(run_id)
    if lease is None:
        logger.info("sync run %s not claimed (finished, cancelled, held or running elsewhere)", run_id)
        return SyncRun.objects.filter(pk=run_id).first()
    run = SyncRun.objects.select_related("sync__audience", "sync__connection__platform").get(pk=run_id)
    ctx = RunContext(run, lease=lease, adapter=adapter, sleep=sleep, limiter=limiter)
    try:
        _execute(ctx)
    finally:
        ctx.close()
    return SyncRun.objects.filter(pk=run_id).first()


def claim(run_id: int) -> Lease | None:
    """queued -> running, or take over a running run whose heartbeat is stale (a bounded number of times)."""
    lease = leases.claim(RUN_JOB, run_id, stale_after=settings.SYNC_STALE_AFTER,
                         max_takeovers=settings.JOB_MAX_TAKEOVERS)
    if lease is not None:
        SyncRun.objects.filter(pk=run_id, started_at__isnull=True).update(started_at=timezone.now())
    return lease


def _execute(ctx: RunContext) -> None:
    try:
        if ctx.connection.status != Connection.Status.ACTIVE:
            raise Stop(Status.FAILED, f"The connection {ctx.connection} is "
                                      f"{ctx.connection.get_status_display().lower()}: reconnect it on the "
                                      "Platforms page, then resume this run.")
        _ensure_platform_audience(ctx)
        if not plan.plan_run(ctx):
            _hold(ctx)
            return
        try:
            send.send_all(ctx)
        finally:
            send.end_upload(ctx)
        finish.finish(ctx)
    except LeaseLost:
        logger.warning("sync run %s: lease lost (taken over or failed by the watchdog); stopping", ctx.run.pk)
    except Stop as stop:
        _end(ctx, stop.status, stop.message)
    except AuthError as exc:
        _auth_failed(ctx, exc)
    except (TransientError, RateLimited) as exc:
        _end(ctx, Status.FAILED, f"{ctx.connection.platform.name} kept failing after {ctx.policy.attempts} "
                                 f"attempts: {exc.message} Resume the run to continue from the first unsent batch.")
    except PlatformError as exc:
        _end(ctx, Status.FAILED, exc.message)
    except DatabaseError as exc:
        logger.error("sync run %s: database error (%s)", ctx.run.pk, type(exc).__name__)
        _end_after_db_error(ctx)
    except Exception as exc:
        # The message may carry anything (an URL with a token): log the type and the frames, never the text.
        logger.error("sync run %s failed unexpectedly (%s) at\n%s", ctx.run.pk, type(exc).__name__,
                     "".join(traceback.format_tb(exc.__traceback__)[-5:]))
        _end(ctx, Status.FAILED, "The run stopped on an unexpected error. Resume it to continue; if it fails again, "
                                 "contact support with the run number.")


def _ensure_platform_audience(ctx: RunContext) -> None:
    if ctx.sync.platform_audience_id:
        return
    name = ctx.audience.name
    description = f"Kept in sync by Activation Manager (audience {ctx.audience.pk})."
    audience_id = ctx.call(lambda: ctx.adapter.create_audience(name, description))
    Sync.objects.filter(pk=ctx.sync.pk).update(platform_audience_id=str(audience_id))
    ctx.sync.platform_audience_id = str(audience_id)
    logger.info("sync %s: created platform audience on %s", ctx.sync.pk, ctx.code)


def _hold(ctx: RunContext) -> None:
    """The plan removes more people than the sync's threshold allows: wait for the marketer."""
    run = ctx.run
    share = run.to_remove * 100 / run.held_before if run.held_before else 100.0
    message = (f"Held for review: this run would remove {run.to_remove:,} of the {run.held_before or 0:,} people "
               f"{ctx.connection.platform.name} holds ({share:.1f} %), more than this sync's "
               f"{ctx.sync.hold_threshold} % threshold. Nothing was sent: confirm to send it, or cancel it.")
    if ctx.lease.release(Status.HELD, error_message=message):
        logger.info("sync run %s held for review (%s to remove of %s)", run.pk, run.to_remove, run.held_before)
        alerts.run_ended(run_id=run.pk)  # alert: held for review


def _end(ctx: RunContext, status: str, message: str = "") -> None:
    message = ctx.safe(message)
    if ctx.lease.release(status, error_message=message, finished_at=timezone.now()):
        logger.info("sync run %s ended: %s", ctx.run.pk, status)
        alerts.run_ended(run_id=ctx.run.pk)  # alert: failed (other endings raise nothing)


def _end_after_db_error(ctx: RunContext) -> None:
    # The connection may be broken (PostgreSQL restarted): drop it and try once more with a fresh one;
    # if the database is still away, the watchdog fails the run later (it is never stuck "running").
    try:
        if not connection.in_atomic_block:  # (tests run inside a transaction: keep its connection)
            connection.close()  # a fresh connection for the next query
            close_old_connections()
        _end(ctx, Status.FAILED, "The database connection was lost during the run. Resume it to continue "
                                 "from the first unsent batch.")
    except DatabaseError:
        logger.error("sync run %s: database still unavailable; the watchdog will mark it", ctx.run.pk)


def _auth_failed(ctx: RunContext, exc: AuthError) -> None:
    from credentials.services import mark_auth_failed_during_sync

    platform = ctx.connection.platform.name
    mark_auth_failed_during_sync(connection_id=ctx.connection.pk, message=exc.message)
    with transaction.atomic():
        _end(ctx, Status.FAILED, f"{platform} refused the connection's credentials: {exc.message} "
                                 "Reconnect it on the Platforms page, then resume this run.")
