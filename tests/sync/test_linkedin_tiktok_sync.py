"""An audience synced to LinkedIn and to TikTok through the sync engine, with the real adapters against the fakes.

Add mode sends everyone once; mirror mode after a re-import removes the people who left, by the identifiers the
platform got for them.
"""

from __future__ import annotations

import pytest
import responses

from audiences.storage import all_records
from credentials.models import Connection
from platforms.adapters import get_adapter_class
from platforms.matchkeys import platform_values
from platforms.models import Platform
from sandbox.base import install_responses
from sandbox.credentials import DEMO_CREDENTIALS
from sandbox.linkedin import FakeLinkedIn
from sandbox.tiktok import FakeTikTok
from syncs.engine import execute_run
from syncs.models import SyncRun
from tests.sync.conftest import make_audience, make_sync, new_generation, new_run

# platform code -> (fake class, responses host, API base under it, id types by our key)
PLATFORMS = {
    "linkedin": (FakeLinkedIn, "https://api.linkedin.test/linkedin", "/rest",
                 {"email": "SHA256_EMAIL", "maid": "GOOGLE_AID"}),
    "tiktok": (FakeTikTok, "https://business-api.tiktok.test/tiktok", "/open_api/v1.3",
               {"email": "EMAIL_SHA256", "phone": "PHONE_SHA256", "maid": "IDFA_SHA256"}),
}


@pytest.fixture(params=sorted(PLATFORMS))
def platform(request, settings):
    code = request.param
    fake_class, host, api, id_types = PLATFORMS[code]
    fake = fake_class()
    settings.PLATFORM_ENDPOINTS = {**settings.PLATFORM_ENDPOINTS, code: host + api}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        install_responses(rsps, fake, host)
        yield code, fake, id_types


def connect(owner, code: str) -> Connection:
    platform = Platform.objects.get(code=code)
    bound = get_adapter_class(code).credentials_form(data=DEMO_CREDENTIALS[code])
    assert bound.is_valid(), bound.errors
    label, config, secrets = bound.split()
    return Connection.objects.create(owner=owner, platform=platform, label=label, config=config, secrets=secrets)


def expected_pairs(code: str, id_types: dict, members) -> set[tuple[str, str]]:
    pairs = set()
    for keys in members:
        for key, value in platform_values(code, keys).items():
            pairs.add((id_types[key], value))
    return pairs


def test_add_then_mirror_through_the_engine(platform, user, free_limiter, sleeps):
    code, fake, id_types = platform
    audience = make_audience(user, 120)
    connection = connect(user, code)

    sync = make_sync(user, audience, connection, mode="mirror")
    run = execute_run(run_id=new_run(sync).pk, limiter=free_limiter, sleep=sleeps)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_message
    sync.refresh_from_db()
    audience_id = sync.platform_audience_id
    assert audience_id
    members = [stored for _, _, stored in all_records(audience.pk)]
    assert fake.audience_members(audience_id) == expected_pairs(code, id_types, members)
    assert (run.sent, run.rejected) == (120, 0)
    assert run.matched == fake.matched_count(audience_id) > 0

    # Re-import without the first 20 people: the mirror run removes exactly them.
    new_generation(audience, [(20, 100)])
    run = execute_run(run_id=new_run(sync).pk, limiter=free_limiter, sleep=sleeps)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_message
    members = [stored for _, _, stored in all_records(audience.pk)]
    assert fake.audience_members(audience_id) == expected_pairs(code, id_types, members)
    assert (run.removed, run.sent) == (20, 0)
    assert fake.remove_requests == 1
