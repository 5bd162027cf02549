"""Faults through real Celery workers: a worker SIGKILLed in the middle of a 200,000-member sync to the fake Meta
Graph API, then a new worker; the run completes with every member received once, at most one batch twice.

Runs on PostgreSQL + Redis (CI) and on SQLite + the filesystem broker (``make test``). After the kill the run
is "running" with a heartbeat that stops; the watchdog task (SYNC_STALE_AFTER shortened), sent as beat sends it,
hands it to the new worker, which skips every confirmed batch: nobody presses Resume.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import time
from collections import Counter
from contextlib import contextmanager

import pytest

from audiences.models import Audience, Member
from credentials.models import Connection
from platforms.models import Platform
from sandbox.credentials import DEMO_CREDENTIALS
from sandbox.running import running_fake_platforms
from syncs import runs
from syncs import tasks as sync_tasks
from syncs.models import Sync, SyncBatch, SyncRun
from tests.support.worker import ROOT, celery_worker, stop_worker, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
MEMBERS = 200_000
STALE = 3


def seed(audience: Audience, count: int) -> None:
    """Members with one hashed email each (inserted directly: the engine is under test, not the importer)."""
    batch = []
    for i in range(count):
        email = hashlib.sha256(f"person{i}@example.com".encode()).digest()
        batch.append(Member(audience=audience, generation=1, person=b"e" + email[:11], e=email))
        if len(batch) == 20_000:
            Member.objects.bulk_create(batch)
            batch = []
    Member.objects.bulk_create(batch)


def received_emails(fake) -> Counter:
    counts: Counter = Counter()
    for request in list(fake.requests):
        if request.method == "POST" and request.path.endswith("/users"):
            payload = json.loads(request.form()["payload"])
            column = payload["schema"].index("EMAIL")
            counts.update(row[column] for row in payload["data"])
    return counts


@pytest.fixture
def real_enqueue(monkeypatch):
    monkeypatch.undo()  # the sync tests' autouse fixture keeps runs off the broker; here a worker takes them


def test_a_worker_killed_mid_sync_loses_nothing_and_resends_at_most_one_batch(user, settings, real_enqueue):
    settings.SYNC_STALE_AFTER = STALE
    demo = DEMO_CREDENTIALS["meta"]
    connection = Connection.objects.create(
        owner=user, platform=Platform.objects.get(code="meta"), label="Meta",
        config={"app_id": demo["app_id"], "ad_account_id": demo["ad_account_id"]},
        secrets={"app_secret": demo["app_secret"], "access_token": demo["access_token"]},
    )
    audience = Audience.objects.create(owner=user, name="Big list", default_country="US", status="ready",
                                       generation=1, member_count=MEMBERS)
    seed(audience, MEMBERS)
    sync = Sync.objects.create(owner=user, audience=audience, connection=connection, mode="add")

    with running_fake_platforms() as fakes:
        meta = fakes.http["meta"]
        settings.PLATFORM_ENDPOINTS = fakes.endpoints()
        env = {**fakes.environment(), "SYNC_STALE_AFTER": str(STALE)}
        with celery_worker(**env) as first_worker:
            run = runs.start_run(sync=sync)
            wait_for(lambda: SyncRun.objects.get(pk=run.pk).done_batches >= 4, timeout=120,
                     message="the first worker to confirm a few batches")
            stop_worker(first_worker, kill=True)  # SIGKILL, mid-run
        run.refresh_from_db()
        assert run.status == SyncRun.Status.RUNNING and run.done_batches < run.total_batches == 20

        time.sleep(STALE + 0.5)
        with celery_worker(**env, log_path=None):
            sync_tasks.watchdog.delay()  # as beat sends it every minute (to the default queue)
            wait_for(lambda: SyncRun.objects.get(pk=run.pk).status not in SyncRun.ACTIVE_STATUSES, timeout=180,
                     message="the watchdog to hand the run on and the new worker to finish it")
        run.refresh_from_db()
        assert run.status == SyncRun.Status.SUCCEEDED, run.error_message
        assert run.takeovers == 1
        assert (run.sent, run.done_batches) == (MEMBERS, 20)
        assert not SyncBatch.objects.filter(run=run).exclude(status="sent").exists()

        counts = received_emails(meta)
        assert len(counts) == MEMBERS  # nobody lost
        twice = [email for email, n in counts.items() if n > 1]
        assert max(counts.values()) <= 2 and len(twice) <= 10_000  # at most the one batch in flight, resent
        sync.refresh_from_db()
        assert len(meta.audience_members(sync.platform_audience_id)) == MEMBERS


def test_postgres_dropping_the_workers_connections_mid_run_never_leaves_it_running(user, settings, real_enqueue):
    from django.db import connection as db

    if db.vendor != "postgresql":
        pytest.skip("terminates PostgreSQL backends (pg_terminate_backend); SQLite has no server connections")
    from sandbox.base import Fault

    demo = DEMO_CREDENTIALS["meta"]
    connection = Connection.objects.create(
        owner=user, platform=Platform.objects.get(code="meta"), label="Meta",
        config={"app_id": demo["app_id"], "ad_account_id": demo["ad_account_id"]},
        secrets={"app_secret": demo["app_secret"], "access_token": demo["access_token"]},
    )
    audience = Audience.objects.create(owner=user, name="List", default_country="US", status="ready", generation=1,
                                       member_count=50_000)
    seed(audience, 50_000)
    sync = Sync.objects.create(owner=user, audience=audience, connection=connection, mode="add")
    with running_fake_platforms() as fakes:
        meta = fakes.http["meta"]
        meta.inject(Fault(path_regex=r"/users$", delay=1.0, times=5))  # slow enough to cut in
        settings.PLATFORM_ENDPOINTS = fakes.endpoints()
        with celery_worker(**fakes.environment()):
            run = runs.start_run(sync=sync)
            wait_for(lambda: SyncRun.objects.get(pk=run.pk).done_batches >= 1, timeout=60,
                     message="the first batch to be confirmed")
            with db.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE datname = current_database() AND pid <> pg_backend_pid()")
            wait_for(lambda: SyncRun.objects.get(pk=run.pk).status not in SyncRun.ACTIVE_STATUSES, timeout=60,
                     message="the run to end (not stay running)")
            run.refresh_from_db()
            if run.status == SyncRun.Status.FAILED:
                assert "database connection was lost" in run.error_message
                runs.resume_run(run=run)
                wait_for(lambda: SyncRun.objects.get(pk=run.pk).status not in SyncRun.ACTIVE_STATUSES, timeout=60,
                         message="the resumed run to finish")
                run.refresh_from_db()
        assert run.status == SyncRun.Status.SUCCEEDED, run.error_message
        sync.refresh_from_db()
        assert len(meta.audience_members(sync.platform_audience_id)) == 50_000


@contextmanager
def private_redis(port: int):
    """A throwaway redis-server (no persistence) on ``port``: restarting it cannot disturb anyone else's Redis."""
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import redis

        wait_for(lambda: _pings(redis.Redis(port=port, socket_connect_timeout=0.2)), timeout=10,
                 message="redis-server to start")
        yield process
    finally:
        process.kill()
        process.wait()


