"""The audience import: store an upload, sniff it, map its columns, and stream it into hashed members.

Flow: ``create_import`` stores the upload under ``settings.UPLOAD_DIR`` (audiences.uploads) and sniffs encoding,
delimiter and header (audiences.sniffing); an unusable file fails the job at once with one clear message. A
re-import starts from the audience's last mapping. ``start_import`` checks the column mapping, the encoding and
the person key and queues the Celery task, which calls ``run_import``: the file is read in chunks of
``CHUNK_ROWS`` rows; cells holding control characters are dropped (with a reason), already-hashed columns are
checked (audiences.hashed), each chunk is transposed once and goes through ``matchkeys.prepare_transposed``
(normalize + SHA-256); each row becomes a person (``matchkeys.person_id`` by the person key), rows of the same
person are merged (the first row is kept, later ones add only the keys it lacks), and the people are staged
(audiences.storage.Stage). When the whole file is in, ``storage.apply_stage`` makes them the audience's
membership in one transaction: joins, updates (a person whose phone changed), leavers. A new audience's first
import writes its people straight into the audience instead, invisible until it applies (audiences.filling). A
failure leaves the membership as it was; a re-run of the same job starts over from the beginning of the file. The
upload is deleted at the end, success or failure.

What the import counts, and in what: rows (read, imported, merged into an earlier row of the same person,
rejected, each rejected row once under its reason) and values, per mapped column (used, dropped by reason, empty,
in rejected rows: the four add up to the rows read). Nothing raw is logged or stored: rejected rows keep the row
number, the column's header and the reason, never the value; database errors are logged by class and row number.

Row numbers are spreadsheet rows: the header is row 1, the first data record row 2 (a record with quoted
newlines counts once).
"""

from __future__ import annotations

import logging
import os
import traceback
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, DataError, transaction
from django.utils import timezone

from activation_manager import leases
from activation_manager.leases import Lease, LeaseLost
from audiences import filling, hashed, sniffing, storage
from audiences.coverage import key_coverage
from audiences.filling import AUDIENCE_DELETED, NEWER_IMPORT_WON  # noqa: F401 - part of this module's interface
from audiences.housekeeping import vacuum_analyze
from audiences.mapping import (  # noqa: F401 - part of this module's interface
    MAPPING_KEYS,
    clean_mapping,
    clean_person_key,
    default_person_key,
    initial_mapping,
    key_label,
    mapped_person_keys,
    mapping_by_header,
    person_key_of,
)
from audiences.models import Audience, ImportJob, Member, RejectedRow
from audiences.reading import FIELD_TOO_LARGE, OVERSIZE_MARK, BadRecord, RecordReader  # noqa: F401
from audiences.reports import (  # noqa: F401 - part of this module's interface
    dropped_by_reason,
    progress_percent,
    rejections_csv_rows,
    spreadsheet_safe,
    summary,
)
from audiences.sniffing import (  # noqa: F401 - part of this module's interface
    CONTROL_CHARS,
    DELIMITER_LABELS,
    ENCODING_CHOICES,
    ENCODING_LABELS,
    MAX_COLUMNS,
    Sniffed,
    column_label,
    detect_delimiter,
    detect_encoding,
    encoding_label,
    guess_mapping,
)
from audiences.tally import NO_KEY_REASON, ColumnTally, Tally, bad_text_column, is_blank, reject_row  # noqa: F401
from audiences.tally import progress as tally_progress
from audiences.uploads import (  # noqa: F401 - part of this module's interface
    UnusableFile,
    copy_chunks,
    delete_upload,
    store_django_upload,
    store_upload,
    upload_dir,
)
from audiences.watchdog import IMPORT_JOB, requeue_stale_imports  # noqa: F401 - part of this module's interface
from audiences.writer import ChunkWriter
from platforms import matchkeys

logger = logging.getLogger(__name__)

# A value the database refuses: Django's DataError, or psycopg's own from a COPY (which Django does not wrap).
_DATA_ERRORS: tuple[type[Exception], ...] = (DataError,)
try:
    import psycopg

    _DATA_ERRORS += (psycopg.DataError,)
except ImportError:  # SQLite only
    pass

