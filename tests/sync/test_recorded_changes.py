"""Planning from the changes the import recorded: when the platform holds exactly the previous generation
(the last run succeeded and left it exact), the next run reads the few MemberChange rows instead of joining
two whole generations, and sends exactly what the full join would."""

from __future__ import annotations

import pytest

from audiences import imports
from audiences.models import Audience, MemberChange
from platforms.errors import PermanentError
from syncs import engine
from syncs.models import Sync, SyncMember
from tests.sync.conftest import add_members
from tests.sync.test_engine import emails, run_once, setup  # noqa: F401 — the fixture

pytestmark = pytest.mark.django_db


def reimport(audience: Audience, ranges: list[tuple[int, int]], *, max_share: float = 0.5) -> bool:
    """What the importer does at the end of a re-import: the new generation, its changes recorded against the
    current one, swapped in. Returns whether the changes were recorded."""
    base, new = audience.generation, audience.generation + 1
    for start, count in ranges:
        add_members(audience, start, count, generation=new)
    total = sum(count for _, count in ranges)
    recorded = imports.record_changes(audience.pk, new, base, limit=int(max_share * max(total, audience.member_count)))
    imports.swap_generation(audience.pk, new, base, recorded=recorded, member_count=total)
    audience.refresh_from_db()
    return recorded


def confirmed_fingerprints(sync):
    return set(SyncMember.objects.filter(sync=sync).values_list("fingerprint", flat=True))


def members_of(audience):
    return set(audience.members.filter(generation=audience.generation).values_list("fingerprint", flat=True))


def test_a_mirror_rerun_plans_from_the_recorded_changes(setup, sleeps, free_limiter, monkeypatch):  # noqa: F811
    audience, sync, adapter = setup(40, mode="mirror")
    first = run_once(sync, adapter, sleeps, free_limiter)
    sync.refresh_from_db()
    assert first.leaves_exact and sync.confirmed_generation == audience.generation

    assert reimport(audience, [(5, 35), (500, 6)])  # 5 leave, 6 join
    assert audience.changes_base_generation == first.audience_generation
    assert MemberChange.objects.filter(audience=audience, generation=audience.generation).count() == 11

    monkeypatch.setattr(engine._Engine, "_changes", lambda self, g: pytest.fail("planned with the full join"))
    second = run_once(sync, adapter, sleeps, free_limiter)
    assert (second.status, second.to_add, second.sent, second.to_remove, second.removed) == ("succeeded", 6, 6, 5, 5)
    assert adapter.audiences["aud-1"] == emails(5, 35) | emails(500, 6)
    assert confirmed_fingerprints(sync) == members_of(audience)
    sync.refresh_from_db()
    assert sync.confirmed_generation == audience.generation  # and the chain goes on

    assert reimport(audience, [(5, 35), (500, 6), (900, 2)])
    third = run_once(sync, adapter, sleeps, free_limiter)
    assert (third.sent, third.removed) == (2, 0)
    assert confirmed_fingerprints(sync) == members_of(audience)


def test_recorded_and_full_join_plans_agree(setup, sleeps, free_limiter):  # noqa: F811
    audience, sync, adapter = setup(60, mode="mirror")
    run_once(sync, adapter, sleeps, free_limiter)
    reimport(audience, [(0, 20), (30, 30), (700, 9)])
    planner = engine._Engine(engine.SyncRun(sync=sync), lease=None, adapter=adapter, sleep=sleeps,
                             limiter=free_limiter)
    assert list(planner._recorded_changes(audience.generation)) == list(planner._changes(audience.generation))


