"""An import whose Celery worker is SIGKILLed mid-file: the job is left "running" with its file in place; the
watchdog task, sent as beat sends it (IMPORT_STALE_AFTER shortened), hands it to a new worker, which restarts it
cleanly: every row imported exactly once, no duplicate or orphaned members, the upload deleted at the end.

Runs on PostgreSQL + Redis (CI) and on SQLite + the filesystem broker (``make test``).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from audiences import imports
from audiences import tasks as import_tasks
from audiences.models import Audience, ImportJob, Member
from tests.support.worker import celery_worker, stop_worker, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
ROWS = 150_000
STALE = 3


def write_customers(path: Path, rows: int) -> Path:
    with open(path, "w", encoding="utf-8") as out:
        out.write("Email,Mobile,Cust Ref\n")
        for i in range(rows):
            out.write(f"Person.{i}@Example.com,+1 212 555 {i % 10000:04d},CR-{i}\n")
    return path


def test_a_worker_killed_mid_import_restarts_cleanly_without_duplicates(user, tmp_path):
    audience = Audience.objects.create(owner=user, name="Big file", default_country="US")
    job = imports.create_import_from_path(owner=user, audience=audience,
                                          path=write_customers(tmp_path / "customers.csv", ROWS))
    stored_file = Path(job.stored_path)

    with celery_worker() as first_worker:
        imports.start_import(job)  # queued to the broker: the worker takes it
        wait_for(lambda: ImportJob.objects.get(pk=job.pk).rows_total >= 30_000, timeout=120,
                 message="the first worker to import a few chunks")
        stop_worker(first_worker, kill=True)  # SIGKILL, mid-file
    job.refresh_from_db()
    assert job.status == ImportJob.Status.RUNNING and job.rows_total < ROWS
    assert stored_file.exists()  # kept for the restart

    time.sleep(STALE + 0.5)  # the heartbeat is now older than the (shortened) stale threshold
    with celery_worker(log_path=None, IMPORT_STALE_AFTER=str(STALE)):
        import_tasks.requeue_stale_imports.delay()  # as beat sends it every minute (to the default queue)
        wait_for(lambda: ImportJob.objects.get(pk=job.pk).status in {ImportJob.Status.SUCCEEDED,
                                                                     ImportJob.Status.FAILED},
                 timeout=180, message="the re-queued import to finish on the new worker")

    job.refresh_from_db()
    audience.refresh_from_db()
    assert job.status == ImportJob.Status.SUCCEEDED, job.error_message
    assert job.takeovers == 1
    assert (job.rows_total, job.rows_imported, job.rows_rejected, job.rows_duplicate) == (ROWS, ROWS, 0, 0)
    assert audience.member_count == ROWS
    members = Member.objects.filter(audience=audience)
    # The killed attempt applied nothing (its rows were staged only): every member comes from the restart, once.
    assert set(members.values_list("generation", flat=True).distinct()) == {audience.generation}
    assert members.count() == members.values("person").distinct().count() == ROWS
    assert not stored_file.exists()
