"""Audience and import pages: the flow through the browser's requests, owner scoping, no 500 on junk."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from audiences import imports
from audiences import tasks as import_tasks
from audiences.models import Audience, ImportJob, RejectedRow
from tests.sample_form import submit_sample_form


@pytest.fixture(autouse=True)
def run_tasks_inline(monkeypatch):
    """The Celery task runs in-process once the request's transaction commits."""
    monkeypatch.setattr(import_tasks.import_audience, "delay", lambda pk: imports.run_import(pk))


def upload(client, content: bytes, name="customers.csv", **extra):
    data = {"name": "Newsletter", "default_country": "US", "file": SimpleUploadedFile(name, content), **extra}
    return client.post(reverse("audience_create"), data)


def test_list_has_an_empty_state_pointing_to_upload(alice_client):
    page = alice_client.get(reverse("audience_list")).content.decode()
    assert "No audiences yet" in page and reverse("audience_create") in page


def test_create_page_requires_name_and_country(alice_client):
    page = alice_client.get(reverse("audience_create")).content.decode()
    assert "Default country" in page and "Use the sample file" in page
    response = alice_client.post(reverse("audience_create"), {"name": "", "default_country": ""})
    assert response.status_code == 200
    assert "This field is required" in response.content.decode()
    assert not Audience.objects.exists()


def test_upload_map_import_and_read_the_report(alice_client, user, django_capture_on_commit_callbacks, settings):
    content = b"E-mail,Cust Ref,Phone\nzoe@example.com,CR-1,\nnot-an-email,,=CMD()\n"
    response = upload(alice_client, content)
    job = ImportJob.objects.get(owner=user)
    assert response.status_code == 302 and response.url == reverse("import_mapping", kwargs={"import_pk": job.pk})
    assert job.stored_path.startswith(str(settings.UPLOAD_DIR))
    page = alice_client.get(response.url).content.decode()
    assert '<span class="visually-hidden">Column </span>Cust Ref</label>' in page and 'data-column="Cust Ref"' in page

    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(reverse("import_mapping", kwargs={"import_pk": job.pk}),
                                     {"col_0": "email", "col_1": "external_id", "col_2": "phone"})
    audience = Audience.objects.get(owner=user)
    assert response.url == reverse("audience_detail", kwargs={"audience_pk": audience.pk})
    job.refresh_from_db()
    assert job.status == "succeeded" and job.rows_imported == 1 and job.rows_rejected == 1 and not job.stored_path
    page = alice_client.get(response.url).content.decode()
    assert "badge-ready" in page and "Rejected rows" in page and "row 3" in page
    assert "not-an-email" not in page and "CMD" not in page
    assert reverse("import_rejections_csv", kwargs={"import_pk": job.pk}) in page
    assert 'include' not in page  # the syncs partial rendered, not the tag


def test_sample_file_button_creates_an_import(alice_client, user):
    response = alice_client.post(reverse("audience_create"),
                                 {"name": "Sample", "default_country": "GB", "use_sample": "1"})
    job = ImportJob.objects.get(owner=user)
    assert response.status_code == 302 and job.original_filename == "sample-customers.csv"
    assert job.headers[0] == "E-mail" and job.column_mapping["0"] == "email"


def test_sample_file_with_nothing_filled_in_gets_the_samples_name_and_country(alice_client, user):
    # A newcomer's first click: the button skips the browser's required-field checks (formnovalidate).
    response = alice_client.post(reverse("audience_create"), {"name": "  ", "default_country": "", "use_sample": "1"})
    audience = Audience.objects.get(owner=user)
    assert response.status_code == 302
    assert (audience.name, audience.default_country) == ("Sample customers", "US")


def test_an_upload_without_a_name_is_still_refused(alice_client, user):
    response = alice_client.post(reverse("audience_create"), {"name": "", "default_country": "",
                                 "file": SimpleUploadedFile("a.csv", b"email\na@example.com\n")})
    assert response.status_code == 200 and not Audience.objects.exists()


def test_unusable_upload_shows_one_message_and_creates_nothing(alice_client, settings):
    response = upload(alice_client, b"PK\x03\x04" + b"\x00" * 200, name="export.csv")
    assert response.status_code == 200
    assert "ZIP archive" in response.content.decode()
    assert not Audience.objects.exists() and not ImportJob.objects.exists()
    assert not any(settings.UPLOAD_DIR.iterdir())


