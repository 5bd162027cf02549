"""One lease for every background job: sync runs, imports and audience deletions.

A job is a row with a status, a heartbeat timestamp and (where two workers must never both write) a lease
counter. A worker **claims** the row: a queued job becomes running, or a running job whose heartbeat went silent
for ``stale_after`` seconds is **taken over**. Each claim bumps the lease counter; the worker keeps the number it
got, and every later write of its goes through ``Lease.write`` / ``Lease.release``, which apply only while the row
still carries that number. A worker that lost its lease (taken over while it was only slow) finds out at its next
write and stops (``LeaseLost``) without touching the row again.

The heartbeat says "alive", nothing more: beating never changes the lease number, so a background beat
(``Lease.keep_alive`` around a long platform call or a long database statement) cannot race the worker's own
guarded writes.

The watchdog (``take_over_silent``) hands silent jobs back to a worker — their work continues from the last
checkpoint — a bounded number of times (``takeovers``), then fails them with a message.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, connections, models, transaction
from django.db.models import F, Q
from django.utils import timezone

logger = logging.getLogger(__name__)


class LeaseLost(Exception):  # noqa: N818 - the product's word
    """Another worker (or the watchdog) took the job: stop without writing anything more."""


@dataclass(frozen=True)
class JobKind:
    """Where a kind of job keeps its state: the model and the names of its fields and statuses."""

    model: type[models.Model]
    running: str
    claimable: tuple[str, ...]  # statuses a worker may start from (queued ...)
    status_field: str = "status"
    heartbeat_field: str = "heartbeat_at"
    # None: no guard (the job's writes are idempotent, as an audience's purge is); claims still take over.
    lease_field: str | None = "lease"
    takeovers_field: str | None = "takeovers"
    label: str = "job"

    def rows(self, pk) -> models.QuerySet:
        return self.model._default_manager.filter(pk=pk)

    def silent(self, cutoff: datetime) -> Q:
        """Running, and no heartbeat since ``cutoff`` (or never)."""
        beat = self.heartbeat_field
        return Q(**{self.status_field: self.running}) & (
            Q(**{f"{beat}__lt": cutoff}) | Q(**{f"{beat}__isnull": True}))


@dataclass
class Lease:
    """A worker's hold on one job row (see the module docstring)."""

    kind: JobKind
    pk: int
    number: int | None
    took_over: bool = False
    _beat_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _mine(self) -> models.QuerySet:
        rows = self.kind.rows(self.pk).filter(**{self.kind.status_field: self.kind.running})
        if self.kind.lease_field is not None:
            rows = rows.filter(**{self.kind.lease_field: self.number})
        return rows

    def write(self, *, where: dict | None = None, **fields) -> None:
        """Write ``fields`` and beat; raises LeaseLost when the job is no longer this worker's (or not running,
        or does not match ``where``)."""
        if not self._mine().filter(**(where or {})).update(**{self.kind.heartbeat_field: timezone.now()}, **fields):
            raise LeaseLost()

    def beat(self) -> None:
        self.write()

    def release(self, status: str, **fields) -> bool:
        """The last write: the job leaves "running" for ``status``. False when the lease was lost meanwhile."""
        fields[self.kind.status_field] = status
        return bool(self._mine().update(**{self.kind.heartbeat_field: timezone.now()}, **fields))

    def holds(self) -> bool:
        return self._mine().exists()

    @contextmanager
    def keep_alive(self, every: float | None = None):
        """Beat from a helper thread while the block runs (a platform call or a statement that may outlast the
        stale limit). Not inside a transaction the helper's connection cannot see past (tests): there, nothing."""
        if transaction.get_connection().in_atomic_block:
            yield
            return
        every = every or settings.JOB_HEARTBEAT_SECONDS
        stop = threading.Event()

        def beat_until_stopped():
            try:
                while not stop.wait(every):
                    try:
                        if not self._mine().update(**{self.kind.heartbeat_field: timezone.now()}):
                            return  # lost: the worker itself finds out at its next write
                    except DatabaseError as exc:  # a busy SQLite file, a reconnect: the next beat will do
                        logger.info("%s %s: a heartbeat was skipped (%s)", self.kind.label, self.pk,
                                    type(exc).__name__)
            finally:
                connections.close_all()  # this thread's own connection

        thread = threading.Thread(target=beat_until_stopped, name=f"{self.kind.label}-{self.pk}-beat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()  # not joined: it may be waiting on a row this thread's transaction holds


def claim(kind: JobKind, pk, *, stale_after: float, max_takeovers: int | None = None, now=None,
          **fields) -> Lease | None:
    """Make the job running for this worker, or None when it is not ours to run (finished, held, cancelled, or
    running with a live heartbeat). A running job whose heartbeat is older than ``stale_after`` seconds is taken
    over (counted in ``takeovers``, at most ``max_takeovers`` times); ``fields`` are written with the claim."""
    now = now or timezone.now()
    values = {kind.status_field: kind.running, kind.heartbeat_field: now, **fields}
    if kind.lease_field is not None:
        values[kind.lease_field] = F(kind.lease_field) + 1
    took_over = False
    updated = kind.rows(pk).filter(**{f"{kind.status_field}__in": kind.claimable}).update(**values)
    if not updated:
        silent = kind.rows(pk).filter(kind.silent(now - timedelta(seconds=stale_after)))
        if kind.takeovers_field is not None:
            if max_takeovers is not None:
                silent = silent.filter(**{f"{kind.takeovers_field}__lt": max_takeovers})
            values[kind.takeovers_field] = F(kind.takeovers_field) + 1
        updated = silent.update(**values)
        took_over = bool(updated)
    if not updated:
        return None
    number = None
    if kind.lease_field is not None:
        number = kind.rows(pk).values_list(kind.lease_field, flat=True).first()
    if took_over:
        logger.warning("%s %s: taken over from a worker that stopped beating", kind.label, pk)
    return Lease(kind, pk, number, took_over=took_over)


@dataclass
class Takeovers:
    """What one watchdog pass did with the silent jobs of a kind."""

    requeued: list = field(default_factory=list)
    failed: list = field(default_factory=list)


def take_over_silent(kind: JobKind, *, stale_after: float, max_takeovers: int, queued: str,
                     requeue: Callable[[int], None], failed: str, give_up: Callable[[int], dict],
                     now=None, extra: Q | None = None) -> Takeovers:
    """The watchdog's pass over one kind: a running job silent for ``stale_after`` seconds goes back to
    ``queued`` (its counter of takeovers bumped, its lease ended) and ``requeue(pk)`` hands it to a worker, which
    continues from the job's last checkpoint; one taken over ``max_takeovers`` times already becomes ``failed``
    with the fields ``give_up(pk)`` returns. Each update repeats the silence condition, so a heartbeat (or a
    claim) that arrives meanwhile keeps the job where it is."""
    now = now or timezone.now()
    silent = kind.silent(now - timedelta(seconds=stale_after))
    if extra is not None:
        silent &= extra
    outcome = Takeovers()
    for pk in kind.model._default_manager.filter(silent).values_list("pk", flat=True):
        rows = kind.rows(pk).filter(silent)
        spent = kind.takeovers_field is not None and rows.filter(
            **{f"{kind.takeovers_field}__gte": max_takeovers}).exists()
        if spent:
            if rows.update(**{kind.status_field: failed, kind.heartbeat_field: now}, **give_up(pk)):
                outcome.failed.append(pk)
            continue
        values = {kind.status_field: queued, kind.heartbeat_field: now}
        if kind.takeovers_field is not None:
            values[kind.takeovers_field] = F(kind.takeovers_field) + 1
        if kind.lease_field is not None:
            values[kind.lease_field] = F(kind.lease_field) + 1  # the silent worker's lease ends here
        if rows.update(**values):
            outcome.requeued.append(pk)
            requeue(pk)  # the update is committed already: the watchdog runs in autocommit
    if outcome.requeued or outcome.failed:
        logger.warning("watchdog: %s %s(s) handed to a new worker %s, %s failed after %s takeovers %s",
                       len(outcome.requeued), kind.label, outcome.requeued, len(outcome.failed), max_takeovers,
                       outcome.failed)
    return outcome
