"""PostgreSQL upkeep the pipeline does itself right after bulk writes, instead of waiting for autovacuum."""

from __future__ import annotations

from django.db import connection


def vacuum_analyze(model, *, reclaim: bool = False) -> None:
    """VACUUM (ANALYZE) ``model``'s table after a bulk write: fresh statistics, and the new rows' pages marked
    all-visible, so the joins that read the table next run from its indexes alone instead of visiting every
    new row (measured on a million fresh members: 5.3 s -> 0.8 s for the change join, for a 0.5 s VACUUM,
    which skips the pages that were already all-visible). INDEX_CLEANUP OFF: the point is the new rows, not
    reclaiming the dead ones of older generations across every audience's index entries, which autovacuum
    does on its own schedule. ``reclaim``: a plain VACUUM instead, for a table whose big values were just
    emptied (a run's sent batches): with index cleanup its emptied TOAST pages are freed and returned to the
    file system (12 MB per million people synced, otherwise kept until autovacuum comes by). SKIP_LOCKED: when
    another worker is vacuuming the table, skip. Inside a transaction (tests) VACUUM cannot run: ANALYZE only.
    Nothing on SQLite."""
    if connection.vendor != "postgresql":
        return
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        if connection.in_atomic_block:
            cursor.execute(f"ANALYZE {table}")
        else:
            options = "ANALYZE, SKIP_LOCKED" if reclaim else "ANALYZE, SKIP_LOCKED, INDEX_CLEANUP OFF"
            cursor.execute(f"VACUUM ({options}) {table}")
