"""The audience import: store an upload, sniff it, map its columns, and stream it into hashed members.

Flow: ``create_import`` stores the upload under ``settings.UPLOAD_DIR`` (chunked, size-capped) and sniffs
encoding, delimiter and header (``sniff``); an unusable file fails the job at once with one clear message.
``start_import`` checks the column mapping and queues the Celery task, which calls ``run_import``:
the file is read in chunks of ``CHUNK_ROWS`` rows, each chunk goes through ``matchkeys.prepare_rows``
(normalize + SHA-256), members are written into the audience's next generation (PostgreSQL: COPY into a
temporary staging table, then INSERT ... ON CONFLICT DO NOTHING; SQLite: INSERT OR IGNORE), and when the
whole file is in, the new generation is swapped in. A failure leaves the previous generation in place;
a re-run of the same job starts over from a clean target generation. The upload is deleted at the end,
success or failure. Nothing raw is logged or stored: rejected rows keep the row number, the column's
header and the reason, never the value.

Row numbers are spreadsheet rows: the header is row 1, the first data record row 2 (a record with quoted
newlines counts once).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import os
import shutil
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Max, Q
from django.utils import timezone

from audiences.housekeeping import vacuum_analyze
from audiences.models import Audience, ImportJob, Member, MemberChange, RejectedRow
from platforms import matchkeys

logger = logging.getLogger(__name__)

CHUNK_ROWS = 10_000
SAMPLE_BYTES = 1024 * 1024  # what the sniffer reads
MAX_COLUMNS = 500
# One field may hold at most this many characters; one physical line at most MAX_LINE_CHARS (longer lines
# are skipped in pieces, never read whole), so a 200 MB single-field file costs a few MB of memory.
FIELD_LIMIT = 64 * 1024
MAX_LINE_CHARS = 1024 * 1024
MAX_REJECTED_ROWS = 1_000
# The match-key value caches grow with the variety of the data (dates, ZIP+4s, names); past this resident size
# the import empties them, so memory stays flat however long the file is (they refill in a few chunks).
MEMORY_BUDGET_MB = 200
NO_KEY_REASON = "no usable match key"
BAD_TEXT_REASON = "text is not valid {encoding} (mixed encodings?)"
FIELD_TOO_LARGE = "field too large"
LINE_TOO_LONG = "line too long"
UNEXPECTED_FAILURE = "The import failed unexpectedly; nothing was changed. Try again, or contact support."
AUDIENCE_DELETED = "The audience was deleted while this file was importing."

# A marker the line reader yields in place of an over-long line (private-use characters never in real data).
_OVERSIZE_MARK = "\ue000\ue001oversize\ue001\ue000"

ENCODING_LABELS = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 with BOM",
    "utf-16": "UTF-16",
    "utf-16-le": "UTF-16 (little-endian)",
    "utf-16-be": "UTF-16 (big-endian)",
    "utf-32": "UTF-32",
    "cp1252": "Windows-1252 / Latin-1",
    "latin-1": "Latin-1 (ISO-8859-1)",
}
DELIMITER_LABELS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_DELIMITERS = (",", ";", "\t", "|")
# Single-byte encodings charset-normalizer may name that we accept for a non-UTF file.
_LEGACY_ENCODINGS = {"cp1252", "latin_1", "iso8859_15", "cp1250", "iso8859_2", "cp1257", "iso8859_9", "cp1254"}

_MAGIC = (
    (b"PK\x03\x04", "This is a ZIP archive (or an Excel .xlsx workbook), not a CSV file. "
     "Export or unzip it to CSV and upload that."),
    (b"PK\x05\x06", "This is an empty ZIP archive, not a CSV file."),
    (b"\x1f\x8b", "This is a gzip-compressed file, not a CSV file. Decompress it and upload the CSV."),
    (b"\xd0\xcf\x11\xe0", "This is an old Excel (.xls) workbook, not a CSV file. Save it as CSV and upload that."),
    (b"%PDF", "This is a PDF document, not a CSV file."),
    (b"BZh", "This is a bzip2-compressed file, not a CSV file."),
    (b"7z\xbc\xaf", "This is a 7-Zip archive, not a CSV file."),
)


class UnusableFile(Exception):  # noqa: N818 - product word: the file cannot be used
    """The file cannot be imported at all; ``str(exc)`` is the one message shown to the marketer."""


@dataclass
class Sniffed:
    encoding: str
    delimiter: str
    headers: list[str]
    mapping: dict[str, str] = field(default_factory=dict)  # str(column index) -> key (auto-detected)


# ---------------------------------------------------------------------------------------------------------
# Storing the upload


def upload_dir() -> Path:
    path = Path(settings.UPLOAD_DIR)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def store_upload(chunks, *, max_bytes: int | None = None) -> tuple[Path, int]:
    """Write an upload (an iterable of byte chunks) under UPLOAD_DIR with a random name; returns
    (path, size). Raises UnusableFile past MAX_UPLOAD_BYTES (the partial file is removed)."""
    limit = settings.MAX_UPLOAD_BYTES if max_bytes is None else max_bytes
    path = upload_dir() / f"{uuid.uuid4().hex}.csv"
    size = 0
    try:
        with open(path, "xb") as out:
            for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise UnusableFile(f"The file is larger than the {limit // (1024 * 1024):,} MB limit.")
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, size


def _store_django_upload(upload) -> tuple[Path, int]:
    """A big upload Django already spooled to a temporary file is moved, not copied (a multi-GB file is
    written once); a small in-memory one is written out in chunks."""
    temporary = getattr(upload, "temporary_file_path", None)
    if temporary is None:
        return store_upload(upload.chunks())
    if upload.size > settings.MAX_UPLOAD_BYTES:
        raise UnusableFile(f"The file is larger than the {settings.MAX_UPLOAD_BYTES // (1024 * 1024):,} MB limit.")
    path = upload_dir() / f"{uuid.uuid4().hex}.csv"
    shutil.move(temporary(), path)  # Django ignores the missing temporary file when it closes the upload
    os.chmod(path, 0o600)
    return path, path.stat().st_size


def _copy_chunks(path: Path, size: int = 1024 * 1024):
    with open(path, "rb") as src:
        while chunk := src.read(size):
            yield chunk


def delete_upload(job: ImportJob) -> None:
    """Remove the job's stored file (idempotent) and forget its path."""
    if job.stored_path:
        try:
            Path(job.stored_path).unlink(missing_ok=True)
        except OSError:
            logger.warning("import %s: could not delete the uploaded file", job.pk)
        job.stored_path = ""
        ImportJob.objects.filter(pk=job.pk).update(stored_path="")


