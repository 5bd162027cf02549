"""Audience writes that are not the import: deleting an audience (at once for the marketer, its rows purged in the
background) and deleting the audiences its syncs created on the platforms."""

from __future__ import annotations

import logging
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import connection as db
from django.db import transaction
from django.utils import timezone

from activation_manager import leases
from audiences import storage
from audiences.models import Audience, ImportJob, Member, MemberChange, MemberVersion, PlatformDeletion
from credentials.models import Connection
from credentials.scrub import scrub
from platforms.errors import PlatformError, RateLimited, TransientError
from syncs.models import Sync, SyncMember, SyncRun

logger = logging.getLogger(__name__)

Status = SyncRun.Status
Fate = PlatformDeletion.Status
DELETE, KEEP, UNREACHABLE = "delete", "keep", "unreachable"


def destination(sync: Sync) -> str:
    """How a sync's destination is named on the pages: "Meta · EU account"."""
    return f"{sync.connection.platform.name} · {sync.connection.label}"


@dataclass
class PlatformCopy:
    """An audience one of the syncs created on its platform, and what deleting the audience would do to it."""

    sync: Sync
    fate: str  # DELETE (deleted there too), KEEP (left there), UNREACHABLE (asked, but its connection is not active)
    reason: str = ""
    # The size the platform reported at the sync's last run that reported one (None: never reported).
    size: int | None = None

    @property
    def destination(self) -> str:
        return destination(self.sync)

    @property
    def platform(self) -> str:
        return self.sync.connection.platform.name


@dataclass
class DeletionPreview:
    """What ``delete_audience`` would delete, here and on each platform (shown before the marketer confirms)."""

    audience: Audience
    on_platforms: bool
    syncs: int = 0
    runs: int = 0
    schedules: list[str] = field(default_factory=list)
    active_runs: int = 0
    held_runs: int = 0
    stored_files: int = 0
    importing: bool = False
    copies: list[PlatformCopy] = field(default_factory=list)
    # Syncs that never created an audience on their platform: nothing to delete there.
    never_created: list[str] = field(default_factory=list)

    @property
    def deleted_on(self) -> list[str]:
        return [c.destination for c in self.copies if c.fate == DELETE]


def _copy_fate(sync: Sync, on_platforms: bool) -> tuple[str, str]:
    platform = sync.connection.platform.name
    if not on_platforms:
        return KEEP, ""
    if sync.connection.status != Connection.Status.ACTIVE:
        return UNREACHABLE, (f"The connection {destination(sync)} is "
                             f"{sync.connection.get_status_display().lower()}, so Activation Manager cannot reach "
                             f"{platform}. Delete the audience {sync.platform_audience_id} on {platform} itself.")
    return DELETE, ""


def deletion_preview(*, audience: Audience, on_platforms: bool = False) -> DeletionPreview:
    """What deleting ``audience`` (with or without its platform copies) would do; the same rules as
    ``delete_audience``. A handful of queries whatever the audience's size."""
    syncs = list(audience.syncs.select_related("connection__platform").order_by("created_at", "id"))
    preview = DeletionPreview(audience=audience, on_platforms=on_platforms, syncs=len(syncs))
    runs = SyncRun.objects.filter(sync__audience=audience)
    preview.runs = runs.count()
    preview.active_runs = runs.filter(status__in=SyncRun.ACTIVE_STATUSES).count()
    preview.held_runs = runs.filter(status=Status.HELD).count()
    preview.schedules = [f"{s.get_schedule_display().lower()} to {destination(s)}" for s in syncs if s.schedule]
    preview.stored_files = audience.imports.exclude(stored_path="").count()
    preview.importing = audience.imports.filter(status__in=[ImportJob.Status.QUEUED, ImportJob.Status.RUNNING]).exists()
    sizes = {}  # sync -> the size its newest run that reported one saw
    for sync_id, size in runs.filter(audience_size__isnull=False).order_by("created_at", "id").values_list(
            "sync_id", "audience_size"):
        sizes[sync_id] = size
    for sync in syncs:
        if not sync.platform_audience_id:
            preview.never_created.append(destination(sync))
            continue
        fate, reason = _copy_fate(sync, on_platforms)
        preview.copies.append(PlatformCopy(sync=sync, fate=fate, reason=reason, size=sizes.get(sync.pk)))
    return preview


