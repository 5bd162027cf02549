"""Uploaded customer files on disk: where they live, how they arrive, and when they go.

- Every upload lives under ``settings.UPLOAD_DIR`` (mode 0700) in a file of mode 0600 with a random name, never
  under static or media, and is deleted once its import ends (audiences.imports), or after
  ``UPLOAD_PENDING_HOURS`` (24) when nobody mapped its columns (``expire_pending_uploads``, a beat task).
- The size limit (``MAX_UPLOAD_BYTES``) is enforced while the request body streams in
  (``UploadSizeLimitHandler``, the first of ``FILE_UPLOAD_HANDLERS``): the upload stops at the limit, the rest of
  the body is read and thrown away, and the form says why. A large upload that Django spools to disk is spooled
  into the upload folder itself (``UploadDirFileHandler``), not the system's temporary folder, so it is moved into
  place by a rename and is never readable by other users.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import TemporaryUploadedFile, UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopUpload, TemporaryFileUploadHandler
from django.utils import timezone

logger = logging.getLogger(__name__)

# What a multipart body carries besides the file (the other fields, boundaries, part headers): a body longer than
# the limit plus this is refused before a byte of the file is kept.
FORM_OVERHEAD_BYTES = 64 * 1024
# Spooled uploads in the upload folder start with this, so the expiry sweep can tell them from stored files.
INCOMING_PREFIX = "incoming-"


class UnusableFile(Exception):  # noqa: N818 - product word: the file cannot be used
    """The file cannot be imported at all; ``str(exc)`` is the one message shown to the marketer."""


def size_text(limit: int) -> str:
    """A byte count in words: "20 MB", "5 GB", "512 KB"."""
    for unit, size in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if limit >= size:
            value = limit / size
            return f"{value:,.0f} {unit}" if value == int(value) or value >= 10 else f"{value:,.1f} {unit}"
    return f"{limit:,} bytes"


def too_large_message(limit: int | None = None) -> str:
    limit = settings.MAX_UPLOAD_BYTES if limit is None else limit
    return f"The file is larger than the {size_text(limit)} limit. Split it, or remove columns you do not need."


def upload_dir() -> Path:
    """The upload folder, created 0700 (and closed to 0700 if it was created more open, e.g. by an older mkdir)."""
    path = Path(settings.UPLOAD_DIR)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        try:
            path.chmod(0o700)
        except PermissionError:  # not ours (a mounted volume): say so once per process start, carry on
            logger.warning("upload folder %s is mode %o and cannot be changed to 0700", path, mode)
    return path


def _new_upload_path() -> Path:
    return upload_dir() / f"{uuid.uuid4().hex}.csv"


def _open_private(path: Path):
    """A new file opened for writing with mode 0600 (whatever the umask), refusing to overwrite."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")


def store_upload(chunks, *, max_bytes: int | None = None) -> tuple[Path, int]:
    """Write an upload (an iterable of byte chunks) under UPLOAD_DIR with a random name, mode 0600; returns
    (path, size). Raises UnusableFile past MAX_UPLOAD_BYTES (the partial file is removed)."""
    limit = settings.MAX_UPLOAD_BYTES if max_bytes is None else max_bytes
    path = _new_upload_path()
    size = 0
    try:
        with _open_private(path) as out:
            for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise UnusableFile(too_large_message(limit))
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, size


def store_django_upload(upload) -> tuple[Path, int]:
    """A big upload Django spooled to a file (in the upload folder, see UploadDirFileHandler) is moved, not copied
    (a multi-GB file is written once); a small in-memory one is written out in chunks."""
    temporary = getattr(upload, "temporary_file_path", None)
    if temporary is None:
        return store_upload(upload.chunks())
    if upload.size > settings.MAX_UPLOAD_BYTES:
        raise UnusableFile(too_large_message())
    path = _new_upload_path()
    shutil.move(temporary(), path)  # Django ignores the missing temporary file when it closes the upload
    os.chmod(path, 0o600)
    return path, path.stat().st_size


def copy_chunks(path: Path, size: int = 1024 * 1024):
    with open(path, "rb") as src:
        while chunk := src.read(size):
            yield chunk


def delete_upload(job) -> None:
    """Remove the job's stored file (idempotent) and forget its path."""
    from audiences.models import ImportJob

    if job.stored_path:
        try:
            Path(job.stored_path).unlink(missing_ok=True)
        except OSError:
            logger.warning("import %s: could not delete the uploaded file", job.pk)
        job.stored_path = ""
        ImportJob.objects.filter(pk=job.pk).update(stored_path="")


