"""The engine outside a test transaction, where the next batch is read in a helper thread."""

from __future__ import annotations

import threading

import pytest

from syncs import engine, runs
from syncs.models import SyncRun
from tests.sync.conftest import ScriptedAdapter, make_audience, make_sync, new_generation, new_run

pytestmark = pytest.mark.django_db(transaction=True)


def reader_threads():
    return [t for t in threading.enumerate() if t.name.startswith("sync-run-")]


def test_reading_ahead_sends_every_batch_once_in_order(user, tiktok_connection, sleeps, free_limiter):
    audience = make_audience(user, 95)
    sync = make_sync(user, audience, tiktok_connection, mode="mirror")
    adapter = ScriptedAdapter()
    run = engine.execute_run(run_id=new_run(sync).pk, adapter=adapter, sleep=sleeps, limiter=free_limiter)
    assert run.status == SyncRun.Status.SUCCEEDED and run.sent == 95 and len(adapter.received["add"]) == 95
    assert [s.batch_seq for op, _, s in adapter.calls if op == "add"] == list(range(1, 11))
    new_generation(audience, [(40, 55), (500, 25)])
    run = engine.execute_run(run_id=new_run(sync).pk, adapter=adapter, sleep=sleeps, limiter=free_limiter)
    assert (run.status, run.removed, run.sent) == (SyncRun.Status.SUCCEEDED, 40, 25)
    assert len(adapter.members("aud-1")) == 80
    assert not reader_threads()


def test_a_cancel_winds_the_reader_thread_down(user, tiktok_connection, sleeps, free_limiter):
    sync = make_sync(user, make_audience(user, 60), tiktok_connection)
    run = new_run(sync)
    adapter = ScriptedAdapter()
    original = adapter.add_members

    def cancelling(audience_id, batch, *, session=None):
        if session.batch_seq == 2:
            runs.cancel_run(run=SyncRun.objects.get(pk=run.pk))
        return original(audience_id, batch, session=session)

    adapter.add_members = cancelling
    run = engine.execute_run(run_id=run.pk, adapter=adapter, sleep=sleeps, limiter=free_limiter)
    assert run.status == SyncRun.Status.CANCELLED and run.sent == 20
    assert not reader_threads()
