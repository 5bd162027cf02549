"""The daily revalidation through a real Celery worker (Redis in CI), the real Meta adapter and a loopback fake."""

from __future__ import annotations

import pytest

from credentials import services
from credentials.models import Connection, ConnectionEvent
from platforms.models import Platform
from sandbox.base import FakeServer
from sandbox.credentials import DEMO_CREDENTIALS
from sandbox.meta import FakeMetaGraph
from tests.support.worker import celery_worker, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_beat_task_fans_out_through_a_worker_and_flips_a_revoked_token_to_error(user, settings):
    fake = FakeMetaGraph()
    server = FakeServer([fake]).start()
    try:
        endpoint = f"{server.url}/meta"
        settings.PLATFORM_ENDPOINTS = {**settings.PLATFORM_ENDPOINTS, "meta": endpoint}
        meta = Platform.objects.get(code="meta")
        creds = dict(DEMO_CREDENTIALS["meta"])
        creds.pop("label")
        secrets = {"app_secret": creds.pop("app_secret"), "access_token": creds.pop("access_token")}
        good = services.connect(owner=user, platform=meta, label="Good", config=creds, secrets=secrets)
        # A second connection whose token Meta stops accepting: store it while the fake accepts it.
        fake.access_token = "token-revoked-later-0042"
        revoked = services.connect(owner=user, platform=meta, label="Revoked", config=creds,
                                   secrets={**secrets, "access_token": "token-revoked-later-0042"})
        fake.access_token = secrets["access_token"]
        Connection.objects.filter(pk__in=[good.pk, revoked.pk]).update(last_validated_at=None)

        with celery_worker(META_GRAPH_URL=endpoint):
            from credentials.tasks import revalidate_all_connections

            revalidate_all_connections.delay()
            wait_for(lambda: Connection.objects.get(pk=revoked.pk).status == Connection.Status.ERROR,
                     message="the revoked connection to be marked error")
            wait_for(lambda: Connection.objects.get(pk=good.pk).last_validated_at is not None,
                     message="the good connection to be re-validated")
        assert Connection.objects.get(pk=good.pk).status == Connection.Status.ACTIVE
        revoked = Connection.objects.get(pk=revoked.pk)
        assert revoked.last_error.startswith("Meta:")
        assert ConnectionEvent.objects.filter(connection=revoked, kind="revalidation_failed").exists()
    finally:
        server.stop()