# ---------------------------------------------------------------------------------------------------------
# Sniffing


def detect_encoding(sample: bytes) -> str:
    """The codec for a file starting with ``sample``: BOMs first, then UTF-16 without BOM, UTF-8, and a
    legacy single-byte encoding (charset-normalizer's guess among western ones, else Windows-1252)."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in sample[:4096]:
        head = sample[:4096]
        half = max(len(head) // 2, 1)
        even, odd = head[0::2].count(0), head[1::2].count(0)
        if odd > 0.4 * half and even < 0.05 * half:
            return "utf-16-le"
        if even > 0.4 * half and odd < 0.05 * half:
            return "utf-16-be"
    try:
        # final=False: the sample may end in the middle of a multi-byte character.
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        from charset_normalizer import from_bytes

        best = from_bytes(sample[:65536]).best()
        if best is not None and best.encoding in _LEGACY_ENCODINGS:
            return codecs.lookup(best.encoding).name
    except Exception:  # noqa: BLE001 - a guess only; fall back below
        logger.debug("charset detection failed; falling back to Windows-1252")
    try:
        sample.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


def _looks_binary(text: str) -> bool:
    if not text:
        return False
    controls = sum(1 for ch in text[:65536] if ch < " " and ch not in "\t\r\n")
    return controls > max(8, len(text[:65536]) // 50)


def _looks_html(text: str) -> bool:
    head = text.lstrip()[:2048].lower()
    return head.startswith(("<!doctype html", "<html", "<?xml", "<head", "<body")) or "<html" in head[:512]


def detect_delimiter(lines: list[str]) -> str:
    """Comma, semicolon, tab or pipe: the one that splits the first records into the most columns, most
    consistently (quoted fields respected). csv.Sniffer alone is fooled by commas inside fields."""
    text = "".join(lines)
    best, best_score = ",", (0.0, 0)
    for delimiter in _DELIMITERS:
        try:
            counts = [len(row) for row in islice(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), 50)
                      if row]
        except csv.Error:
            continue
        if not counts or counts[0] < 2:
            continue
        header_width = counts[0]
        agreement = sum(1 for c in counts if c == header_width) / len(counts)
        score = (agreement, header_width)
        if score > best_score:
            best, best_score = delimiter, score
    if best_score == (0.0, 0):
        try:
            return csv.Sniffer().sniff(text[:65536], delimiters="".join(_DELIMITERS)).delimiter
        except csv.Error:
            return ","
    return best


def guess_mapping(headers: list[str]) -> dict[str, str]:
    """Auto-map headers to match keys ({str(index): key}); a key goes to its first column only."""
    mapping, used = {}, set()
    for index, header in enumerate(headers):
        key = matchkeys.guess_key(header)
        if key and key not in used:
            mapping[str(index)] = key
            used.add(key)
    return mapping


def _looks_like_data(cells: list[str]) -> bool:
    for cell in cells:
        value = cell.strip()
        if "@" in value and "." in value:
            return True
        digits = sum(ch.isdigit() for ch in value)
        if value and digits >= 6 and digits >= len(value) * 0.6:
            return True
    return False


def sniff(path: Path | str) -> Sniffed:
    """Encoding, delimiter and header row of the file at ``path``; UnusableFile with one clear message
    when it cannot be a CSV (empty, binary, archive, HTML, no header, too many columns)."""
    with open(path, "rb") as raw:
        sample = raw.read(SAMPLE_BYTES)
        at_end = not raw.read(1)
    if not sample.strip(b" \t\r\n\x00\xef\xbb\xbf\xff\xfe"):
        raise UnusableFile("The file is empty.")
    for magic, message in _MAGIC:
        if sample.startswith(magic):
            raise UnusableFile(message)
    encoding = detect_encoding(sample)
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(sample, final=at_end)
    if _looks_binary(text):
        raise UnusableFile("This file is not text (it looks like a binary file), so it cannot be a CSV.")
    if _looks_html(text):
        raise UnusableFile("This file is a web page (HTML), not a CSV. Download the data itself as CSV.")
    # Whole lines only: the last one in the sample may be cut.
    lines = text.splitlines(keepends=True)
    if not at_end and len(lines) > 1:
        lines = lines[:-1]
    if len(lines) == 1 and not at_end and len(lines[0]) >= len(text):
        raise UnusableFile("The first line is over 1 MB long: this is not a CSV header row.")
    delimiter = detect_delimiter(lines[:200])
    try:
        headers = next(csv.reader(io.StringIO("".join(lines[:200]), newline=""), delimiter=delimiter), None)
    except csv.Error:
        headers = None
    headers = [h.strip().lstrip("\ufeff") for h in headers] if headers else []
    if not any(headers):
        raise UnusableFile("The first row is empty: the file needs a header row naming its columns.")
    if len(headers) > MAX_COLUMNS:
        raise UnusableFile(f"The file has {len(headers):,} columns; at most {MAX_COLUMNS} are supported.")
    mapping = guess_mapping(headers)
    if not mapping and _looks_like_data(headers):
        raise UnusableFile(
            "The first row looks like data, not column names. Add a header row (for example: email,phone,zip)."
        )
    if len(lines) < 2 and at_end:
        raise UnusableFile("The file has a header row but no data rows.")
    return Sniffed(encoding=encoding, delimiter=delimiter, headers=headers, mapping=mapping)


def column_label(headers: list[str], index: int) -> str:
    header = headers[index] if index < len(headers) else ""
    return header or f"column {index + 1}"


# ---------------------------------------------------------------------------------------------------------
# Creating and starting an import


def create_import(*, owner, audience: Audience, chunks=None, filename: str, upload=None) -> ImportJob:
    """Store the upload (``chunks`` of bytes, or a Django ``upload``) and sniff it. The job is UPLOADED
    (ready for mapping) or FAILED with a message; a failed file is deleted at once."""
    job = ImportJob(owner=owner, audience=audience, original_filename=(filename or "upload.csv")[:255])
    try:
        path, size = _store_django_upload(upload) if upload is not None else store_upload(chunks)
    except UnusableFile as exc:
        return _failed_before_start(job, str(exc))
    job.stored_path, job.size_bytes = str(path), size
    try:
        sniffed = sniff(path)
    except UnusableFile as exc:
        path.unlink(missing_ok=True)
        job.stored_path = ""
        return _failed_before_start(job, str(exc))
    job.encoding, job.delimiter, job.headers = sniffed.encoding, sniffed.delimiter, sniffed.headers
    job.column_mapping = {str(i): sniffed.mapping.get(str(i), "") for i in range(len(sniffed.headers))}
    job.save()
    return job


def create_import_from_path(*, owner, audience: Audience, path: Path | str, filename: str | None = None):
    """``create_import`` for a file on disk (the command, the bundled sample): it is copied, never moved."""
    return create_import(owner=owner, audience=audience, chunks=_copy_chunks(Path(path)),
                         filename=filename or Path(path).name)


def _failed_before_start(job: ImportJob, message: str) -> ImportJob:
    job.status = ImportJob.Status.FAILED
    job.error_message = message
    job.finished_at = timezone.now()
    job.save()
    Audience.objects.filter(pk=job.audience_id, generation=0).update(status=Audience.Status.FAILED)
    return job


def clean_mapping(job: ImportJob, mapping: dict[str, str]) -> dict[str, str]:
    """Validate {str(index): key or ""}; UnusableFile if nothing maps, ValueError on a bad or doubled key."""
    cleaned, used = {}, {}
    for index in range(len(job.headers)):
        key = (mapping.get(str(index)) or "").strip()
        if key and key not in matchkeys.KEYS:
            raise ValueError(f"{column_label(job.headers, index)}: unknown match key {key!r}")
        if key and key in used:
            raise ValueError(
                f"{matchkeys.KEY_LABELS[key]} is mapped twice ({column_label(job.headers, used[key])} and "
                f"{column_label(job.headers, index)}); map it to one column."
            )
        if key:
            used[key] = index
        cleaned[str(index)] = key
    if not used:
        raise UnusableFile("No column is mapped to a match key: map at least one column (email, phone, ...).")
    return cleaned


def start_import(job: ImportJob, mapping: dict[str, str] | None = None, *, enqueue: bool = True) -> ImportJob:
    """Fix the mapping, mark the job QUEUED and queue the Celery task once the transaction commits."""
    job.column_mapping = clean_mapping(job, job.column_mapping if mapping is None else mapping)
    job.status = ImportJob.Status.QUEUED
    job.error_message = ""
    job.save(update_fields=["column_mapping", "status", "error_message"])
    Audience.objects.filter(pk=job.audience_id).update(status=Audience.Status.IMPORTING, updated_at=timezone.now())
    if enqueue:
        from audiences.tasks import import_audience

        transaction.on_commit(lambda: import_audience.delay(job.pk))
    return job


# ---------------------------------------------------------------------------------------------------------
# Reading the file


class _LineReader:
    """Physical lines of a text stream, each at most MAX_LINE_CHARS: a longer line is consumed in pieces
    and replaced by a marker line, so no line is ever held whole in memory. Notes whether a line held
    undecodable bytes (U+FFFD after decoding with errors="replace")."""

    def __init__(self, text: io.TextIOBase, max_chars: int):
        self.text, self.max_chars = text, max_chars
        self.saw_bad_text = False

    def __iter__(self) -> Iterator[str]:
        readline, limit = self.text.readline, self.max_chars
        while line := readline(limit):
            if len(line) == limit and not line.endswith(("\n", "\r")):
                while (rest := readline(limit)) and len(rest) == limit and not rest.endswith(("\n", "\r")):
                    pass
                yield _OVERSIZE_MARK + "\n"
                continue
            if "\ufffd" in line:
                self.saw_bad_text = True
            yield line


class _BadRecord(list):
    """Stands in (as an empty row) for a record the CSV reader could not read."""

    def __init__(self, reason: str):
        super().__init__()
        self.reason = reason


class _RecordReader:
    """Data records of the stored file in chunks (lists of cell lists), header skipped. The csv reader
    is driven from C (list.extend over islice); a record it cannot read becomes a _BadRecord in place."""

    def __init__(self, raw, *, encoding: str, delimiter: str):
        self.text = io.TextIOWrapper(raw, encoding=encoding or "utf-8", errors="replace", newline="")
        self.lines = _LineReader(self.text, MAX_LINE_CHARS)
        self.reader = csv.reader(self.lines, delimiter=delimiter or ",")
        self.previous_limit = None

    def __enter__(self):
        self.previous_limit = csv.field_size_limit(FIELD_LIMIT)
        self.read(1)  # the header row
        return self

    def __exit__(self, *exc):
        csv.field_size_limit(self.previous_limit)
        if not self.text.buffer.closed:
            self.text.detach()  # leave the binary file open: the caller reads its position for progress

    def read(self, n: int) -> list:
        out: list = []
        while len(out) < n:
            try:
                out.extend(islice(self.reader, n - len(out)))
                break  # n records, or the end of the file
            except csv.Error as exc:  # the records before it are already in ``out``
                out.append(_BadRecord(FIELD_TOO_LARGE if "field limit" in str(exc) else f"unreadable CSV ({exc})"))
        return out


@dataclass
class _Tally:
    rows_total: int = 0
    rows_imported: int = 0
    rows_rejected: int = 0
    rows_duplicate: int = 0
    reasons: Counter = field(default_factory=Counter)
    rejected_rows: list = field(default_factory=list)  # RejectedRow objects not yet saved
    rejected_kept: int = 0

    def reject(self, job_id, row_number: int, column: str, reason: str, *, count_row: bool = True):
        label = f"{column}: {reason}" if column else reason
        self.reasons[label] += 1
        if count_row:
            self.rows_rejected += 1
        if self.rejected_kept < MAX_REJECTED_ROWS:
            self.rejected_kept += 1
            self.rejected_rows.append(
                RejectedRow(import_job_id=job_id, row_number=row_number, column=column[:255], reason=reason[:255])
            )


# ---------------------------------------------------------------------------------------------------------
# Writing members


_JSON = json.JSONEncoder(separators=(",", ":")).encode  # one encoder: json.dumps(..., separators=) builds one per call


class _MemberWriter:
    """Bulk insert of (fingerprint, keys JSON) into one generation; duplicates ignored, inserted rows counted."""

    def __init__(self, audience_id: int, generation: int):
        self.audience_id, self.generation = audience_id, generation
        self.postgres = connection.vendor == "postgresql"
        self.table = Member._meta.db_table

    def setup(self):
        if not self.postgres and not connection.in_atomic_block:
            # WAL + synchronous=NORMAL: still crash-safe for the database file; a power cut may lose the
            # last chunks, which a restarted import redoes anyway. (SQLite refuses it inside a transaction.)
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA synchronous=NORMAL")
        if self.postgres:
            with connection.cursor() as cursor:
                cursor.execute(
                    "CREATE TEMP TABLE IF NOT EXISTS audiences_import_stage (fingerprint varchar(64), keys text)"
                )
                cursor.execute("TRUNCATE audiences_import_stage")

    def write(self, members: dict[str, str]) -> int:
        """Insert the chunk's members ({fingerprint: keys JSON}); returns how many were new."""
        if not members:
            return 0
        if self.postgres:
            # COPY text format, one write per chunk: fingerprints are hex and ensure_ascii JSON has no raw
            # tab or newline, so only backslashes need doubling.
            data = "".join(
                f"{fp}\t{text}\n" if "\\" not in text else f"{fp}\t{text.replace(chr(92), chr(92) * 2)}\n"
                for fp, text in members.items()
            )
            with connection.cursor() as cursor:
                with cursor.copy("COPY audiences_import_stage (fingerprint, keys) FROM STDIN") as copy:
                    copy.write(data)
                del data
                cursor.execute(
                    f"INSERT INTO {self.table} (audience_id, generation, fingerprint, keys) "  # noqa: S608
                    "SELECT %s, %s, fingerprint, keys::jsonb FROM audiences_import_stage "
                    "ON CONFLICT (audience_id, generation, fingerprint) DO NOTHING",
                    [self.audience_id, self.generation],
                )
                inserted = cursor.rowcount
                cursor.execute("TRUNCATE audiences_import_stage")
            return inserted
        raw = connection.connection
        before = raw.total_changes
        aid, gen = self.audience_id, self.generation
        # Sorted, so the unique index is filled in order within the chunk (fewer page splits).
        raw.executemany(
            f"INSERT OR IGNORE INTO {self.table} (audience_id, generation, fingerprint, keys) "  # noqa: S608
            "VALUES (?, ?, ?, ?)",
            ((aid, gen, fp, members[fp]) for fp in sorted(members)),
        )
        return raw.total_changes - before


