"""Deleting an audience is previewed, never silent: the confirmation page says what goes here and what happens on
each platform, and afterwards each platform copy's fate is recorded (PlatformDeletion) and shown on the audience
list; through the real Meta adapter against the fake Graph API. And on SQLite the purge gives the freed pages back
to the file system."""

from __future__ import annotations

import os

import pytest
from django.db import connection
from django.urls import reverse

from audiences import services as audience_services
from audiences import tasks as audience_tasks
from audiences.models import Audience, PlatformDeletion
from credentials.models import Connection
from platforms.errors import TransientError
from platforms.models import Platform
from sandbox.base import Fault
from syncs import engine
from syncs import services as sync_services
from syncs.models import Sync, SyncRun
from tests.sync.conftest import make_audience, new_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def synced(user, meta_connection, meta_graph, free_limiter, sleeps):
    audience = make_audience(user, 30)
    sync = sync_services.create_sync(owner=user, audience=audience, connection_id=meta_connection.pk, schedule="daily")
    engine.execute_run(run_id=new_run(sync).pk, limiter=free_limiter, sleep=sleeps)
    sync.refresh_from_db()
    return audience, sync


@pytest.fixture
def disconnected_copy(user, synced):
    """A second sync, to LinkedIn, that made a copy there before its connection was disconnected."""
    audience, _ = synced
    linkedin = Connection.objects.create(owner=user, platform=Platform.objects.get(code="linkedin"), label="Brand",
                                         config={}, secrets={"access_token": "li-secret-token-123"},
                                         status=Connection.Status.DISCONNECTED)
    return Sync.objects.create(owner=user, audience=audience, connection=linkedin,
                               platform_audience_id="urn:li:dmpSegment:77")


@pytest.fixture
def platform_deletes(monkeypatch):
    queued = []
    monkeypatch.setattr(audience_tasks.delete_platform_audience, "delay", lambda *args: queued.append(args))
    monkeypatch.setattr(audience_tasks.purge_audience, "delay", lambda *args: None)
    return queued


def test_the_preview_says_what_goes_where_and_deletes_nothing(alice_client, synced, disconnected_copy,
                                                              platform_deletes, meta_graph):
    audience, sync = synced
    url = reverse("audience_confirm_delete", args=[audience.pk])
    page = alice_client.get(url + "?on_platforms=1").content.decode()
    assert "Delete “Loyal customers”?" in page
    assert "The audience and its <strong>30</strong> members" in page
    assert "2 syncs and 1 run of history; the schedule (daily to Meta · Meta main) stops." in page
    assert sync.platform_audience_id in page and "Deleted on Meta" in page
    assert "Cannot be deleted from here" in page and "The connection LinkedIn · Brand is disconnected" in page
    assert "Delete here and on Meta · Meta main</button>" in page
    assert 'name="on_platforms" value="1"' in page  # the choice goes with the confirmation
    assert f"{sync.runs.get().audience_size:,} people at the last run" in page

    page = alice_client.get(url).content.decode()
    assert "Stays on Meta" in page and "Stays on LinkedIn" in page and "Delete here only</button>" in page
    assert 'name="on_platforms"' not in page

    audience.refresh_from_db()
    assert audience.status == Audience.Status.READY and not platform_deletes
    assert not PlatformDeletion.objects.exists() and sync.platform_audience_id in meta_graph.audiences


def test_the_audience_page_leads_to_the_preview_with_a_plain_help_text(alice_client, synced):
    audience, _ = synced
    page = alice_client.get(reverse("audience_detail", args=[audience.pk])).content.decode()
    form = page[page.index('id="danger-title"'):]
    assert f'<form method="get" action="{reverse("audience_confirm_delete", args=[audience.pk])}">' in form
    assert "Delete audience…" in form
    assert ("Deletes its 30 members, syncs and run history here. The audiences its syncs created on the platforms "
            "stay there unless you tick the box.") in form


def test_deleting_on_the_platforms_records_each_copys_fate(alice_client, synced, disconnected_copy, meta_graph,
                                                          platform_deletes, django_capture_on_commit_callbacks):
    audience, sync = synced
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(reverse("audience_delete", args=[audience.pk]), {"on_platforms": "1"},
                                     follow=True)
    text = response.content.decode()
    assert "Not deleted on LinkedIn · Brand: the connection is not active." in text
    meta = PlatformDeletion.objects.get(destination="Meta · Meta main")
    linkedin = PlatformDeletion.objects.get(destination="LinkedIn · Brand")
    assert (meta.status, meta.audience_name, meta.former_audience_id) == ("pending", "Loyal customers", audience.pk)
    assert linkedin.status == "failed" and "disconnected" in linkedin.message and linkedin.finished_at
    assert platform_deletes == [(sync.connection_id, sync.platform_audience_id, meta.pk)]  # LinkedIn: not tried
    assert 'id="deleted-audiences"' in text and 'hx-trigger="every 2s"' in text and "Deleting…" in text

    audience_tasks.delete_platform_audience.apply(args=platform_deletes[0])
    meta.refresh_from_db()
    assert meta.status == "deleted" and meta.finished_at and sync.platform_audience_id not in meta_graph.audiences
    listing = alice_client.get(reverse("audience_list")).content.decode()
    assert "Deleted</span>\n          on Meta · Meta main" in listing and 'hx-trigger="every 2s"' not in listing


