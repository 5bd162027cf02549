"""The mapping page: the file as read (encoding in words, three values per column, another encoding to pick), the
person key with its fallback rule, a re-import starting from the last mapping, and what would change, before
anything is imported."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from audiences import imports
from audiences import tasks as import_tasks
from audiences.models import Audience, ImportJob
from audiences.storage import all_records
from platforms import matchkeys

FRENCH = ("prenom;nom;email;ville;Cust Ref\n"
          "Éloïse;Lefèvre;marie.lefevre@free.fr;Besançon;C1\n"
          "Gaëlle;Núñez;gaelle@orange.fr;Orléans;C2\n"
          "Jérôme;Dubois;jerome@laposte.net;Nîmes;C3\n"
          "Zoé;Martin;zoe@free.fr;Sète;C4\n").encode("latin-1")


@pytest.fixture(autouse=True)
def run_tasks_inline(monkeypatch):
    monkeypatch.setattr(import_tasks.import_audience, "delay", lambda pk: imports.run_import(pk))


def upload(client, content: bytes, name="clients.csv"):
    response = client.post(reverse("audience_create"), {
        "name": "Clients", "default_country": "FR", "file": SimpleUploadedFile(name, content)})
    assert response.status_code == 302, response.content.decode()[:3000]
    return response.url


def reimport(client, audience, content: bytes):
    response = client.post(reverse("audience_import", kwargs={"audience_pk": audience.pk}), {
        "default_country": "FR", "file": SimpleUploadedFile("clients.csv", content)})
    assert response.status_code == 302, response.content.decode()[:3000]
    return response.url


def person_key_options(page: str) -> list[tuple[str, bool]]:
    """(value, selected) of the person-key select's options."""
    select = re.search(r'<select name="person_key"[^>]*>(.*?)</select>', page, re.S).group(1)
    return [(value, bool(selected)) for value, selected in re.findall(r'<option value="([^"]*)"( selected)?', select)]


def post_mapping(client, url, data, capture):
    with capture(execute=True):
        return client.post(url, data)


def test_the_page_names_the_encoding_and_shows_three_values_per_column(alice_client, user):
    url = upload(alice_client, FRENCH)
    response = alice_client.get(url)
    page = response.content.decode()
    assert "Western European (Windows-1252)" in page and "semicolon-separated" in page
    assert "<li>Lefèvre</li><li>Núñez</li><li>Dubois</li>" in page and "<li>Martin</li>" not in page
    assert "<li>Besançon</li>" in page
    assert "no-store" in response["Cache-Control"]  # values from the file are never kept by a cache
    job = ImportJob.objects.get()
    assert "Lefèvre" not in str(job.__dict__)  # nor by the job


def test_picking_another_encoding_changes_the_samples_before_importing(alice_client, user):
    url = upload(alice_client, FRENCH)
    job = ImportJob.objects.get()
    data = {"encoding": "cp1250", "preview": "1", **{f"col_{i}": k for i, k in job.column_mapping.items()}}
    page = alice_client.post(url, data).content.decode()
    assert "<li>Lefčvre</li>" in page and "Central European (Windows-1250)" in page
    assert "(detected: Western European (Windows-1252))" in page
    job.refresh_from_db()
    assert job.status == ImportJob.Status.UPLOADED and job.encoding == "cp1252"  # nothing saved, nothing imported
    page = alice_client.post(url, {**data, "encoding": "cp1252"}).content.decode()
    assert "<li>Lefèvre</li>" in page


def test_importing_in_a_chosen_encoding_uses_it(alice_client, user, django_capture_on_commit_callbacks):
    url = upload(alice_client, FRENCH)
    job = ImportJob.objects.get()
    data = {"encoding": "cp1250", **{f"col_{i}": k for i, k in job.column_mapping.items()}, "col_4": "external_id"}
    response = post_mapping(alice_client, url, data, django_capture_on_commit_callbacks)
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == ImportJob.Status.SUCCEEDED and job.encoding == "cp1250"
    misread = matchkeys.prepare_record({"last_name": "Lefčvre"}, default_region="FR").stored["ln"]
    assert misread in {r.get("ln") for _, _, r in all_records(job.audience_id)}


def test_an_unknown_encoding_is_a_notice_not_an_error_page(alice_client, user):
    url = upload(alice_client, FRENCH)
    response = alice_client.post(url, {"encoding": "klingon", "col_0": "first_name"})
    assert response.status_code == 200 and "Choose one of the encodings listed" in response.content.decode()
    assert ImportJob.objects.get().status == ImportJob.Status.UPLOADED


def test_the_person_key_is_shown_with_its_fallback_in_words(alice_client, user, django_capture_on_commit_callbacks):
    url = upload(alice_client, FRENCH)
    page = alice_client.get(url).content.decode()
    assert "Person key" in page and 'name="person_key"' in page
    # Only email is mapped so far (Cust Ref is not recognised): email is the person key.
    assert person_key_options(page) == [("email", True)]
    job = ImportJob.objects.get()
    data = {**{f"col_{i}": k for i, k in job.column_mapping.items()}, "col_4": "external_id", "preview": "1"}
    # Without a choice posted, the default: the external id, now that a column maps to it.
    page = alice_client.post(url, data).content.decode()
    assert person_key_options(page) == [("external_id", True), ("email", False)]
    assert "A row without an external ID is identified by its email address, and failing those by first and " \
           "last name with postal code, city and date of birth." in page
    # The choice the page posts stays.
    page = alice_client.post(url, {**data, "person_key": "email"}).content.decode()
    assert person_key_options(page) == [("external_id", False), ("email", True)]
    assert "A row without an email address is identified by its external ID, and failing those by" in page
    data.pop("preview")
    response = post_mapping(alice_client, url, {**data, "person_key": "external_id"},
                            django_capture_on_commit_callbacks)
    assert response.status_code == 302
    audience = Audience.objects.get()
    assert audience.person_key == "external_id" and ImportJob.objects.get().person_key == "external_id"