def delete_audience(*, audience: Audience, on_platforms: bool = False) -> list[str]:
    """Delete the audience: it leaves every page at once, and its members, syncs, runs and files are removed
    in the background (``purge_audience``: a ten-million-member audience takes longer than a web request may).
    Its schedules stop and its running syncs are cancelled now; an import still running stops at its next
    checkpoint. With ``on_platforms``, the audiences its syncs created on the platforms are deleted too (one
    task each, retried on transient errors), and each gets a PlatformDeletion row saying what became of it
    (deleting, deleted, or not deleted and why). Returns the names of the destinations being cleaned up."""
    syncs = list(audience.syncs.select_related("connection__platform"))
    now = timezone.now()
    records = []
    for sync in syncs:
        if not sync.platform_audience_id or not on_platforms:
            continue
        fate, reason = _copy_fate(sync, on_platforms)
        records.append(PlatformDeletion(
            owner_id=audience.owner_id, connection_id=sync.connection_id, former_audience_id=audience.pk,
            audience_name=audience.name, destination=destination(sync), platform_audience_id=sync.platform_audience_id,
            status=Fate.PENDING if fate == DELETE else Fate.FAILED, message=reason,
            finished_at=None if fate == DELETE else now,
        ))
    with transaction.atomic():
        Audience.objects.filter(pk=audience.pk).update(status=Audience.Status.DELETING, updated_at=now)
        SyncRun.objects.filter(sync__audience=audience, status__in=SyncRun.PENDING_STATUSES).update(
            status=Status.CANCELLED, finished_at=now, error_message="The audience was deleted.")
        tasks = [s.periodic_task_id for s in syncs if s.periodic_task_id]
        if tasks:
            from django_celery_beat.models import PeriodicTask

            PeriodicTask.objects.filter(pk__in=tasks).delete()
        records = PlatformDeletion.objects.bulk_create(records)
        for record in records:
            if record.status == Fate.PENDING:
                transaction.on_commit(lambda r=record: _queue_platform_delete(r.connection_id, r.platform_audience_id,
                                                                             r.pk))
        transaction.on_commit(lambda: _queue_purge(audience.pk))
    audience.status = Audience.Status.DELETING
    return [r.destination for r in records if r.status == Fate.PENDING]


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
    fresh = timezone.now() - timedelta(seconds=settings.IMPORT_STALE_AFTER)
    if audience.imports.filter(status=ImportJob.Status.RUNNING, heartbeat_at__gte=fresh).exists():
        return False
    deletion = leases.Lease(DELETION_JOB, audience_id, None)
    slices = [(SyncMember, "sync_id", sync_id) for sync_id in audience.syncs.values_list("pk", flat=True)]
    slices += [(model, "audience_id", audience_id) for model in (Member, MemberVersion, MemberChange)]
    for model, column, value in slices:
        while storage.delete_slice(model, column, value, limit=PURGE_SLICE):
            with suppress(leases.LeaseLost):
                deletion.beat()  # seen alive by the watchdog
    for job in audience.imports.exclude(stored_path=""):
        imports.delete_upload(job)
    with transaction.atomic():
        # The audience row first: a worker still writing members (one that outlived its lease) holds it until its
        # chunk commits and finds it gone afterwards, so the delete's cascade sees every member row there will be
        # (the member table has no database constraint to catch one: audiences.models.Member).
        audience = Audience.objects.select_for_update().get(pk=audience_id)
        audience.delete()  # what is left (syncs, runs, batches, import reports, late members) is small
    logger.info("audience %s deleted", audience_id)
    reclaim_space()
    return True


# Pages given back per statement by reclaim_space: 4 MB at SQLite's default page size, a short write each.
RECLAIM_PAGES = 1024
SQLITE_INCREMENTAL = 2