def test_a_platform_that_keeps_failing_is_retried_then_recorded_as_not_deleted(user, synced, meta_graph,
                                                                               platform_deletes):
    audience, sync = synced
    audience_services.delete_audience(audience=audience, on_platforms=True)
    record = PlatformDeletion.objects.get()
    meta_graph.inject(Fault(response=meta_graph.error_response(2, "Service temporarily unavailable", status=500),
                            method="DELETE", times=2))
    args = {"connection_id": sync.connection_id, "platform_audience_id": sync.platform_audience_id,
            "deletion_id": record.pk}
    with pytest.raises(TransientError):
        audience_services.delete_platform_audience(**args, last_attempt=False)
    record.refresh_from_db()
    assert record.status == "pending" and "trying again" in record.message
    assert audience_services.delete_platform_audience(**args, last_attempt=True) is False
    record.refresh_from_db()
    assert record.status == "failed" and "Meta kept failing" in record.message
    assert f"The audience {sync.platform_audience_id} is still on Meta" in record.message


def test_a_refusal_is_recorded_with_the_platforms_words_and_no_secret(user, synced, meta_graph, platform_deletes,
                                                                     meta_connection):
    audience, sync = synced
    audience_services.delete_audience(audience=audience, on_platforms=True)
    record = PlatformDeletion.objects.get()
    token = meta_connection.secrets["access_token"]
    meta_graph.inject(Fault(response=meta_graph.error_response(100, f"(#100) Cannot delete, token {token}"),
                            method="DELETE"))
    deleted = audience_services.delete_platform_audience(
        connection_id=sync.connection_id, platform_audience_id=sync.platform_audience_id, deletion_id=record.pk)
    assert deleted is False
    record.refresh_from_db()
    assert record.status == "failed" and "Meta refused" in record.message and "Cannot delete" in record.message
    assert token not in record.message


def test_a_connection_disconnected_before_the_task_ran_is_recorded(user, synced, platform_deletes, meta_graph,
                                                                   django_capture_on_commit_callbacks):
    audience, sync = synced
    with django_capture_on_commit_callbacks(execute=True):
        audience_services.delete_audience(audience=audience, on_platforms=True)
    Connection.objects.filter(pk=sync.connection_id).update(status=Connection.Status.DISCONNECTED)
    audience_tasks.delete_platform_audience.apply(args=platform_deletes[0])
    record = PlatformDeletion.objects.get()
    assert record.status == "failed" and "The connection is disconnected" in record.message
    assert sync.platform_audience_id in meta_graph.audiences


def test_deleting_cancels_a_held_run(alice_client, synced, platform_deletes):
    audience, sync = synced
    held = SyncRun.objects.create(sync=sync, status=SyncRun.Status.HELD)
    alice_client.post(reverse("audience_delete", args=[audience.pk]))
    held.refresh_from_db()
    assert held.status == SyncRun.Status.CANCELLED


def test_another_user_can_neither_preview_nor_delete(client_for, other_user, synced, platform_deletes):
    audience, _ = synced
    client = client_for(other_user)
    assert client.get(reverse("audience_confirm_delete", args=[audience.pk]) + "?on_platforms=1").status_code == 404
    assert client.post(reverse("audience_delete", args=[audience.pk]), {"on_platforms": "1"}).status_code == 404
    audience.refresh_from_db()
    assert audience.status == Audience.Status.READY


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="SQLite's file only")
def test_on_sqlite_the_purge_gives_the_freed_pages_back_to_the_file_system(user, platform_deletes):
    def pragma(name):
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA {name}")
            return cursor.fetchone()[0]

    assert pragma("auto_vacuum") == audience_services.SQLITE_INCREMENTAL  # migration audiences 0013
    audience = make_audience(user, 3_000)
    pages = pragma("page_count")
    audience_services.delete_audience(audience=audience)
    assert audience_services.purge_audience(audience_id=audience.pk) is True
    assert pragma("freelist_count") == 0
    assert pragma("page_count") < pages - 100  # the members' pages left the file


def test_the_list_stops_re_reading_itself_when_a_deletion_is_lost(alice_client, user):
    from datetime import timedelta

    from django.utils import timezone

    record = PlatformDeletion.objects.create(owner=user, former_audience_id=9, audience_name="Old", status="pending",
                                             destination="Meta · Main", platform_audience_id="aud-9")
    assert 'hx-trigger="every 2s"' in alice_client.get(reverse("audience_list")).content.decode()
    PlatformDeletion.objects.filter(pk=record.pk).update(created_at=timezone.now() - timedelta(hours=2))
    listing = alice_client.get(reverse("audience_list")).content.decode()
    assert "Deleting…" in listing and 'hx-trigger="every 2s"' not in listing


def test_operators_see_the_platform_deletions_read_only(client, user):
    from django.contrib.auth import get_user_model

    PlatformDeletion.objects.create(owner=user, former_audience_id=9, audience_name="Old", status="failed",
                                    destination="Meta · Main", platform_audience_id="aud-9", message="Meta refused.")
    operator = get_user_model().objects.create_superuser("ops", "ops@example.com", "ops-password-123")
    client.force_login(operator)
    page = client.get(reverse("admin:audiences_platformdeletion_changelist"))
    assert page.status_code == 200 and "Meta · Main" in page.content.decode()
    record = PlatformDeletion.objects.get()
    assert client.post(reverse("admin:audiences_platformdeletion_change", args=[record.pk]),
                       {"status": "deleted"}).status_code == 403