CHUNK_ROWS = 10_000
SAMPLE_BYTES = sniffing.SAMPLE_BYTES  # what the sniffer reads (tests shorten it)
# One field may hold at most this many characters; one physical line at most MAX_LINE_CHARS (longer lines
# are skipped in pieces, never read whole), so a 200 MB single-field file costs a few MB of memory.
FIELD_LIMIT = 64 * 1024
MAX_LINE_CHARS = 1024 * 1024
MAX_REJECTED_ROWS = 1_000
# The match-key value caches grow with the variety of the data (dates, ZIP+4s, names). Once the worker's resident
# size is this much above what it was when the import started, the import empties them, so memory stays flat
# however long the file is (they refill in a few chunks). Relative to the start: a worker that has synced or
# imported holds the platforms' client libraries (about 75 MB), and the absolute 200 MB used before left the caches
# nothing in such a worker (the import 20 % slower, bench/import.py).
MEMORY_BUDGET_MB = 40
# Memory Python freed is mostly kept for reuse, not given back: after the caches are emptied the resident size
# stays above the budget while they refill into that same memory. So, while over budget, they are emptied at most
# once every this many chunks (each time, not after every chunk: 92 times in 100 chunks before).
MEMORY_CLEAR_EVERY = 10
BAD_TEXT_REASON = "text is not valid {encoding} (mixed encodings?)"
CONTROL_REASON = "holds a control character (such as a NUL byte)"
LINE_TOO_LONG = "line too long"
UNEXPECTED_FAILURE = "The import failed unexpectedly; nothing was changed. Try again, or contact support."
UNSTORABLE_ROW = ("Row {row} holds a value the database refused ({error}), so nothing was imported and nothing "
                  "changed. Fix or remove that row and upload the file again.")


def sniff(path: Path | str, *, encoding: str | None = None) -> Sniffed:
    """Encoding, delimiter and header row of the file at ``path`` (audiences.sniffing.sniff)."""
    return sniffing.sniff(path, encoding=encoding, sample_bytes=SAMPLE_BYTES)


# ---------------------------------------------------------------------------------------------------------
# Creating and starting an import


UNSTORABLE_HEADER = ("The file's header row could not be stored. Open the file in a spreadsheet, save it as CSV "
                     "(UTF-8) and upload that.")


def create_import(*, owner, audience: Audience, chunks=None, filename: str, upload=None,
                  encoding: str | None = None) -> ImportJob:
    """Store the upload (``chunks`` of bytes, or a Django ``upload``) and sniff it (in ``encoding`` when given).
    The job is UPLOADED (ready for mapping, starting from the audience's last mapping on a re-import) or FAILED
    with a message; a failed file is deleted at once."""
    name = CONTROL_CHARS.sub("", filename or "").strip() or "upload.csv"
    job = ImportJob(owner=owner, audience=audience, original_filename=name[:255])
    try:
        path, size = store_django_upload(upload) if upload is not None else store_upload(chunks)
    except UnusableFile as exc:
        return _failed_before_start(job, str(exc))
    job.stored_path, job.size_bytes = str(path), size
    try:
        sniffed = sniff(path, encoding=encoding)
    except (UnusableFile, ValueError) as exc:
        path.unlink(missing_ok=True)
        job.stored_path = ""
        return _failed_before_start(job, str(exc))
    _take_sniffed(job, sniffed, audience)
    try:
        with transaction.atomic():
            job.save()
    except DatabaseError as exc:  # never the value in the log: the error's text may quote the header
        logger.warning("upload for audience %s: %s while saving the job", audience.pk, type(exc).__name__)
        path.unlink(missing_ok=True)
        job.stored_path, job.headers, job.column_mapping = "", [], {}
        return _failed_before_start(job, UNSTORABLE_HEADER)
    return job


def _take_sniffed(job: ImportJob, sniffed: Sniffed, audience: Audience) -> None:
    job.encoding, job.delimiter, job.headers = sniffed.encoding, sniffed.delimiter, sniffed.headers
    job.column_mapping = initial_mapping(audience, sniffed)


def create_import_from_path(*, owner, audience: Audience, path: Path | str, filename: str | None = None,
                            encoding: str | None = None):
    """``create_import`` for a file on disk (the command, the bundled sample): it is copied, never moved."""
    return create_import(owner=owner, audience=audience, chunks=copy_chunks(Path(path)),
                         filename=filename or Path(path).name, encoding=encoding)


