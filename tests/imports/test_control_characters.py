"""NUL and other control characters: an unreadable header is one clear message (never a 500, the upload never left
behind), a cell holding one is dropped with a reason while its row is imported, and no raw value reaches a log
line, the database's own errors included. Meaningful on PostgreSQL (CI), where text cannot hold NUL at all."""

import logging

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.urls import reverse

from audiences import imports, sniffing
from audiences.models import Audience, ImportJob
from audiences.storage import all_records

on_postgres = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL refuses NUL in text")


def records(audience):
    return [stored for _, _, stored in all_records(audience.pk)]


@pytest.mark.parametrize("header", [b"email,cust\x00id\n", b"\x00email,phone\n", b"email,ph\x1bone\n"])
def test_a_control_character_in_the_header_is_one_clear_message(alice_client, user, settings, header):
    response = alice_client.post(reverse("audience_create"), {
        "name": "N", "default_country": "FR",
        "file": SimpleUploadedFile("f.csv", header + b"a@example.com,1\nb@example.com,2\n")})
    assert response.status_code == 200
    assert "control characters such as NUL bytes" in response.content.decode()
    assert not Audience.objects.exists() and not ImportJob.objects.exists()
    assert not any(settings.UPLOAD_DIR.iterdir())  # the upload is gone at once


def test_a_control_character_in_the_header_fails_the_job_without_a_file(user, audience, tmp_path):
    path = tmp_path / "f.csv"
    path.write_bytes(b"email,cust\x00id\na@example.com,1\n")
    job = imports.create_import_from_path(owner=user, audience=audience, path=path)
    assert job.status == ImportJob.Status.FAILED and job.error_message == sniffing.UNREADABLE_HEADER
    assert not job.stored_path and job.headers == []


def test_a_nul_in_a_cell_drops_that_value_and_keeps_the_row(run_file, audience, caplog):
    text = ("external_id,email,first_name,state\n"
            "secret\x00id,zoe@example.com,Zo\x00e,C\x00A\n"
            "C2,ann\x07@example.com,Ann,NY\n"
            "C3,bob@example.com,Bob,TX\n")
    with caplog.at_level(logging.DEBUG):
        job = run_file(text)
    assert job.status == ImportJob.Status.SUCCEEDED, job.error_message
    assert (job.rows_total, job.rows_imported, job.rows_rejected) == (3, 3, 0)
    counts = {column["column"]: column for column in job.column_counts}
    assert counts["external_id"]["dropped"] == {imports.CONTROL_REASON: 1} and counts["external_id"]["used"] == 2
    assert counts["first_name"]["dropped"] == {imports.CONTROL_REASON: 1}
    assert counts["email"]["dropped"] == {imports.CONTROL_REASON: 1}
    assert counts["state"]["dropped"] == {imports.CONTROL_REASON: 1}
    stored = records(audience)
    assert {r.get("x") for r in stored} == {None, "C2", "C3"}
    assert not any("\x00" in str(value) for r in stored for value in r.values())
    assert "secret" not in caplog.text and "ann" not in caplog.text.lower().replace("annotate", "")


def test_a_row_whose_only_key_holds_a_nul_is_rejected_with_that_reason(run_file):
    job = run_file("email\nzo\x00e@example.com\nok@example.com\n")
    assert (job.rows_imported, job.rows_rejected) == (1, 1)
    assert job.rejections_by_reason == {f"email: {imports.CONTROL_REASON}": 1}
    assert list(job.rejected_rows.values_list("row_number", "column", "reason")) == [(2, "email",
                                                                                      imports.CONTROL_REASON)]


@on_postgres
def test_a_value_the_database_refuses_is_named_by_row_and_never_logged(run_file, audience, monkeypatch, caplog):
    """Were a NUL ever to reach PostgreSQL (the per-cell check switched off here), the import names the row and the
    error's class, and no log line quotes the value (PostgreSQL's error context does)."""
    run_file("email\nkeep@example.com\n")
    before = records(audience)
    monkeypatch.setattr(imports, "_empty_control_cells", lambda chunk, mapped: {})
    with caplog.at_level(logging.DEBUG):
        job = run_file("external_id,email\nC1,a@example.com\nsecret\x00value,b@example.com\nC3,c@example.com\n")
    assert job.status == ImportJob.Status.FAILED
    assert job.error_message.startswith("Row 3 holds a value the database refused")
    assert "row 3" in caplog.text and "secret" not in caplog.text and "secret" not in job.error_message
    audience.refresh_from_db()
    assert records(audience) == before and audience.member_count == 1  # nothing changed
    assert not job.stored_path


def test_nul_in_the_file_name_and_form_fields_never_500s(alice_client, user):
    response = alice_client.post(reverse("audience_create"), {
        "name": "N", "default_country": "FR",
        "file": SimpleUploadedFile("cu\x00st\x01omers.csv", b"email\na@example.com\n")})
    assert response.status_code == 302
    assert ImportJob.objects.get().original_filename == "customers.csv"
