"""Planning from the changes the imports recorded: when the platform holds exactly the audience as of a generation
(the last run succeeded and left it exact) and every change since was recorded, the next run reads the few
MemberChange rows instead of comparing the whole audience, and sends exactly what the full comparison would."""

from __future__ import annotations

import pytest

from audiences import imports
from audiences.models import Audience, MemberChange
from platforms.errors import PermanentError
from syncs.engine import plan
from syncs.models import Sync, SyncBatch, SyncMember
from tests.sync.conftest import new_generation
from tests.sync.test_engine import emails, run_once, setup  # noqa: F401 — the fixture

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _record_up_to_half(monkeypatch):
    """These audiences are small: a handful of changes is a large share of them."""
    from audiences import storage

    monkeypatch.setattr(storage, "CHANGES_MAX_SHARE", 0.5)


def held(sync):
    return {(bytes(p), g) for p, g in SyncMember.objects.filter(sync=sync).values_list("person", "generation")}


def members_of(audience):
    return {(bytes(p), g) for p, g in audience.members.values_list("person", "generation")}


def no_full_comparison(monkeypatch):
    original = plan.candidates

    def candidates(*, sync_id, audience_id, since):
        if since is None:
            pytest.fail("planned with the full comparison")
        return original(sync_id=sync_id, audience_id=audience_id, since=since)

    monkeypatch.setattr(plan, "candidates", candidates)


def test_a_mirror_rerun_plans_from_the_recorded_changes(setup, sleeps, free_limiter, monkeypatch):  # noqa: F811
    audience, sync, adapter = setup(40, mode="mirror")
    first = run_once(sync, adapter, sleeps, free_limiter)
    sync.refresh_from_db()
    assert first.leaves_exact and sync.confirmed_generation == audience.generation

    new_generation(audience, [(5, 35), (500, 6)])  # 5 leave, 6 join
    audience.refresh_from_db()
    assert audience.changes_recorded_from is not None and audience.changes_recorded_from <= first.audience_generation
    assert MemberChange.objects.filter(audience=audience, generation=audience.generation).count() == 11

    no_full_comparison(monkeypatch)
    second = run_once(sync, adapter, sleeps, free_limiter)
    assert (second.status, second.to_add, second.sent, second.to_remove, second.removed) == ("succeeded", 6, 6, 5, 5)
    assert adapter.members("aud-1") == emails(5, 35) | emails(500, 6)
    assert held(sync) == members_of(audience)
    sync.refresh_from_db()
    assert sync.confirmed_generation == audience.generation  # and the chain goes on

    new_generation(audience, [(5, 35), (500, 6), (900, 2)])
    third = run_once(sync, adapter, sleeps, free_limiter)
    assert (third.sent, third.removed) == (2, 0)
    assert held(sync) == members_of(audience)


def test_recorded_and_full_plans_agree(setup, sleeps, free_limiter):  # noqa: F811
    audience, sync, adapter = setup(60, mode="mirror")
    run_once(sync, adapter, sleeps, free_limiter)
    sync.refresh_from_db()
    new_generation(audience, [(0, 20), (30, 30), (700, 9)])
    recorded = list(plan.candidates(sync_id=sync.pk, audience_id=audience.pk, since=sync.confirmed_generation))
    full = list(plan.candidates(sync_id=sync.pk, audience_id=audience.pk, since=None))
    assert [row[:3] for row in recorded] == [row[:3] for row in full] and len(full) == 19


def test_a_small_change_is_sent_and_checkpointed_exactly(setup, sleeps, free_limiter):  # noqa: F811
    audience, sync, adapter = setup(count=300, mode="mirror")
    first = run_once(sync, adapter, sleeps, free_limiter)
    assert (first.status, first.sent) == ("succeeded", 300)
    new_generation(audience, [(0, 140), (145, 155), (1000, 5)])  # five people leave, five join
    adapter.received = {"add": [], "remove": [], "replace": []}
    second = run_once(sync, adapter, sleeps, free_limiter)
    assert (second.status, second.sent, second.removed) == ("succeeded", 5, 5)
    batches = list(SyncBatch.objects.filter(run=second))
    assert {b.kind for b in batches} == {"add", "remove"} and all(b.size == 5 for b in batches)
    assert all(bytes(b.persons) == b"" for b in batches)  # the people of a sent batch are not kept
    assert len(adapter.received["add"]) == len(adapter.received["remove"]) == 5
    assert held(sync) == members_of(audience) and len(held(sync)) == 300


