"""The import watchdog: a job left RUNNING by a dead worker (or a lost QUEUED message) is re-queued and
restarts cleanly; the beat entry reaches django-celery-beat's table."""

import datetime

import pytest
from django.utils import timezone

from audiences import imports
from audiences import tasks as import_tasks
from audiences.models import ImportJob, Member

GOOD = "email\n" + "".join(f"p{i}@example.com\n" for i in range(30))


@pytest.fixture
def queued(user, audience, tmp_path, monkeypatch):
    monkeypatch.setattr(imports, "CHUNK_ROWS", 10)
    path = tmp_path / "f.csv"
    path.write_text(GOOD)
    job = imports.create_import_from_path(owner=user, audience=audience, path=path)
    return imports.start_import(job, enqueue=False)


def test_stale_running_import_is_requeued_and_restarts_cleanly(queued, audience, monkeypatch,
                                                                 django_capture_on_commit_callbacks):
    calls = []
    real = imports._checkpoint

    def die(*args):
        real(*args)
        calls.append(1)
        if len(calls) == 2:
            raise SystemExit("worker killed")

    monkeypatch.setattr(imports, "_checkpoint", die)
    with pytest.raises(SystemExit):
        imports.run_import(queued.pk)
    monkeypatch.setattr(imports, "_checkpoint", real)
    assert imports.requeue_stale_imports(stale_after_seconds=600) == []  # heartbeat is fresh
    ImportJob.objects.filter(pk=queued.pk).update(heartbeat_at=timezone.now() - datetime.timedelta(minutes=11))

    delivered = []
    monkeypatch.setattr(import_tasks.import_audience, "delay", lambda pk: delivered.append(pk))
    with django_capture_on_commit_callbacks(execute=True):
        assert imports.requeue_stale_imports(stale_after_seconds=600) == [queued.pk]
    assert delivered == [queued.pk]
    assert imports.requeue_stale_imports(stale_after_seconds=600) == []  # not twice in a row

    job = imports.run_import(queued.pk)
    assert job.status == "succeeded" and job.rows_imported == 30
    assert Member.objects.filter(audience=audience).count() == 30


def test_lost_queued_message_is_requeued(queued, monkeypatch):
    ImportJob.objects.filter(pk=queued.pk).update(created_at=timezone.now() - datetime.timedelta(hours=1))
    monkeypatch.setattr(import_tasks.import_audience, "delay", lambda pk: None)
    assert imports.requeue_stale_imports(stale_after_seconds=600) == [queued.pk]


def test_finished_imports_are_left_alone(queued):
    imports.run_import(queued.pk)
    ImportJob.objects.filter(pk=queued.pk).update(heartbeat_at=timezone.now() - datetime.timedelta(days=1),
                                                  created_at=timezone.now() - datetime.timedelta(days=1))
    assert imports.requeue_stale_imports(stale_after_seconds=600) == []
