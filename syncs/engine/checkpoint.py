"""The checkpoint after each batch, in one transaction: the batch is marked, what the platform now holds is
recorded (SyncMember), and the run's counters move. A worker that dies between the platform call and this
transaction resends at most that batch; one that dies after it resends nothing.

The audience row is locked for the transaction (an import applies its changes under the same lock), so a batch
read before an import and checkpointed after it still records the versions it really sent: those the import
replaced meanwhile are kept as MemberVersion, to be removed by the next run.
"""

from __future__ import annotations

import datetime
import logging

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from audiences import storage
from syncs.engine.context import RunContext
from syncs.engine.read import BatchRead, persons_of
from syncs.models import PlatformRequest, SyncBatch, SyncMember, SyncRun

logger = logging.getLogger(__name__)

Kind = SyncBatch.Kind
Status = SyncRun.Status
HELD = storage.qn(SyncMember._meta.db_table)


# Distinct rejection reasons a run keeps (a platform that words each rejection differently stays bounded).
MAX_REASONS = 50


def checkpoint_sent(ctx: RunContext, batch: SyncBatch, *, attempts: int, read: BatchRead, sent: int,
                    invalid: int, reasons: tuple[str, ...] = (), request_ids: tuple[str, ...] = ()) -> None:
    """Batch sent: mark it, record what the platform holds now, move the counters, all at once. ``reasons``: the
    platform's words on the members it rejected; ``request_ids``: requests it reports on later."""
    now = timezone.now()
    counters = {"done_batches": F("done_batches") + 1, "processed": F("processed") + len(read.versions),
                "rejected": F("rejected") + invalid}
    if batch.kind == Kind.REMOVE:
        counters["removed"] = F("removed") + read.leavers_removed
        counters["kept"] = F("kept") + read.kept
    else:
        counters["sent"] = F("sent") + sent
    with transaction.atomic():
        generation = ctx.lock_audience()
        if reasons:
            counters["rejection_reasons"] = _with_reasons(ctx, reasons)
        ctx.lease.write(**counters)
        if request_ids:
            after = now + datetime.timedelta(seconds=settings.PLATFORM_REPORT_AFTER)
            PlatformRequest.objects.bulk_create(
                [PlatformRequest(run_id=ctx.run.pk, request_id=request_id[:200], kind=batch.kind, sent_at=now,
                                 next_check_at=after) for request_id in request_ids], ignore_conflicts=True)
        SyncBatch.objects.filter(pk=batch.pk).update(status=SyncBatch.Status.SENT, sent_at=now, attempts=attempts,
                                                     persons=b"", deferred=encode_versions(read.deferred))
        if batch.kind == Kind.REMOVE:
            deferred = set(read.deferred)
            forget(ctx.sync.pk, [pair for pair in read.versions if pair not in deferred])
            drop_unheld_versions(ctx.audience.pk, persons_of(batch))
        else:
            if batch.kind == Kind.REPLACE and batch.seq == 1:
                # The replace session's first batch: from here the platform holds only the session's members.
                SyncMember.objects.filter(sync_id=ctx.sync.pk).delete()
                drop_unheld_versions(ctx.audience.pk, None)
            hold(ctx.sync.pk, read.versions)
            if generation != ctx.run.audience_generation:
                keep_replaced(ctx.audience.pk, read)


def _with_reasons(ctx: RunContext, reasons: tuple[str, ...]) -> dict:
    """The run's rejection reasons with this batch's added (the lease makes this worker the run's only writer)."""
    known = dict(SyncRun.objects.filter(pk=ctx.run.pk).values_list("rejection_reasons", flat=True).get() or {})
    for reason in reasons:
        reason = ctx.safe(reason)[:300]
        if reason in known or len(known) < MAX_REASONS:
            known[reason] = known.get(reason, 0) + 1
    return known


def encode_versions(versions: list[tuple[bytes, int]]) -> bytes:
    return b"".join(person + generation.to_bytes(4, "big", signed=True) for person, generation in versions)


def decode_versions(data: bytes) -> list[tuple[bytes, int]]:
    data = bytes(data)
    return [(data[i:i + 12], int.from_bytes(data[i + 12:i + 16], "big", signed=True)) for i in range(0, len(data), 16)]