def _failed_before_start(job: ImportJob, message: str) -> ImportJob:
    job.status = ImportJob.Status.FAILED
    job.error_message = message
    job.finished_at = timezone.now()
    job.save()
    Audience.objects.filter(pk=job.audience_id, generation=0).update(status=Audience.Status.FAILED)
    return job


def read_as(job: ImportJob, encoding: str) -> Sniffed:
    """The pending upload read in another encoding (headers, delimiter, first rows; nothing saved): what the
    mapping page shows when the marketer picks an encoding. ValueError for an unknown encoding, UnusableFile when
    the file cannot be read that way."""
    if not job.stored_path or not Path(job.stored_path).exists():
        raise UnusableFile("The uploaded file is no longer available; upload it again.")
    return sniff(job.stored_path, encoding=encoding)


def change_encoding(job: ImportJob, sniffed: Sniffed) -> None:
    """Take the file as read in ``sniffed.encoding`` (see ``read_as``): headers and delimiter follow; the mapping
    is kept when the columns are the same, guessed again otherwise. Saved."""
    same_columns = len(sniffed.headers) == len(job.headers) and sniffed.delimiter == job.delimiter
    mapping = dict(job.column_mapping)
    _take_sniffed(job, sniffed, job.audience)
    if same_columns:
        job.column_mapping = mapping
    job.save(update_fields=["encoding", "delimiter", "headers", "column_mapping"])


def start_import(job: ImportJob, mapping: dict[str, str] | None = None, *, enqueue: bool = True,
                 person_key: str | None = None) -> ImportJob:
    """Fix the mapping (and the person key, when given), mark the job QUEUED and queue the Celery task once the
    transaction commits."""
    job.column_mapping = clean_mapping(job, job.column_mapping if mapping is None else mapping)
    if person_key:
        job.person_key = clean_person_key(job.column_mapping, person_key)
    job.status = ImportJob.Status.QUEUED
    job.error_message = ""
    job.save(update_fields=["column_mapping", "person_key", "status", "error_message"])
    Audience.objects.filter(pk=job.audience_id).update(status=Audience.Status.IMPORTING, updated_at=timezone.now())
    if enqueue:
        from audiences.tasks import import_audience

        transaction.on_commit(lambda: import_audience.delay(job.pk))
    return job


# ---------------------------------------------------------------------------------------------------------
# Running an import


def run_import(job_id: int) -> ImportJob | None:
    """Import one queued job (the Celery task's body). Idempotent: a finished job, or one running under a live
    worker, is left alone; one whose worker went silent is taken over (activation_manager.leases) and restarts
    from the beginning of the file (nothing of it was applied: the changes apply in one transaction at the end; a
    new audience's first import, written straight into it, is read again over its own rows: audiences.filling)."""
    lease = leases.claim(IMPORT_JOB, job_id, stale_after=settings.IMPORT_STALE_AFTER,
                         max_takeovers=settings.JOB_MAX_TAKEOVERS)
    if lease is None:
        return ImportJob.objects.filter(pk=job_id).first()
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().select_related("audience").get(pk=job_id)
        audience = Audience.objects.select_for_update().get(pk=job.audience_id)
        if audience.status == Audience.Status.DELETING:
            lease.release(ImportJob.Status.FAILED, error_message=AUDIENCE_DELETED, finished_at=timezone.now())
            job.refresh_from_db()
            return job
        restarting = job.target_generation is not None
        lease.write(target_generation=audience.generation + 1, started_at=timezone.now(), rows_total=0,
                    rows_imported=0, rows_rejected=0, rows_duplicate=0, bytes_processed=0, rejections_by_reason={},
                    error_message="")
        job.refresh_from_db()
        audience.status = Audience.Status.IMPORTING
        audience.save(update_fields=["status", "updated_at"])
        fills = filling.take(job, audience)  # a new audience's first import writes straight into it
    if restarting:
        logger.info("import %s: restarting from the beginning of the file", job.pk)
        RejectedRow.objects.filter(import_job=job).delete()
    stage = storage.Stage(into=(audience.pk, job.target_generation) if fills else None)
    where = _Where()
    try:
        stage.create()
        _stream(job, audience, stage, where, lease)
    except LeaseLost:
        logger.warning("import %s: taken over by another worker; this one stops", job.pk)
        return ImportJob.objects.filter(pk=job_id).first()
    except UnusableFile as exc:
        _fail(job, str(exc), lease)
    except Exception as exc:
        # The class, the rows and the frames only: a database error's text may quote a row's values.
        logger.error("import %s failed (%s) in rows %s-%s at\n%s", job.pk, type(exc).__name__, where.first,
                     where.last, "".join(traceback.format_tb(exc.__traceback__)[-5:]))
        _fail(job, UNEXPECTED_FAILURE, lease)
    finally:
        with suppress(DatabaseError):
            stage.drop()
    # Not in a finally: a worker shut down mid-import (SystemExit, KeyboardInterrupt) leaves the job RUNNING
    # and the file in place, so the re-delivered task (acks_late) restarts it.
    delete_upload(job)
    job.refresh_from_db()
    return job


