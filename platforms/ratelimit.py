"""Per-account request budgets that every worker shares, and that WAIT rather than fail.

``limiter_for(code, account, rate)`` gives a ``RateLimiter``; ``acquire()`` blocks until the
request may go (returning the seconds it waited). The budget is a token bucket: ``rate.requests``
tokens of burst, refilled at ``requests / per_seconds`` a second.

Where the bucket lives:
- With ``settings.REDIS_URL`` set (production, CI): in Redis, updated by one Lua script, so every
  worker process on every machine draws from the same bucket per platform account. The script reads
  Redis's own clock (``TIME``), so workers' clocks need not agree. A caller that finds the bucket
  empty reserves its token anyway (the bucket goes negative) and sleeps for its turn: waiters are
  served in order and nobody polls.
- With ``REDIS_URL`` empty (``make run`` on the embedded filesystem broker): a bucket in this
  process, shared by its threads only. A single local worker is the only consumer then, so that is
  the same budget; with several worker processes and no Redis, each process has its own bucket.
- If Redis cannot be reached for a moment (a restart), the process-local bucket stands in for that
  call and a warning is logged: a sync keeps going rather than failing on the limiter.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import lru_cache

from django.conf import settings

from platforms.adapters.base import RateLimit

logger = logging.getLogger(__name__)

KEY_PREFIX = "am:ratelimit"

# KEYS[1] the bucket; ARGV capacity, refill per second, tokens wanted. Returns the wait in seconds (string:
# Lua numbers would be truncated to integers in the reply).
TOKEN_BUCKET_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
end
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate) - want
local wait = 0
if tokens < 0 then
  wait = -tokens / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate * 1000) + 1000)
return tostring(wait)
"""


class LocalBucket:
    """The same token bucket in this process (thread-safe)."""

    def __init__(self, capacity: float, rate: float, clock: Callable[[], float] = time.monotonic):
        self.capacity = capacity
        self.rate = rate
        self.clock = clock
        self.tokens = capacity
        self.stamp = clock()
        self.lock = threading.Lock()

    def reserve(self, want: float = 1) -> float:
        with self.lock:
            now = self.clock()
            self.tokens = min(self.capacity, self.tokens + max(0.0, now - self.stamp) * self.rate) - want
            self.stamp = now
            return -self.tokens / self.rate if self.tokens < 0 else 0.0


_local_buckets: dict[str, LocalBucket] = {}
_local_lock = threading.Lock()


def _local_bucket(key: str, capacity: float, rate: float) -> LocalBucket:
    with _local_lock:
        bucket = _local_buckets.get(key)
        if bucket is None or bucket.capacity != capacity or bucket.rate != rate:
            bucket = _local_buckets[key] = LocalBucket(capacity, rate)
        return bucket


@lru_cache(maxsize=4)
def _redis(url: str):
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=30)
    return client, client.register_script(TOKEN_BUCKET_LUA)


class RateLimiter:
    """A token bucket for one platform account; ``acquire()`` waits for a token."""

    def __init__(
        self,
        key: str,
        rate: RateLimit,
        *,
        redis_url: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.key = key
        self.capacity = float(max(rate.requests, 1))
        self.per_second = rate.requests / rate.per_seconds
        self.redis_url = settings.REDIS_URL if redis_url is None else redis_url
        self.sleep = sleep

    @property
    def shared(self) -> bool:
        return bool(self.redis_url)

    def reserve(self, tokens: int = 1) -> float:
        """Take ``tokens`` now and return how long the caller must wait before using them."""
        if self.redis_url:
            try:
                client, script = _redis(self.redis_url)
                return float(script(keys=[self.key], args=[self.capacity, self.per_second, tokens]))
            except Exception as exc:  # noqa: BLE001 — Redis away (restart, network): degrade, do not fail the sync
                logger.warning("rate limiter: Redis unavailable (%s); using the process-local bucket for %s",
                               type(exc).__name__, self.key)
        return _local_bucket(self.key, self.capacity, self.per_second).reserve(tokens)

    def acquire(self, tokens: int = 1) -> float:
        wait = self.reserve(tokens)
        if wait > 0:
            self.sleep(wait)
        return wait


def limiter_for(platform_code: str, account: str, rate: RateLimit, **kwargs) -> RateLimiter:
    """The shared limiter of one platform account (``account``: the adapter's account id)."""
    return RateLimiter(f"{KEY_PREFIX}:{platform_code}:{account or 'default'}", rate, **kwargs)