def _pings(client) -> bool:
    try:
        return bool(client.ping())
    except Exception:  # noqa: BLE001
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_redis_restarting_mid_run_never_leaves_it_running(user, settings):
    if not shutil.which("redis-server"):
        pytest.skip("needs redis-server to run a private Redis it may restart")
    from celery import Celery

    from sandbox.base import Fault

    demo = DEMO_CREDENTIALS["meta"]
    connection = Connection.objects.create(
        owner=user, platform=Platform.objects.get(code="meta"), label="Meta",
        config={"app_id": demo["app_id"], "ad_account_id": demo["ad_account_id"]},
        secrets={"app_secret": demo["app_secret"], "access_token": demo["access_token"]},
    )
    audience = Audience.objects.create(owner=user, name="List", default_country="US", status="ready", generation=1,
                                       member_count=50_000)
    seed(audience, 50_000)
    sync = Sync.objects.create(owner=user, audience=audience, connection=connection, mode="add")
    port = _free_port()
    url = f"redis://127.0.0.1:{port}/0"
    with running_fake_platforms() as fakes, private_redis(port) as first_redis:
        meta = fakes.http["meta"]
        meta.inject(Fault(path_regex=r"/users$", delay=1.0, times=5))
        log_path = ROOT / "var" / f"test-worker-redis-{port}.log"
        with celery_worker(**fakes.environment(), REDIS_URL=url, CELERY_BROKER_URL=url, log_path=log_path):
            run = SyncRun.objects.create(sync=sync)
            # Not the current app: the suite's tasks after this test must keep going to the suite's broker.
            with Celery(broker=url, set_as_current=False) as private_app:
                private_app.send_task("syncs.run_sync", args=[run.pk], queue="bulk")  # as our routes send it
            wait_for(lambda: SyncRun.objects.get(pk=run.pk).done_batches >= 1, timeout=60,
                     message="the first batch to be confirmed")
            first_redis.kill()  # Redis goes away mid-run (broker and rate limiter) ...
            first_redis.wait()
            time.sleep(2.5)  # longer than a batch: the rate limiter meets the outage too
            with private_redis(port):  # ... and comes back empty
                wait_for(lambda: SyncRun.objects.get(pk=run.pk).status not in SyncRun.ACTIVE_STATUSES, timeout=60,
                         message="the run to end (not stay running)")
        run.refresh_from_db()
        assert run.status == SyncRun.Status.SUCCEEDED, run.error_message
        sync.refresh_from_db()
        assert len(meta.audience_members(sync.platform_audience_id)) == 50_000
        log = log_path.read_text(errors="replace")
        log_path.unlink(missing_ok=True)
        assert "Redis unavailable" in log  # the limiter fell back to its local bucket instead of failing the run
