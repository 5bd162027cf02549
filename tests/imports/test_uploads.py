"""Uploads on disk: the size limit enforced while the body streams in (nothing past it written anywhere), files 0600
in a 0700 folder, spooled uploads in the upload folder (never the system's temporary folder), and uploads that
wait for their mapping past 24 hours deleted by a beat task, their job marked expired."""

import datetime
import http.client
import os
import stat
import tempfile
import time
import uuid
from urllib.parse import urlsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.urls import reverse
from django.utils import timezone

from audiences import tasks, uploads
from audiences.models import Audience, ImportJob


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def files_in(folder) -> list:
    return list(folder.iterdir()) if folder.exists() else []


class CountingHandler(FileUploadHandler):
    """Placed after the size limit: sees every byte a storing handler would store."""

    seen = 0

    def receive_data_chunk(self, raw_data, start):
        CountingHandler.seen += len(raw_data)
        return raw_data

    def file_complete(self, file_size):
        return None


@pytest.fixture
def limited(settings):
    settings.MAX_UPLOAD_BYTES = 100 * 1024
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024  # anything larger is spooled to disk
    settings.FILE_UPLOAD_HANDLERS = ["audiences.uploads.UploadSizeLimitHandler",
                                     "tests.imports.test_uploads.CountingHandler",
                                     *settings.FILE_UPLOAD_HANDLERS[1:]]
    CountingHandler.seen = 0
    return settings


