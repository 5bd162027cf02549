"""One audience, six platforms: each is connected through the credential services (a real validation call)
and synced through the engine with its real adapter against the loopback fakes (HTTP and gRPC), first
adding everyone, then mirroring a re-import."""

from __future__ import annotations

import pytest

from credentials.models import Connection
from credentials.services import connect
from platforms.adapters import get_adapter_class
from platforms.adapters.base import Operation
from platforms.models import Platform
from sandbox.credentials import DEMO_CREDENTIALS
from sandbox.running import running_fake_platforms
from syncs.engine import execute_run
from syncs.models import SyncRun
from tests.sync.conftest import make_audience, make_sync, new_generation, new_run

CODES = ["meta", "google_ads", "google_dm", "linkedin", "tiktok", "ttd", "netflix"]


@pytest.fixture(scope="module")
def fakes():
    with running_fake_platforms() as running:
        yield running


@pytest.fixture
def on_fakes(fakes, settings):
    for name, value in fakes.settings_overrides().items():
        setattr(settings, name, value)
    settings.DEMO_MODE = True  # lets the Netflix form accept the fake's plain-http loopback endpoint
    return fakes


def connect_demo_account(owner, code: str, fakes) -> Connection:
    values = dict(DEMO_CREDENTIALS[code])
    if code == "netflix":
        values["base_url"] = fakes.netflix_base_url()
    form = get_adapter_class(code).credentials_form(data=values)
    assert form.is_valid(), form.errors
    label, config, secrets = form.split()
    return connect(owner=owner, platform=Platform.objects.get(code=code), label=label, config=config,
                   secrets=secrets, actor=owner)


@pytest.mark.parametrize("code", CODES)
def test_an_audience_syncs_to_every_platform(code, on_fakes, user, free_limiter, sleeps):
    connection = connect_demo_account(user, code, on_fakes)
    assert connection.status == Connection.Status.ACTIVE
    audience = make_audience(user, 300)
    sync = make_sync(user, audience, connection, mode="mirror")

    first = execute_run(run_id=new_run(sync).pk, limiter=free_limiter, sleep=sleeps)
    assert first.status == SyncRun.Status.SUCCEEDED, first.error_message
    assert first.sent == 300
    sync.refresh_from_db()
    assert sync.platform_audience_id
    assert sync.confirmed_members.count() == 300

    # A re-import drops 50 people and adds 30: the mirror run leaves the platform with exactly the audience.
    new_generation(audience, [(50, 250), (1000, 30)])
    second = execute_run(run_id=new_run(sync).pk, limiter=free_limiter, sleep=sleeps)
    assert second.status == SyncRun.Status.SUCCEEDED, second.error_message
    assert sync.confirmed_members.count() == 280
    capabilities = get_adapter_class(code).capabilities
    if Operation.REMOVE in capabilities.operations:
        assert (second.sent, second.removed) == (30, 50)
