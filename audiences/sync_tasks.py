"""Celery tasks of the sync engine. Thin: they take ids and call audiences.sync; each is safe to run twice."""

from __future__ import annotations

from celery import shared_task

from audiences import sync
from platforms.errors import RateLimited, TransientError


@shared_task(acks_late=True, ignore_result=True, time_limit=6 * 3600)
def run_sync(run_id: int) -> str:
    """Send one run. A duplicate delivery finds the run claimed (or finished) and does nothing."""
    run = sync.execute_run(run_id=run_id)
    return run.status if run is not None else "skipped"


@shared_task(acks_late=True, ignore_result=True, soft_time_limit=60, time_limit=120)
def run_scheduled_sync(sync_id: int) -> int | None:
    """A sync's schedule fired: start a run unless one is already queued or running."""
    run = sync.start_scheduled_run(sync_id=sync_id)
    return run.pk if run is not None else None


@shared_task(acks_late=True, ignore_result=True, soft_time_limit=60, time_limit=120)
def fail_stale_runs() -> int:
    """The watchdog (every minute): runs without a heartbeat for SYNC_STALE_AFTER become failed and resumable,
    and audience deletions that stalled are queued again."""
    sync.requeue_stale_deletions()
    return len(sync.fail_stale_runs())


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=60, time_limit=6 * 3600)
def purge_audience(self, audience_id: int) -> bool:
    """Remove a deleted audience's rows in the background; waits (retries) while an import of it stops."""
    if not sync.purge_audience(audience_id=audience_id):
        raise self.retry(countdown=5)
    return True


@shared_task(acks_late=True, ignore_result=True, autoretry_for=(TransientError, RateLimited), retry_backoff=30,
             retry_jitter=True, max_retries=6, soft_time_limit=120, time_limit=180)
def delete_platform_audience(connection_id: int, platform_audience_id: str) -> bool:
    """Delete an audience on its platform after the marketer deleted it here (and asked for that)."""
    return sync.delete_platform_audience(connection_id=connection_id, platform_audience_id=platform_audience_id)