def test_a_rerun_after_a_failed_batch_goes_back_to_the_full_comparison(setup, sleeps, free_limiter,  # noqa: F811
                                                                       monkeypatch):
    audience, sync, adapter = setup(30, mode="mirror")
    adapter.script["add"] = [None, PermanentError("bad batch")]
    partial = run_once(sync, adapter, sleeps, free_limiter)
    sync.refresh_from_db()
    assert partial.status == "partial" and sync.confirmed_generation is None

    new_generation(audience, [(0, 30), (400, 4)])
    calls = []
    original = plan.candidates
    monkeypatch.setattr(plan, "candidates", lambda **kw: calls.append(kw["since"]) or original(**kw))
    rerun = run_once(sync, adapter, sleeps, free_limiter)
    assert calls == [None]
    assert rerun.sent == 10 + 4  # the failed batch's people, and the new ones
    assert held(sync) == members_of(audience)


def test_add_mode_keeps_leavers_and_a_switch_to_mirror_removes_them(setup, sleeps, free_limiter):  # noqa: F811
    audience, sync, adapter = setup(20, mode="add")
    run_once(sync, adapter, sleeps, free_limiter)
    sync.refresh_from_db()
    assert sync.confirmed_generation == audience.generation
    new_generation(audience, [(5, 15)])
    run = run_once(sync, adapter, sleeps, free_limiter)
    assert (run.to_remove, run.removed, run.sent) == (0, 0, 0)
    from syncs.services import update_sync

    update_sync(sync=sync, mode="mirror")  # a new mode: the platform is not known to be exact for it
    sync.refresh_from_db()
    assert sync.confirmed_generation is None
    mirror = run_once(sync, adapter, sleeps, free_limiter)  # the full comparison finds the 5 add mode kept
    assert (mirror.removed, mirror.sent) == (5, 0)
    assert adapter.members("aud-1") == emails(5, 15)


def test_a_wholesale_reimport_is_not_recorded(setup, sleeps, free_limiter):  # noqa: F811
    audience, sync, adapter = setup(20, mode="mirror")  # 40 changes of 20 people: past any share
    run_once(sync, adapter, sleeps, free_limiter)
    new_generation(audience, [(1000, 20)])
    audience.refresh_from_db()
    assert audience.changes_recorded_from == audience.generation  # nothing before this generation is recorded
    assert not MemberChange.objects.filter(audience=audience, generation=audience.generation).exists()
    run = run_once(sync, adapter, sleeps, free_limiter)
    assert (run.removed, run.sent) == (20, 20)


def test_the_importer_records_changes_and_forgets_those_nobody_needs(user, tmp_path):
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
    assert audience.generation == 1
    job = import_file([f"p{i}@example.com" for i in range(3, 100)] + ["new@example.com"])
    assert (job.members_joined, job.members_changed, job.members_left) == (1, 0, 3)
    # No sync needs them: the changes are not kept.
    assert not MemberChange.objects.filter(audience=audience).exists()
    same = import_file([f"p{i}@example.com" for i in range(3, 100)] + ["new@example.com"])
    assert audience.generation == 2 and (same.members_joined, same.members_left) == (0, 0)  # nothing changed


def test_a_rerun_with_nothing_reimported_plans_nothing(setup, sleeps, free_limiter, monkeypatch):  # noqa: F811
    audience, sync, adapter = setup(25, mode="mirror")
    run_once(sync, adapter, sleeps, free_limiter)
    no_full_comparison(monkeypatch)
    again = run_once(sync, adapter, sleeps, free_limiter)
    assert (again.status, again.total_batches, again.sent, again.removed) == ("succeeded", 0, 0, 0)
    sync.refresh_from_db()
    assert sync.confirmed_generation == audience.generation
    assert held(sync) == members_of(audience)


def test_changes_are_kept_while_a_sync_can_plan_from_them(setup, sleeps, free_limiter):  # noqa: F811
    audience, sync, adapter = setup(40, mode="mirror")
    run_once(sync, adapter, sleeps, free_limiter)
    new_generation(audience, [(0, 38)])
    new_generation(audience, [(0, 38), (90, 1)])
    audience.refresh_from_db()
    # The sync is two imports behind: both generations' changes stay, and its plan reads them.
    assert set(MemberChange.objects.filter(audience=audience).values_list("generation", flat=True)) == {2, 3}
    assert plan.plan_source(Sync.objects.get(pk=sync.pk), audience.generation, audience.changes_recorded_from) == 1
    run = run_once(sync, adapter, sleeps, free_limiter)
    assert (run.sent, run.removed) == (1, 2)
    new_generation(audience, [(0, 38), (90, 1), (91, 1)])
    assert set(MemberChange.objects.filter(audience=audience).values_list("generation", flat=True)) == {4}
