"""Sending a run's batches: each pending batch in order, read ahead in a helper thread while the one before is on
the wire, sent through the adapter behind the rate limiter and the retry policy (``RunContext.call``), then
checkpointed (syncs/engine/checkpoint.py). Cancel, heartbeat and "was the audience re-imported meanwhile" are
checked between batches. ``PermanentError`` fails that batch only; other errors end the sending (syncs/engine/run.py
decides what becomes of the run).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import closing

from django.db import connection
from django.db.models import Max, Min

from platforms.adapters.base import UploadSession
from platforms.errors import PermanentError, PlatformError
from syncs.engine import checkpoint
from syncs.engine.context import RunContext
from syncs.engine.read import BatchRead, read_batch
from syncs.models import SyncBatch

logger = logging.getLogger(__name__)

Kind = SyncBatch.Kind
# Upload session ids must be unique per ad account on some platforms: derived from the run and the kind.
SESSION_KIND_OFFSET = {Kind.ADD: 1, Kind.REMOVE: 2, Kind.REPLACE: 3}


def send_all(ctx: RunContext) -> None:
    """Send every pending batch in order, each checkpointed once the platform took it."""
    spans = {
        row["kind"]: (row["first"], row["last"])
        for row in ctx.run.batches.values("kind").annotate(first=Min("seq"), last=Max("seq"))
    }
    pending = list(ctx.run.batches.filter(status=SyncBatch.Status.PENDING).order_by("seq"))
    # closing(): on a stop or an error the reader thread is wound down here, not whenever GC gets to it.
    with closing(_with_reads(ctx, pending)) as batches:
        for batch, read in batches:
            ctx.check_cancel()
            ctx.check_generation()
            ctx.heartbeat()
            first, last = spans[batch.kind]
            session = UploadSession(
                session_id=ctx.run.pk * 4 + SESSION_KIND_OFFSET[batch.kind],
                batch_seq=batch.seq - first + 1,
                last_batch=batch.seq == last,
                estimated_total=ctx.run.to_remove if batch.kind == Kind.REMOVE else
                ctx.run.to_add + ctx.run.to_update,
            )
            _send(ctx, batch, session, read)


def end_upload(ctx: RunContext) -> None:
    """Whatever ended the sending, batches checkpointed as sent must reach the audience (uploads a platform holds
    back until the end: ``PlatformAdapter.end_upload``)."""
    try:
        ctx.call(lambda: ctx.adapter.end_upload(ctx.sync.platform_audience_id))
    except PlatformError as exc:
        # The run's own outcome stands; the next run (or a takeover) hands the pending upload over.
        logger.warning("sync run %s: the platform's pending upload was not handed over (%s)",
                       ctx.run.pk, type(exc).__name__)


def _with_reads(ctx: RunContext, batches: list[SyncBatch]) -> Iterator[tuple[SyncBatch, BatchRead]]:
    """Each batch with what it sends; the next batch is read in a helper thread while this one is on the wire.

    Safe because batches cover disjoint people: sending and checkpointing batch N changes nothing batch N+1 reads.
    Not inside an outer transaction (tests), whose rows another connection could not see: there it reads inline.
    """
    if len(batches) < 2 or connection.in_atomic_block:
        for batch in batches:
            yield batch, read_batch(ctx, batch)
        return
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sync-run-{ctx.run.pk}-read")
    try:
        future = pool.submit(read_batch, ctx, batches[0])
        for index, batch in enumerate(batches):
            read = future.result()
            if index + 1 < len(batches):
                future = pool.submit(read_batch, ctx, batches[index + 1])
            yield batch, read
    finally:
        pool.submit(connections.close_all).result()  # the helper thread's own database connection
        pool.shutdown(wait=True)


def _send(ctx: RunContext, batch: SyncBatch, session: UploadSession, read: BatchRead) -> None:
    members = [values for values in read.values if values]
    skipped = len(read.values) - len(members)
    audience_id = ctx.sync.platform_audience_id
    attempts = batch.attempts
    result = None
    error = ""
    try:
        if members:
            attempts += 1
            if batch.kind == Kind.ADD:
                result = ctx.call(lambda: ctx.adapter.add_members(audience_id, members, session=session))
            elif batch.kind == Kind.REMOVE:
                result = ctx.call(lambda: ctx.adapter.remove_members(audience_id, members, session=session))
            else:
                result = ctx.call(lambda: ctx.adapter.replace_members(audience_id, members, session=session))
    except PermanentError as exc:
        error = exc.message or "The platform refused this batch."
    if error:
        checkpoint.checkpoint_failed(ctx, batch, attempts=attempts, message=error)
    else:
        invalid = (result.invalid if result is not None else 0) + skipped
        checkpoint.checkpoint_sent(ctx, batch, attempts=attempts, read=read, sent=len(members), invalid=invalid,
                                   reasons=result.messages if result is not None else (),
                                   request_ids=result.request_ids if result is not None else ())
