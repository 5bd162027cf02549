"""Celery tasks of syncs. Thin: they take ids and call syncs.runs / syncs.engine; each is safe to run twice."""

from __future__ import annotations

from celery import shared_task

from audiences import services as audience_services
from syncs import engine, platform_reports, runs


@shared_task(name="syncs.run_sync", acks_late=True, ignore_result=True, time_limit=6 * 3600)
def run_sync(run_id: int) -> str:
    """Send one run. A duplicate delivery finds the run claimed (or finished) and does nothing."""
    run = engine.execute_run(run_id=run_id)
    return run.status if run is not None else "skipped"


@shared_task(name="syncs.run_scheduled_sync", acks_late=True, ignore_result=True, soft_time_limit=60,
             time_limit=120)
def run_scheduled_sync(sync_id: int) -> int | None:
    """A sync's schedule fired: start a run unless one is already queued or running."""
    run = runs.start_scheduled_run(sync_id=sync_id)
    return run.pk if run is not None else None


@shared_task(name="syncs.watchdog", acks_late=True, ignore_result=True, soft_time_limit=60, time_limit=120)
def watchdog() -> int:
    """The watchdog (every minute): runs whose worker went silent are handed to another worker (syncs.runs.watchdog),
    and audience deletions that stalled are queued again. Returns how many runs it handed on or failed."""
    audience_services.requeue_stale_deletions()
    outcome = runs.watchdog()
    return len(outcome.requeued) + len(outcome.failed)


@shared_task(name="syncs.check_platform_reports", acks_late=True, ignore_result=True, soft_time_limit=240,
             time_limit=300)
def check_platform_reports() -> int:
    """Every minute: read the platforms' reports on requests that are due (syncs.platform_reports)."""
    return platform_reports.check_due()
