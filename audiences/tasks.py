"""Celery tasks of the audiences app: imports, and an audience's deletion. Thin: they take ids and call
audiences.imports / audiences.services; each is safe to run twice."""

from celery import shared_task

from audiences import imports, services, uploads
from platforms.errors import RateLimited, TransientError


@shared_task(name="audiences.import_audience", acks_late=True, reject_on_worker_lost=True, ignore_result=True,
             soft_time_limit=6 * 3600, time_limit=6 * 3600 + 300)
def import_audience(import_job_id: int) -> None:
    """Import one queued ImportJob. Safe to run twice: a finished job is a no-op, a job left RUNNING by a
    dead worker restarts cleanly into an empty target generation."""
    imports.run_import(import_job_id)


@shared_task(name="audiences.requeue_stale_imports", ignore_result=True)
def requeue_stale_imports() -> None:
    """Watchdog: restart imports whose worker died and whose message was not re-delivered."""
    imports.requeue_stale_imports()


@shared_task(name="audiences.expire_pending_uploads", ignore_result=True)
def expire_pending_uploads() -> None:
    """Delete uploads still waiting for their column mapping after UPLOAD_PENDING_HOURS; their jobs expire."""
    uploads.expire_pending_uploads()


@shared_task(name="audiences.purge_audience", bind=True, acks_late=True, ignore_result=True, max_retries=60,
             time_limit=6 * 3600)
def purge_audience(self, audience_id: int) -> bool:
    """Remove a deleted audience's rows in the background; waits (retries) while an import of it stops."""
    if not services.purge_audience(audience_id=audience_id):
        raise self.retry(countdown=5)
    return True


@shared_task(name="audiences.delete_platform_audience", bind=True, acks_late=True, ignore_result=True,
             autoretry_for=(TransientError, RateLimited), retry_backoff=30, retry_jitter=True, max_retries=6,
             soft_time_limit=120, time_limit=180)
def delete_platform_audience(self, connection_id: int, platform_audience_id: str,
                             deletion_id: int | None = None) -> bool:
    """Delete an audience on its platform after the marketer deleted it here (and asked for that); the outcome goes
    on its PlatformDeletion row (``deletion_id``), the last retry's included."""
    return services.delete_platform_audience(connection_id=connection_id, platform_audience_id=platform_audience_id,
                                             deletion_id=deletion_id,
                                             last_attempt=self.request.retries >= self.max_retries)