def big_csv(size: int) -> bytes:
    line = b"someone@example.com,+14155550100\n"
    return b"email,phone\n" + line * (size // len(line) + 1)


def test_an_upload_over_the_limit_stops_at_the_limit_with_a_clear_message(alice_client, limited):
    before = set(os.listdir(tempfile.gettempdir()))
    response = alice_client.post(reverse("audience_create"), {
        "name": "Big", "default_country": "US", "file": SimpleUploadedFile("big.csv", big_csv(3 * 1024 * 1024))})
    assert response.status_code == 200
    assert "larger than the 100 KB limit" in response.content.decode()
    # The body was refused up front (its length says it cannot fit): not a byte of the file was handed on.
    assert CountingHandler.seen == 0
    assert not Audience.objects.exists() and not files_in(limited.UPLOAD_DIR)
    assert set(os.listdir(tempfile.gettempdir())) - before == set()


def test_an_upload_that_passes_the_limit_midway_is_cut_there(alice_client, user, limited):
    audience = Audience.objects.create(owner=user, name="A", default_country="US")
    # Small enough for the request (limit + form overhead), larger than the limit itself.
    response = alice_client.post(reverse("audience_import", kwargs={"audience_pk": audience.pk}), {
        "default_country": "US", "file": SimpleUploadedFile("f.csv", big_csv(110 * 1024)[:110 * 1024])})
    assert response.status_code == 200 and "larger than the 100 KB limit" in response.content.decode()
    assert 0 < CountingHandler.seen <= limited.MAX_UPLOAD_BYTES
    assert not files_in(limited.UPLOAD_DIR) and not audience.imports.exists()


def test_a_spooled_upload_lives_in_the_upload_folder_and_is_private(alice_client, user, limited, monkeypatch):
    spooled = []
    real = uploads._UploadDirFile.__init__

    def spy(self, *args, **kwargs):
        real(self, *args, **kwargs)
        spooled.append((os.path.dirname(self.temporary_file_path()), mode(self.temporary_file_path())))

    monkeypatch.setattr(uploads._UploadDirFile, "__init__", spy)
    content = big_csv(50 * 1024)
    response = alice_client.post(reverse("audience_create"), {
        "name": "N", "default_country": "US", "file": SimpleUploadedFile("f.csv", content)})
    assert response.status_code == 302
    assert spooled == [(str(limited.UPLOAD_DIR), 0o600)]
    job = ImportJob.objects.get()
    assert mode(job.stored_path) == 0o600 and mode(limited.UPLOAD_DIR) == 0o700
    with open(job.stored_path, "rb") as stored:
        assert stored.read() == content


def test_a_small_upload_is_stored_0600_in_a_0700_folder(alice_client, user, settings):
    response = alice_client.post(reverse("audience_create"), {
        "name": "N", "default_country": "US", "file": SimpleUploadedFile("f.csv", b"email\na@example.com\n")})
    assert response.status_code == 302
    job = ImportJob.objects.get()
    assert mode(job.stored_path) == 0o600 and mode(settings.UPLOAD_DIR) == 0o700


def test_an_upload_folder_created_wider_is_closed_to_0700(settings):
    settings.UPLOAD_DIR.mkdir(parents=True)
    settings.UPLOAD_DIR.chmod(0o755)  # as `mkdir -p` makes it
    path, _ = uploads.store_upload(iter([b"email\n"]))
    assert mode(settings.UPLOAD_DIR) == 0o700 and mode(path) == 0o600


def test_the_page_refuses_a_file_over_the_limit_before_sending_it(alice_client, settings):
    settings.MAX_UPLOAD_BYTES = 20 * 1024 * 1024
    page = alice_client.get(reverse("audience_create")).content.decode()
    assert f'data-max-bytes="{20 * 1024 * 1024}"' in page and "larger than the 20 MB limit" in page
    assert "At most 20 MB" in page


@pytest.mark.django_db(transaction=True)
def test_a_streamed_body_over_the_limit_is_never_stored(live_server, user, settings, client):
    """A real HTTP upload, sent in pieces: 20 MB against a 1 MB limit. The server answers with the message; the
    upload folder and the system's temporary folder never hold the file."""
    settings.MAX_UPLOAD_BYTES = 1024 * 1024
    client.force_login(user)
    session = client.cookies["sessionid"].value
    csrf = uuid.uuid4().hex * 2  # any 64-character token: the cookie and the field must match
    boundary = "----upload" + uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrfmiddlewaretoken\"\r\n\r\n{csrf}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nBig\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"default_country\"\r\n\r\nUS\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.csv\"\r\n"
            "Content-Type: text/csv\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    block, blocks = b"someone@example.com,+14155550100\n" * 2000, 300  # 300 x 68 KB: 20 MB
    before = set(os.listdir(tempfile.gettempdir()))
    url = urlsplit(live_server.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    conn.putrequest("POST", reverse("audience_create"))
    conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    conn.putheader("Content-Length", str(len(head) + len(block) * blocks + len(tail)))
    conn.putheader("Cookie", f"sessionid={session}; csrftoken={csrf}")
    conn.putheader("Referer", live_server.url + "/")
    conn.endheaders()
    conn.send(head)
    peak = 0
    for _ in range(blocks):
        conn.send(block)
        if settings.UPLOAD_DIR.exists():
            peak = max([peak, *(p.stat().st_size for p in settings.UPLOAD_DIR.iterdir())])
    conn.send(tail)
    response = conn.getresponse()
    body = response.read().decode()
    conn.close()
    assert response.status == 200 and "larger than the 1 MB limit" in body
    assert peak == 0 and not Audience.objects.exists()
    assert not files_in(settings.UPLOAD_DIR)
    assert set(os.listdir(tempfile.gettempdir())) - before == set()


# ---------------------------------------------------------------------------------------------------------
# Expiry


def _waiting(user, audience, tmp_path, *, hours_ago: float) -> ImportJob:
    path = tmp_path / f"{uuid.uuid4().hex}.csv"
    path.write_bytes(b"email\na@example.com\n")
    from audiences import imports

    job = imports.create_import_from_path(owner=user, audience=audience, path=path)
    ImportJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - datetime.timedelta(hours=hours_ago))
    return job


def test_uploads_waiting_for_their_mapping_past_24_hours_expire(user, audience, tmp_path, alice_client):
    old = _waiting(user, audience, tmp_path, hours_ago=25)
    fresh = _waiting(user, audience, tmp_path, hours_ago=2)
    tasks.expire_pending_uploads()
    old.refresh_from_db()
    fresh.refresh_from_db()
    assert old.status == ImportJob.Status.EXPIRED and not old.stored_path and "24 hours" in old.error_message
    assert fresh.status == ImportJob.Status.UPLOADED and os.path.exists(fresh.stored_path)
    assert sorted(os.listdir(os.path.dirname(fresh.stored_path))) == [os.path.basename(fresh.stored_path)]
    # The mapping page of an expired upload sends the marketer to the audience, which says why.
    response = alice_client.get(reverse("import_mapping", kwargs={"import_pk": old.pk}))
    assert response.status_code == 302
    page = alice_client.get(response.url).content.decode()
    assert "24 hours" in page and "Upload it again" in page


def test_a_job_whose_mapping_was_just_submitted_is_not_expired(user, audience, tmp_path):
    from audiences import imports

    job = _waiting(user, audience, tmp_path, hours_ago=30)
    imports.start_import(job, enqueue=False)
    assert uploads.expire_pending_uploads() == []
    job.refresh_from_db()
    assert job.status == ImportJob.Status.QUEUED and os.path.exists(job.stored_path)


def test_files_no_import_waits_for_are_swept_after_the_same_time(user, audience, tmp_path, settings):
    kept = _waiting(user, audience, tmp_path, hours_ago=1)
    folder = settings.UPLOAD_DIR
    stale, recent = folder / "orphan-old.csv", folder / "orphan-new.csv"
    stale.write_bytes(b"x")
    recent.write_bytes(b"x")
    long_ago = time.time() - 25 * 3600
    os.utime(stale, (long_ago, long_ago))
    os.utime(kept.stored_path, (long_ago, long_ago))  # old on disk, but its job still waits (1 h)
    uploads.expire_pending_uploads()
    assert not stale.exists() and recent.exists() and os.path.exists(kept.stored_path)


def test_the_expiry_runs_from_celery_beat(db):
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(task="audiences.expire_pending_uploads")
    assert task.enabled and task.schedule.run_every == datetime.timedelta(hours=1)
