"""The import task: counts, de-duplication, rejections, generations, restart safety.

Runs on SQLite by default and on PostgreSQL (COPY path) when DATABASE_URL points at it.
"""

import logging
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from audiences import imports
from audiences import tasks as import_tasks
from audiences.models import Audience, ImportJob, Member, MemberVersion, RejectedRow
from audiences.storage import all_records
from platforms import matchkeys

GOOD = "email,phone,first_name,last_name,zip\n" + "".join(
    f"person{i}@example.com,+1415555{i:04d},Zoë,Müller,9411{i % 10}\n" for i in range(50)
)


def members(audience):
    audience.refresh_from_db()
    return Member.objects.filter(audience=audience)


def records(audience):
    return [stored for _, _, stored in all_records(audience.pk)]


def test_good_file_imports_every_row_hashed(run_file, audience):
    job = run_file(GOOD)
    assert job.status == ImportJob.Status.SUCCEEDED
    assert (job.rows_total, job.rows_imported, job.rows_rejected, job.rows_duplicate) == (50, 50, 0, 0)
    assert members(audience).count() == 50 == audience.member_count
    assert audience.status == Audience.Status.READY and audience.generation == 1
    stored = records(audience)[0]
    assert set(stored) >= {"e", "p", "pd", "fn", "ln", "z"}
    assert "example.com" not in str(stored) and "Müller" not in str(stored).lower()  # hashed, not raw
    assert audience.key_coverage["email"] == 50 and audience.key_coverage["name_zip"] == 50
    assert job.bytes_processed == job.size_bytes and not job.stored_path


def test_duplicates_are_merged_within_and_across_chunks(run_file, audience, monkeypatch):
    monkeypatch.setattr(imports, "CHUNK_ROWS", 7)
    rows = "email\n" + "".join(f"p{i % 20}@example.com\n" for i in range(60))
    rows += "P3@EXAMPLE.COM \n"  # the same person once normalized
    job = run_file(rows)
    assert (job.rows_total, job.rows_imported, job.rows_duplicate) == (61, 20, 41)
    assert members(audience).count() == 20


def test_bad_rows_are_counted_by_reason_and_reported_without_values(run_file, audience):
    text = "E-mail,Mobile,Birthday\n" \
        "good@example.com,,\n" \
        "john at example dot com,12,\n" \
        ",,\n" \
        "=HYPERLINK(\"http://evil\"),+1 555,31/02/1990\n" \
        "ok@example.com,12,\n"  # a bad phone on a good row: the row is kept
    job = run_file(text)
    assert job.status == ImportJob.Status.SUCCEEDED
    assert (job.rows_total, job.rows_imported, job.rows_rejected) == (5, 2, 3)
    assert job.rejections_by_reason == {
        "E-mail: not an email address": 2, "Mobile: not a valid phone number": 2, "no usable match key": 1,
        "Birthday: impossible date": 1,
    } or job.rejections_by_reason["E-mail: not an email address"] == 2
    rejected = list(RejectedRow.objects.filter(import_job=job).values_list("row_number", "column", "reason"))
    assert (3, "E-mail", "not an email address") in rejected
    assert (4, "", "no usable match key") in rejected
    everything = str(rejected) + str(job.rejections_by_reason)
    for raw in ("john at example", "HYPERLINK", "evil", "31/02/1990"):
        assert raw not in everything


def test_only_the_first_rejections_are_kept(run_file, monkeypatch):
    monkeypatch.setattr(imports, "MAX_REJECTED_ROWS", 5)
    monkeypatch.setattr(imports, "CHUNK_ROWS", 3)
    job = run_file("email\n" + "not-an-email\n" * 12 + "ok@example.com\n")
    assert job.rows_rejected == 12 and job.rejected_rows.count() == 5
    assert list(job.rejected_rows.values_list("row_number", flat=True)) == [2, 3, 4, 5, 6]


def test_quoted_newlines_empty_cells_and_short_rows(run_file, audience):
    text = 'email,city,zip\n"a@example.com","New\nYork",10001\nb@example.com\n,,\nc@example.com,,\n'
    job = run_file(text)
    assert (job.rows_total, job.rows_imported, job.rows_rejected) == (4, 3, 1)
    assert job.rejected_rows.get().row_number == 4


def test_default_country_reads_national_phone_numbers(run_file, user):
    gb = Audience.objects.create(owner=user, name="UK", default_country="GB")
    job = run_file("phone\n07911 123456\n", target=gb)
    assert job.rows_imported == 1
    assert records(gb)[0]["p"] == matchkeys.prepare_record({"phone": "+447911123456"},
                                                           default_region=None).stored["p"]


