"""A sync that holds two versions of one person (the current record, and an older one whose removal failed): the
next mirror run removes the older one's identifiers that no current member holds, whichever way it plans (the full
comparison, or the recorded changes)."""

from __future__ import annotations

import pytest

from audiences.imports import import_records
from platforms.errors import PermanentError
from platforms.matchkeys import prepare_records
from syncs import engine
from syncs.models import Sync, SyncMember, SyncRun
from tests.sync.conftest import ScriptedAdapter, make_sync, new_run, person_of, synthetic_rows

pytestmark = pytest.mark.django_db


def records(changed_phone: bool):
    rows = synthetic_rows(0, 5)
    if changed_phone:
        rows[0] = {**rows[0], "phone": "+1 212 555 9999"}
    return [r.stored for r in prepare_records(rows, default_region="US")]


@pytest.mark.parametrize("plan_from", ["full comparison", "recorded changes"])
def test_an_older_version_left_by_a_failed_removal_is_removed_by_the_next_mirror_run(
        user, tiktok_connection, sleeps, free_limiter, plan_from):
    from audiences.models import Audience

    audience = Audience.objects.create(owner=user, name="A", default_country="US", status="ready")
    import_records(audience=audience, records=records(False), person_key="email")
    sync = make_sync(user, audience, tiktok_connection, mode="mirror")
    adapter = ScriptedAdapter()

    def run():
        return engine.execute_run(run_id=new_run(sync).pk, adapter=adapter, sleep=sleeps, limiter=free_limiter)

    assert run().status == SyncRun.Status.SUCCEEDED
    import_records(audience=audience, records=records(True))  # person 0's phone changed
    adapter.script["remove"] = [PermanentError("refused")]
    assert run().status == SyncRun.Status.PARTIAL  # the new record added, the old phone's removal refused
    assert SyncMember.objects.filter(sync=sync, person=person_of(0)).count() == 2
    sync.refresh_from_db()
    if plan_from == "recorded changes":
        Sync.objects.filter(pk=sync.pk).update(confirmed_generation=audience.generation - 1)
    sync.refresh_from_db()
    preview = engine.preview(sync)
    assert (preview.changed, preview.joining, preview.leaving) == (1, 0, 0)

    third = run()
    assert third.status == SyncRun.Status.SUCCEEDED, third.error_message
    assert third.removed == 0 and third.sent == 0  # the old phone goes with the update: nobody left
    assert SyncMember.objects.filter(sync=sync, person=person_of(0)).count() == 1
    (phones,) = [{dict(r).get("phone") for r in adapter.audiences[sync.platform_audience_id]}]
    assert len(phones) == 5  # one record per person: the old phone's record is gone


def test_deleting_a_sync_drops_the_versions_kept_only_for_it(user, tiktok_connection, sleeps, free_limiter):
    from audiences.models import Audience, MemberVersion
    from syncs import services

    audience = Audience.objects.create(owner=user, name="Kept", default_country="US", status="ready")
    import_records(audience=audience, records=records(False), person_key="email")
    sync = make_sync(user, audience, tiktok_connection, mode="add")
    engine.execute_run(run_id=new_run(sync).pk, adapter=ScriptedAdapter(), sleep=sleeps, limiter=free_limiter)
    import_records(audience=audience, records=records(True))  # person 0's phone changed: their old version is kept
    assert MemberVersion.objects.filter(audience=audience).count() == 1
    services.delete_sync(sync=sync)
    assert not MemberVersion.objects.filter(audience=audience).exists()
