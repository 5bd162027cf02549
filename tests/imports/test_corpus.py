"""Every malformed upload in the corpus, through the real pages and task: one clear message or a clean
import, never a 500 or a crash, bounded memory, and a rejected-rows download that is safe in a spreadsheet."""

import csv
import io
import resource

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from audiences import imports
from audiences import tasks as import_tasks
from audiences.models import Audience, ImportJob
from tests.imports.corpus import CASES, FAIL

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def test_the_corpus_has_at_least_40_files():
    assert len(CASES) >= 40


@pytest.fixture(autouse=True)
def run_tasks_inline(monkeypatch):
    monkeypatch.setattr(import_tasks.import_audience, "delay", lambda pk: imports.run_import(pk))


PAGE_CASES = sorted(name for name in CASES if name != "200mb-single-field")


@pytest.mark.parametrize("case", PAGE_CASES)
def test_malformed_upload(case, alice_client, user, tmp_path, settings, django_capture_on_commit_callbacks):
    build, (outcome, message) = CASES[case]
    path = build(tmp_path)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with open(path, "rb") as handle:
        response = alice_client.post(reverse("audience_create"), {
            "name": case, "default_country": "US", "file": SimpleUploadedFile(path.name, handle.read())})
    assert response.status_code in (200, 302), response.status_code
    page = response.content.decode(errors="replace")
    job = ImportJob.objects.filter(owner=user).first()

    if response.status_code == 200:  # rejected at upload: one message in the form, nothing kept
        assert outcome == FAIL and message in page, page[:2000]
        assert not Audience.objects.filter(owner=user).exists()
    else:
        mapping_page = alice_client.get(response.url)
        assert mapping_page.status_code == 200
        data = {f"col_{i}": key for i, key in job.column_mapping.items()}
        with django_capture_on_commit_callbacks(execute=True):
            response = alice_client.post(response.url, data)
        assert response.status_code in (200, 302)
        job.refresh_from_db()
        if response.status_code == 200:  # the mapping form refused it
            assert outcome == FAIL and message in response.content.decode(), response.content.decode()[:2000]
        else:
            assert job.status == (ImportJob.Status.FAILED if outcome == FAIL else ImportJob.Status.SUCCEEDED), \
                job.error_message
            if outcome == FAIL:
                assert message in job.error_message
            assert job.error_message != imports.UNEXPECTED_FAILURE
            detail = alice_client.get(response.url)
            assert detail.status_code == 200
            if job.error_message:
                assert job.error_message in detail.content.decode()
            download = alice_client.get(reverse("import_rejections_csv", kwargs={"import_pk": job.pk}))
            rows = list(csv.reader(io.StringIO(b"".join(download.streaming_content).decode())))
            assert all(not cell.startswith(FORMULA_STARTS) for row in rows for cell in row), rows[:10]
    # The upload never stays on disk once the import is over (or was refused).
    if (job is None or job.status != ImportJob.Status.UPLOADED) and settings.UPLOAD_DIR.exists():
        assert not any(settings.UPLOAD_DIR.iterdir())
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    assert grown_mb < 150, f"peak memory grew by {grown_mb:.0f} MB"


def test_200mb_single_field_is_streamed_in_bounded_memory(run_file, user, audience, tmp_path):
    """The 200 MB case without the test client (which builds whole request bodies in memory): the import
    itself reads the field in bounded pieces and names the row."""
    path = CASES["200mb-single-field"][0](tmp_path)
    assert path.stat().st_size > 200 * 1024 * 1024
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    job = imports.create_import_from_path(owner=user, audience=audience, path=path)
    imports.start_import(job, enqueue=False)
    job = imports.run_import(job.pk)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    assert job.status == ImportJob.Status.SUCCEEDED and job.rows_imported == 10
    assert list(job.rejected_rows.values_list("row_number", "reason")) == [(7, imports.LINE_TOO_LONG)]
    assert grown_mb < 50, f"peak memory grew by {grown_mb:.0f} MB"


def test_field_too_large_and_line_too_long_rows_are_named(run_file, monkeypatch):
    monkeypatch.setattr(imports, "FIELD_LIMIT", 100)
    monkeypatch.setattr(imports, "MAX_LINE_CHARS", 1000)
    text = "email,first_name\n" + 'a@example.com,"' + "x" * 200 + '"\n' + "b@example.com," + "y" * 2000 + "\n" \
        + "c@example.com,Zoë\n"
    job = run_file(text)
    reasons = list(job.rejected_rows.values_list("row_number", "reason"))
    assert (2, imports.FIELD_TOO_LARGE) in reasons and (3, imports.LINE_TOO_LONG) in reasons
    assert job.rows_imported == 1 and job.rows_rejected == 2
