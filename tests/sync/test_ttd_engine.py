"""Mirror on The Trade Desk (no per-person removal): the engine uses a replace session through the real adapter."""

from __future__ import annotations

import dataclasses

import pytest
import responses

from credentials.models import Connection
from platforms.adapters.ttd import TradeDeskAdapter
from platforms.matchkeys import platform_values, prepare_records
from platforms.models import Platform
from sandbox.base import install_responses
from sandbox.credentials import DEMO_CREDENTIALS
from sandbox.ttd import FakeTradeDesk
from syncs import engine
from syncs.models import SyncMember
from tests.sync.conftest import make_audience, make_sync, new_generation, new_run, synthetic_rows

pytestmark = pytest.mark.django_db
HOST = "https://ttd.test/ttd"
EMAIL = "EmailHashedUnifiedId2"


@pytest.fixture
def ttd_fake(settings, monkeypatch):
    monkeypatch.setattr(TradeDeskAdapter, "capabilities",
                        dataclasses.replace(TradeDeskAdapter.capabilities, batch_size=40))
    fake = FakeTradeDesk(public_url=HOST)
    settings.PLATFORM_ENDPOINTS = {**settings.PLATFORM_ENDPOINTS, "ttd": HOST + "/v3"}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        install_responses(rsps, fake, HOST)
        yield fake


@pytest.fixture
def ttd_connection(user):
    creds = {k: v for k, v in DEMO_CREDENTIALS["ttd"].items() if k != "label"}
    return Connection.objects.create(owner=user, platform=Platform.objects.get(code="ttd"), label="TTD",
                                     config={k: v for k, v in creds.items() if k != "api_token"},
                                     secrets={"api_token": creds["api_token"]})


def ttd_emails(start, count):
    return {platform_values("ttd", r.stored)["email"]
            for r in prepare_records(synthetic_rows(start, count), default_region="US")}


def test_ttd_mirror_replaces_the_segment_when_people_leave(ttd_fake, user, ttd_connection, sleeps, free_limiter):
    audience = make_audience(user, 100)
    sync = make_sync(user, audience, ttd_connection, mode="mirror")
    first = engine.execute_run(run_id=new_run(sync).pk, sleep=sleeps, limiter=free_limiter)
    sync.refresh_from_db()
    segment = sync.platform_audience_id
    assert first.status == "succeeded", first.error_message
    assert ttd_fake.audience_values(segment, EMAIL) == ttd_emails(0, 100)
    assert {d["mode"] for d in ttd_fake.drops} == {"Add"}  # nothing to remove yet: plain adds

    new_generation(audience, [(30, 70), (400, 20)])  # 0..29 leave, 400..419 join
    drops_before = len(ttd_fake.drops)
    second = engine.execute_run(run_id=new_run(sync).pk, sleep=sleeps, limiter=free_limiter)
    assert second.status == "succeeded", second.error_message
    # In people: 20 join and 30 leave; the replace session carries all 90.
    assert (second.to_add, second.to_remove, second.sent, second.total_batches) == (20, 30, 90, 3)
    assert ttd_fake.audience_values(segment, EMAIL) == ttd_emails(30, 70) | ttd_emails(400, 20)
    modes = [d["mode"] for d in ttd_fake.drops[drops_before:]]
    assert modes[0] == "Replace" and set(modes[1:]) == {"Add"}
    assert SyncMember.objects.filter(sync=sync).count() == 90
