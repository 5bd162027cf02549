"""No N+1 queries: every list-like page makes the same number of queries for a small and a five times
larger account (more audiences, syncs, runs, batches, imports, rejected rows, connections)."""

from __future__ import annotations

import re

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audiences.models import Audience, ImportJob, RejectedRow
from credentials.models import Connection
from platforms.models import Platform
from syncs.models import Sync, SyncBatch, SyncRun

pytestmark = pytest.mark.django_db


def grow(owner, count: int) -> dict:
    """``count`` of each kind of object for ``owner``; returns one of each for the object pages."""
    platforms = list(Platform.objects.all())
    first = {}
    for i in range(count):
        conn = Connection.objects.create(owner=owner, platform=platforms[i % len(platforms)],
                                         label=f"Account {Connection.objects.count()}", config={},
                                         secrets={"access_token": "tok-query-count"})
        audience = Audience.objects.create(owner=owner, name=f"Audience {i}", default_country="US",
                                           status="ready", member_count=1000)
        job = ImportJob.objects.create(owner=owner, audience=audience, original_filename="x.csv",
                                       status=ImportJob.Status.SUCCEEDED)
        RejectedRow.objects.bulk_create(RejectedRow(import_job=job, row_number=n, column="email",
                                                    reason="not an email address") for n in range(count))
        sync = Sync.objects.create(owner=owner, audience=audience, connection=conn)
        for _ in range(count):
            run = SyncRun.objects.create(sync=sync, status=SyncRun.Status.SUCCEEDED, total_batches=count)
            SyncBatch.objects.bulk_create(
                SyncBatch(run=run, seq=n, kind="add", size=10)
                for n in range(count)
            )
        first.setdefault("audience", audience)
        first.setdefault("run", run)
        first.setdefault("job", job)
    return first


def queries_for(client, url: str) -> int:
    client.get(url)  # warm per-process caches (content types, sessions)
    with CaptureQueriesContext(db_connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(captured.captured_queries)


def page_urls(objects: dict) -> dict[str, str]:
    return {
        "dashboard": reverse("dashboard"),
        "platform_list": reverse("platform_list"),
        "audience_list": reverse("audience_list"),
        "audience_detail": reverse("audience_detail", args=[objects["audience"].pk]),
        "sync_run_detail": reverse("sync_run_detail", args=[objects["run"].pk]),
        "sync_run_progress": reverse("sync_run_progress", args=[objects["run"].pk]),
        "import_progress": reverse("import_progress", args=[objects["job"].pk]),
    }


def test_page_queries_do_not_grow_with_the_account(alice_client, user):
    small = page_urls(grow(user, 2))
    before = {name: queries_for(alice_client, url) for name, url in small.items()}
    # The larger account's objects have four times the batches and rejected rows each.
    large = page_urls(grow(user, 8))
    after = {name: queries_for(alice_client, url) for name, url in large.items()}
    assert after == before
    assert max(before.values()) <= 20, before


def test_the_audience_list_pages_a_large_account(alice_client, user):
    Audience.objects.bulk_create(Audience(owner=user, name=f"Audience {i}", default_country="US") for i in range(120))
    first = alice_client.get(reverse("audience_list"))
    assert len(re.findall(rb'href="/audiences/\d+/"', first.content)) == 50
    assert b"Page 1 of 3" in first.content
    last = alice_client.get(reverse("audience_list"), {"page": 3})
    assert b"Audience 0<" in last.content
    assert alice_client.get(reverse("audience_list"), {"page": "junk"}).status_code == 200