def settle(ctx: RunContext) -> bool:
    """At the end of a run, after its adds: forget the removed versions that were kept only because a current
    member sharing one of their identifiers was not on the platform yet, now that it is. Returns whether every
    such version was settled (else the next run plans them again, from a full comparison)."""
    batches = list(SyncBatch.objects.filter(run_id=ctx.run.pk, kind=Kind.REMOVE).exclude(deferred=b"")
                   .values_list("pk", "deferred"))
    if not batches:
        return True
    from syncs.engine.read import not_yet_covered, shared_identifiers

    with transaction.atomic():
        if ctx.lock_audience() != ctx.run.audience_generation:
            return False  # an import changed the members meanwhile: the next run's full comparison decides
        pairs = sorted({pair for _, data in batches for pair in decode_versions(data)})
        records = storage.versions(ctx.audience.pk, pairs)
        _, chains, firsts, held = shared_identifiers(ctx, pairs, records)
        still = set(not_yet_covered(ctx, pairs, firsts, chains, held))
        forget(ctx.sync.pk, [pair for pair in pairs if pair not in still])
        drop_unheld_versions(ctx.audience.pk, sorted({person for person, _ in pairs}))
        for pk, data in batches:
            SyncBatch.objects.filter(pk=pk).update(
                deferred=encode_versions([pair for pair in decode_versions(data) if pair in still]))
    return not still


def checkpoint_failed(ctx: RunContext, batch: SyncBatch, *, attempts: int, message: str) -> None:
    with transaction.atomic():
        ctx.lease.write(done_batches=F("done_batches") + 1)
        SyncBatch.objects.filter(pk=batch.pk).update(
            status=SyncBatch.Status.FAILED, attempts=attempts, error_message=ctx.safe(message)[:2000])
    logger.warning("sync run %s: batch %s failed permanently", ctx.run.pk, batch.seq)


def hold(sync_id: int, versions: list[tuple[bytes, int]]) -> None:
    """Record that the platform holds these versions."""
    if not versions:
        return
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"INSERT INTO {HELD} (sync_id, person, generation) "  # noqa: S608
                "SELECT %s, p, g FROM unnest(%s::bytea[], %s::int[]) AS t(p, g) ON CONFLICT DO NOTHING",
                [sync_id, [p for p, _ in versions], [g for _, g in versions]])
        else:
            cursor.executemany(f"INSERT INTO {HELD} (sync_id, person, generation) VALUES (%s, %s, %s) "  # noqa: S608
                               "ON CONFLICT DO NOTHING", [(sync_id, p, g) for p, g in versions])


def forget(sync_id: int, versions: list[tuple[bytes, int]]) -> None:
    """Record that the platform no longer holds these versions."""
    if not versions:
        return
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"DELETE FROM {HELD} h USING unnest(%s::bytea[], %s::int[]) AS t(p, g) "  # noqa: S608
                "WHERE h.sync_id = %s AND h.person = t.p AND h.generation = t.g",
                [[p for p, _ in versions], [g for _, g in versions], sync_id])
        else:
            cursor.executemany(f"DELETE FROM {HELD} WHERE sync_id = %s AND person = %s AND generation = %s",  # noqa: S608
                               [(sync_id, p, g) for p, g in versions])


def drop_unheld_versions(audience_id: int, persons: list[bytes] | None) -> None:
    """Kept versions that no sync of the audience holds any more go (of ``persons``; None: all)."""
    version = storage.qn(storage.VERSION)
    held = (f"SELECT 1 FROM {HELD} h JOIN syncs_sync s ON s.id = h.sync_id "  # noqa: S608 - our table names
            f"WHERE s.audience_id = {version}.audience_id AND h.person = {version}.person "
            f"AND h.generation = {version}.generation")
    with connection.cursor() as cursor:
        if persons is None:
            cursor.execute(f"DELETE FROM {version} WHERE audience_id = %s AND NOT EXISTS ({held})",  # noqa: S608
                           [audience_id])
            return
        for condition, params in storage._in_persons("person", persons):
            cursor.execute(f"DELETE FROM {version} WHERE audience_id = %s AND {condition} "  # noqa: S608
                           f"AND NOT EXISTS ({held})", [audience_id, *params])


def keep_replaced(audience_id: int, read: BatchRead) -> None:
    """An import replaced members after this batch read them: keep the versions it sent that are no longer
    current, so the next run can remove their identifiers."""
    current = {person: generation
               for person, generation, _ in storage.current_records(audience_id, [p for p, _ in read.versions])}
    replaced = [(pair, read.records[pair]) for pair in read.versions
                if current.get(pair[0]) != pair[1] and pair in read.records]
    if not replaced:
        return
    columns = ", ".join(storage.qn(c) for c in storage.RECORD_COLUMNS)
    marks = ", ".join(["%s"] * (len(storage.RECORD_COLUMNS) + 3))
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {storage.qn(storage.VERSION)} (audience_id, person, generation, {columns}) "  # noqa: S608
            f"VALUES ({marks}) ON CONFLICT DO NOTHING",
            [(audience_id, person, generation, *storage.to_row(stored)) for (person, generation), stored in replaced])