@dataclass
class _Where:
    """The rows of the chunk being imported (spreadsheet numbers), for the log when something fails."""

    first: int = 0
    last: int = 0


def _stream(job: ImportJob, audience: Audience, stage: storage.Stage, where: _Where, lease: Lease) -> None:
    if not job.stored_path or not Path(job.stored_path).exists():
        raise UnusableFile("The uploaded file is no longer available; upload it again.")
    keys: list[str | None] = [None] * len(job.headers)
    labels: dict[int, str] = {}
    for index, key in job.column_mapping.items():
        if key and int(index) < len(keys):
            keys[int(index)] = key
            labels[int(index)] = column_label(job.headers, int(index))
    if not any(keys):
        raise UnusableFile("No column is mapped to a match key.")
    mapped = [i for i, key in enumerate(keys) if key]
    column_of = {keys[i]: i for i in mapped}
    # matchkeys reads the plain columns; the already-hashed ones are checked here (audiences.hashed).
    plain = [key if key in matchkeys.KEYS else None for key in keys]
    hashed_columns = [(i, keys[i], hashed.KEYS[keys[i]][1]) for i in mapped if keys[i] in hashed.KEYS]
    region = audience.default_country or None
    bad_text = BAD_TEXT_REASON.format(encoding=encoding_label(job.encoding))
    counts = ColumnTally(mapped, keys, labels)
    tally = Tally(columns=counts, keep=MAX_REJECTED_ROWS)
    order = matchkeys.person_order(job.person_key or audience.person_key or default_person_key(keys))
    person_id, identifiable = matchkeys.person_id, matchkeys.is_identifiable
    transpose, prepare_transposed = matchkeys.transpose, matchkeys.prepare_transposed
    merge = storage.merge_into
    base = 1  # spreadsheet row number of the record before the chunk (the header is row 1)
    memory = _MemoryBudget(_resident_mb() + MEMORY_BUDGET_MB)
    with open(job.stored_path, "rb") as raw, RecordReader(raw, encoding=job.encoding, delimiter=job.delimiter,
                                                          field_limit=FIELD_LIMIT,
                                                          max_line_chars=MAX_LINE_CHARS) as records, \
            storage.relaxed_commits(), _ChunkWriter(f"import-{job.pk}-write", where) as writer:
        while chunk := records.read(CHUNK_ROWS):
            where.first, where.last = base + 1, base + len(chunk)
            check_text, records.lines.saw_bad_text = records.lines.saw_bad_text, False
            check_controls, records.lines.saw_controls = records.lines.saw_controls, False
            columns = transpose(chunk)  # once, for the counts and the match keys
            counts.count(columns, len(chunk))
            # Cells with control characters are emptied before normalizing and dropped with a reason.
            controlled = _empty_control_cells(chunk, mapped) if check_controls else {}
            if controlled:
                columns = transpose(chunk)
            members: dict[bytes, dict] = {}  # person -> stored, the first row of a person kept
            first_row: dict[bytes, int] = {}
            blanks = 0
            results = prepare_transposed(columns, plain, len(chunk), default_region=region)
            del columns
            if hashed_columns:
                hashed.take_columns(chunk, results, hashed_columns)
            for i, columns in controlled.items():
                results[i].rejections.extend((keys[column], CONTROL_REASON) for column in columns)
            for i in range(len(results)):
                record, results[i] = results[i], None
                stored = record.stored
                if identifiable(stored) and not (check_text and bad_text_column(chunk[i], mapped) is not None):
                    tally.rows_valid += 1
                    if record.rejections:  # values dropped from a row that is kept
                        for key, reason in record.rejections:
                            column = column_of[key]
                            if not is_blank(chunk[i], column) or column in controlled.get(i, ()):
                                counts.drop(column, reason)
                    person = person_id(stored, order)
                    kept = members.get(person)
                    if kept is None:
                        members[person] = stored
                        first_row[person] = base + i + 1
                    else:
                        merge(kept, stored)
                    continue
                # The rare path: work out why this record gives no member.
                cells, number = chunk[i], base + i + 1
                if cells.__class__ is BadRecord:
                    counts.unreadable(cells)
                    tally.reject(job.pk, number, [], cells.reason)
                elif (not cells or (len(cells) == 1 and not cells[0].strip())) and i not in controlled:
                    counts.not_a_record()
                    blanks += 1  # a blank line is no record (it keeps its row number, as in a spreadsheet)
                elif cells[0].startswith(OVERSIZE_MARK):
                    counts.unreadable(cells)
                    tally.reject(job.pk, number, [], LINE_TOO_LONG)
                else:
                    reject_row(job, tally, counts, number, cells, record, keys, labels, column_of,
                            controlled.get(i, ()), bad_text if check_text else None)
            tally.rows_total += len(chunk) - blanks
            base += len(chunk)
            del results, chunk
            memory.chunks += 1
            if memory.chunks >= memory.next_clear and _resident_mb() > memory.limit:
                matchkeys.clear_value_caches()
                memory.next_clear = memory.chunks + MEMORY_CLEAR_EVERY
            # Written in the helper thread while the next chunk is read and prepared (audiences/writer.py).
            rejected, tally.rejected_rows = tally.rejected_rows, []
            progress = tally_progress(tally, raw.tell(), job.size_bytes)
            writer.submit(partial(_commit_chunk, job, stage, members, first_row, rejected, progress, lease),
                          context=(where.first, where.last))
            del members, first_row
        writer.wait()
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
    _succeed(job, audience, tally, stage, counts, lease, person_key=person_key_of(order))


