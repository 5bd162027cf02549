"""A re-run after a small change to a large audience: the few adds and removes are scattered over the whole
fingerprint range, so their batches list their fingerprints and are read and checkpointed by exact lookups."""

from __future__ import annotations

import pytest

from syncs import engine
from syncs.models import SyncBatch
from tests.sync.test_engine import run_once, setup  # noqa: F401 — the fixture


def hexpoint(share: float) -> str:
    """A fingerprint at ``share`` (0..1) of the SHA-256 hex space."""
    return f"{int(share * (16 ** 64 - 1)):064x}"


def test_chunker_lists_the_fingerprints_of_scattered_chunks_only():
    # 100,000 rows spread over the space: 100 consecutive ones span about 0.1 % of it.
    chunker = engine._Chunker(100, population=100_000)
    dense = [hexpoint(0.5 + i / 100_000) for i in range(100)]
    scattered = [hexpoint(i / 100) for i in range(100)]  # 100 picks over the whole space
    for fingerprint in dense + scattered:
        chunker.take(fingerprint)
    chunks = chunker.done().chunks
    assert [(first, last, count) for first, last, count, _ in chunks] == [
        (dense[0], dense[-1], 100), (scattered[0], scattered[-1], 100)]
    assert chunks[0][3] == [] and chunks[1][3] == scattered
    assert chunker.total == 200


def test_a_chunk_of_one_or_of_unparsable_fingerprints_is_a_range():
    chunker = engine._Chunker(2, population=1_000_000)
    for fingerprint in ["a", "zz", hexpoint(0.3)]:
        chunker.take(fingerprint)
    assert [listed for *_, listed in chunker.done().chunks] == [[], []]


def test_a_small_change_is_sent_and_checkpointed_exactly(setup, sleeps, free_limiter):  # noqa: F811
    audience, sync, adapter = setup(count=300, mode="mirror")
    first = run_once(sync, adapter, sleeps, free_limiter)
    assert (first.status, first.sent) == ("succeeded", 300)
    assert not SyncBatch.objects.filter(run=first).exclude(fingerprints="").exists()  # dense: ranges

    from tests.sync.conftest import new_generation

    new_generation(audience, [(0, 140), (145, 155), (1000, 5)])  # five people leave, five join
    adapter.received = {"add": [], "remove": [], "replace": []}
    second = run_once(sync, adapter, sleeps, free_limiter)
    assert (second.status, second.sent, second.removed) == ("succeeded", 5, 5)
    batches = list(SyncBatch.objects.filter(run=second))
    assert {b.kind for b in batches} == {"add", "remove"}
    assert all(len(b.fingerprints.split()) == b.size == 5 for b in batches)
    assert len(adapter.received["add"]) == len(adapter.received["remove"]) == 5
    assert sync.confirmed_members.count() == 300
    assert set(sync.confirmed_members.values_list("fingerprint", flat=True)) == set(
        audience.members.filter(generation=audience.generation).values_list("fingerprint", flat=True))


@pytest.mark.django_db(transaction=True)
def test_the_plan_joins_both_halves_of_the_space_and_matches_the_single_query(setup, sleeps, free_limiter):  # noqa: F811
    """Outside a transaction PostgreSQL plans on two connections (the upper half in a helper thread); the
    changes come out in order and equal to one query over the whole space, on every database."""
    from django.db import connection

    audience, sync, adapter = setup(count=400, mode="mirror")
    assert run_once(sync, adapter, sleeps, free_limiter).status == "succeeded"
    from tests.sync.conftest import new_generation

    new_generation(audience, [(0, 350), (380, 20), (2000, 60)])  # 30 leave, 60 join, over the whole space
    run = engine.SyncRun.objects.create(sync=sync, status="running", heartbeat_at=engine.timezone.now())
    planner = engine._Engine(run, lease=run.heartbeat_at, adapter=adapter, sleep=sleeps, limiter=free_limiter)
    changes = list(planner._changes(audience.generation))
    whole = list(planner._change_rows(audience.generation, None, None))
    assert changes == whole and [f for f, _ in changes] == sorted(f for f, _ in changes)
    assert sum(removal for _, removal in changes) == 30 and sum(not removal for _, removal in changes) == 60
    assert {f[0] >= engine.PLAN_SPLIT for f, _ in changes} == {True, False}  # both halves hold changes
    # An abandoned stream (the run lost its lease mid-plan) winds the helper down.
    stream = planner._changes(audience.generation)
    next(stream)
    stream.close()
    assert connection.vendor in ("postgresql", "sqlite")


@pytest.mark.django_db(transaction=True)
def test_a_failure_in_the_upper_half_reaches_the_run(setup, sleeps, free_limiter, monkeypatch):  # noqa: F811
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the plan is split across connections on PostgreSQL only")
    audience, sync, adapter = setup(count=50, mode="mirror")
    run = engine.SyncRun.objects.create(sync=sync, status="running", heartbeat_at=engine.timezone.now())
    planner = engine._Engine(run, lease=run.heartbeat_at, adapter=adapter, sleep=sleeps, limiter=free_limiter)
    original = planner._change_pages

    def failing(generation, low, high):
        if low == engine.PLAN_SPLIT:
            raise engine.DatabaseError("connection lost")
        return original(generation, low, high)

    monkeypatch.setattr(planner, "_change_pages", failing)
    with pytest.raises(engine.DatabaseError):
        list(planner._changes(audience.generation))
