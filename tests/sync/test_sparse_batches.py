"""A re-run after a small change to a large audience: the few adds and removes are scattered over the whole
fingerprint range, so their batches list their fingerprints and are read and checkpointed by exact lookups."""

from __future__ import annotations

from audiences import sync as engine
from audiences.models import SyncBatch
from tests.sync.test_engine import run_once, setup  # noqa: F401 — the fixture


def test_chunker_lists_the_fingerprints_of_scattered_chunks_only():
    chunker = engine._Chunker(3)
    for step, fingerprint in enumerate(["a", "b", "c"]):  # contiguous in the merged stream
        chunker.take(fingerprint, step)
    for step, fingerprint in [(10, "d"), (50, "e")]:  # two picks spread over 41 rows
        chunker.take(fingerprint, step)
    assert chunker.done().chunks == [("a", "c", 3, []), ("d", "e", 2, ["d", "e"])]


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
