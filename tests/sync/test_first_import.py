"""An audience's first import writes its people straight into the audience while the file is read
(audiences.filling): nobody sees them until it applies, and two imports of a new audience never mix.

Each import runs with its chunk writes in the import thread (``inline_writes``), so a test can step in between two
chunks and do what another worker would: start a sync, run another import, delete the audience.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audiences import filling, imports, services, storage
from audiences import tasks as import_tasks
from audiences.models import Audience, ImportJob, Member
from audiences.writer import ChunkWriter
from syncs import engine
from syncs.engine.plan import compute
from syncs.models import SyncRun
from tests.sync.conftest import make_sync, new_run

pytestmark = pytest.mark.django_db

ROWS = 30
CHUNK = 10


def csv_of(start: int, count: int) -> str:
    return "email,phone\n" + "".join(f"p{i}@example.com,+1212555{i:04d}\n" for i in range(start, start + count))


@pytest.fixture(autouse=True)
def inline_writes(monkeypatch, settings, tmp_path):
    settings.UPLOAD_DIR = tmp_path / "uploads"
    monkeypatch.setattr(imports, "CHUNK_ROWS", CHUNK)

    class InlineWriter(imports._ChunkWriter):
        def submit(self, writes, context=None):
            ChunkWriter.wait(self)
            self.context = context
            writes()

    monkeypatch.setattr(imports, "_ChunkWriter", InlineWriter)


@pytest.fixture
def audience(user):
    return Audience.objects.create(owner=user, name="New list", default_country="US")


@pytest.fixture
def queue(user, audience, tmp_path):
    """Upload a file for the audience and queue its import (not run); returns the job."""
    def make(text: str, *, target=None) -> ImportJob:
        path = tmp_path / f"upload-{len(list(tmp_path.iterdir()))}.csv"
        path.write_text(text)
        job = imports.create_import_from_path(owner=user, audience=target or audience, path=path)
        return imports.start_import(job, enqueue=False)
    return make


def between_chunks(monkeypatch, after: int, action):
    """Run ``action`` once, after the ``after``-th chunk of the next import has committed."""
    real, calls = imports._commit_chunk, []

    def commit_then_act(*args):
        real(*args)
        calls.append(1)
        if len(calls) == after:
            monkeypatch.setattr(imports, "_commit_chunk", real)
            action()

    monkeypatch.setattr(imports, "_commit_chunk", commit_then_act)


def killed_after(monkeypatch, chunks: int, job: ImportJob) -> None:
    """Run the import task of ``job`` until its worker is killed after ``chunks`` chunks (SystemExit: nothing
    catches it, like SIGKILL); the job is left running, as the watchdog finds it."""
    def die():
        raise SystemExit("worker killed")

    between_chunks(monkeypatch, chunks, die)
    with pytest.raises(SystemExit):
        import_tasks.import_audience(job.pk)


def emails_of(audience) -> set[bytes]:
    return {stored["e"] for _, _, stored in storage.all_records(audience.pk)}


def expected_emails(user, text: str) -> set[bytes]:
    """The members a one-go import of ``text`` into a fresh audience gives."""
    other = Audience.objects.create(owner=user, name="Reference", default_country="US")
    records = [r.stored for r in imports.matchkeys.prepare_records(
        [dict(zip(["email", "phone"], line.split(","), strict=True)) for line in text.splitlines()[1:]],
        default_region="US")]
    imports.import_records(audience=other, records=records, person_key="email")
    return emails_of(other)


def test_a_first_import_writes_straight_in_and_nobody_sees_it_before_it_applies(
        user, audience, queue, monkeypatch, meta_connection, meta_graph, sleeps, free_limiter):
    sync = make_sync(user, audience, meta_connection, mode="mirror")
    job = queue(csv_of(0, ROWS))
    seen = {}

    def look():
        seen["rows"] = Member.objects.filter(audience=audience).count()
        audience.refresh_from_db()
        seen["audience"] = (audience.generation, audience.member_count, audience.filling_import_id)
        plan, generation = compute(sync)
        seen["plan"] = (plan.adds, plan.removes, generation)
        sync_run = engine.execute_run(run_id=new_run(sync).pk, sleep=sleeps, limiter=free_limiter)
        seen["run"] = (sync_run.status, sync_run.sent, meta_graph.add_requests)

    between_chunks(monkeypatch, 2, look)
    job = imports.run_import(job.pk)
    assert job.status == ImportJob.Status.SUCCEEDED
    assert seen["rows"] == 2 * CHUNK  # written while the file was read...
    assert seen["audience"] == (0, 0, job.pk)  # ...into an audience that has no members yet
    assert seen["plan"] == ([], [], 0)  # so a sync plans nothing from them,
    assert seen["run"][1:] == (0, 0)  # and a run sends nothing
    audience.refresh_from_db()
    assert (audience.generation, audience.member_count, audience.filling_import_id) == (1, ROWS, None)
    assert (job.rows_imported, job.rows_duplicate) == (ROWS, 0)
    assert audience.key_coverage["email"] == ROWS == audience.platform_coverage["meta"]
    assert emails_of(audience) == expected_emails(user, csv_of(0, ROWS))
    sync_run = engine.execute_run(run_id=new_run(sync).pk, sleep=sleeps, limiter=free_limiter)
    assert sync_run.status == SyncRun.Status.SUCCEEDED and sync_run.sent == ROWS


def test_duplicates_across_chunks_merge_as_in_a_re_import(user, audience, queue):
    text = "email,phone,first_name\n" + "".join(
        f"p{i % 12}@example.com,{f'+12125550{i:03d}' if i >= 12 else ''},{'Ann' if i < 12 else 'Bob'}\n"
        for i in range(ROWS))
    job = imports.run_import(queue(text).pk)
    again = Audience.objects.create(owner=user, name="Again", default_country="US")
    imports.run_import(queue(csv_of(500, 3), target=again).pk)  # a member already: the file is a re-import there
    imports.run_import(queue(text, target=again).pk)
    assert (job.rows_imported, job.rows_duplicate) == (12, ROWS - 12)
    # The first row of a person wins (Ann), a later row only fills what it lacks (the phone of row 13 and on).
    def people(audience_id):
        return [(person, stored) for person, _, stored in storage.all_records(audience_id)]

    assert people(audience.pk) == people(again.pk)
    assert all({"fn", "p"} <= set(stored) for _, _, stored in storage.all_records(audience.pk))


def test_a_failed_first_import_leaves_no_rows(audience, queue, monkeypatch):
    def fail():
        raise imports.UnusableFile("stop here")

    between_chunks(monkeypatch, 2, fail)
    job = imports.run_import(queue(csv_of(0, ROWS)).pk)
    audience.refresh_from_db()
    assert job.status == ImportJob.Status.FAILED and job.error_message == "stop here"
    assert not Member.objects.filter(audience=audience).exists()
    assert (audience.generation, audience.status, audience.filling_import_id) == (0, Audience.Status.FAILED, None)


def test_a_staged_import_that_applies_first_wins_and_the_filling_one_is_discarded(user, audience, queue,
                                                                                    monkeypatch):
    first = queue(csv_of(0, ROWS))
    second = queue(csv_of(100, 5))
    result = {}
    between_chunks(monkeypatch, 1, lambda: result.setdefault("second", imports.run_import(second.pk)))
    first = imports.run_import(first.pk)
    second = result["second"]
    audience.refresh_from_db()
    assert second.status == ImportJob.Status.SUCCEEDED  # staged (another import was filling), applied first
    assert first.status == ImportJob.Status.FAILED and first.error_message == filling.NEWER_IMPORT_WON
    assert (audience.generation, audience.member_count, audience.filling_import_id) == (1, 5, None)
    assert emails_of(audience) == expected_emails(user, csv_of(100, 5))


def test_the_filling_import_that_applies_first_wins_and_the_staged_one_is_discarded(user, audience, queue,
                                                                                      monkeypatch):
    first = queue(csv_of(0, ROWS))
    second = queue(csv_of(100, 5))

    killed_after(monkeypatch, 1, first)  # the first is filling the audience, one chunk in, when the second starts
    real_succeed = imports._succeed

    def first_finishes_meanwhile(job, *args, **kwargs):
        # The second reaches its apply; meanwhile the first (its worker taken over) reads the whole file and applies.
        if job.pk == second.pk:
            ImportJob.objects.filter(pk=first.pk).update(heartbeat_at=None)
            assert imports.run_import(first.pk).status == ImportJob.Status.SUCCEEDED
        return real_succeed(job, *args, **kwargs)

    monkeypatch.setattr(imports, "_succeed", first_finishes_meanwhile)
    second = imports.run_import(second.pk)
    audience.refresh_from_db()
    assert second.status == ImportJob.Status.FAILED and second.error_message == filling.NEWER_IMPORT_WON
    assert (audience.generation, audience.member_count, audience.filling_import_id) == (1, ROWS, None)
    assert emails_of(audience) == expected_emails(user, csv_of(0, ROWS))


def test_rows_left_by_a_given_up_first_import_go_when_the_next_one_starts(user, audience, queue):
    dead = queue(csv_of(0, ROWS))
    imports.run_import(dead.pk)
    # As if its worker had died half-way and the watchdog had given it up: its rows stayed, still nobody's.
    audience.refresh_from_db()
    Audience.objects.filter(pk=audience.pk).update(generation=0, member_count=0, filling_import=dead)
    ImportJob.objects.filter(pk=dead.pk).update(status=ImportJob.Status.FAILED)
    job = imports.run_import(queue(csv_of(200, 4)).pk)
    audience.refresh_from_db()
    assert job.status == ImportJob.Status.SUCCEEDED
    assert Member.objects.filter(audience=audience).count() == 4 == audience.member_count
    assert emails_of(audience) == expected_emails(user, csv_of(200, 4))


def test_deleting_the_audience_stops_its_first_import(audience, queue, monkeypatch):
    job = queue(csv_of(0, ROWS))
    between_chunks(monkeypatch, 1, lambda: services.delete_audience(audience=audience))
    job = imports.run_import(job.pk)
    audience.refresh_from_db()
    assert job.status == ImportJob.Status.FAILED and job.error_message == filling.AUDIENCE_DELETED
    assert audience.status == Audience.Status.DELETING and audience.member_count == 0


def test_a_restarted_first_import_reads_the_file_again_over_its_own_rows(user, audience, queue, monkeypatch):
    job = queue(csv_of(0, ROWS))

    killed_after(monkeypatch, 2, job)
    assert Member.objects.filter(audience=audience).count() == 2 * CHUNK
    ImportJob.objects.filter(pk=job.pk).update(heartbeat_at=None)  # silent: the next delivery takes it over
    job = imports.run_import(job.pk)
    audience.refresh_from_db()
    assert job.status == ImportJob.Status.SUCCEEDED and job.takeovers == 1
    assert (job.rows_imported, audience.member_count) == (ROWS, ROWS)
    assert emails_of(audience) == expected_emails(user, csv_of(0, ROWS))


def test_a_first_import_the_watchdog_gives_up_leaves_no_rows(audience, queue, monkeypatch, settings):
    job = queue(csv_of(0, ROWS))

    killed_after(monkeypatch, 2, job)
    ImportJob.objects.filter(pk=job.pk).update(heartbeat_at=None, takeovers=settings.JOB_MAX_TAKEOVERS)
    monkeypatch.setattr(import_tasks.import_audience, "delay", lambda pk: None)
    imports.requeue_stale_imports(stale_after_seconds=600)
    job.refresh_from_db()
    audience.refresh_from_db()
    assert job.status == ImportJob.Status.FAILED
    assert not Member.objects.filter(audience=audience).exists()
    assert (audience.generation, audience.status, audience.filling_import_id) == (0, Audience.Status.FAILED, None)


# A row: which of 8 people (by email, in any case and spacing), and a phone and first name that may be missing.
ROW = st.tuples(st.integers(0, 7), st.sampled_from(["", " ", "upper"]), st.one_of(st.none(), st.integers(0, 99)),
                st.one_of(st.none(), st.sampled_from(["Zoë", "ann", "Bob", "  "])))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(ROW, min_size=1, max_size=25))
def test_a_first_import_gives_the_people_the_staged_import_gives(user, queue, monkeypatch, rows):
    """The invariant behind writing a first import straight in: for any file (the same person in several rows and
    chunks, keys missing in some rows), the members are exactly those the staging table and its apply give, record
    for record (the staged path, from the same rows prepared by matchkeys, is the reference)."""
    monkeypatch.setattr(imports, "CHUNK_ROWS", 3)  # a person's rows fall into several chunks

    def cell(value, style):
        return f" {value.upper()} " if style == "upper" else f"{style}{value}"

    lines = [(cell(f"p{who}@example.com", style), "" if phone is None else f"+1212555{phone:04d}", name or "")
             for who, style, phone, name in rows]
    text = "email,phone,first_name\n" + "".join(",".join(line) + "\n" for line in lines)
    direct = Audience.objects.create(owner=user, name="Direct", default_country="US")
    job = imports.run_import(queue(text, target=direct).pk)
    assert job.status == ImportJob.Status.SUCCEEDED, job.error_message
    staged = Audience.objects.create(owner=user, name="Staged", default_country="US")
    records = [r.stored for r in imports.matchkeys.prepare_records(
        [dict(zip(["email", "phone", "first_name"], line, strict=True)) for line in lines], default_region="US")]
    imports.import_records(audience=staged, records=records, person_key="email")

    def people(audience):
        return [(person, stored) for person, _, stored in storage.all_records(audience.pk)]

    assert people(direct) == people(staged)
    assert job.rows_imported == len(people(direct)) == len({who for who, *_ in rows})