# ---------------------------------------------------------------------------------------------------------
# Running an import


def _key_coverage(audience_id: int, generation: int) -> dict[str, int]:
    members = Member.objects.filter(audience_id=audience_id, generation=generation)
    aggregates = {key: Count("id", filter=Q(keys__has_key=short)) for key, short in matchkeys._COVERAGE}
    aggregates["name_zip"] = Count("id", filter=Q(keys__has_key="fn") & Q(keys__has_key="ln") & Q(keys__has_key="z"))
    counts = members.aggregate(**aggregates)
    return {key: value for key, value in counts.items() if value}


def _reset_for_restart(job: ImportJob) -> None:
    """A re-delivered or re-run job starts over: drop its partial generation and earlier report rows."""
    if job.target_generation is not None:
        Member.objects.filter(audience_id=job.audience_id, generation=job.target_generation).delete()
    RejectedRow.objects.filter(import_job=job).delete()


def run_import(job_id: int) -> ImportJob | None:
    """Import one queued job (the Celery task's body). Idempotent: a finished job is left alone; a job
    found RUNNING (its worker died) restarts from a clean target generation."""
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().select_related("audience").filter(pk=job_id).first()
        if job is None or job.status not in (ImportJob.Status.QUEUED, ImportJob.Status.RUNNING):
            return job
        audience = Audience.objects.select_for_update().get(pk=job.audience_id)
        if audience.status == Audience.Status.DELETING:
            ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.FAILED, error_message=AUDIENCE_DELETED,
                                                       finished_at=timezone.now())
            job.refresh_from_db()
            return job
        restarting = job.status == ImportJob.Status.RUNNING or job.target_generation is not None
        if job.target_generation is None or job.target_generation <= audience.generation:
            # Past every generation this audience has had, so a partial or previous one is never reused.
            used = Member.objects.filter(audience=audience).order_by("-generation").values_list(
                "generation", flat=True).first() or 0
            claimed = ImportJob.objects.filter(audience=audience).aggregate(Max("target_generation"))
            job.target_generation = max(audience.generation, used, claimed["target_generation__max"] or 0) + 1
        job.status = ImportJob.Status.RUNNING
        job.started_at = timezone.now()
        job.heartbeat_at = job.started_at
        job.rows_total = job.rows_imported = job.rows_rejected = job.rows_duplicate = 0
        job.bytes_processed = 0
        job.rejections_by_reason = {}
        job.error_message = ""
        job.save()
        audience.status = Audience.Status.IMPORTING
        audience.save(update_fields=["status", "updated_at"])
    if restarting:
        logger.info("import %s: restarting from scratch into generation %s", job.pk, job.target_generation)
        _reset_for_restart(job)
    try:
        _stream(job, audience)
    except UnusableFile as exc:
        _fail(job, str(exc))
    except Exception:
        logger.exception("import %s failed", job.pk)  # tracebacks carry no cell values: csv/matchkeys don't
        _fail(job, UNEXPECTED_FAILURE)
    # Not in a finally: a worker shut down mid-import (SystemExit, KeyboardInterrupt) leaves the job RUNNING
    # and the file in place, so the re-delivered task (acks_late) restarts it.
    delete_upload(job)
    job.refresh_from_db()
    return job


