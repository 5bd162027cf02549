"""The import watchdog: imports whose worker went silent are handed to another worker, queued imports whose
message was lost are queued again (run every minute by beat: activation_manager/schedules.py)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from activation_manager import leases
from activation_manager.leases import JobKind
from audiences import filling
from audiences.models import Audience, ImportJob
from audiences.uploads import delete_upload

logger = logging.getLogger(__name__)

# An import as a background job (activation_manager.leases).
IMPORT_JOB = JobKind(model=ImportJob, running=ImportJob.Status.RUNNING, claimable=(ImportJob.Status.QUEUED,),
                     label="import")
TAKEN_OVER_TOO_OFTEN = ("The worker importing this file stopped responding {times} times, so it was not started "
                        "again. Upload the file again to import it.")


def requeue_stale_imports(*, stale_after_seconds: int | None = None, now=None) -> list[int]:
    """The import watchdog (every minute). A running import whose worker went silent for IMPORT_STALE_AFTER seconds
    is handed to another worker (it restarts from the top of the file), at most JOB_MAX_TAKEOVERS times, then fails;
    a queued import whose message was lost (no worker started it within that time) is queued again. Returns the
    ids handed on or queued again."""
    from audiences.tasks import import_audience

    stale_after = stale_after_seconds if stale_after_seconds is not None else settings.IMPORT_STALE_AFTER
    now = now or timezone.now()
    outcome = leases.take_over_silent(
        IMPORT_JOB, stale_after=stale_after, max_takeovers=settings.JOB_MAX_TAKEOVERS, queued=ImportJob.Status.QUEUED,
        requeue=lambda pk: import_audience.delay(pk), failed=ImportJob.Status.FAILED, now=now,
        give_up=lambda pk: {"finished_at": now,
                            "error_message": TAKEN_OVER_TOO_OFTEN.format(times=settings.JOB_MAX_TAKEOVERS)},
    )
    for job in ImportJob.objects.filter(pk__in=outcome.failed).select_related("audience"):
        delete_upload(job)
        filling.forget(job)  # the rows a first import wrote go with it
        audience = job.audience
        if audience.status == Audience.Status.IMPORTING:
            audience.status = Audience.Status.READY if audience.generation else Audience.Status.FAILED
            audience.save(update_fields=["status", "updated_at"])
    cutoff = now - timezone.timedelta(seconds=stale_after)
    lost = (Q(status=ImportJob.Status.QUEUED, started_at__isnull=True, created_at__lt=cutoff)
            | Q(status=ImportJob.Status.QUEUED, heartbeat_at__lt=cutoff))
    queued = []
    for job_id in ImportJob.objects.filter(lost).values_list("pk", flat=True):
        # The heartbeat moves on so the next watchdog pass leaves it alone while the new task starts.
        if ImportJob.objects.filter(lost, pk=job_id).update(heartbeat_at=now):
            queued.append(job_id)
            logger.warning("import %s: queued but never started, queued again", job_id)
            transaction.on_commit(lambda job_id=job_id: import_audience.delay(job_id))
    return sorted(outcome.requeued + queued)
