"""The retry policy per error type, and the rate limiter (local, and shared across processes through Redis)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from platforms.adapters.base import RateLimit
from platforms.errors import AuthError, PermanentError, RateLimited, TransientError
from platforms.ratelimit import LocalBucket, RateLimiter
from platforms.retry import RetryPolicy, backoff_wait

ROOT = Path(__file__).resolve().parents[2]


class Flaky:
    def __init__(self, *errors):
        self.errors = list(errors)
        self.calls = 0

    def __call__(self):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def policy(sleeps, **kwargs):
    return RetryPolicy(sleep=sleeps.append, base=1.0, cap=60.0, **kwargs)


@pytest.mark.parametrize("error", [AuthError("expired"), PermanentError("bad request"), ValueError("bug")])
def test_auth_permanent_and_unknown_errors_are_never_retried(error):
    sleeps = []
    fn = Flaky(error)
    with pytest.raises(type(error)):
        policy(sleeps, attempts=5).call(fn)
    assert fn.calls == 1 and sleeps == []


def test_rate_limited_waits_exactly_retry_after_capped():
    sleeps = []
    fn = Flaky(RateLimited("slow", retry_after=7.5), RateLimited("slow", retry_after=5000))
    assert policy(sleeps, attempts=5, max_rate_wait=900).call(fn) == "ok"
    assert sleeps == [7.5, 900]


def test_transient_errors_back_off_with_jitter_and_the_bound_holds():
    sleeps = []
    fn = Flaky(*[TransientError("503")] * 10)
    with pytest.raises(TransientError):
        policy(sleeps, attempts=4).call(fn)
    assert fn.calls == 4 and len(sleeps) == 3
    assert all(0.5 <= s <= 60 for s in sleeps)


def test_backoff_grows_exponentially_up_to_the_cap():
    top = [backoff_wait(n, base=1, cap=30, rng=lambda lo, hi: hi) for n in range(1, 8)]
    assert top == [1, 2, 4, 8, 16, 30, 30]
    assert backoff_wait(3, base=1, cap=30, rng=lambda lo, hi: lo) == 0.5  # never zero: some spacing


def test_rate_limited_without_a_hint_backs_off_like_a_transient_error():
    sleeps = []
    assert policy(sleeps, attempts=3).call(Flaky(RateLimited("slow", retry_after=None))) == "ok"
    assert len(sleeps) == 1 and 0.5 <= sleeps[0] <= 1


def test_the_local_bucket_makes_callers_wait_for_their_turn():
    now = [0.0]
    bucket = LocalBucket(capacity=2, rate=1.0, clock=lambda: now[0])
    assert [bucket.reserve() for _ in range(4)] == [0, 0, 1.0, 2.0]  # reserved in order: waits queue up
    now[0] = 10.0
    assert bucket.reserve() == 0


def test_the_limiter_waits_instead_of_raising():
    slept = []
    limiter = RateLimiter(f"test:{uuid.uuid4()}", RateLimit(requests=3, per_seconds=3), redis_url="",
                          sleep=slept.append)
    waits = [limiter.acquire() for _ in range(5)]
    assert waits[:3] == [0, 0, 0] and all(w > 0 for w in waits[3:])
    assert slept == waits[3:]


def test_an_unreachable_redis_falls_back_to_the_local_bucket(caplog):
    limiter = RateLimiter(f"test:{uuid.uuid4()}", RateLimit(requests=5, per_seconds=1),
                          redis_url="redis://127.0.0.1:9/0", sleep=lambda s: None)
    assert limiter.acquire() == 0
    assert "Redis unavailable" in caplog.text


def _redis_url():
    from django.conf import settings

    url = settings.REDIS_URL or os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
    except Exception:  # noqa: BLE001
        pytest.skip(f"Redis not reachable at {url}")
    return url


WORKER = """
import sys, time
sys.path.insert(0, {root!r})
import django, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "activation_manager.test_settings")
django.setup()
from platforms.adapters.base import RateLimit
from platforms.ratelimit import RateLimiter
limiter = RateLimiter({key!r}, RateLimit(requests=20, per_seconds=1), redis_url={url!r})
print("ready", flush=True)
sys.stdin.readline()
start = time.monotonic()
waited = sum(limiter.acquire() for _ in range(20))
print(f"{{waited:.3f}} {{time.monotonic() - start:.3f}}", flush=True)
"""


def test_two_processes_share_one_budget_through_redis():
    url = _redis_url()
    key = f"am:ratelimit:test:{uuid.uuid4()}"
    code = WORKER.format(root=str(ROOT), key=key, url=url)
    procs = [subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              cwd=ROOT) for _ in range(2)]
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready"
        for p in procs:  # start both at once
            p.stdin.write("go\n")
            p.stdin.flush()
        results = [tuple(map(float, p.stdout.readline().split())) for p in procs]
    finally:
        for p in procs:
            p.kill()
            p.wait()
    # 40 requests against one bucket of 20 + 20/s: together they wait about 1 s for the second 20.
    # Separate buckets would let each process through at once.
    assert max(elapsed for _, elapsed in results) >= 0.8, results
    assert sum(waited for waited, _ in results) >= 0.8, results


def test_the_shared_bucket_lives_in_redis(settings):
    url = _redis_url()
    import redis

    key = f"am:ratelimit:test:{uuid.uuid4()}"
    limiter = RateLimiter(key, RateLimit(requests=2, per_seconds=60), redis_url=url, sleep=lambda s: None)
    assert [limiter.reserve() for _ in range(3)][:2] == [0, 0]
    other = RateLimiter(key, RateLimit(requests=2, per_seconds=60), redis_url=url, sleep=lambda s: None)
    assert other.reserve() > 30  # the third and fourth token are already taken by the first limiter
    assert redis.Redis.from_url(url).exists(key)
