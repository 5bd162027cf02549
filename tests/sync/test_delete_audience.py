"""Deleting an audience: its syncs, runs and schedules go with it; on request, the audiences its syncs created on
the platforms are deleted too (in a task, through the real Meta adapter against the fake Graph API)."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from audiences import sync as engine
from audiences import sync_tasks
from audiences.models import Audience, Sync
from tests.sync.conftest import make_audience, new_run


@pytest.fixture
def synced(user, meta_connection, meta_graph, free_limiter, sleeps):
    audience = make_audience(user, 30)
    sync = engine.create_sync(owner=user, audience=audience, connection_id=meta_connection.pk, schedule="daily")
    engine.execute_run(run_id=new_run(sync).pk, limiter=free_limiter, sleep=sleeps)
    sync.refresh_from_db()
    assert sync.platform_audience_id in meta_graph.audiences and sync.periodic_task_id
    return audience, sync


@pytest.fixture
def tasks_run_inline(monkeypatch):
    monkeypatch.setattr(sync_tasks.delete_platform_audience, "delay",
                        lambda *args: sync_tasks.delete_platform_audience.apply(args=args))


def test_deleting_on_the_platforms_too(alice_client, synced, meta_graph, tasks_run_inline,
                                       django_capture_on_commit_callbacks):
    audience, sync = synced
    page = alice_client.get(reverse("audience_detail", args=[audience.pk]))
    assert b"Also delete it on Meta" in page.content
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(reverse("audience_delete", args=[audience.pk]), {"on_platforms": "1"},
                                     follow=True)
    assert "Deleting it on Meta · Meta main in the background." in response.content.decode()
    assert not Audience.objects.filter(pk=audience.pk).exists() and not Sync.objects.filter(pk=sync.pk).exists()
    assert not PeriodicTask.objects.filter(pk=sync.periodic_task_id).exists()  # no orphaned schedule
    assert sync.platform_audience_id not in meta_graph.audiences


def test_deleting_here_only_leaves_the_platform_audience(alice_client, synced, meta_graph, tasks_run_inline,
                                                         django_capture_on_commit_callbacks):
    audience, sync = synced
    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(reverse("audience_delete", args=[audience.pk]))
    assert not Audience.objects.filter(pk=audience.pk).exists()
    assert not PeriodicTask.objects.filter(pk=sync.periodic_task_id).exists()
    assert sync.platform_audience_id in meta_graph.audiences
