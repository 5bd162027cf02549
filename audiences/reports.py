"""What an import reports: the command's JSON line, the progress, the rejected rows as a spreadsheet-safe CSV, the
values dropped by column and reason."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from audiences.models import ImportJob

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
        "encoding": job.encoding,
        "person_key": job.person_key,
        "dropped_by_reason": dropped_by_reason(job),
    }


def dropped_by_reason(job: ImportJob) -> dict[str, int]:
    """Values dropped (from rows imported or rejected), by "column: reason", most first."""
    counted = Counter()
    for column in job.column_counts or ():
        for reason, count in column["dropped"].items():
            counted[f"{column['column']}: {reason}"] += count
    return dict(counted.most_common())