def _empty_control_cells(chunk: list, mapped: list[int]) -> dict[int, list[int]]:
    """Empty the mapped cells that hold control characters; returns {row index in chunk: [columns]}."""
    found: dict[int, list[int]] = {}
    search = CONTROL_CHARS.search
    for i, cells in enumerate(chunk):
        for column in mapped:
            if column < len(cells) and search(cells[column]) is not None:
                cells[column] = ""
                found.setdefault(i, []).append(column)
    return found


def _write(job: ImportJob, stage: storage.Stage, members: dict, first_row: dict) -> None:
    """Stage one chunk's people. Should the database refuse a value (it never sees a control character, but
    still), the row that holds it is found and named, and the import stops: nothing raw in the log or message."""
    try:
        with transaction.atomic():
            stage.write(members)
    except _DATA_ERRORS as exc:
        error = type(exc).__name__
        row = _unstorable_row(stage, members, first_row)
        logger.warning("import %s: %s while staging row %s", job.pk, error, row if row is not None else "?")
        raise UnusableFile(UNSTORABLE_ROW.format(row=row if row is not None else "?", error=error)) from None


def _unstorable_row(stage: storage.Stage, members: dict, first_row: dict) -> int | None:
    """The first row whose person the stage refuses, tried one by one (each in its own savepoint)."""
    refused = []
    for person, stored in members.items():
        try:
            with transaction.atomic():
                stage.write({person: stored})
        except _DATA_ERRORS:
            refused.append(first_row.get(person))
    return min((row for row in refused if row is not None), default=None)


@dataclass
class _MemoryBudget:
    limit: float  # resident MB past which the value caches are emptied
    chunks: int = 0  # chunks read so far
    next_clear: int = 0  # the first chunk after which the caches may be emptied again


def _resident_mb() -> float:
    """Current resident set size (Linux /proc; 0 where unavailable, which disables the budget)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_SIZE / 1_048_576
    except (OSError, ValueError, IndexError):
        return 0.0


_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _commit_chunk(job: ImportJob, stage: storage.Stage, members: dict, first_row: dict, rejected: list,
                  progress: dict, lease: Lease) -> None:
    """One chunk's writes, in one transaction: its people staged, its first rejections kept, the checkpoint."""
    with transaction.atomic():
        if stage.into is not None:
            filling.check(job.pk, job.audience_id)
        _write(job, stage, members, first_row)
        if rejected:
            RejectedRow.objects.bulk_create(rejected)
        _checkpoint(job, progress, lease)


