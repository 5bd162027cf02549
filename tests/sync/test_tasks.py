"""Tasks and schedules: scheduled runs skip while one is active, the watchdog task and its beat row."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from credentials.models import Connection
from syncs import runs
from syncs import services as sync_services
from syncs import tasks as sync_tasks
from syncs.models import SyncRun
from tests.sync.conftest import make_audience, make_sync

pytestmark = pytest.mark.django_db


def test_the_watchdog_is_scheduled_every_minute():
    task = PeriodicTask.objects.get(task="syncs.watchdog")
    assert task.enabled and task.schedule.run_every == timedelta(minutes=1)


def test_a_scheduled_sync_starts_a_run_unless_one_is_active(user, tiktok_connection, queued):
    sync = make_sync(user, make_audience(user, 3), tiktok_connection)
    first = sync_tasks.run_scheduled_sync(sync.pk)
    run = SyncRun.objects.get(pk=first)
    assert run.trigger == SyncRun.Trigger.SCHEDULE and run.status == "queued"
    assert sync_tasks.run_scheduled_sync(sync.pk) is None  # still queued: skipped
    SyncRun.objects.filter(pk=first).update(status="succeeded")
    assert sync_tasks.run_scheduled_sync(sync.pk) not in (None, first)
    assert sync_tasks.run_scheduled_sync(999999) is None  # deleted sync: nothing


def test_a_scheduled_sync_on_a_broken_connection_is_skipped(user, tiktok_connection, queued):
    sync = make_sync(user, make_audience(user, 3), tiktok_connection)
    Connection.objects.filter(pk=tiktok_connection.pk).update(status="error")
    assert sync_tasks.run_scheduled_sync(sync.pk) is None
    assert not SyncRun.objects.exists()


def test_the_periodic_task_runs_the_scheduled_sync_task_with_the_sync_id(user, tiktok_connection):
    sync = sync_services.create_sync(owner=user, audience=make_audience(user, 1), connection_id=tiktok_connection.pk,
                              schedule="hourly")
    task = sync.periodic_task
    assert task.task == sync_tasks.run_scheduled_sync.name and task.args == f"[{sync.pk}]"
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("0", "*", "*")  # every hour


def test_the_watchdog_task_counts_what_it_failed(user, tiktok_connection, settings):
    sync = make_sync(user, make_audience(user, 1), tiktok_connection)
    old = timezone.now() - timedelta(seconds=settings.SYNC_STALE_AFTER * 2)
    SyncRun.objects.create(sync=sync, status="running", heartbeat_at=old)
    assert sync_tasks.watchdog() == 1
    assert sync_tasks.watchdog() == 0


def test_a_run_task_for_a_finished_or_missing_run_is_a_no_op(user, tiktok_connection):
    sync = make_sync(user, make_audience(user, 1), tiktok_connection)
    run = SyncRun.objects.create(sync=sync, status="succeeded")
    assert sync_tasks.run_sync(run.pk) == "succeeded"
    assert sync_tasks.run_sync(424242) == "skipped"


def test_a_broker_outage_marks_the_run_failed_and_resumable(user, tiktok_connection, monkeypatch):
    from syncs import runs as module

    monkeypatch.undo()  # the real enqueue_run, with a broken broker
    sync = make_sync(user, make_audience(user, 1), tiktok_connection)
    run = SyncRun.objects.create(sync=sync)

    def broken(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(sync_tasks.run_sync, "delay", broken)
    module.enqueue_run(run.pk)
    run.refresh_from_db()
    assert run.status == "failed" and "could not be queued" in run.error_message
    assert runs.can_resume(run)
