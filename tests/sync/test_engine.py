"""The engine through a scripted fake adapter: diffs, modes, checkpoints, typed errors, cancel, watchdog."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import F
from django.utils import timezone

from credentials.models import Connection, ConnectionEvent
from platforms.errors import AuthError, PermanentError, RateLimited, TransientError
from syncs import engine, runs, selectors
from syncs.models import SyncBatch, SyncMember, SyncRun
from tests.conftest import swap_adapter
from tests.sync.conftest import ReplaceOnlyAdapter, ScriptedAdapter, make_audience, make_sync, new_generation, new_run

pytestmark = pytest.mark.django_db


def emails(start, count):
    from platforms.matchkeys import platform_values, prepare_records
    from tests.sync.conftest import synthetic_rows

    return {platform_values("tiktok", r.stored)["email"] for r in prepare_records(synthetic_rows(start, count),
                                                                                   default_region="US")}


def run_once(sync, adapter, sleeps, limiter):
    run = new_run(sync)
    return engine.execute_run(run_id=run.pk, adapter=adapter, sleep=sleeps, limiter=limiter)


@pytest.fixture
def setup(user, tiktok_connection):
    def build(count=35, mode="add", adapter_class=ScriptedAdapter):
        audience = make_audience(user, count)
        sync = make_sync(user, audience, tiktok_connection, mode=mode)
        return audience, sync, adapter_class()
    return build


def test_first_run_creates_the_platform_audience_and_sends_everyone(setup, sleeps, free_limiter):
    audience, sync, adapter = setup(35)
    run = run_once(sync, adapter, sleeps, free_limiter)
    sync.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCEEDED
    assert sync.platform_audience_id == "aud-1"
    assert adapter.members("aud-1") == emails(0, 35)
    assert (run.total_batches, run.done_batches, run.to_add, run.sent, run.removed) == (4, 4, 35, 35, 0)
    assert [size for op, size, _ in adapter.calls if op == "add"] == [10, 10, 10, 5]
    assert SyncMember.objects.filter(sync=sync).count() == 35
    # status figures from the platform
    assert (run.audience_size, run.matched) == (35, 24)
    assert run.match_rate == pytest.approx(24 / 35)
    assert selectors.progress_of(run).percent == 100


def test_sessions_are_stable_per_run_and_kind_and_numbered_from_one(setup, sleeps, free_limiter):
    _, sync, adapter = setup(25)
    run = run_once(sync, adapter, sleeps, free_limiter)
    sessions = [s for op, _, s in adapter.calls if op == "add"]
    assert {s.session_id for s in sessions} == {run.pk * 4 + 1}
    assert [s.batch_seq for s in sessions] == [1, 2, 3]
    assert [s.last_batch for s in sessions] == [False, False, True]
    assert {s.estimated_total for s in sessions} == {25}


def test_second_run_sends_only_new_members(setup, sleeps, free_limiter):
    audience, sync, adapter = setup(30)
    run_once(sync, adapter, sleeps, free_limiter)
    new_generation(audience, [(0, 30), (100, 7)])
    adapter.received["add"].clear()
    run = run_once(sync, adapter, sleeps, free_limiter)
    assert run.status == SyncRun.Status.SUCCEEDED
    assert set(adapter.received["add"]) == emails(100, 7)
    assert (run.to_add, run.sent, run.to_remove, run.total_batches) == (7, 7, 0, 1)
    assert len([c for c in adapter.calls if c[0] == "create"]) == 1  # audience created once


def test_a_run_with_nothing_new_sends_nothing_and_is_done(setup, sleeps, free_limiter):
    _, sync, adapter = setup(12)
    run_once(sync, adapter, sleeps, free_limiter)
    run = run_once(sync, adapter, sleeps, free_limiter)
    assert (run.status, run.total_batches, run.sent) == (SyncRun.Status.SUCCEEDED, 0, 0)
    assert selectors.progress_of(run).percent == 100


def test_mirror_removes_members_no_longer_in_the_audience_before_adding(setup, sleeps, free_limiter):
    audience, sync, adapter = setup(30, mode="mirror")
    run_once(sync, adapter, sleeps, free_limiter)
    new_generation(audience, [(10, 20), (200, 15)])  # 0..9 gone, 200..214 new
    run = run_once(sync, adapter, sleeps, free_limiter)
    assert run.status == SyncRun.Status.SUCCEEDED
    assert (run.to_remove, run.removed, run.to_add, run.sent) == (10, 10, 15, 15)
    assert adapter.members("aud-1") == emails(10, 20) | emails(200, 15)
    ops = [op for op, _, _ in adapter.calls if op in ("add", "remove")]
    assert ops[-3:] == ["remove", "add", "add"]  # removes first
    # The sync holds exactly the current version of every current member.
    assert {(bytes(p), g) for p, g in SyncMember.objects.filter(sync=sync).values_list("person", "generation")} == {
        (bytes(p), g) for p, g in audience.members.values_list("person", "generation")}
    assert {s.session_id for op, _, s in adapter.calls[-3:] if op == "remove"} == {run.pk * 4 + 2}


def test_add_mode_never_removes(setup, sleeps, free_limiter):
    audience, sync, adapter = setup(20, mode="add")
    run_once(sync, adapter, sleeps, free_limiter)
    new_generation(audience, [(5, 5)])
    run = run_once(sync, adapter, sleeps, free_limiter)
    assert (run.to_remove, run.removed, run.sent) == (0, 0, 0)
    assert not [c for c in adapter.calls if c[0] == "remove"]
    assert adapter.members("aud-1") == emails(0, 20)


def test_mirror_without_remove_uses_a_replace_session(setup, sleeps, free_limiter):
    audience, sync, adapter = setup(25, mode="mirror", adapter_class=ReplaceOnlyAdapter)
    first = run_once(sync, adapter, sleeps, free_limiter)
    assert [op for op, _, _ in adapter.calls if op != "create"] == ["add", "add", "add"]  # nothing to remove yet
    assert first.status == SyncRun.Status.SUCCEEDED
    new_generation(audience, [(5, 20), (300, 3)])
    run = run_once(sync, adapter, sleeps, free_limiter)
    assert run.status == SyncRun.Status.SUCCEEDED
    replaces = [(size, s) for op, size, s in adapter.calls if op == "replace"]
    assert [size for size, _ in replaces] == [10, 10, 3]
    assert [s.batch_seq for _, s in replaces] == [1, 2, 3] and replaces[-1][1].last_batch
    assert adapter.members("aud-1") == emails(5, 20) | emails(300, 3)
    # In people: 3 join, 5 leave, 20 stay; the replace session itself carries all 23.
    assert (run.to_add, run.to_remove, run.unchanged, run.sent) == (3, 5, 20, 23)
    assert SyncMember.objects.filter(sync=sync).count() == 23
    assert set(run.batches.values_list("kind", flat=True)) == {SyncBatch.Kind.REPLACE}


class CrashAfter(Exception):
    pass


def test_a_restarted_run_skips_sent_batches_and_resends_at_most_the_one_in_flight(setup, sleeps, free_limiter):
    _, sync, adapter = setup(45)
    # The worker "dies" during the third add: batch 3 reached the platform, its checkpoint did not.
    original = adapter.add_members

    def dying(audience_id, batch, *, session=None):
        result = original(audience_id, batch, session=session)
        if session.batch_seq == 3:
            raise CrashAfter()
        return result

    adapter.add_members = dying
    run = new_run(sync)
    engine.execute_run(run_id=run.pk, adapter=adapter, sleep=sleeps, limiter=free_limiter)
    run.refresh_from_db()
    assert run.status == SyncRun.Status.FAILED  # unexpected error: failed, resumable
    assert list(run.batches.values_list("status", flat=True)) == ["sent", "sent", "pending", "pending", "pending"]
    assert runs.can_resume(run)
    adapter.add_members = original
    runs.resume_run(run=run)
    run = engine.execute_run(run_id=run.pk, adapter=adapter, sleep=sleeps, limiter=free_limiter)
    assert run.status == SyncRun.Status.SUCCEEDED
    received = adapter.received["add"]
    assert set(received) == emails(0, 45)
    assert len(received) == 45 + 10  # exactly the in-flight batch twice
    assert (run.sent, run.done_batches) == (45, 5)


def test_a_worker_that_died_is_taken_over_after_the_stale_period(setup, sleeps, free_limiter, settings):
    _, sync, adapter = setup(15)
    run = new_run(sync)
    SyncRun.objects.filter(pk=run.pk).update(status="running", heartbeat_at=timezone.now())
    # A duplicate delivery while the first worker is alive: not ours to run.
    assert engine.execute_run(run_id=run.pk, adapter=adapter, sleep=sleeps, limiter=free_limiter).status == "running"
    assert adapter.calls == []
    SyncRun.objects.filter(pk=run.pk).update(
        heartbeat_at=timezone.now() - timedelta(seconds=settings.SYNC_STALE_AFTER + 5))
    run = engine.execute_run(run_id=run.pk, adapter=adapter, sleep=sleeps, limiter=free_limiter)
    assert run.status == SyncRun.Status.SUCCEEDED and run.sent == 15


def test_a_permanent_error_fails_that_batch_and_the_run_ends_partial(setup, sleeps, free_limiter):
    _, sync, adapter = setup(30)
    adapter.script["add"] = [None, PermanentError("Meta: (#100) Invalid parameter (batch 2).", code=100)]
    run = run_once(sync, adapter, sleeps, free_limiter)
    assert run.status == SyncRun.Status.PARTIAL
    failed = run.batches.get(status=SyncBatch.Status.FAILED)
    assert failed.seq == 2 and "Invalid parameter" in failed.error_message
    assert (run.sent, run.done_batches, run.total_batches) == (20, 3, 3)
    assert "1 batch failed" in run.error_message
    assert SyncMember.objects.filter(sync=sync).count() == 20
    progress = selectors.progress_of(run)
    assert progress.failed_batches == [failed]


def test_rate_limits_wait_what_the_platform_asked_and_transient_errors_back_off(setup, sleeps, free_limiter):
    _, sync, adapter = setup(20)
    adapter.script["add"] = [RateLimited("slow down", retry_after=30), RateLimited("slow down", retry_after=12),
                             TransientError("HTTP 503"), None, TransientError("timeout")]
    run = run_once(sync, adapter, sleeps, free_limiter)
    assert run.status == SyncRun.Status.SUCCEEDED and run.sent == 20
    assert sleeps[:2] == [30, 12]
    assert all(0 < s <= 60 for s in sleeps[2:]) and len(sleeps) == 4
    assert list(run.batches.values_list("attempts", flat=True)) == [1, 1]  # attempts count sends, not retries
    assert len(adapter.received["add"]) == 20


def test_retries_are_bounded_then_the_run_fails_resumable(setup, sleeps, free_limiter, settings):
    settings.PLATFORM_RETRY_ATTEMPTS = 3
    _, sync, adapter = setup(20)
    adapter.script["add"] = [None] + [TransientError("Meta answered HTTP 500.")] * 3
    run = run_once(sync, adapter, sleeps, free_limiter)
    assert run.status == SyncRun.Status.FAILED
    assert "kept failing after 3 attempts" in run.error_message and "Resume" in run.error_message
    assert len(sleeps) == 2
    assert runs.can_resume(run)
    runs.resume_run(run=run)
    run = engine.execute_run(run_id=run.pk, adapter=adapter, sleep=sleeps, limiter=free_limiter)
    assert run.status == SyncRun.Status.SUCCEEDED and run.sent == 20
    assert len(adapter.received["add"]) == 20


def test_auth_error_stops_the_run_and_puts_the_connection_in_error(setup, sleeps, free_limiter, tiktok_connection):
    _, sync, adapter = setup(30)
    adapter.script["add"] = [None, AuthError("TikTok: Access token is invalid or expired (40105).", code=40105)]
    run = run_once(sync, adapter, sleeps, free_limiter)
    assert run.status == SyncRun.Status.FAILED
    assert "Access token is invalid or expired" in run.error_message and "Reconnect" in run.error_message
    assert list(run.batches.values_list("status", flat=True)) == ["sent", "pending", "pending"]
    connection = Connection.objects.get(pk=tiktok_connection.pk)
    assert connection.status == Connection.Status.ERROR
    assert "invalid or expired" in connection.last_error
    assert ConnectionEvent.objects.filter(connection=connection, kind="auth_failed").exists()
    assert sleeps == []  # never retried


def test_a_run_on_a_connection_in_error_fails_with_what_to_do(setup, sleeps, free_limiter, tiktok_connection):
    _, sync, adapter = setup(5)
    Connection.objects.filter(pk=tiktok_connection.pk).update(status="error")
    run = run_once(sync, adapter, sleeps, free_limiter)
    assert run.status == SyncRun.Status.FAILED and "reconnect it" in run.error_message
    assert adapter.calls == []


def test_cancel_is_honoured_between_batches(setup, sleeps, free_limiter):
    _, sync, adapter = setup(40)
    run = new_run(sync)
    original = adapter.add_members

    def cancelling(audience_id, batch, *, session=None):
        if session.batch_seq == 2:
            runs.cancel_run(run=SyncRun.objects.get(pk=run.pk))
        return original(audience_id, batch, session=session)

    adapter.add_members = cancelling
    run = engine.execute_run(run_id=run.pk, adapter=adapter, sleep=sleeps, limiter=free_limiter)
    assert run.status == SyncRun.Status.CANCELLED
    assert run.sent == 20 and len(adapter.received["add"]) == 20


def test_cancelling_a_queued_run_stops_it_before_it_starts(setup, sleeps, free_limiter):
    _, sync, adapter = setup(5)
    run = runs.cancel_run(run=new_run(sync))
    assert run.status == SyncRun.Status.CANCELLED
    engine.execute_run(run_id=run.pk, adapter=adapter, sleep=sleeps, limiter=free_limiter)
    assert adapter.calls == []


def test_the_watchdog_hands_a_silent_run_to_another_worker_which_continues_from_its_checkpoint(
        setup, sleeps, free_limiter, settings):
    _, sync, adapter = setup(25)
    run = new_run(sync)
    original = adapter.add_members

    def dies_after_the_first_batch(audience_id, batch, *, session=None):
        if session.batch_seq == 2:
            raise KeyboardInterrupt  # the worker is gone mid-batch: nothing after this runs
        return original(audience_id, batch, session=session)

    adapter.add_members = dies_after_the_first_batch
    with pytest.raises(KeyboardInterrupt):
        engine.execute_run(run_id=run.pk, adapter=adapter, sleep=sleeps, limiter=free_limiter)
    adapter.add_members = original
    run.refresh_from_db()
    assert (run.status, run.done_batches) == ("running", 1)
    assert runs.watchdog().requeued == []  # its heartbeat is still fresh
    later = timezone.now() + timedelta(seconds=settings.SYNC_STALE_AFTER + 1)
    fresh = new_run(make_sync(sync.owner, make_audience(sync.owner, 1, name="Other"), sync.connection))
    SyncRun.objects.filter(pk=fresh.pk).update(status="running", heartbeat_at=later)
    outcome = runs.watchdog(now=later)
    assert (outcome.requeued, outcome.failed) == ([run.pk], [])
    run.refresh_from_db()
    assert (run.status, run.takeovers, run.error_message) == ("queued", 1, "")
    assert SyncRun.objects.get(pk=fresh.pk).status == "running"  # a live worker's run is left alone

    run = engine.execute_run(run_id=run.pk, adapter=adapter, sleep=sleeps, limiter=free_limiter)
    assert run.status == SyncRun.Status.SUCCEEDED and run.sent == 25
    assert len(adapter.received["add"]) == 25 + 0  # the first batch was confirmed: not sent again


def test_a_run_whose_workers_keep_dying_fails_after_the_last_takeover_and_resumes_by_hand(
        setup, sleeps, free_limiter, settings):
    _, sync, adapter = setup(5)
    run = new_run(sync)
    now = timezone.now()
    for takeover in range(1, settings.JOB_MAX_TAKEOVERS + 1):
        SyncRun.objects.filter(pk=run.pk).update(status="running", heartbeat_at=now)
        now += timedelta(seconds=settings.SYNC_STALE_AFTER + 1)
        assert runs.watchdog(now=now).requeued == [run.pk]
        assert SyncRun.objects.get(pk=run.pk).takeovers == takeover
    SyncRun.objects.filter(pk=run.pk).update(status="running", heartbeat_at=now)
    now += timedelta(seconds=settings.SYNC_STALE_AFTER + 1)
    assert runs.watchdog(now=now).failed == [run.pk]
    run.refresh_from_db()
    assert run.status == SyncRun.Status.FAILED
    assert f"stopped responding {settings.JOB_MAX_TAKEOVERS} times" in run.error_message
    assert "resume" in run.error_message
    # A redelivered task cannot take it over either: it is failed, not silent.
    assert engine.execute_run(run_id=run.pk, adapter=adapter, sleep=sleeps, limiter=free_limiter).status == "failed"
    runs.resume_run(run=run)
    assert SyncRun.objects.get(pk=run.pk).takeovers == 0  # the marketer's resume: automatic takeovers again
    run = engine.execute_run(run_id=run.pk, adapter=adapter, sleep=sleeps, limiter=free_limiter)
    assert run.status == SyncRun.Status.SUCCEEDED and run.sent == 5


def test_a_redelivered_task_takes_over_a_silent_run_but_not_one_taken_over_too_often(
        setup, sleeps, free_limiter, settings):
    _, sync, adapter = setup(5)
    run = new_run(sync)
    silent = timezone.now() - timedelta(seconds=settings.SYNC_STALE_AFTER + 1)
    SyncRun.objects.filter(pk=run.pk).update(status="running", heartbeat_at=silent,
                                             takeovers=settings.JOB_MAX_TAKEOVERS)
    assert engine.execute_run(run_id=run.pk, adapter=adapter, sleep=sleeps, limiter=free_limiter).status == "running"
    assert adapter.calls == []  # left for the watchdog to fail
    SyncRun.objects.filter(pk=run.pk).update(takeovers=0)
    run = engine.execute_run(run_id=run.pk, adapter=adapter, sleep=sleeps, limiter=free_limiter)
    assert (run.status, run.takeovers) == (SyncRun.Status.SUCCEEDED, 1)


def test_a_worker_whose_run_was_taken_over_writes_nothing_more(setup, sleeps, free_limiter):
    _, sync, adapter = setup(30)
    run = new_run(sync)
    original = adapter.add_members

    def taken_over(audience_id, batch, *, session=None):
        if session.batch_seq == 2:  # meanwhile: the watchdog handed the run to another worker, which claimed it
            SyncRun.objects.filter(pk=run.pk).update(status="running", heartbeat_at=timezone.now(),
                                                     lease=F("lease") + 1)
        return original(audience_id, batch, session=session)

    adapter.add_members = taken_over
    engine.execute_run(run_id=run.pk, adapter=adapter, sleep=sleeps, limiter=free_limiter)
    run.refresh_from_db()
    assert run.status == "running"  # left to its new owner
    assert list(run.batches.values_list("status", flat=True)) == ["sent", "pending", "pending"]


def test_a_reimport_during_the_run_stops_it_cleanly(setup, sleeps, free_limiter):
    audience, sync, adapter = setup(30, mode="mirror")
    run = new_run(sync)
    original = adapter.add_members

    def reimport(audience_id, batch, *, session=None):
        if session.batch_seq == 1:
            new_generation(audience, [(0, 3)])
        return original(audience_id, batch, session=session)

    adapter.add_members = reimport
    run = engine.execute_run(run_id=run.pk, adapter=adapter, sleep=sleeps, limiter=free_limiter)
    assert run.status == SyncRun.Status.FAILED and "re-imported" in run.error_message
    assert not runs.can_resume(run)
    assert not [c for c in adapter.calls if c[0] == "remove"]


def test_start_run_returns_the_active_run_instead_of_a_second_one(setup, queued):
    _, sync, _ = setup(3)
    first = runs.start_run(sync=sync)
    assert runs.start_run(sync=sync) == first
    assert SyncRun.objects.filter(sync=sync).count() == 1


def test_a_lost_database_connection_ends_the_run_failed_and_resumable(setup, sleeps, free_limiter):
    from django.db import OperationalError

    _, sync, adapter = setup(30)
    adapter.script["add"] = [None, OperationalError("server closed the connection unexpectedly")]
    run = run_once(sync, adapter, sleeps, free_limiter)
    assert run.status == SyncRun.Status.FAILED and "database connection was lost" in run.error_message
    assert runs.can_resume(run)
    runs.resume_run(run=run)
    run = engine.execute_run(run_id=run.pk, adapter=adapter, sleep=sleeps, limiter=free_limiter)
    assert run.status == SyncRun.Status.SUCCEEDED and run.sent == 30 and len(adapter.received["add"]) == 30


def test_platform_messages_echoing_a_secret_are_masked_on_the_run_and_batch(setup, sleeps, free_limiter, caplog):
    _, sync, adapter = setup(20)
    secret = "tok-secret-123456"  # the connection's access token (conftest)
    adapter.script["add"] = [PermanentError(f"bad row; token {secret} refused"),
                             AuthError(f"token {secret} expired")]
    run = run_once(sync, adapter, sleeps, free_limiter)
    batch = run.batches.get(seq=1)
    assert secret not in batch.error_message and "••••" in batch.error_message
    assert secret not in run.error_message and secret not in caplog.text
    assert secret not in Connection.objects.get(pk=sync.connection_id).last_error


def test_an_unexpected_error_is_logged_without_its_text(setup, sleeps, free_limiter, caplog):
    _, sync, adapter = setup(5)
    adapter.script["add"] = [RuntimeError("GET https://graph/?access_token=tok-secret-123456 failed")]
    run = run_once(sync, adapter, sleeps, free_limiter)
    assert run.status == SyncRun.Status.FAILED and "unexpected error" in run.error_message
    assert "RuntimeError" in caplog.text and "tok-secret-123456" not in caplog.text


def test_the_next_run_resends_the_people_of_a_failed_batch(setup, sleeps, free_limiter):
    _, sync, adapter = setup(30)
    adapter.script["add"] = [None, PermanentError("Meta: (#100) Invalid parameter")]
    assert run_once(sync, adapter, sleeps, free_limiter).status == SyncRun.Status.PARTIAL
    again = run_once(sync, adapter, sleeps, free_limiter)
    assert (again.status, again.to_add, again.sent) == (SyncRun.Status.SUCCEEDED, 10, 10)
    assert adapter.members("aud-1") == emails(0, 30)


def test_the_watchdog_fails_runs_no_worker_picked_up_but_not_freshly_resumed_ones(setup, settings):
    _, sync, _ = setup(5)
    long_ago = timezone.now() - timedelta(seconds=settings.SYNC_QUEUED_STALE_AFTER + 60)
    waiting = new_run(sync)
    SyncRun.objects.filter(pk=waiting.pk).update(created_at=long_ago)
    assert runs.watchdog().failed == [waiting.pk]
    waiting.refresh_from_db()
    assert waiting.status == "failed" and "No worker picked this run up" in waiting.error_message
    runs.resume_run(run=waiting)  # queued again now: the watchdog leaves it alone
    assert runs.watchdog().failed == []
    assert SyncRun.objects.get(pk=waiting.pk).status == "queued"


def test_a_platform_without_an_adapter_fails_the_run_with_a_clear_message(setup, sleeps, free_limiter, settings):
    _, sync, _ = setup(3)
    swap_adapter(settings, "tiktok", "platforms.adapters.nowhere.Missing")
    run = engine.execute_run(run_id=new_run(sync).pk, sleep=sleeps, limiter=free_limiter)
    assert run.status == SyncRun.Status.FAILED and "not available" in run.error_message
