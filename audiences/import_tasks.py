"""Celery tasks of the audience import (the work is in audiences/imports.py)."""

from celery import shared_task
from django.conf import settings

from audiences import imports


@shared_task(name="audiences.import_audience", acks_late=True, reject_on_worker_lost=True, ignore_result=True,
             soft_time_limit=6 * 3600, time_limit=6 * 3600 + 300)
def import_audience(import_job_id: int) -> None:
    """Import one queued ImportJob. Safe to run twice: a finished job is a no-op, a job left RUNNING by a
    dead worker restarts cleanly into an empty target generation."""
    imports.run_import(import_job_id)


@shared_task(name="audiences.requeue_stale_imports", ignore_result=True)
def requeue_stale_imports() -> None:
    """Watchdog: restart imports whose worker died and whose message was not re-delivered."""
    imports.requeue_stale_imports(stale_after_seconds=getattr(settings, "IMPORT_STALE_AFTER", 600))

