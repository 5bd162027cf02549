"""The sync engine through the real Data Manager adapter against the loopback gRPC fake and the fake OAuth endpoint.

Batches are made small (Capabilities.batch_size patched) so a few hundred members make several ingest requests.
"""

from __future__ import annotations

import dataclasses

import pytest

from credentials.models import Connection
from platforms.adapters.google_datamanager import GoogleDataManagerAdapter
from platforms.matchkeys import platform_values, prepare_records
from platforms.models import Platform
from sandbox.base import FakeServer
from sandbox.credentials import DEMO_CREDENTIALS
from sandbox.google_datamanager import FakeDataManagerServer
from sandbox.google_oauth import FakeGoogleOAuth
from syncs import engine
from syncs.models import SyncMember, SyncRun
from tests.sync.conftest import make_audience, make_sync, new_generation, new_run, synthetic_rows

pytestmark = pytest.mark.django_db
BATCH = 50


@pytest.fixture(autouse=True)
def small_batches(monkeypatch):
    monkeypatch.setattr(GoogleDataManagerAdapter, "capabilities",
                        dataclasses.replace(GoogleDataManagerAdapter.capabilities, batch_size=BATCH))


@pytest.fixture(scope="module")
def servers():
    oauth = FakeGoogleOAuth()
    http = FakeServer([oauth]).start()
    dm = FakeDataManagerServer().start()
    yield http, dm
    dm.stop()
    http.stop()


@pytest.fixture
def google(servers, settings):
    http, dm = servers
    settings.PLATFORM_ENDPOINTS = {**settings.PLATFORM_ENDPOINTS, "google_dm": dm.address}
    settings.GRPC_PLAINTEXT_LOOPBACK = True
    settings.GOOGLE_OAUTH_TOKEN_URL = f"{http.url}/google-oauth/token"
    dm.reset_calls()
    dm.faults.clear()
    return dm


@pytest.fixture
def connection(user):
    demo = {k: v for k, v in DEMO_CREDENTIALS["google_dm"].items() if k != "label"}
    secrets = {k: demo.pop(k) for k in ("client_secret", "refresh_token", "service_account_key")}
    demo["customer_id"] = demo["customer_id"].replace("-", "")
    return Connection.objects.create(owner=user, platform=Platform.objects.get(code="google_dm"),
                                     label="Google DM", config=demo, secrets=secrets)


def emails(start, count):
    return {platform_values("google_dm", r.stored)["email"]
            for r in prepare_records(synthetic_rows(start, count), default_region="US")}


def run(sync, sleeps, limiter):
    return engine.execute_run(run_id=new_run(sync).pk, sleep=sleeps, limiter=limiter)


def test_first_run_then_mirror_through_the_data_manager(google, user, connection, sleeps, free_limiter):
    audience = make_audience(user, 120)
    sync = make_sync(user, audience, connection, mode="mirror")
    first = run(sync, sleeps, free_limiter)
    sync.refresh_from_db()
    assert first.status == SyncRun.Status.SUCCEEDED, first.error_message
    list_name = sync.platform_audience_id
    assert list_name.startswith("accountTypes/GOOGLE_ADS/accounts/1234567890/userLists/")
    assert len(google.calls_to("IngestAudienceMembers")) == 3  # 50 + 50 + 20
    assert google.list_identifiers(list_name, "email_address") == emails(0, 120)
    assert all(any(kind == "address" for kind, _ in ids) for ids in google.list_members(list_name))
    assert first.audience_size is not None and 0 < first.match_rate <= 1

    new_generation(audience, [(20, 100), (900, 5)])  # 0..19 leave, 900..904 arrive
    google.reset_calls()
    second = run(sync, sleeps, free_limiter)
    assert second.status == SyncRun.Status.SUCCEEDED, second.error_message
    assert (second.removed, second.sent) == (20, 5)
    assert google.list_identifiers(list_name, "email_address") == emails(20, 100) | emails(900, 5)
    assert SyncMember.objects.filter(sync=sync).count() == 105
    assert len(google.calls_to("RemoveAudienceMembers")) == 1


def test_a_throttled_request_waits_a_minute_and_completes(google, user, connection, sleeps, free_limiter):
    audience = make_audience(user, 60, name="Throttled")
    sync = make_sync(user, audience, connection)
    google.fail_next("quota_per_minute", method="IngestAudienceMembers")
    result = run(sync, sleeps, free_limiter)
    sync.refresh_from_db()
    assert result.status == SyncRun.Status.SUCCEEDED, result.error_message
    assert 60 in [round(s) for s in sleeps]
    assert google.list_identifiers(sync.platform_audience_id, "email_address") == emails(0, 60)


def test_a_connection_without_stated_consent_fails_the_run_with_a_clear_message(google, user, connection, sleeps,
                                                                              free_limiter):
    connection.config = {**connection.config, "consent_ad_user_data": ""}
    connection.save()
    audience = make_audience(user, 10, name="No consent")
    sync = make_sync(user, audience, connection)
    result = run(sync, sleeps, free_limiter)
    assert result.status == SyncRun.Status.PARTIAL and result.sent == 0
    (batch,) = result.batches.all()
    assert "states no consent for ad user data" in batch.error_message
    assert google.calls_to("IngestAudienceMembers") == []