# ---------------------------------------------------------------------------------------------------------
# Upload handlers (settings.FILE_UPLOAD_HANDLERS)


class UploadSizeLimitHandler(FileUploadHandler):
    """Stops a file upload as soon as it passes ``MAX_UPLOAD_BYTES`` (or at once when the request announces a body
    that cannot fit), before the handlers after it store another byte. Django then reads the rest of the body and
    throws it away (StopUpload without a connection reset, so the browser gets the page that says why); the view
    finds the message in ``request.upload_refused``."""

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):  # noqa: N803 - Django's
        self.limit = settings.MAX_UPLOAD_BYTES
        self.refuse = content_length > self.limit + FORM_OVERHEAD_BYTES
        return None

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        if getattr(self, "refuse", False):
            self._stop()

    def receive_data_chunk(self, raw_data, start):
        if start + len(raw_data) > self.limit:
            self._stop()
        return raw_data

    def file_complete(self, file_size):
        return None

    def _stop(self):
        if self.request is not None:
            self.request.upload_refused = too_large_message(self.limit)
        raise StopUpload(connection_reset=False)


class _UploadDirFile(TemporaryUploadedFile):
    """Django's temporary upload file, created in the upload folder (mode 0600, as tempfile makes it)."""

    def __init__(self, name, content_type, size, charset, content_type_extra=None):
        _, ext = os.path.splitext(name)
        ext = ext if ext.isascii() and ext[1:].isalnum() and len(ext) <= 8 else ""
        file = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed (and removed) with the upload, as Django's is
            prefix=INCOMING_PREFIX, suffix=".upload" + ext, dir=upload_dir())
        UploadedFile.__init__(self, file, name, content_type, size, charset, content_type_extra)


class UploadDirFileHandler(TemporaryFileUploadHandler):
    """Spools uploads too large for memory into the upload folder instead of the system's temporary folder."""

    def new_file(self, *args, **kwargs):
        FileUploadHandler.new_file(self, *args, **kwargs)
        self.file = _UploadDirFile(self.file_name, self.content_type, 0, self.charset, self.content_type_extra)


# ---------------------------------------------------------------------------------------------------------
# Expiry


EXPIRED_MESSAGE = ("The file waited more than {hours} hours for its column mapping, so it was deleted. "
                   "Upload it again to import it.")


def expire_pending_uploads(*, older_than_hours: float | None = None) -> list[int]:
    """Delete the files of imports still waiting for their mapping after ``UPLOAD_PENDING_HOURS`` and mark those
    jobs expired; then remove files in the upload folder that no job waits for and that nobody touched for as long
    (left by a process that died between storing and recording a file). Returns the expired job ids."""
    from audiences.models import ImportJob

    hours = settings.UPLOAD_PENDING_HOURS if older_than_hours is None else older_than_hours
    cutoff = timezone.now() - timedelta(hours=hours)
    expired = []
    for job in ImportJob.objects.filter(status=ImportJob.Status.UPLOADED, created_at__lt=cutoff).only(
            "pk", "stored_path"):
        # Only a job still waiting is expired: one whose mapping was just submitted keeps its file.
        claimed = ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.UPLOADED).update(
            status=ImportJob.Status.EXPIRED, finished_at=timezone.now(),
            error_message=EXPIRED_MESSAGE.format(hours=f"{hours:g}"))
        if claimed:
            delete_upload(job)
            expired.append(job.pk)
    if expired:
        logger.info("expired %s uploads waiting for a mapping: %s", len(expired), expired)
    _sweep_orphans(max_age_seconds=hours * 3600)
    return expired


def _sweep_orphans(*, max_age_seconds: float) -> None:
    from audiences.models import ImportJob

    folder = Path(settings.UPLOAD_DIR)
    if not folder.is_dir():
        return
    kept = set(ImportJob.objects.exclude(stored_path="").values_list("stored_path", flat=True))
    now = time.time()
    removed = 0
    for path in folder.iterdir():
        try:
            if str(path) in kept or not path.is_file() or now - path.stat().st_mtime < max_age_seconds:
                continue
            path.unlink()
            removed += 1
        except OSError:
            continue
    if removed:
        logger.info("removed %s files in the upload folder that no import was waiting for", removed)