class _ChunkWriter(ChunkWriter):
    """The chunk writer, noting which rows were being written when its writes fail (for the log)."""

    def __init__(self, name: str, where: _Where):
        super().__init__(name)
        self.where = where

    def wait(self) -> None:
        try:
            super().wait()
        except BaseException:
            if self.context is not None:
                self.where.first, self.where.last = self.context
            raise


def _checkpoint(job: ImportJob, progress: dict, lease: Lease) -> None:
    if Audience.objects.filter(pk=job.audience_id, status=Audience.Status.DELETING).exists():
        raise UnusableFile(AUDIENCE_DELETED)  # stop here: the deletion waits for this import to end
    lease.write(**progress)


def _succeed(job: ImportJob, audience: Audience, tally: Tally, stage: storage.Stage, counts: ColumnTally,
             lease: Lease, *, person_key: str) -> None:
    # Applying ten million people is one long transaction: the lease beats from a helper thread meanwhile.
    with lease.keep_alive(), transaction.atomic():
        applied = apply(audience_id=audience.pk, stage=stage, generation=job.target_generation, person_key=person_key,
                        mapping=mapping_by_header(job), members=tally.rows_imported)
        succeeded = lease.release(
            ImportJob.Status.SUCCEEDED, finished_at=timezone.now(), bytes_processed=job.size_bytes,
            rows_imported=tally.rows_imported, rows_duplicate=tally.rows_duplicate, person_key=person_key,
            column_counts=counts.as_list(), members_joined=applied.joined, members_changed=applied.changed,
            members_left=applied.left,
        )
        if not succeeded:
            raise LeaseLost()  # taken over meanwhile: roll the apply back, the new worker imports the file
        # The file goes with the commit that makes the job succeed, never after it (a worker stopped right after
        # the commit would leave it): should this commit fail, the job fails too, asking for the file again.
        delete_upload(job)
    vacuum_analyze(Member)  # the new rows' pages all-visible: the next plan reads the index alone
    logger.info("import %s: %s rows, %s members (%s joined, %s changed, %s left), %s rejected, %s merged", job.pk,
                tally.rows_total, tally.rows_imported, applied.joined, applied.changed, applied.left,
                tally.rows_rejected, tally.rows_duplicate)


def apply(*, audience_id: int, stage: storage.Stage, generation: int, person_key: str,
          mapping: dict | None = None, members: int | None = None) -> storage.Applied:
    """Make the staged people the audience's membership as ``generation`` (inside the caller's transaction, with
    the audience row locked here) and bring its counts up to date."""
    from syncs.models import Sync

    current = Audience.objects.select_for_update().get(pk=audience_id)
    if current.status == Audience.Status.DELETING:
        raise UnusableFile(AUDIENCE_DELETED)
    if current.generation >= generation:  # two imports of one audience ran at once
        raise UnusableFile(NEWER_IMPORT_WON)
    if stage.into is not None:  # written straight in while the file was read
        applied = storage.apply_filled(stage, generation=generation, members=members)
    else:
        filling.make_room(current)
        sync_ids = list(Sync.objects.filter(audience_id=audience_id).values_list("pk", flat=True))
        applied = storage.apply_stage(stage, audience_id=audience_id, generation=generation, sync_ids=sync_ids)
    current.filling_import_id = None
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
                                "platform_coverage", "status", "person_key", "last_mapping", "filling_import",
                                "updated_at"])
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


def _fail(job: ImportJob, message: str, lease: Lease) -> None:
    if not lease.release(ImportJob.Status.FAILED, error_message=message, finished_at=timezone.now()):
        return  # no longer ours: the worker that took it over decides
    filling.forget(job)
    audience = Audience.objects.get(pk=job.audience_id)
    if audience.status != Audience.Status.DELETING:
        audience.status = Audience.Status.READY if audience.generation else Audience.Status.FAILED
        audience.save(update_fields=["status", "updated_at"])
    logger.info("import %s failed: %s", job.pk, message)


def sample_file_path() -> Path:
    return Path(__file__).resolve().parent / "sample_data" / "sample-customers.csv"
