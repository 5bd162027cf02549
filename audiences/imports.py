"""The audience import: store an upload, sniff it, map its columns, and stream it into hashed members.

Flow: ``create_import`` stores the upload under ``settings.UPLOAD_DIR`` (chunked, size-capped) and sniffs
encoding, delimiter and header (``sniff``); an unusable file fails the job at once with one clear message.
``start_import`` checks the column mapping and queues the Celery task, which calls ``run_import``:
the file is read in chunks of ``CHUNK_ROWS`` rows, each chunk goes through ``matchkeys.prepare_rows``
(normalize + SHA-256); each row becomes a person (``matchkeys.person_id`` by the audience's person key), rows
of the same person are merged (the first row is kept, later ones add only the keys it lacks), and the people
are staged (audiences.storage.Stage). When the whole file is in, ``storage.apply_stage`` makes them the
audience's membership in one transaction: joins, updates (a person whose phone changed), leavers. A failure
leaves the membership as it was; a re-run of the same job starts over from the beginning of the file. The
upload is deleted at the end, success or failure. Nothing raw is logged or stored: rejected rows keep the row
number, the column's header and the reason, never the value.

Row numbers are spreadsheet rows: the header is row 1, the first data record row 2 (a record with quoted
newlines counts once).
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import os
import shutil
import traceback
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from audiences import storage
from audiences.housekeeping import vacuum_analyze
from audiences.models import Audience, ImportJob, Member, RejectedRow
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
    rows_valid: int = 0
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
# Running an import


def key_coverage(audience_id: int) -> tuple[dict[str, int], dict[str, int]]:
    """(members carrying each match key, members each platform can use by the keys it takes), in one query."""
    from platforms.adapters.registry import all_adapter_classes

    members = Member.objects.filter(audience_id=audience_id)
    aggregates = {key: Count("person", filter=Q(**{f"{short}__isnull": False})) for key, short in matchkeys._COVERAGE}
    aggregates["name_zip"] = Count("person", filter=Q(fn__isnull=False, ln__isnull=False, z__isnull=False))
    usable = {}
    for code, adapter in all_adapter_classes().items():
        condition = Q()
        for key in adapter.identifier_keys:
            for column in adapter.match_keys[key][0]:
                condition |= Q(**{f"{column}__isnull": False})
        if adapter.composite_identifier:
            condition |= Q(**{f"{adapter.match_keys[key][0][0]}__isnull": False
                              for key in adapter.composite_identifier[:2]})
        usable[code] = Count("person", filter=condition) if condition else None
    counts = members.aggregate(**aggregates, **{f"platform_{code}": q for code, q in usable.items() if q is not None})
    coverage = {key: counts[key] for key in [*(k for k, _ in matchkeys._COVERAGE), "name_zip"] if counts[key]}
    platforms = {code: counts.get(f"platform_{code}") or 0 for code in usable}
    return coverage, platforms


def run_import(job_id: int) -> ImportJob | None:
    """Import one queued job (the Celery task's body). Idempotent: a finished job is left alone; a job
    found RUNNING (its worker died) restarts from the beginning of the file (nothing of it was applied)."""
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
        job.target_generation = audience.generation + 1
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
        logger.info("import %s: restarting from the beginning of the file", job.pk)
        RejectedRow.objects.filter(import_job=job).delete()
    stage = storage.Stage()
    try:
        stage.create()
        _stream(job, audience, stage)
    except UnusableFile as exc:
        _fail(job, str(exc))
    except Exception as exc:
        # The class and the frames only: a database error's text may quote a row's values.
        logger.error("import %s failed (%s) at\n%s", job.pk, type(exc).__name__,
                     "".join(traceback.format_tb(exc.__traceback__)[-5:]))
        _fail(job, UNEXPECTED_FAILURE)
    finally:
        with suppress(DatabaseError):
            stage.drop()
    # Not in a finally: a worker shut down mid-import (SystemExit, KeyboardInterrupt) leaves the job RUNNING
    # and the file in place, so the re-delivered task (acks_late) restarts it.
    delete_upload(job)
    job.refresh_from_db()
    return job


def _stream(job: ImportJob, audience: Audience, stage: storage.Stage) -> None:
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
    order = matchkeys.person_order(job.person_key or audience.person_key or default_person_key(keys))
    person_id, identifiable, prepare_rows = matchkeys.person_id, matchkeys.is_identifiable, matchkeys.prepare_rows
    merge = storage.merge_into
    base = 1  # spreadsheet row number of the record before the chunk (the header is row 1)
    with open(job.stored_path, "rb") as raw, _RecordReader(raw, encoding=job.encoding,
                                                           delimiter=job.delimiter) as records:
        while chunk := records.read(CHUNK_ROWS):
            check_text, records.lines.saw_bad_text = records.lines.saw_bad_text, False
            members: dict[bytes, dict] = {}  # person -> stored, the first row of a person kept
            blanks = 0
            results = prepare_rows(chunk, keys, default_region=region)
            for i in range(len(results)):
                record, results[i] = results[i], None
                stored = record.stored
                if identifiable(stored) and not (check_text and _bad_text_column(chunk[i], mapped) is not None):
                    tally.rows_valid += 1
                    person = person_id(stored, order)
                    kept = members.get(person)
                    if kept is None:
                        members[person] = stored
                    else:
                        merge(kept, stored)
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
                stage.write(members)
                if tally.rejected_rows:
                    RejectedRow.objects.bulk_create(tally.rejected_rows)
                    tally.rejected_rows = []
                _checkpoint(job, tally, raw.tell())
            del members
    if tally.rows_total == 0:
        raise UnusableFile("The file has a header row but no data rows.")
    if tally.rows_valid == 0:
        # Most likely a wrong mapping or the wrong file: keep the current members rather than empty them.
        raise UnusableFile(
            f"None of the {tally.rows_total:,} rows had a usable match key, so nothing was imported. "
            "Check the column mapping and the rejected rows."
        )
    tally.rows_imported = stage.count()
    tally.rows_duplicate = tally.rows_valid - tally.rows_imported
    _succeed(job, audience, tally, stage, person_key=_person_key_of(order))


def default_person_key(keys) -> str:
    """The person key a file suggests: its external id column when it has one, else email, else phone, else
    the mobile advertiser id."""
    present = set(keys) if not isinstance(keys, dict) else set(keys.values())
    for key in matchkeys.PERSON_KEYS:
        if key in present:
            return key
    return "email"


def _person_key_of(order: tuple[str, ...]) -> str:
    return {"x": "external_id", "e": "email", "p": "phone", "m": "maid"}[order[0]]


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
    job.rows_total, job.rows_imported = tally.rows_total, tally.rows_valid
    job.rows_rejected = tally.rows_rejected
    job.rejections_by_reason = dict(tally.reasons.most_common())
    job.bytes_processed = min(position, job.size_bytes or position)
    job.heartbeat_at = timezone.now()
    ImportJob.objects.filter(pk=job.pk).update(
        rows_total=job.rows_total, rows_imported=job.rows_imported, rows_rejected=job.rows_rejected,
        rejections_by_reason=job.rejections_by_reason, bytes_processed=job.bytes_processed,
        heartbeat_at=job.heartbeat_at,
    )


def _succeed(job: ImportJob, audience: Audience, tally: _Tally, stage: storage.Stage, *, person_key: str) -> None:
    now = timezone.now()
    with transaction.atomic():
        applied = apply(audience_id=audience.pk, stage=stage, generation=job.target_generation, person_key=person_key,
                        mapping=mapping_by_header(job))
        ImportJob.objects.filter(pk=job.pk).update(
            status=ImportJob.Status.SUCCEEDED, finished_at=now, heartbeat_at=now, bytes_processed=job.size_bytes,
            rows_imported=tally.rows_imported, rows_duplicate=tally.rows_duplicate,
            members_joined=applied.joined, members_changed=applied.changed, members_left=applied.left,
        )
        # The file goes with the commit that makes the job succeed, never after it (a worker stopped right after
        # the commit would leave it): should this commit fail, the job fails too, asking for the file again.
        delete_upload(job)
    vacuum_analyze(Member)  # the new rows' pages all-visible: the next plan reads the index alone
    logger.info("import %s: %s rows, %s members (%s joined, %s changed, %s left), %s rejected, %s merged", job.pk,
                tally.rows_total, tally.rows_imported, applied.joined, applied.changed, applied.left,
                tally.rows_rejected, tally.rows_duplicate)


def apply(*, audience_id: int, stage: storage.Stage, generation: int, person_key: str,
          mapping: dict | None = None) -> storage.Applied:
    """Make the staged people the audience's membership as ``generation`` (inside the caller's transaction, with
    the audience row locked here) and bring its counts up to date."""
    from syncs.models import Sync

    current = Audience.objects.select_for_update().get(pk=audience_id)
    if current.status == Audience.Status.DELETING:
        raise UnusableFile(AUDIENCE_DELETED)
    if current.generation >= generation:  # two imports of one audience ran at once
        raise UnusableFile("A newer import of this audience finished first, so this one was discarded.")
    sync_ids = list(Sync.objects.filter(audience_id=audience_id).values_list("pk", flat=True))
    applied = storage.apply_stage(stage, audience_id=audience_id, generation=generation, sync_ids=sync_ids)
    coverage, platforms = key_coverage(audience_id)
    if applied.generation == generation:
        current.changes_recorded_from = storage.forget_changes(audience=current, recorded=applied.recorded,
                                                               generation=generation)
    current.generation = applied.generation
    current.member_count = applied.members
    current.key_coverage, current.platform_coverage = coverage, platforms
    current.status = Audience.Status.READY
    current.person_key = person_key
    if mapping is not None:
        current.last_mapping = mapping
    current.save(update_fields=["generation", "changes_recorded_from", "member_count", "key_coverage",
                                "platform_coverage", "status", "person_key", "last_mapping", "updated_at"])
    return applied


def import_records(*, audience: Audience, records, person_key: str | None = None) -> storage.Applied:
    """Make these prepared records (``matchkeys`` stored dicts) the audience's whole membership, exactly as an
    import of a file holding them would: people by the person key, rows of one person merged, the changes applied
    in one transaction. For tests, benchmarks and the shell; files go through ``run_import``."""
    person_key = person_key or audience.person_key or "email"
    order = matchkeys.person_order(person_key)
    stage = storage.Stage()
    stage.create()
    try:
        chunk: dict[bytes, dict] = {}
        for stored in records:
            person = matchkeys.person_id(stored, order)
            if person is None:
                continue
            kept = chunk.get(person)
            if kept is None:
                chunk[person] = dict(stored)
            else:
                storage.merge_into(kept, stored)
            if len(chunk) >= CHUNK_ROWS:
                stage.write(chunk)
                chunk = {}
        stage.write(chunk)
        with transaction.atomic():
            generation = Audience.objects.values_list("generation", flat=True).get(pk=audience.pk) + 1
            applied = apply(audience_id=audience.pk, stage=stage, generation=generation, person_key=person_key)
    finally:
        stage.drop()
    audience.refresh_from_db()
    return applied


def mapping_by_header(job: ImportJob) -> dict[str, str]:
    """The job's mapping by column header (what a re-import starts from)."""
    return {column_label(job.headers, int(index)): key for index, key in job.column_mapping.items() if key}


def _fail(job: ImportJob, message: str) -> None:
    now = timezone.now()
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportJob.Status.FAILED, error_message=message, finished_at=now, heartbeat_at=now
    )
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
