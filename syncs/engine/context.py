"""What every stage of a run shares: the run and its sync, the worker's lease on it, the adapter behind the rate
limiter and the retry policy, and the checks made between batches."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.db import transaction

from activation_manager.leases import JobKind, Lease, LeaseLost
from audiences.models import Audience
from credentials.scrub import scrub
from platforms.adapters.base import PlatformAdapter
from platforms.ratelimit import RateLimiter, limiter_for
from platforms.retry import RetryPolicy
from syncs.models import SyncRun

logger = logging.getLogger(__name__)

Status = SyncRun.Status
# Longest single sleep while waiting (retry / rate limit), so the heartbeat keeps beating.
PAUSE_SLICE = 60.0


# A run as a background job (activation_manager.leases): queued -> running, taken over when its worker goes silent.
RUN_JOB = JobKind(model=SyncRun, running=Status.RUNNING, claimable=(Status.QUEUED,), label="sync run")
__all__ = ["RUN_JOB", "LeaseLost", "RunContext", "Stop"]


class Stop(Exception):  # noqa: N818
    def __init__(self, status: str, message: str = ""):
        super().__init__(message)
        self.status = status
        self.message = message


class RunContext:
    """One run being executed by this worker. Every write to the run goes through ``lease``, so it applies only
    while this worker still holds the run (see activation_manager.leases)."""

    def __init__(self, run: SyncRun, *, lease: Lease, adapter: PlatformAdapter | None = None,
                 sleep: Callable[[float], None] = time.sleep, limiter: RateLimiter | None = None):
        self.run = run
        self.sync = run.sync
        self.audience = run.sync.audience
        self.connection = run.sync.connection
        self.code = self.connection.platform.code
        self.lease = lease
        self._adapter = adapter
        self._sleep = sleep
        self._limiter = limiter
        self.policy = RetryPolicy(sleep=self.pause)

    @property
    def adapter(self) -> PlatformAdapter:
        if self._adapter is None:
            try:
                self._adapter = self.connection.adapter()
            except (LookupError, ImportError, AttributeError):
                logger.error("sync run %s: no adapter for platform %s", self.run.pk, self.code)
                raise Stop(Status.FAILED, f"Syncing to {self.connection.platform.name} is not available "
                                          "(its adapter is missing).") from None
        return self._adapter

    def close(self) -> None:
        """Release what the adapter holds open (a gRPC channel, an HTTP session)."""
        if self._adapter is not None:
            close = getattr(self._adapter, "close", None)
            if callable(close):
                close()

    @property
    def limiter(self) -> RateLimiter:
        if self._limiter is None:
            adapter = self.adapter
            account = adapter.account_id or f"connection-{self.connection.pk}"
            self._limiter = limiter_for(self.code, account, adapter.capabilities.rate_limit, sleep=self.pause)
        return self._limiter

    def call(self, fn):
        """One platform call: a rate-limit token per attempt, retried per the policy."""

        def attempt():
            self.limiter.acquire()
            with self.lease.keep_alive():  # a slow platform answer must not look like a dead worker
                return fn()

        return self.policy.call(attempt)

    def heartbeat(self, **fields) -> None:
        """Beat (and write ``fields``); raises LeaseLost if the run is no longer ours."""
        self.lease.write(**fields)

    def update_run(self, **fields) -> None:
        """Write ``fields`` on the run (inside the caller's transaction) and renew the lease."""
        self.heartbeat(**fields)

    def pause(self, seconds: float) -> None:
        """Sleep for a retry or a rate-limit token, beating the heartbeat and honouring cancel meanwhile."""
        remaining = float(seconds)
        while remaining > 0:
            step = min(remaining, PAUSE_SLICE)
            with self.lease.keep_alive():
                self._sleep(step)
            remaining -= step
            if remaining > 0:
                self.heartbeat()
                self.check_cancel()

    def check_cancel(self) -> None:
        if SyncRun.objects.filter(pk=self.run.pk, cancel_requested=True).exists():
            raise Stop(Status.CANCELLED, "Cancelled by the user; batches sent before stay on the platform.")

    def current_generation(self) -> int:
        return Audience.objects.filter(pk=self.audience.pk).values_list("generation", flat=True).first()

    def check_generation(self) -> None:
        if self.run.audience_generation is not None and self.current_generation() != self.run.audience_generation:
            raise Stop(Status.FAILED, "The audience was re-imported while this run was sending. "
                                      "Start a new run to send the new membership.")

    def lock_audience(self) -> int:
        """Hold the audience row for the rest of the transaction (an import applies its changes under the same
        lock, so a checkpoint never interleaves with one); returns its generation."""
        assert transaction.get_connection().in_atomic_block
        return Audience.objects.select_for_update().filter(pk=self.audience.pk).values_list(
            "generation", flat=True).get()

    def safe(self, message: str) -> str:
        """A platform's message as it may be shown and stored: the connection's secrets masked in any form."""
        return scrub(message, self.connection.secrets)
