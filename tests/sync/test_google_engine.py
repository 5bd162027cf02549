"""The sync engine through the real Google Ads adapter against the loopback gRPC fake and the fake OAuth endpoint.

Batches are made small (Capabilities.batch_size patched) so a few hundred members make several batches; every
batch of one run and kind goes into one offline user data job, run after the last batch.
"""

from __future__ import annotations

import dataclasses

import pytest

from credentials.models import Connection
from platforms.adapters.google_ads import GoogleAdsAdapter
from platforms.matchkeys import platform_values, prepare_records
from platforms.models import Platform
from sandbox.base import FakeServer
from sandbox.credentials import DEMO_CREDENTIALS
from sandbox.google_ads import FakeGoogleAdsServer
from sandbox.google_oauth import FakeGoogleOAuth
from syncs import engine
from syncs.models import SyncMember, SyncRun
from tests.sync.conftest import make_audience, make_sync, new_generation, new_run, synthetic_rows

pytestmark = pytest.mark.django_db
BATCH = 50


@pytest.fixture(autouse=True)
def small_batches(monkeypatch):
    monkeypatch.setattr(GoogleAdsAdapter, "capabilities",
                        dataclasses.replace(GoogleAdsAdapter.capabilities, batch_size=BATCH))


@pytest.fixture(scope="module")
def servers():
    oauth = FakeGoogleOAuth()
    http = FakeServer([oauth]).start()
    ads = FakeGoogleAdsServer().start()
    yield http, ads
    ads.stop()
    http.stop()


@pytest.fixture
def google(servers, settings):
    http, ads = servers
    settings.PLATFORM_ENDPOINTS = {**settings.PLATFORM_ENDPOINTS, "google_ads": ads.address}
    settings.GRPC_PLAINTEXT_LOOPBACK = True
    settings.GOOGLE_OAUTH_TOKEN_URL = f"{http.url}/google-oauth/token"
    ads.reset_calls()
    ads.faults.clear()
    return ads


@pytest.fixture
def google_connection(user):
    demo = {k: v for k, v in DEMO_CREDENTIALS["google_ads"].items() if k != "label"}
    secrets = {k: demo.pop(k) for k in ("client_secret", "developer_token", "refresh_token")}
    demo["customer_id"] = demo["customer_id"].replace("-", "")
    return Connection.objects.create(owner=user, platform=Platform.objects.get(code="google_ads"),
                                     label="Google main", config=demo, secrets=secrets)


def google_emails(start, count):
    return {platform_values("google_ads", r.stored)["email"]
            for r in prepare_records(synthetic_rows(start, count), default_region="US")}


def run(sync, sleeps, limiter):
    return engine.execute_run(run_id=new_run(sync).pk, sleep=sleeps, limiter=limiter)


def test_first_run_then_mirror_through_google_ads(google, user, google_connection, sleeps, free_limiter):
    audience = make_audience(user, 120)
    sync = make_sync(user, audience, google_connection, mode="mirror")

    first = run(sync, sleeps, free_limiter)
    sync.refresh_from_db()
    assert first.status == SyncRun.Status.SUCCEEDED, first.error_message
    list_name = sync.platform_audience_id
    assert list_name.startswith("customers/1234567890/userLists/")
    assert google.list_identifiers(list_name, "hashed_email") == google_emails(0, 120)
    # three batches, one job (created once, found again by its external id), run once after the last batch
    assert len(google.calls_to("AddOfflineUserDataJobOperations")) == 3
    assert len(google.calls_to("CreateOfflineUserDataJob")) == len(google.calls_to("RunOfflineUserDataJob")) == 1
    job = google.calls_to("CreateOfflineUserDataJob")[0].request.job
    assert job.external_id == first.pk * 4 + 1  # the engine's add session of this run
    members = google.list_members(list_name)
    assert len(members) == 120
    # the synthetic rows carry names, country and postal code: every member got address_info too
    assert all(any(kind == "address" for kind, _ in identifiers) for identifiers in members)
    assert first.audience_size is not None and 0 < first.match_rate <= 1

    new_generation(audience, [(20, 100), (900, 5)])  # 0..19 leave, 900..904 arrive
    google.reset_calls()
    second = run(sync, sleeps, free_limiter)
    assert second.status == SyncRun.Status.SUCCEEDED, second.error_message
    assert (second.removed, second.sent) == (20, 5)
    assert google.list_identifiers(list_name, "hashed_email") == google_emails(20, 100) | google_emails(900, 5)
    assert SyncMember.objects.filter(sync=sync).count() == 105
    removal_jobs = [c.request.job for c in google.calls_to("CreateOfflineUserDataJob")
                    if "consent" not in c.request.job.customer_match_user_list_metadata]
    assert len(removal_jobs) == 1  # removals need no consent; additions carry it


def test_a_throttled_batch_waits_googles_retry_delay_and_completes(google, user, google_connection, sleeps,
                                                                   free_limiter):
    audience = make_audience(user, 60, name="Throttled")
    sync = make_sync(user, audience, google_connection)
    google.fail_next("resource_exhausted", method="AddOfflineUserDataJobOperations", retry_delay=7)
    result = run(sync, sleeps, free_limiter)
    sync.refresh_from_db()
    assert result.status == SyncRun.Status.SUCCEEDED, result.error_message
    assert 7 in [round(s) for s in sleeps]
    assert google.list_identifiers(sync.platform_audience_id, "hashed_email") == google_emails(0, 60)
