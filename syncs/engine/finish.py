"""Finishing a run: the platform's figures, the end status, and whether the platform now holds the audience
exactly (which lets the next run plan from the recorded changes alone).

A run whose batches all went through still ends **needs attention**, never "Succeeded", when the audience size the
platform reports fell by more than the plan explains: the marketer sees the before and after figures.
"""

from __future__ import annotations

import logging

from django.db import connection, transaction
from django.utils import timezone

from alerts import services as alerts
from audiences.housekeeping import vacuum_analyze
from platforms.adapters.base import AudienceStatus, Operation
from platforms.errors import PlatformError
from syncs.engine import checkpoint
from syncs.engine.context import RunContext
from syncs.models import Sync, SyncBatch, SyncMember, SyncRun

logger = logging.getLogger(__name__)

Status = SyncRun.Status
# Rows changed by a run above which PostgreSQL's statistics of SyncMember are refreshed.
ANALYZE_AFTER = 50_000
# A platform's reported size may wander a little between two reads (approximate counts, matching still running):
# a fall is unexplained only past this share of the size before, and past this many people.
SIZE_TOLERANCE = 0.05
SIZE_TOLERANCE_PEOPLE = 10


def platform_status(ctx: RunContext) -> AudienceStatus | None:
    """The platform's figures for the sync's audience, or None when it gives none."""
    if Operation.STATUS not in ctx.adapter.capabilities.operations or not ctx.sync.platform_audience_id:
        return None
    try:
        return ctx.call(lambda: ctx.adapter.status(ctx.sync.platform_audience_id))
    except PlatformError as exc:
        logger.info("sync run %s: no status from the platform (%s)", ctx.run.pk, type(exc).__name__)
        return None


def unexplained_fall(before: int | None, after: int | None, removed: int) -> bool:
    """Whether the platform's size fell from ``before`` to ``after`` by more than ``removed`` people explain."""
    if before is None or after is None or after >= before:
        return False
    unexplained = (before - after) - removed
    return unexplained > max(SIZE_TOLERANCE * before, SIZE_TOLERANCE_PEOPLE)


def _figures(ctx: RunContext) -> dict:
    status = platform_status(ctx)
    if status is None:
        return {}
    figures = {}
    if status.size is not None:
        figures["audience_size"] = status.size
    matched = status.matched if status.matched is not None else status.size
    if matched is not None:
        figures["matched"] = matched
    rate = status.match_rate
    if rate is None and matched is not None:
        confirmed = SyncMember.objects.filter(sync_id=ctx.sync.pk).values("person").distinct().count()
        rate = min(1.0, matched / confirmed) if confirmed else None
    if rate is not None:
        figures["match_rate"] = rate
    return figures


def finish(ctx: RunContext) -> None:
    ctx.heartbeat()
    settled = checkpoint.settle(ctx)
    run = SyncRun.objects.get(pk=ctx.run.pk)
    _refresh_statistics(run)
    failed = run.batches.filter(status=SyncBatch.Status.FAILED).count()
    figures = _figures(ctx)
    status = Status.PARTIAL if failed else Status.SUCCEEDED
    message = run.error_message
    if failed:
        message = (f"{failed} batch{'es' if failed != 1 else ''} failed; the rest were sent. The people of a "
                   "failed batch are not confirmed, so the next run sends them again once the problem is fixed. "
                   + message).strip()
    after = figures.get("audience_size")
    if unexplained_fall(run.size_before, after, run.to_remove):
        status = Status.ATTENTION
        change = (after - run.size_before) * 100 / run.size_before
        message = (f"{ctx.connection.platform.name} reports {run.size_before:,} → {after:,} people ({change:+.1f} %), "
                   f"more than this run explains (it removed {run.to_remove:,} who left the audience). Check the "
                   "audience on the platform before the next run. " + message).strip()
    now = timezone.now()
    with transaction.atomic():
        updated = ctx.lease.release(status, finished_at=now, error_message=message, **figures)
        if updated and status == Status.SUCCEEDED and run.leaves_exact and settled:
            # Every batch went through: the platform holds exactly this generation, so the next run can plan from
            # the changes the next import records.
            Sync.objects.filter(pk=ctx.sync.pk).update(confirmed_generation=run.audience_generation)
    if updated:
        logger.info("sync run %s ended: %s", ctx.run.pk, status)
        alerts.run_ended(run_id=ctx.run.pk)  # alert: partly failed / needs attention


def _refresh_statistics(run: SyncRun) -> None:
    """After a large run, refresh PostgreSQL's statistics of SyncMember, which the next plan joins against the
    audience (statistics from before this run mislead the planner on a set that just grew from nothing), and give
    back the space of the sent batches' person lists (bench/sync.py: 12.6 bytes per synced person otherwise)."""
    if connection.vendor != "postgresql" or run.sent + run.removed < ANALYZE_AFTER:
        return
    vacuum_analyze(SyncMember)
    vacuum_analyze(SyncBatch, reclaim=True)  # the sent batches' person lists, emptied: their space goes back