def test_reimport_replaces_membership_and_keeps_no_earlier_versions_nobody_holds(run_file, audience):
    run_file(GOOD)
    first = {bytes(p) for p in members(audience).values_list("person", flat=True)}
    job = run_file("email\nnew1@example.com\nnew2@example.com\n")
    assert members(audience).count() == 2 == audience.member_count
    assert job.target_generation == 2 and audience.generation == 2
    assert (job.members_joined, job.members_changed, job.members_left) == (2, 0, 50)
    assert not first & {bytes(p) for p in members(audience).values_list("person", flat=True)}
    run_file("email\nthird@example.com\n")
    assert list(Member.objects.filter(audience=audience).values_list("generation", flat=True)) == [3]
    assert not MemberVersion.objects.filter(audience=audience).exists()  # no sync holds the old ones


def test_failed_reimport_keeps_the_old_members(run_file, audience):
    run_file(GOOD)
    job = run_file("email\n")  # header only
    assert job.status == ImportJob.Status.FAILED and "no data rows" in job.error_message
    assert members(audience).count() == 50 and audience.generation == 1
    assert audience.status == Audience.Status.READY


def test_unexpected_error_fails_the_job_and_keeps_old_members(run_file, audience, monkeypatch):
    run_file(GOOD)

    def boom(*args, **kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(imports.matchkeys, "prepare_transposed", boom)
    job = run_file(GOOD)
    assert job.status == ImportJob.Status.FAILED and job.error_message == imports.UNEXPECTED_FAILURE
    assert members(audience).count() == 50 and not job.stored_path
    assert set(members(audience).values_list("generation", flat=True)) == {1}


@pytest.mark.parametrize("first", [True, False], ids=["first import", "re-import"])
def test_worker_dying_mid_import_restarts_cleanly_without_duplicates(user, audience, tmp_path, monkeypatch,
                                                                    run_file, first):
    if not first:
        run_file("email\nearlier@example.com\n")
    monkeypatch.setattr(imports, "CHUNK_ROWS", 10)
    path = tmp_path / "f.csv"
    path.write_text(GOOD)
    job = imports.create_import_from_path(owner=user, audience=audience, path=path)
    imports.start_import(job, enqueue=False)
    real_checkpoint, calls = imports._checkpoint, []

    def die_after_two_chunks(*args):
        real_checkpoint(*args)
        calls.append(1)
        if len(calls) == 2:
            raise SystemExit("worker killed")  # not an Exception: nothing catches it, like SIGKILL

    monkeypatch.setattr(imports, "_checkpoint", die_after_two_chunks)
    with pytest.raises(SystemExit):
        import_tasks.import_audience(job.pk)
    job.refresh_from_db()
    audience.refresh_from_db()
    # The chunk being written when the worker died rolled back, and nothing of the file became the audience's
    # membership: a re-import stages it in a temporary table, applied only once the whole file is in; a first
    # import wrote its first chunk straight in (audiences.filling), rows nobody reads while the audience has
    # generation 0.
    assert job.status == ImportJob.Status.RUNNING and job.rows_total == 10 and job.stored_path
    if first:
        assert (audience.generation, audience.member_count, audience.filling_import_id) == (0, 0, job.pk)
        assert Member.objects.filter(audience=audience).count() == 10
    else:
        assert audience.generation == 1 and audience.filling_import_id is None
        assert set(Member.objects.filter(audience=audience).values_list("generation", flat=True)) == {1}
        assert Member.objects.filter(audience=audience).count() == 1

    monkeypatch.setattr(imports, "_checkpoint", real_checkpoint)
    import_tasks.import_audience(job.pk)  # re-delivered at once: the heartbeat is fresh, it may be a live worker's
    job.refresh_from_db()
    assert job.status == ImportJob.Status.RUNNING and job.takeovers == 0
    ImportJob.objects.filter(pk=job.pk).update(
        heartbeat_at=timezone.now() - timedelta(seconds=settings.IMPORT_STALE_AFTER + 1))
    import_tasks.import_audience(job.pk)  # re-delivered once the worker is silent: taken over
    job.refresh_from_db()
    assert job.status == ImportJob.Status.SUCCEEDED and job.takeovers == 1
    assert (job.rows_total, job.rows_imported, job.rows_duplicate) == (50, 50, 0)
    assert members(audience).count() == 50 == audience.member_count
    assert audience.filling_import_id is None
    assert set(members(audience).values_list("generation", flat=True)) == {2 if not first else 1}
    fresh = Audience.objects.create(owner=user, name="Fresh", default_country="US")
    run_file(GOOD, target=fresh)  # the same file imported in one go gives the same people
    assert sorted(records(audience), key=repr) == sorted(records(fresh), key=repr)

    import_tasks.import_audience(job.pk)  # and once more: a finished job is a no-op
    assert Member.objects.filter(audience=audience).count() == 50


def test_nothing_raw_is_logged(run_file, caplog):
    with caplog.at_level(logging.DEBUG):
        run_file("email,phone\nsecret.person@example.com,+14155550123\nbad-email,\n")
    assert "secret.person" not in caplog.text and "4155550123" not in caplog.text and "bad-email" not in caplog.text


def test_mixed_encoding_rows_are_rejected_with_the_column(run_file, monkeypatch):
    monkeypatch.setattr(imports, "SAMPLE_BYTES", 30)  # the Latin-1 row lies past what the sniffer reads
    data = "email,first_name\nzoe@example.com,Zoë\n".encode() + "amelie@example.com,Amélie\n".encode("latin-1")
    job = run_file(data)
    assert job.rows_imported == 1 and job.rows_rejected == 1
    row = job.rejected_rows.get()
    assert (row.row_number, row.column) == (3, "first_name") and "UTF-8" in row.reason


def test_unhashed_values_with_backslashes_quotes_and_tabs_survive_the_bulk_write(run_file, audience):
    # external ids are stored unhashed: the COPY (PostgreSQL) and INSERT (SQLite) paths must keep them exact.
    odd = 'A\\B"C\tD\\\\n'
    job = run_file('external_id\n"' + odd.replace('"', '""') + '"\nplain-1\n')
    assert job.rows_imported == 2
    stored = {record["x"] for record in records(audience)}
    assert stored == {matchkeys.prepare_record({"external_id": odd}, default_region=None).stored["x"], "plain-1"}


def test_memory_budget_empties_value_caches_without_changing_results(run_file, audience, user, monkeypatch):
    run_file(GOOD)
    expected = {matchkeys.fingerprint(stored) for stored in records(audience)}
    other = Audience.objects.create(owner=user, name="B", default_country="US")
    monkeypatch.setattr(imports, "MEMORY_BUDGET_MB", -1_000)  # over budget after every chunk
    monkeypatch.setattr(imports, "MEMORY_CLEAR_EVERY", 1)
    monkeypatch.setattr(imports, "CHUNK_ROWS", 7)
    cleared = []
    real_clear = matchkeys.clear_value_caches
    monkeypatch.setattr(matchkeys, "clear_value_caches", lambda: (cleared.append(1), real_clear()))
    run_file(GOOD, target=other)
    assert len(cleared) == 8
    assert {matchkeys.fingerprint(stored) for stored in records(other)} == expected


def test_over_budget_the_caches_are_emptied_every_few_chunks_not_after_each(run_file, monkeypatch):
    # Freed memory stays resident while the caches refill into it: emptying them after every chunk would only make
    # the import slower.
    monkeypatch.setattr(imports, "CHUNK_ROWS", 5)  # GOOD: 50 rows, 10 chunks
    monkeypatch.setattr(imports, "MEMORY_CLEAR_EVERY", 4)
    resident = iter([100, 120, 300, 300, 300, 300, 300, 300, 300, 300, 300])  # MB: at the start, after each chunk
    monkeypatch.setattr(imports, "_resident_mb", lambda: next(resident))
    cleared = []
    real_clear = matchkeys.clear_value_caches
    monkeypatch.setattr(matchkeys, "clear_value_caches", lambda: (cleared.append(1), real_clear()))
    job = run_file(GOOD)
    # Within 100 + 40 after chunk 1; over it from chunk 2 on: emptied after chunks 2, 6 and 10.
    assert len(cleared) == 3 and job.rows_imported == 50


def test_two_imports_of_one_audience_never_share_a_generation(user, audience, tmp_path):
    jobs = []
    for n, text in enumerate(["email\nfirst@example.com\n", "email\nsecond@example.com\nthird@example.com\n"]):
        path = tmp_path / f"{n}.csv"
        path.write_text(text)
        job = imports.create_import_from_path(owner=user, audience=audience, path=path)
        jobs.append(imports.start_import(job, enqueue=False))
    # Both claim a generation before either finishes: simulate by starting the older one last.
    newer = imports.run_import(jobs[1].pk)
    older = imports.run_import(jobs[0].pk)
    assert newer.target_generation != older.target_generation
    assert older.status == ImportJob.Status.SUCCEEDED and newer.status == ImportJob.Status.SUCCEEDED
    assert members(audience).count() == 1  # the later run wins, its generation is higher
