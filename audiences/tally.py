"""What an import counts while it streams a file: rows (read, valid, rejected by reason, the first rejections
to list) and, per mapped column, what became of its values (used, dropped by reason, empty, in a rejected row).
audiences/imports.py fills these chunk by chunk; the counts are written with each checkpoint and shown on the
import's page (audiences/reports.py)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from audiences.models import RejectedRow

NO_KEY_REASON = "no usable match key"
# The keys that identify a person on their own, in the order a rejected row's reason is taken from.
IDENTIFYING = ("email", "email_sha256", "phone", "phone_sha256", "maid", "external_id")


@dataclass
class Tally:
    """The import's counts: rows, and the first rejections to keep (RejectedRow objects not yet saved)."""

    rows_total: int = 0
    rows_valid: int = 0
    rows_imported: int = 0
    rows_rejected: int = 0
    rows_duplicate: int = 0
    reasons: Counter = field(default_factory=Counter)  # rejected rows by their reason: each row once
    rejected_rows: list = field(default_factory=list)
    rejected_kept: int = 0
    columns: ColumnTally | None = None  # the values' counts, per mapped column
    keep: int = 1_000  # rejected rows kept (listed on the import page), at most

    def reject(self, job_id, row_number: int, problems: list[tuple[str, str]], reason: str):
        """A rejected row: counted once, under ``reason``; each of its ``problems`` (column, reason) listed."""
        self.rows_rejected += 1
        self.reasons[reason] += 1
        for column, problem in problems or [("", reason)]:
            if self.rejected_kept < self.keep:
                self.rejected_kept += 1
                self.rejected_rows.append(RejectedRow(import_job_id=job_id, row_number=row_number,
                                                      column=column[:255], reason=problem[:255]))


class ColumnTally:
    """Per mapped column, what became of its values (one per row read): used, dropped by reason, empty, or in a
    rejected row. Most cells are counted in bulk per chunk (filled or empty); the rare rows with a problem
    adjust the counts of their own cells."""

    def __init__(self, mapped: list[int], keys: list[str | None], labels: dict[int, str]):
        self.mapped = mapped
        self.slot = {column: n for n, column in enumerate(mapped)}
        self.keys, self.labels = keys, labels
        width = len(mapped)
        self.filled, self.empty = [0] * width, [0] * width
        self.dropped = [Counter() for _ in range(width)]
        self.unused_filled, self.unused_empty = [0] * width, [0] * width

    def count(self, columns: list[tuple], rows: int) -> None:
        """Count a chunk of ``rows`` rows from its columns (matchkeys.transpose: a short row's missing cells are
        None)."""
        for n, column in enumerate(self.mapped):
            if column >= len(columns):
                self.empty[n] += rows
                continue
            present = list(filter(None, columns[column]))  # neither missing (None) nor ""
            empty = rows - len(present) + sum(map(str.isspace, present))
            self.empty[n] += empty
            self.filled[n] += rows - empty

    def not_a_record(self) -> None:
        """A blank line: counted empty in bulk, not a row at all."""
        for n in range(len(self.mapped)):
            self.empty[n] -= 1

    def unreadable(self, cells: list) -> None:
        """A row that could not be read (too long, bad CSV): all its cells are in a rejected row."""
        for n, column in enumerate(self.mapped):
            if is_blank(cells, column):
                self.empty[n] -= 1
                self.unused_empty[n] += 1
            else:
                self.unused_filled[n] += 1

    def drop(self, column: int, reason: str) -> None:
        self.dropped[self.slot[column]][reason] += 1

    def unused(self, column: int) -> None:
        self.unused_filled[self.slot[column]] += 1

    def as_list(self) -> list[dict]:
        out = []
        for n, column in enumerate(self.mapped):
            dropped = dict(self.dropped[n].most_common())
            out.append({
                "column": self.labels[column], "key": self.keys[column],
                "used": self.filled[n] - sum(dropped.values()) - self.unused_filled[n],
                "dropped": dropped, "empty": self.empty[n],
                "in_rejected_rows": self.unused_filled[n] + self.unused_empty[n],
            })
        return out


def is_blank(cells: list, column: int) -> bool:
    cell = cells[column] if column < len(cells) else ""
    return not cell or cell.isspace()



def reject_row(job, tally: Tally, counts: ColumnTally, number: int, cells: list, record, keys, labels: dict[int, str],
               column_of: dict[str, int], controlled, bad_text: str | None) -> None:
    """A readable row that gives no member: its values are dropped (the bad ones, by reason) or in a rejected row
    (the good ones); the row is counted once, under its first identifying key's problem, else "no usable match
    key", or the undecodable column when the row holds bytes the encoding cannot read."""
    problems = {}  # column -> reason, for its non-blank cells
    for key, reason in record.rejections:
        column = column_of[key]
        if column not in problems and (not is_blank(cells, column) or column in controlled):
            problems[column] = reason
    undecodable = bad_text_column(cells, list(labels)) if bad_text else None
    if undecodable is not None:
        problems = {undecodable: bad_text, **{c: r for c, r in problems.items() if c != undecodable}}
    for column in labels:
        if column in problems:
            counts.drop(column, problems[column])
        elif not is_blank(cells, column):
            counts.unused(column)
    if undecodable is not None:
        reason = f"{labels[undecodable]}: {bad_text}"
    else:
        first = next((column_of[key] for key in IDENTIFYING if column_of.get(key) in problems), None)
        reason = f"{labels[first]}: {problems[first]}" if first is not None else NO_KEY_REASON
    tally.reject(job.pk, number, [(labels[c], r) for c, r in problems.items()], reason)


def bad_text_column(cells: list[str], mapped: list[int]) -> int | None:
    """Index of the first mapped cell holding undecodable bytes, or None."""
    for i in mapped:
        if i < len(cells) and "\ufffd" in cells[i]:
            return i
    return None


def progress(tally: Tally, position: int, size: int) -> dict:
    """The job's progress fields as of the chunk just read (a copy: the tally moves on meanwhile)."""
    progress = {"rows_total": tally.rows_total, "rows_imported": tally.rows_valid,
                "rows_rejected": tally.rows_rejected, "rejections_by_reason": dict(tally.reasons.most_common()),
                "bytes_processed": min(position, size or position)}
    if tally.columns is not None:
        progress["column_counts"] = tally.columns.as_list()
    return progress
