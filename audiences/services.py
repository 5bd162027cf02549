"""Audience writes that are not the import: deleting an audience (at once for the marketer, its rows purged in the
background) and deleting the audiences its syncs created on the platforms."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audiences import storage
from audiences.models import Audience, ImportJob, Member, MemberChange, MemberVersion
from credentials.models import Connection
from syncs.models import SyncMember, SyncRun

logger = logging.getLogger(__name__)

Status = SyncRun.Status


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
    from audiences.tasks import purge_audience as purge_task

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
    slices = [(SyncMember, "sync_id", sync_id) for sync_id in audience.syncs.values_list("pk", flat=True)]
    slices += [(model, "audience_id", audience_id) for model in (Member, MemberVersion, MemberChange)]
    for model, column, value in slices:
        while storage.delete_slice(model, column, value, limit=PURGE_SLICE):
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
    from audiences.tasks import delete_platform_audience

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
