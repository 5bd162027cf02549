"""A sync to a Google Ads API connection whose customer Google no longer allowlists for Customer Match: the run
stops and the connection shows the pointer to the Data Manager connection."""

from __future__ import annotations

import pytest

from credentials.models import Connection
from platforms.models import Platform
from syncs import engine
from syncs.models import SyncRun
from tests.adapters.test_google_ads_allowlist import CREDS, CUSTOMER, google, servers  # noqa: F401, F811 - fixtures
from tests.sync.conftest import make_audience, make_sync, new_run


@pytest.mark.django_db
def test_a_sync_to_a_customer_not_allowlisted_puts_the_connection_in_error_with_the_pointer(
        google, user, sleeps, free_limiter):  # noqa: F811 - the imported fixture
    google.customers[CUSTOMER]["allowlisted"] = False
    config = {k: v for k, v in CREDS.items() if k not in ("client_secret", "developer_token", "refresh_token")}
    config["customer_id"] = CUSTOMER
    connection = Connection.objects.create(
        owner=user, platform=Platform.objects.get(code="google_ads"), label="Old token", config=config,
        secrets={k: CREDS[k] for k in ("client_secret", "developer_token", "refresh_token")})
    sync = make_sync(user, make_audience(user, 10), connection)
    run = engine.execute_run(run_id=new_run(sync).pk, sleep=sleeps, limiter=free_limiter)
    assert run.status != SyncRun.Status.SUCCEEDED
    connection.refresh_from_db()
    assert connection.status == Connection.Status.ERROR
    assert "Google (Data Manager API)" in connection.last_error
