"""After a large run, the space of its sent batches' person lists goes back to the file system (PostgreSQL): what a
sync keeps per person is its SyncMember row, not a leftover copy of every batch (docs/performance.md)."""

from __future__ import annotations

import random

import pytest
from django.db import connection

from syncs.engine import finish
from syncs.models import SyncBatch

from .conftest import make_audience, make_sync, new_run

pytestmark = pytest.mark.django_db(transaction=True)  # VACUUM runs outside a transaction only


def _batch_bytes() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_total_relation_size(%s)", [SyncBatch._meta.db_table])
        return cursor.fetchone()[0]


def test_a_large_run_gives_back_the_space_of_its_emptied_batches(user, tiktok_connection):
    if connection.vendor != "postgresql":
        pytest.skip("the space of a table is PostgreSQL's")
    run = new_run(make_sync(user, make_audience(user, 3), tiktok_connection))
    persons = random.Random(7).randbytes(120_000)  # 10,000 people's ids: stored out of line (TOAST), incompressible
    SyncBatch.objects.bulk_create([SyncBatch(run=run, seq=seq, kind="add", size=10_000, persons=persons)
                                   for seq in range(1, 41)])
    before = _batch_bytes()
    SyncBatch.objects.filter(run=run).update(status="sent", persons=b"")  # as the checkpoints leave them
    run.sent = finish.ANALYZE_AFTER

    finish._refresh_statistics(run)

    assert before > 4_000_000 and _batch_bytes() < before / 10
