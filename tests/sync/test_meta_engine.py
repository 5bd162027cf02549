"""The engine through the real Meta adapter against the fake Graph API (its wire format, its errors).

Batches are made small (Capabilities.batch_size patched) so a few hundred members make several requests.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from django.test import override_settings

from credentials.models import Connection
from platforms.adapters.meta import MetaAdapter
from platforms.matchkeys import platform_values, prepare_records
from sandbox.base import FakeServer, Fault
from syncs import engine
from syncs.models import SyncBatch, SyncMember, SyncRun
from tests.sync.conftest import make_audience, make_sync, new_generation, new_run, synthetic_rows

pytestmark = pytest.mark.django_db
BATCH = 50


@pytest.fixture(autouse=True)
def small_batches(monkeypatch):
    monkeypatch.setattr(MetaAdapter, "capabilities", dataclasses.replace(MetaAdapter.capabilities, batch_size=BATCH))


def meta_emails(start, count):
    return {platform_values("meta", r.stored)["email"]
            for r in prepare_records(synthetic_rows(start, count), default_region="US")}


def run(sync, sleeps, limiter):
    return engine.execute_run(run_id=new_run(sync).pk, sleep=sleeps, limiter=limiter)


@pytest.fixture
def meta_sync(user, meta_connection):
    def build(count, mode="add"):
        audience = make_audience(user, count)
        return audience, make_sync(user, audience, meta_connection, mode=mode)
    return build


def test_first_run_then_incremental_then_mirror(meta_graph, meta_sync, sleeps, free_limiter):
    audience, sync = meta_sync(120, mode="mirror")
    first = run(sync, sleeps, free_limiter)
    sync.refresh_from_db()
    assert first.status == SyncRun.Status.SUCCEEDED, first.error_message
    audience_id = sync.platform_audience_id
    assert meta_graph.audiences[audience_id]["name"] == audience.name
    assert meta_graph.audience_values(audience_id, "EMAIL") == meta_emails(0, 120)
    assert meta_graph.add_requests == 3 and meta_graph.received_rows["add"] == 120
    # Meta's multi-key payload carried hashed phone, names, zip and country too
    member = next(iter(meta_graph.audience_members(audience_id)))
    assert {k for k, _ in member} == {"EMAIL", "PHONE", "FN", "LN", "FI", "ZIP", "COUNTRY"}
    assert first.audience_size is not None and 0 < first.match_rate <= 1

    new_generation(audience, [(0, 120), (500, 10)])
    second = run(sync, sleeps, free_limiter)
    assert (second.status, second.sent, meta_graph.received_rows["add"]) == ("succeeded", 10, 130)

    new_generation(audience, [(20, 110), (900, 5)])  # 0..19 leave; 500..509 too
    third = run(sync, sleeps, free_limiter)
    assert third.status == SyncRun.Status.SUCCEEDED, third.error_message
    assert (third.removed, third.sent) == (30, 15)  # 120..129 and 900..904 are new
    assert meta_graph.audience_values(audience_id, "EMAIL") == meta_emails(20, 110) | meta_emails(900, 5)
    assert SyncMember.objects.filter(sync=sync).count() == 115
    # sessions: one per run and kind, numbered from 1, the last flagged
    removes = [r for r in meta_graph.requests if r.method == "DELETE" and r.path.endswith("/users")]
    assert len(removes) == 1
    assert json.loads(removes[0].form()["session"]) == {
        "session_id": third.pk * 4 + 2, "batch_seq": 1, "last_batch_flag": True, "estimated_num_total": 30}


def test_add_mode_never_removes_on_meta(meta_graph, meta_sync, sleeps, free_limiter):
    audience, sync = meta_sync(60, mode="add")
    run(sync, sleeps, free_limiter)
    new_generation(audience, [(0, 10)])
    later = run(sync, sleeps, free_limiter)
    assert later.status == "succeeded" and later.removed == 0 and meta_graph.remove_requests == 0
    sync.refresh_from_db()
    assert len(meta_graph.audience_members(sync.platform_audience_id)) == 60


def test_a_permanent_400_fails_one_batch_and_the_rest_is_sent(meta_graph, meta_sync, sleeps, free_limiter):
    _, sync = meta_sync(200)
    calls = {"n": 0}
    original = meta_graph.handle

    def second_batch_refused(request):
        if request.path.endswith("/users") and request.method == "POST":
            calls["n"] += 1
            if calls["n"] == 2:
                return meta_graph.error_response(100, "(#100) Invalid parameter: payload.data row 7 is malformed",
                                                 error_type="OAuthException")
        return original(request)

    meta_graph.handle = second_batch_refused
    result = run(sync, sleeps, free_limiter)
    assert result.status == SyncRun.Status.PARTIAL
    failed = result.batches.get(status=SyncBatch.Status.FAILED)
    assert failed.seq == 2 and "Invalid parameter" in failed.error_message
    assert result.sent == 150 and result.done_batches == 4
    sync.refresh_from_db()
    assert len(meta_graph.audience_members(sync.platform_audience_id)) == 150
    assert sleeps == []  # a permanent error is not retried


def test_a_storm_of_throttling_5xx_timeouts_and_drops_ends_with_exact_counts(meta_fake, meta_sync, sleeps,
                                                                             free_limiter, settings):
    settings.PLATFORM_RETRY_ATTEMPTS = 10
    _, sync = meta_sync(250)
    usage = '{"act_1234567890": [{"type": "custom_audience", "estimated_time_to_regain_access": 2}]}'
    users = r"/users$"
    for fault in [
        Fault(path_regex=users, response=meta_fake.error_response(
            80003, "(#80003) There have been too many calls to this ad-account.", error_type="OAuthException",
            headers={"x-business-use-case-usage": usage})),
        Fault(path_regex=users, response=meta_fake.error_response(
            17, "(#17) User request limit reached", headers={"x-ad-account-usage": '{"reset_time_duration": 45}'})),
        Fault(path_regex=users, times=2, response=meta_fake.error_response(
            2, "An unexpected error has occurred. Please retry your request later.", status=500,
            error_type="OAuthException", is_transient=True)),
        Fault(path_regex=users, drop=True),
        Fault(path_regex=users, delay=1.2, drop=True),  # a timeout: no answer within PLATFORM_HTTP_TIMEOUT
        Fault(path_regex=users, response=meta_fake.error_response(1, "Please reduce the amount of data", status=503)),
    ]:
        meta_fake.inject(fault)
    meta_fake.record_requests = False
    with FakeServer([meta_fake]) as server, override_settings(
        PLATFORM_ENDPOINTS={**settings.PLATFORM_ENDPOINTS, "meta": f"{server.url}/meta"}, PLATFORM_HTTP_TIMEOUT=0.6,
    ):
        result = run(sync, sleeps, free_limiter)
    assert result.status == SyncRun.Status.SUCCEEDED, result.error_message
    assert (result.sent, result.done_batches, result.total_batches) == (250, 5, 5)
    sync.refresh_from_db()
    assert meta_fake.audience_values(sync.platform_audience_id, "EMAIL") == meta_emails(0, 250)
    assert meta_fake.received_rows["add"] == 250  # every refused / dropped request was resent, none stored twice
    # Retry-After from Meta's usage headers, honoured (120 s waited in slices of 60 with a heartbeat between)
    assert sleeps[:3] == [60.0, 60.0, 45.0]
    assert len(sleeps) == 8 and all(0 < s <= 60 for s in sleeps[3:])  # backoff with jitter for the rest
    assert not meta_fake.faults


def test_an_expired_token_mid_run_stops_it_and_the_connection_shows_the_error(meta_graph, meta_sync, sleeps,
                                                                             free_limiter, meta_connection):
    _, sync = meta_sync(150)
    run(sync, sleeps, free_limiter)  # creates the audience; then the token expires
    audience = sync.audience
    new_generation(audience, [(0, 150), (1000, 120)])
    sent = {"n": 0}
    original = meta_graph.handle

    def expires(request):
        if request.path.endswith("/users"):
            sent["n"] += 1
            if sent["n"] >= 2:
                return meta_graph.error_response(
                    190, "Error validating access token: Session has expired on Tuesday, 01-Sep-26 10:00:00 PDT.",
                    subcode=463)
        return original(request)

    meta_graph.handle = expires
    result = run(sync, sleeps, free_limiter)
    assert result.status == SyncRun.Status.FAILED
    assert "Session has expired" in result.error_message and "Reconnect" in result.error_message
    assert result.sent == 50
    connection = Connection.objects.get(pk=meta_connection.pk)
    assert connection.status == "error" and "Session has expired" in connection.last_error
    assert "Generate a new access token" in connection.last_error
    assert sleeps == []