def test_a_rerun_after_a_failed_batch_goes_back_to_the_full_join(setup, sleeps, free_limiter, monkeypatch):  # noqa: F811
    audience, sync, adapter = setup(30, mode="mirror")
    adapter.script["add"] = [None, PermanentError("bad batch")]
    partial = run_once(sync, adapter, sleeps, free_limiter)
    sync.refresh_from_db()
    assert partial.status == "partial" and sync.confirmed_generation is None

    reimport(audience, [(0, 30), (400, 4)])
    calls = []
    full_join = engine._Engine._changes
    monkeypatch.setattr(engine._Engine, "_changes", lambda self, g: calls.append(g) or full_join(self, g))
    rerun = run_once(sync, adapter, sleeps, free_limiter)
    assert calls == [audience.generation]
    assert rerun.sent == 10 + 4  # the failed batch's people, and the new ones
    assert confirmed_fingerprints(sync) == members_of(audience)


def test_an_add_mode_run_that_leaves_people_behind_is_not_exact(setup, sleeps, free_limiter):  # noqa: F811
    audience, sync, adapter = setup(20, mode="add")
    run_once(sync, adapter, sleeps, free_limiter)
    sync.refresh_from_db()
    assert sync.confirmed_generation == audience.generation  # nobody to remove: exact
    reimport(audience, [(5, 15)])
    run = run_once(sync, adapter, sleeps, free_limiter)
    sync.refresh_from_db()
    assert not run.leaves_exact and sync.confirmed_generation is None  # 5 left, and add mode keeps them
    Sync.objects.filter(pk=sync.pk).update(mode="mirror")
    sync.refresh_from_db()
    reimport(audience, [(5, 15)])
    mirror = run_once(sync, adapter, sleeps, free_limiter)  # the full join finds the 5 add mode left behind
    assert (mirror.removed, mirror.sent) == (5, 0)


def test_a_wholesale_reimport_is_not_recorded(setup, sleeps, free_limiter):  # noqa: F811
    audience, sync, adapter = setup(20, mode="mirror")
    run_once(sync, adapter, sleeps, free_limiter)
    assert not reimport(audience, [(1000, 20)])
    assert audience.changes_base_generation is None
    assert not MemberChange.objects.filter(audience=audience, generation=audience.generation).exists()
    run = run_once(sync, adapter, sleeps, free_limiter)
    assert (run.removed, run.sent) == (20, 20)


def test_the_importer_records_changes_against_the_generation_it_replaces(user, tmp_path):
    audience = Audience.objects.create(owner=user, name="A", default_country="US")

    def import_file(emails_in_file):
        path = tmp_path / "people.csv"
        path.write_text("email\n" + "".join(f"{e}\n" for e in emails_in_file))
        job = imports.create_import_from_path(owner=user, audience=audience, path=path)
        imports.start_import(job, {"0": "email"}, enqueue=False)
        job = imports.run_import(job.pk)
        assert job.status == "succeeded", job.error_message
        audience.refresh_from_db()
        return job

    import_file([f"p{i}@example.com" for i in range(100)])
    assert audience.changes_base_generation is None  # a first import has nothing to compare with
    first = audience.generation
    import_file([f"p{i}@example.com" for i in range(3, 100)] + ["new@example.com"])
    assert audience.changes_base_generation == first
    changes = MemberChange.objects.filter(audience=audience, generation=audience.generation)
    assert sorted(changes.values_list("removed", flat=True)) == [False, True, True, True]
    second = audience.generation
    import_file([f"q{i}@example.com" for i in range(100)])  # everyone replaced: not worth recording
    assert audience.changes_base_generation is None
    assert not MemberChange.objects.filter(audience=audience, generation__lt=second).exists()  # older ones go


def test_a_rerun_with_nothing_reimported_plans_nothing_without_a_join(setup, sleeps, free_limiter, monkeypatch):  # noqa: F811
    audience, sync, adapter = setup(25, mode="mirror")
    run_once(sync, adapter, sleeps, free_limiter)
    monkeypatch.setattr(engine._Engine, "_changes", lambda self, g: pytest.fail("planned with the full join"))
    again = run_once(sync, adapter, sleeps, free_limiter)
    assert (again.status, again.total_batches, again.sent, again.removed) == ("succeeded", 0, 0, 0)
    sync.refresh_from_db()
    assert sync.confirmed_generation == audience.generation
    assert confirmed_fingerprints(sync) == members_of(audience)
