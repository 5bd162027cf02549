"""Deleting an audience: its syncs, runs and schedules go with it; on request, the audiences its syncs created on
the platforms are deleted too (in a task, through the real Meta adapter against the fake Graph API)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from audiences import services as audience_services
from audiences import tasks as audience_tasks
from audiences.models import Audience, ImportJob, Member
from syncs import engine, runs
from syncs import services as sync_services
from syncs.models import Sync, SyncMember, SyncRun
from tests.sync.conftest import make_audience, new_run


@pytest.fixture
def synced(user, meta_connection, meta_graph, free_limiter, sleeps):
    audience = make_audience(user, 30)
    sync = sync_services.create_sync(owner=user, audience=audience, connection_id=meta_connection.pk, schedule="daily")
    engine.execute_run(run_id=new_run(sync).pk, limiter=free_limiter, sleep=sleeps)
    sync.refresh_from_db()
    assert sync.platform_audience_id in meta_graph.audiences and sync.periodic_task_id
    return audience, sync


@pytest.fixture
def tasks_run_inline(monkeypatch):
    monkeypatch.setattr(audience_tasks.delete_platform_audience, "delay",
                        lambda *args: audience_tasks.delete_platform_audience.apply(args=args))
    monkeypatch.setattr(audience_tasks.purge_audience, "delay",
                        lambda *args: audience_tasks.purge_audience.apply(args=args))


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


@pytest.fixture
def queued_purges(monkeypatch):
    queued = []
    monkeypatch.setattr(audience_tasks.purge_audience, "delay", queued.append)
    return queued


def test_a_deleted_audience_leaves_every_page_at_once_and_its_rows_go_in_the_background(
        alice_client, synced, queued_purges, django_capture_on_commit_callbacks, monkeypatch, user):
    audience, sync = synced
    running = new_run(sync)
    SyncRun.objects.filter(pk=running.pk).update(status="running")
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(reverse("audience_delete", args=[audience.pk]), follow=True)
    assert "Deleted the audience" in response.content.decode()
    assert queued_purges == [audience.pk]
    audience.refresh_from_db()
    assert audience.status == Audience.Status.DELETING and Member.objects.filter(audience=audience).count() == 30
    assert SyncRun.objects.get(pk=running.pk).status == "cancelled"  # its worker stops at the next batch
    # Gone from every page and every action, for its owner too.
    assert "Loyal customers" not in alice_client.get(reverse("audience_list")).content.decode()
    assert "Loyal customers" not in alice_client.get(reverse("dashboard")).content.decode()
    for name, args in [("audience_detail", [audience.pk]), ("sync_run_detail", [running.pk])]:
        assert alice_client.get(reverse(name, args=args)).status_code == 404, name
    assert alice_client.post(reverse("audience_delete", args=[audience.pk])).status_code == 404
    # A run page still polling (another tab) is sent to the list with a word on why, not left polling a 404.
    polled = alice_client.get(reverse("sync_run_progress", args=[running.pk]), HTTP_HX_REQUEST="true")
    assert polled["HX-Redirect"] == reverse("audience_list")
    assert "That audience was deleted." in alice_client.get(reverse("audience_list")).content.decode()
    assert alice_client.get(reverse("sync_run_progress", args=[running.pk])).status_code == 404  # not htmx
    assert alice_client.post(reverse("sync_run_now", args=[sync.pk])).status_code == 404
    assert runs.start_scheduled_run(sync_id=sync.pk) is None

    monkeypatch.setattr(audience_services, "PURGE_SLICE", 7)  # several slices
    assert audience_services.purge_audience(audience_id=audience.pk) is True
    assert not Audience.objects.filter(pk=audience.pk).exists()
    assert not Member.objects.filter(audience_id=audience.pk).exists()
    assert not SyncMember.objects.filter(sync_id=sync.pk).exists()
    assert audience_services.purge_audience(audience_id=audience.pk) is True  # a second delivery finds nothing to do


def test_the_purge_waits_for_a_running_import_which_stops_at_its_next_checkpoint(user, queued_purges, tmp_path):
    from audiences import imports

    audience = make_audience(user, 5)
    path = tmp_path / "people.csv"
    path.write_text("email\n" + "".join(f"p{i}@example.com\n" for i in range(50)))
    job = imports.create_import_from_path(owner=user, audience=audience, path=path)
    upload = Path(job.stored_path)
    assert upload.exists()
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.RUNNING, heartbeat_at=timezone.now())
    audience_services.delete_audience(audience=audience)
    assert audience_services.purge_audience(audience_id=audience.pk) is False  # the import is still running
    assert Audience.objects.filter(pk=audience.pk).exists()

    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.QUEUED)
    job = imports.run_import(job.pk)  # a worker picking it up now refuses to import into it
    assert (job.status, job.error_message) == ("failed", imports.AUDIENCE_DELETED)
    assert Audience.objects.get(pk=audience.pk).status == Audience.Status.DELETING  # not reset by the failure
    assert audience_services.purge_audience(audience_id=audience.pk) is True
    assert not Audience.objects.filter(pk=audience.pk).exists() and not upload.exists()


def test_an_import_already_streaming_stops_at_its_next_checkpoint(user, tmp_path, monkeypatch):
    from audiences import imports

    audience = make_audience(user, 5)
    path = tmp_path / "people.csv"
    path.write_text("email\n" + "".join(f"p{i}@example.com\n" for i in range(50)))
    job = imports.create_import_from_path(owner=user, audience=audience, path=path)
    imports.start_import(job, {"0": "email"}, enqueue=False)
    checkpoint = imports._checkpoint

    def delete_meanwhile(job, *args):
        Audience.objects.filter(pk=job.audience_id).update(status=Audience.Status.DELETING)
        checkpoint(job, *args)

    monkeypatch.setattr(imports, "_checkpoint", delete_meanwhile)
    job = imports.run_import(job.pk)
    assert (job.status, job.error_message) == ("failed", imports.AUDIENCE_DELETED)
    assert not Member.objects.filter(audience=audience, generation=job.target_generation).exists()


def test_the_watchdog_queues_a_stalled_deletion_again(user, queued_purges):
    audience = make_audience(user, 3)
    audience_services.delete_audience(audience=audience)
    assert audience_services.requeue_stale_deletions() == []
    later = timezone.now() + timedelta(seconds=settings.SYNC_STALE_AFTER + 1)
    assert audience_services.requeue_stale_deletions(now=later) == [audience.pk]
    assert queued_purges == [audience.pk]


def test_member_rows_written_late_by_a_worker_that_outlived_its_lease_go_with_the_audience(user, queued_purges,
                                                                                          monkeypatch):
    # The member table has no database constraint on the audience (its per-row check cost a tenth of a large
    # import): the purge itself must leave no row behind, even one written after its slices were deleted (the
    # purge takes the audience row, which such a worker holds while it writes, before the delete that cascades).
    audience = make_audience(user, 12)
    audience_services.delete_audience(audience=audience)
    real_slice = audience_services.storage.delete_slice

    def slice_then_a_late_write(model, column, value, *, limit):
        gone = real_slice(model, column, value, limit=limit)
        if model is Member and not gone:  # the member slices are done: a late chunk commits now
            Member.objects.create(audience_id=audience.pk, person=b"late-person1", generation=1)
        return gone

    monkeypatch.setattr(audience_services.storage, "delete_slice", slice_then_a_late_write)
    assert audience_services.purge_audience(audience_id=audience.pk) is True
    assert not Audience.objects.filter(pk=audience.pk).exists()
    assert not Member.objects.filter(audience_id=audience.pk).exists()