def test_htmx_upload_redirects_with_hx_redirect(alice_client, user):
    response = alice_client.post(reverse("audience_create"), {"name": "N", "default_country": "US",
                                 "file": SimpleUploadedFile("a.csv", b"email\na@example.com\n")},
                                 HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and response["HX-Redirect"].endswith("/mapping/")


def test_progress_partial_polls_while_running_then_stops_with_refresh(alice_client, user):
    audience = Audience.objects.create(owner=user, name="A", default_country="US")
    job = ImportJob.objects.create(owner=user, audience=audience, original_filename="f.csv", status="running",
                                   size_bytes=1000, bytes_processed=250, rows_total=1234)
    url = reverse("import_progress", kwargs={"import_pk": job.pk})
    response = alice_client.get(url, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200 and 'hx-trigger="every 1s"' in body and "<progress" in body
    assert "25 %" in body and "1234 rows processed" in body
    ImportJob.objects.filter(pk=job.pk).update(status="succeeded", rows_imported=1200, rows_rejected=34)
    response = alice_client.get(url, HTTP_HX_REQUEST="true")
    assert response.status_code == 286 and response["HX-Refresh"] == "true"
    assert "every 1s" not in response.content.decode() and "1200" in response.content.decode()


def test_rejected_rows_csv_escapes_formula_cells(alice_client, user):
    audience = Audience.objects.create(owner=user, name="A", default_country="US")
    job = ImportJob.objects.create(owner=user, audience=audience, original_filename="f.csv", status="succeeded")
    for n, column in enumerate(["=cmd|'/c calc'!A1", "+1", "-2", "@SUM(A1)", "\tx", "\rx", "E-mail"], start=2):
        RejectedRow.objects.create(import_job=job, row_number=n, column=column, reason="not an email address")
    response = alice_client.get(reverse("import_rejections_csv", kwargs={"import_pk": job.pk}))
    assert response["Content-Type"].startswith("text/csv") and "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["row", "column", "reason"]
    columns = [r[1] for r in rows[1:]]
    assert columns[-1] == "E-mail"
    assert all(c.startswith("'") for c in columns[:-1])


def test_reimport_page_replaces_members(alice_client, user, django_capture_on_commit_callbacks):
    audience = Audience.objects.create(owner=user, name="A", default_country="US")
    url = reverse("audience_import", kwargs={"audience_pk": audience.pk})
    assert "replaces" in alice_client.get(url).content.decode()
    for content in (b"email\na@example.com\nb@example.com\n", b"email\nc@example.com\n"):
        response = alice_client.post(url, {"default_country": "US", "file": SimpleUploadedFile("f.csv", content)})
        job = ImportJob.objects.filter(audience=audience).first()
        with django_capture_on_commit_callbacks(execute=True):
            alice_client.post(response.url, {"col_0": "email"})
    audience.refresh_from_db()
    assert audience.member_count == 1 and audience.generation == 2 and job.status == "uploaded"


def test_detail_shows_coverage_and_platform_keys(alice_client, user):
    audience = Audience.objects.create(owner=user, name="A", default_country="US", member_count=10,
                                       key_coverage={"email": 10, "phone": 4}, status="ready", generation=1)
    page = alice_client.get(reverse("audience_detail", kwargs={"audience_pk": audience.pk})).content.decode()
    assert "Match-key coverage" in page and "40 %" in page and "Meta" in page and "Which platforms" in page


def test_delete_removes_the_audience(alice_client, user):
    audience = Audience.objects.create(owner=user, name="A", default_country="US")
    response = alice_client.post(reverse("audience_delete", kwargs={"audience_pk": audience.pk}))
    # Marked at once (its rows go in a background task, see tests/sync/test_delete_audience.py) and out of sight.
    assert response.status_code == 302 and Audience.objects.get().status == Audience.Status.DELETING
    assert not Audience.objects.visible().exists()
    assert alice_client.get(reverse("audience_delete", kwargs={"audience_pk": 1})).status_code == 405


def test_other_users_objects_are_404(client, user, other_user):
    audience = Audience.objects.create(owner=user, name="Alice VIPs", default_country="US")
    job = ImportJob.objects.create(owner=user, audience=audience, original_filename="f.csv", headers=["email"])
    client.force_login(other_user)
    for name, kwargs in [("audience_detail", {"audience_pk": audience.pk}),
                         ("audience_import", {"audience_pk": audience.pk}),
                         ("import_mapping", {"import_pk": job.pk}),
                         ("import_progress", {"import_pk": job.pk}),
                         ("import_rejections_csv", {"import_pk": job.pk})]:
        assert client.get(reverse(name, kwargs=kwargs)).status_code == 404, name
    assert client.post(reverse("audience_delete", kwargs={"audience_pk": audience.pk})).status_code == 404
    assert client.post(reverse("import_mapping", kwargs={"import_pk": job.pk}), {"col_0": "email"}).status_code == 404
    assert Audience.objects.filter(pk=audience.pk).exists()
    assert "Alice VIPs" not in client.get(reverse("audience_list")).content.decode()


@pytest.mark.parametrize("junk", [
    {"name": "x" * 5000, "default_country": "US"},
    {"name": "N", "default_country": "ZZ"},
    {"name": "N", "default_country": "US", "use_sample": "maybe"},
    {"name": "\x00", "default_country": "\x00"},
])
def test_junk_form_input_never_500s(alice_client, junk):
    assert alice_client.post(reverse("audience_create"), junk).status_code in (200, 302)


def test_mapping_junk_is_an_inline_error(alice_client, user):
    audience = Audience.objects.create(owner=user, name="A", default_country="US")
    job = ImportJob.objects.create(owner=user, audience=audience, original_filename="f.csv",
                                   headers=["a", "b"], column_mapping={"0": "", "1": ""})
    url = reverse("import_mapping", kwargs={"import_pk": job.pk})
    for data in ({"col_0": "email", "col_1": "email"}, {"col_0": "<script>"}, {}):
        response = alice_client.post(url, data)
        assert response.status_code == 200 and "<script>" not in response.content.decode().split("<main")[1]


def test_large_upload_spooled_by_django_is_moved_into_upload_dir(alice_client, user, settings):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 10  # anything larger goes to a temporary file first
    content = b"email\n" + b"".join(b"p%d@example.com\n" % i for i in range(200))
    response = upload(alice_client, content)
    job = ImportJob.objects.get(owner=user)
    assert response.status_code == 302 and job.size_bytes == len(content)
    assert job.stored_path.startswith(str(settings.UPLOAD_DIR))
    with open(job.stored_path, "rb") as stored:
        assert stored.read() == content


def test_the_empty_list_creates_the_sample_audience_in_one_click(user):
    response, audience = submit_sample_form(reverse("audience_list"), user)
    job = ImportJob.objects.get(audience=audience)
    assert response.status_code == 302 and response.url == reverse("import_mapping", kwargs={"import_pk": job.pk})
    assert (audience.name, job.original_filename) == ("Sample customers", "sample-customers.csv")