def _stream(job: ImportJob, audience: Audience) -> None:
    if not job.stored_path or not Path(job.stored_path).exists():
        raise UnusableFile("The uploaded file is no longer available; upload it again.")
    keys: list[str | None] = [None] * len(job.headers)
    columns: dict[str, str] = {}
    for index, key in job.column_mapping.items():
        if key and int(index) < len(keys):
            keys[int(index)] = key
            columns[key] = column_label(job.headers, int(index))
    if not any(keys):
        raise UnusableFile("No column is mapped to a match key.")
    mapped = [i for i, key in enumerate(keys) if key]
    region = audience.default_country or None
    bad_text = BAD_TEXT_REASON.format(encoding=ENCODING_LABELS.get(job.encoding, job.encoding))
    tally = _Tally()
    writer = _MemberWriter(audience.pk, job.target_generation)
    writer.setup()
    fingerprint, identifiable, prepare_rows = matchkeys.fingerprint, matchkeys.is_identifiable, matchkeys.prepare_rows
    encode = _JSON
    base = 1  # spreadsheet row number of the record before the chunk (the header is row 1)
    with open(job.stored_path, "rb") as raw, _RecordReader(raw, encoding=job.encoding,
                                                           delimiter=job.delimiter) as records:
        while chunk := records.read(CHUNK_ROWS):
            check_text, records.lines.saw_bad_text = records.lines.saw_bad_text, False
            members: dict[str, str] = {}  # fingerprint -> keys as JSON
            valid = blanks = 0
            results = prepare_rows(chunk, keys, default_region=region)
            for i in range(len(results)):
                # Each record is dropped once used: the JSON text (a third of the dict's size) is what stays.
                record, results[i] = results[i], None
                stored = record.stored
                if identifiable(stored) and not (check_text and _bad_text_column(chunk[i], mapped) is not None):
                    valid += 1
                    members[fingerprint(stored)] = encode(stored)
                    continue
                # The rare path: work out why this record gives no member.
                cells, number = chunk[i], base + i + 1
                if cells.__class__ is _BadRecord:
                    tally.reject(job.pk, number, "", cells.reason)
                elif not cells or (len(cells) == 1 and not cells[0].strip()):
                    blanks += 1  # a blank line is no record (it keeps its row number, as in a spreadsheet)
                elif cells[0].startswith(_OVERSIZE_MARK):
                    tally.reject(job.pk, number, "", LINE_TOO_LONG)
                elif check_text and (bad := _bad_text_column(cells, mapped)) is not None:
                    tally.reject(job.pk, number, columns[keys[bad]], bad_text)
                elif record.rejections:
                    for n, (key, reason) in enumerate(record.rejections):
                        tally.reject(job.pk, number, columns.get(key, key), reason, count_row=n == 0)
                else:
                    tally.reject(job.pk, number, "", NO_KEY_REASON)
            tally.rows_total += len(chunk) - blanks
            base += len(chunk)
            del results, chunk
            if _resident_mb() > MEMORY_BUDGET_MB:
                matchkeys.clear_value_caches()
            with transaction.atomic():
                inserted = writer.write(members)
                tally.rows_imported += inserted
                tally.rows_duplicate += valid - inserted
                if tally.rejected_rows:
                    RejectedRow.objects.bulk_create(tally.rejected_rows)
                    tally.rejected_rows = []
                _checkpoint(job, tally, raw.tell())
    if tally.rows_total == 0:
        raise UnusableFile("The file has a header row but no data rows.")
    if tally.rows_imported == 0:
        # Most likely a wrong mapping or the wrong file: keep the current members rather than empty them.
        raise UnusableFile(
            f"None of the {tally.rows_total:,} rows had a usable match key, so nothing was imported. "
            "Check the column mapping and the rejected rows."
        )
    _succeed(job, audience, tally)


