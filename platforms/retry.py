"""One retry policy for every platform call (tenacity).

- ``RateLimited``: wait what the platform asked for (``retry_after``), capped at ``max_rate_wait``;
  without a hint, the same exponential backoff as a transient error.
- ``TransientError`` (5xx, timeouts, dropped connections): exponential backoff with full jitter.
- ``AuthError`` / ``PermanentError`` (and anything else): never retried; they propagate at once.

Attempts are bounded; when they run out the last error propagates unchanged, so the caller
decides what an exhausted retry means (the sync engine stops the run as resumable).
``sleep`` is injectable so tests assert the waits without sleeping.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from platforms.errors import RateLimited, TransientError

logger = logging.getLogger(__name__)
T = TypeVar("T")


def backoff_wait(
    attempt: int, *, base: float, cap: float, rng: Callable[[float, float], float] = random.uniform
) -> float:
    """Full-jitter exponential backoff: uniform(0, min(cap, base * 2**(attempt-1))), at least base/2."""
    ceiling = min(cap, base * (2 ** max(attempt - 1, 0)))
    return max(base / 2, rng(0, ceiling))


class RetryPolicy:
    """Bounded retries of one callable; see the module docstring."""

    def __init__(
        self,
        *,
        attempts: int | None = None,
        base: float | None = None,
        cap: float | None = None,
        max_rate_wait: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_retry: Callable[[BaseException, float, int], None] | None = None,
    ):
        self.attempts = attempts or getattr(settings, "PLATFORM_RETRY_ATTEMPTS", 8)
        self.base = base if base is not None else getattr(settings, "PLATFORM_RETRY_BASE_SECONDS", 1.0)
        self.cap = cap if cap is not None else getattr(settings, "PLATFORM_RETRY_MAX_SECONDS", 60.0)
        self.max_rate_wait = (
            max_rate_wait if max_rate_wait is not None else getattr(settings, "PLATFORM_MAX_RETRY_AFTER", 900.0)
        )
        self.sleep = sleep
        self.on_retry = on_retry

    def wait_for(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RateLimited) and error.retry_after:
            return min(float(error.retry_after), self.max_rate_wait)
        return backoff_wait(state.attempt_number, base=self.base, cap=self.cap)

    def _before_sleep(self, state: RetryCallState) -> None:
        error = state.outcome.exception()
        wait = state.next_action.sleep if state.next_action else 0.0
        logger.info("platform call retry %s after %s (waiting %.1f s)", state.attempt_number,
                    type(error).__name__, wait)
        if self.on_retry is not None:
            self.on_retry(error, wait, state.attempt_number)

    def call(self, fn: Callable[[], T]) -> T:
        retrying = Retrying(
            retry=retry_if_exception_type((TransientError, RateLimited)),
            stop=stop_after_attempt(self.attempts),
            wait=self.wait_for,
            sleep=self.sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        return retrying(fn)


def call_with_retry(fn: Callable[[], T], **policy) -> T:
    """``RetryPolicy(**policy).call(fn)``."""
    return RetryPolicy(**policy).call(fn)