def test_a_person_key_without_its_column_is_refused_inline(alice_client, user):
    url = upload(alice_client, FRENCH)
    job = ImportJob.objects.get()
    response = alice_client.post(url, {**{f"col_{i}": k for i, k in job.column_mapping.items()},
                                       "person_key": "phone"})
    assert response.status_code == 200 and "choice" in response.content.decode()
    assert ImportJob.objects.get().status == ImportJob.Status.UPLOADED


@pytest.fixture
def imported(alice_client, user, django_capture_on_commit_callbacks):
    """An audience of four people, imported with Cust Ref mapped by hand and identified by it."""
    url = upload(alice_client, FRENCH)
    job = ImportJob.objects.get()
    data = {**{f"col_{i}": k for i, k in job.column_mapping.items()}, "col_4": "external_id",
            "person_key": "external_id"}
    post_mapping(alice_client, url, data, django_capture_on_commit_callbacks)
    audience = Audience.objects.get()
    assert audience.member_count == 4 and audience.last_mapping["Cust Ref"] == "external_id"
    return audience


def test_a_reimport_starts_from_the_last_mapping_and_person_key(alice_client, imported):
    url = reimport(alice_client, imported, FRENCH)
    job = imported.imports.filter(status=ImportJob.Status.UPLOADED).get()
    assert job.column_mapping["4"] == "external_id"  # the guesser alone leaves "Cust Ref" unmapped
    page = alice_client.get(url).content.decode()
    assert person_key_options(page) == [("external_id", True), ("email", False)]
    assert "this audience's last import" in page and "re-identifies" not in page and "Mapped last time" not in page


def test_a_missing_or_unmapped_column_is_announced_with_the_members_it_changes(alice_client, imported):
    without_city = FRENCH.decode("latin-1").replace(";ville", "").replace(";Besançon", "").replace(";Orléans", "")
    without_city = without_city.replace(";Nîmes", "").replace(";Sète", "").encode("latin-1")
    url = reimport(alice_client, imported, without_city)
    page = alice_client.get(url).content.decode()
    assert "Mapped last time, not now" in page
    assert "“ville” (City) is not in this file: the 4 members with city lose it" in page
    job = imported.imports.filter(status=ImportJob.Status.UPLOADED).get()
    data = {**{f"col_{i}": k for i, k in job.column_mapping.items()}, "col_2": "", "preview": "1"}
    page = alice_client.post(url, data).content.decode()
    assert "“email” (Email) is not mapped: the 4 members with email lose it" in page


def test_changing_the_person_key_warns_and_needs_a_confirmation(alice_client, imported,
                                                                 django_capture_on_commit_callbacks):
    url = reimport(alice_client, imported, FRENCH)
    job = imported.imports.filter(status=ImportJob.Status.UPLOADED).get()
    data = {**{f"col_{i}": k for i, k in job.column_mapping.items()}, "person_key": "email"}
    page = alice_client.post(url, {**data, "preview": "1"}).content.decode()
    assert "This re-identifies all 4 members" in page and "identified by External ID today" in page
    response = post_mapping(alice_client, url, data, django_capture_on_commit_callbacks)
    assert response.status_code == 200 and "Tick the box to re-identify all 4 members" in response.content.decode()
    job.refresh_from_db()
    assert job.status == ImportJob.Status.UPLOADED
    response = post_mapping(alice_client, url, {**data, "confirm_reidentify": "on"},
                            django_capture_on_commit_callbacks)
    assert response.status_code == 302
    imported.refresh_from_db()
    assert imported.person_key == "email" and imported.member_count == 4
    job.refresh_from_db()
    assert (job.members_joined, job.members_left) == (4, 4)  # every member re-identified


def test_the_preview_trigger_and_the_no_script_button_are_on_the_page(alice_client, user):
    page = alice_client.get(upload(alice_client, FRENCH)).content.decode()
    assert 'hx-trigger="change from:closest form"' in page and "hx-vals='{\"preview\": \"1\"}'" in page
    assert 'name="preview" value="1"' in page


def test_a_file_without_an_identifying_column_says_how_rows_are_told_apart(alice_client, user,
                                                                            django_capture_on_commit_callbacks):
    url = upload(alice_client, "prenom;nom;ville\nZoé;Martin;Sète\nAnne;Durand;Lyon\n".encode())
    page = alice_client.get(url).content.decode()
    assert person_key_options(page) == [("", True)]
    assert "Each row is identified by its first and last name with postal code, city and date of birth." in page
    job = ImportJob.objects.get()
    response = post_mapping(alice_client, url, {f"col_{i}": k for i, k in job.column_mapping.items()},
                            django_capture_on_commit_callbacks)
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == ImportJob.Status.SUCCEEDED and job.rows_imported == 2


def test_a_rows_label_shows_the_header_alone_and_keeps_column_for_screen_readers(alice_client, user):
    page = alice_client.get(upload(alice_client, FRENCH)).content.decode()
    assert "<th scope=\"col\">Column in your file</th>" in page
    labels = re.findall(r'<label for="id_col_\d+">(.*?)</label>', page)
    assert labels[2] == '<span class="visually-hidden">Column </span>email'
    assert labels[4] == '<span class="visually-hidden">Column </span>Cust Ref'
    # what is shown is the header alone: without the hidden prefix, no label starts with "Column"
    shown = [re.sub(r'<span class="visually-hidden">[^<]*</span>', "", label) for label in labels]
    assert shown == ["prenom", "nom", "email", "ville", "Cust Ref"]