def _resident_mb() -> float:
    """Current resident set size (Linux /proc; 0 where unavailable, which disables the budget)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_SIZE / 1_048_576
    except (OSError, ValueError, IndexError):
        return 0.0


_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
def _bad_text_column(cells: list[str], mapped: list[int]) -> int | None:
    """Index of the first mapped cell holding undecodable bytes, or None."""
    for i in mapped:
        if i < len(cells) and "\ufffd" in cells[i]:
            return i
    return None


def _checkpoint(job: ImportJob, tally: _Tally, position: int) -> None:
    if Audience.objects.filter(pk=job.audience_id, status=Audience.Status.DELETING).exists():
        raise UnusableFile(AUDIENCE_DELETED)  # stop here: the deletion waits for this import to end
    job.rows_total, job.rows_imported = tally.rows_total, tally.rows_imported
    job.rows_rejected, job.rows_duplicate = tally.rows_rejected, tally.rows_duplicate
    job.rejections_by_reason = dict(tally.reasons.most_common())
    job.bytes_processed = min(position, job.size_bytes or position)
    job.heartbeat_at = timezone.now()
    ImportJob.objects.filter(pk=job.pk).update(
        rows_total=job.rows_total, rows_imported=job.rows_imported, rows_rejected=job.rows_rejected,
        rows_duplicate=job.rows_duplicate, rejections_by_reason=job.rejections_by_reason,
        bytes_processed=job.bytes_processed, heartbeat_at=job.heartbeat_at,
    )


# A re-import that changes more than this share of the audience is not recorded as MemberChanges: syncs plan
# it with the full join, which then costs about the same.
CHANGES_MAX_SHARE = 0.25


def record_changes(audience_id: int, generation: int, base_generation: int, *, limit: int) -> bool:
    """Record who joins and who leaves the audience between ``base_generation`` and ``generation`` as
    MemberChange rows (one join in the database), unless there are more than ``limit``. Returns whether they
    were recorded. Changes of older generations go; those of ``base_generation`` stay (a sync may be planning
    from them right now)."""
    MemberChange.objects.filter(audience_id=audience_id).exclude(generation=base_generation).delete()
    qn = connection.ops.quote_name
    member, change = qn(Member._meta.db_table), qn(MemberChange._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {change} (audience_id, generation, fingerprint, removed) "  # noqa: S608 — names from _meta
            "SELECT %s, %s, COALESCE(n.fingerprint, o.fingerprint), n.fingerprint IS NULL "
            f"FROM (SELECT fingerprint FROM {member} WHERE audience_id = %s AND generation = %s) n "
            f"FULL JOIN (SELECT fingerprint FROM {member} WHERE audience_id = %s AND generation = %s) o "
            "ON n.fingerprint = o.fingerprint WHERE n.fingerprint IS NULL OR o.fingerprint IS NULL LIMIT %s",
            [audience_id, generation, audience_id, generation, audience_id, base_generation, limit + 1],
        )
        recorded = cursor.rowcount
    if recorded > limit:
        MemberChange.objects.filter(audience_id=audience_id, generation=generation).delete()
        return False
    return True


def swap_generation(audience_id: int, generation: int, base_generation: int, *, recorded: bool, **fields) -> int:
    """Make ``generation`` the audience's membership (unless a newer one already is), noting which generation its
    recorded changes are relative to. Returns 1 when swapped, 0 when not."""
    audiences = Audience.objects.visible().filter(pk=audience_id, generation__lt=generation)
    # The changes hold only if the generation replaced is the one they were recorded against.
    swapped = audiences.filter(generation=base_generation).update(
        generation=generation, changes_base_generation=base_generation if recorded else None, **fields)
    return swapped or audiences.update(generation=generation, changes_base_generation=None, **fields)


def _succeed(job: ImportJob, audience: Audience, tally: _Tally) -> None:
    vacuum_analyze(Member)  # the new generation's rows: indexes alone serve the change join and the next plan
    coverage = _key_coverage(audience.pk, job.target_generation)
    base = Audience.objects.filter(pk=audience.pk).values_list("generation", flat=True).get()
    limit = int(CHANGES_MAX_SHARE * max(tally.rows_imported, audience.member_count))
    recorded = bool(base) and record_changes(audience.pk, job.target_generation, base, limit=limit)
    now = timezone.now()
    with transaction.atomic():
        swapped = swap_generation(
            audience.pk, job.target_generation, base, recorded=recorded,
            member_count=tally.rows_imported, key_coverage=coverage, status=Audience.Status.READY, updated_at=now,
        )
        if not swapped and Audience.objects.filter(pk=audience.pk, status=Audience.Status.DELETING).exists():
            raise UnusableFile(AUDIENCE_DELETED)
        if not swapped:  # two imports of one audience ran at once and the later upload finished first
            raise UnusableFile("A newer import of this audience finished first, so this one was discarded.")
        ImportJob.objects.filter(pk=job.pk).update(
            status=ImportJob.Status.SUCCEEDED, finished_at=now, heartbeat_at=now, bytes_processed=job.size_bytes,
        )
    # Keep the previous generation (a sync run may still be reading it); older ones go.
    Member.objects.filter(audience_id=audience.pk, generation__lt=base).delete()
    logger.info("import %s: %s rows, %s imported, %s rejected, %s duplicates", job.pk, tally.rows_total,
                tally.rows_imported, tally.rows_rejected, tally.rows_duplicate)


def _fail(job: ImportJob, message: str) -> None:
    now = timezone.now()
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportJob.Status.FAILED, error_message=message, finished_at=now, heartbeat_at=now
    )
    if job.target_generation is not None:
        Member.objects.filter(audience_id=job.audience_id, generation=job.target_generation).delete()
    audience = Audience.objects.get(pk=job.audience_id)
    if audience.status != Audience.Status.DELETING:
        audience.status = Audience.Status.READY if audience.generation else Audience.Status.FAILED
        audience.save(update_fields=["status", "updated_at"])
    logger.info("import %s failed: %s", job.pk, message)


def requeue_stale_imports(*, stale_after_seconds: int = 600) -> list[int]:
    """Re-queue imports whose worker stopped: RUNNING without a heartbeat, or QUEUED and never started, for
    ``stale_after_seconds``. The task restarts them cleanly. Returns the job ids re-queued."""
    from audiences.tasks import import_audience

    cutoff = timezone.now() - timezone.timedelta(seconds=stale_after_seconds)
    stale = ImportJob.objects.filter(
        Q(status=ImportJob.Status.RUNNING, heartbeat_at__lt=cutoff)
        | Q(status=ImportJob.Status.QUEUED, started_at__isnull=True, created_at__lt=cutoff)
        | Q(status=ImportJob.Status.QUEUED, heartbeat_at__lt=cutoff)
    )
    ids = list(stale.values_list("pk", flat=True))
    for job_id in ids:
        # The heartbeat moves on so the next watchdog pass leaves it alone while the new task starts.
        ImportJob.objects.filter(pk=job_id).update(heartbeat_at=timezone.now())
        logger.warning("import %s: no heartbeat, re-queued", job_id)
        transaction.on_commit(lambda job_id=job_id: import_audience.delay(job_id))
    return ids


# ---------------------------------------------------------------------------------------------------------
# Reports


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value) -> str:
    """A cell a spreadsheet will not run as a formula (OWASP CSV injection: prefix with a quote)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def rejections_csv_rows(job: ImportJob) -> Iterator[list[str]]:
    yield ["row", "column", "reason"]
    for row in job.rejected_rows.all().iterator():
        yield [str(row.row_number), spreadsheet_safe(row.column), spreadsheet_safe(row.reason)]


def progress_percent(job: ImportJob) -> int:
    if job.status == ImportJob.Status.SUCCEEDED:
        return 100
    if not job.size_bytes:
        return 0
    return min(99, int(job.bytes_processed * 100 / job.size_bytes))


def summary(job: ImportJob) -> dict:
    """The command's JSON line."""
    return {
        "audience_id": job.audience_id,
        "rows": job.rows_total,
        "imported": job.rows_imported,
        "rejected": job.rows_rejected,
        "duplicates": job.rows_duplicate,
        "rejections_by_reason": job.rejections_by_reason,
    }


def sample_file_path() -> Path:
    return Path(__file__).resolve().parent / "sample_data" / "sample-customers.csv"