def reclaim_space() -> int:
    """On SQLite, give the pages a purge freed back to the file system: SQLite keeps freed pages inside the file
    (a purged 200,000-member audience left 425 MB free in it). An incremental vacuum, RECLAIM_PAGES at a time, each
    its own short write transaction, so the web's and the workers' writes go in between (a full VACUUM would lock
    the file for as long as it takes to copy it). Needs the file in incremental auto-vacuum mode (migration
    audiences 0013). Nothing on PostgreSQL, whose own VACUUM makes dead rows' space reusable. Returns the pages
    given back."""
    if db.vendor != "sqlite" or db.in_atomic_block:
        return 0
    given_back = 0
    with db.cursor() as cursor:
        cursor.execute("PRAGMA auto_vacuum")
        if cursor.fetchone()[0] != SQLITE_INCREMENTAL:
            logger.info("sqlite file not in incremental auto-vacuum mode: freed pages stay in the file")
            return 0
        cursor.execute("PRAGMA freelist_count")
        free = cursor.fetchone()[0]
        while free:
            cursor.execute(f"PRAGMA incremental_vacuum({RECLAIM_PAGES})")
            cursor.fetchall()  # the pragma frees one page per row it steps through
            cursor.execute("PRAGMA freelist_count")
            left = cursor.fetchone()[0]
            if left >= free:  # another writer is freeing pages as fast: leave the rest to the next purge
                break
            given_back, free = given_back + free - left, left
        # Move the shrunk pages from the write-ahead log into the file, without waiting for readers.
        cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
        cursor.fetchall()
    if given_back:
        logger.info("sqlite: %s free pages given back to the file system", given_back)
    return given_back


# An audience's deletion as a background job (activation_manager.leases): "deleting" until its purge is done,
# ``updated_at`` its heartbeat. No lease number: two purges of one audience delete the same slices, harmlessly.
DELETION_JOB = leases.JobKind(model=Audience, running=Audience.Status.DELETING, claimable=(),
                              heartbeat_field="updated_at", lease_field=None, takeovers_field=None,
                              label="audience deletion")


def requeue_stale_deletions(*, now=None) -> list[int]:
    """Audiences left "deleting" without progress for SYNC_STALE_AFTER seconds (their purge task was lost with
    its worker, or gave up waiting on an import): queue the purge again."""
    outcome = leases.take_over_silent(
        DELETION_JOB, stale_after=settings.SYNC_STALE_AFTER, max_takeovers=0, queued=Audience.Status.DELETING,
        requeue=_queue_purge, failed=Audience.Status.DELETING, give_up=dict, now=now)
    return sorted(outcome.requeued)


def _queue_platform_delete(connection_id: int, platform_audience_id: str, deletion_id: int | None = None) -> None:
    from audiences.tasks import delete_platform_audience

    delete_platform_audience.delay(connection_id, platform_audience_id, deletion_id)


def _record(deletion_id: int | None, status: str, message: str = "") -> None:
    if deletion_id is None:
        return
    finished = None if status == Fate.PENDING else timezone.now()
    PlatformDeletion.objects.filter(pk=deletion_id).exclude(status=Fate.DELETED).update(
        status=status, message=message, finished_at=finished)


def delete_platform_audience(*, connection_id: int, platform_audience_id: str, deletion_id: int | None = None,
                             last_attempt: bool = True) -> bool:
    """Delete one audience on its platform, and record on its PlatformDeletion row (``deletion_id``) whether that
    worked. False when the connection is gone or no longer usable, or the platform refused. A transient error or a
    rate limit is raised again for the task to retry, unless this is its ``last_attempt``."""
    connection = Connection.objects.filter(pk=connection_id).select_related("platform").first()
    if connection is None or connection.status != Connection.Status.ACTIVE:
        logger.warning("platform audience of connection %s not deleted: connection missing or inactive",
                       connection_id)
        state = "deleted" if connection is None else connection.get_status_display().lower()
        _record(deletion_id, Fate.FAILED, f"The connection is {state}, so Activation Manager could not reach the "
                                          f"platform. Delete the audience {platform_audience_id} there.")
        return False
    platform = connection.platform.name
    try:
        connection.adapter().delete_audience(platform_audience_id)
    except (TransientError, RateLimited) as exc:
        said = scrub(exc.message, connection.secrets)  # platforms may echo what they were sent
        if not last_attempt:
            _record(deletion_id, Fate.PENDING, f"{platform} did not answer yet ({said}); trying again.")
            raise
        logger.warning("platform audience on connection %s not deleted: %s", connection_id, type(exc).__name__)
        _record(deletion_id, Fate.FAILED, f"{platform} kept failing ({said}). The audience "
                                          f"{platform_audience_id} is still on {platform}: delete it there.")
        return False
    except PlatformError as exc:
        logger.warning("platform audience on connection %s not deleted: %s", connection_id, type(exc).__name__)
        _record(deletion_id, Fate.FAILED, f"{platform} refused ({scrub(exc.message, connection.secrets)})."
                                          f" The audience {platform_audience_id} may still be on {platform}: check "
                                          "it there.")
        return False
    _record(deletion_id, Fate.DELETED)
    logger.info("deleted platform audience on connection %s", connection_id)
    return True
