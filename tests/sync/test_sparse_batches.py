"""A re-run after a small change to a large audience: the few adds and removes are scattered over the whole
fingerprint range, so their batches list their fingerprints and are read and checkpointed by exact lookups."""

from __future__ import annotations

from audiences import sync as engine
from audiences.models import SyncBatch
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
