"""Two sequences the stateful property test (test_platforms_hold_the_audience.py) found, replayed on every
platform that removes per person, so they stay fixed whatever the property test's seed explores.

Both turn on a removal that withholds an identifier because a current member holds it too, in a run stopped
before that member's add: the platform keeps the identifier on the removed version's account, so the sync must not
forget that version until the member it shares it with is on the platform.
"""

from __future__ import annotations

import pytest

from syncs.models import SyncBatch
from tests.sync.test_platforms_hold_the_audience import machine_for, sandbox_connection
from tests.sync.test_platforms_hold_the_audience import sandbox as sandbox_fixture

pytestmark = [pytest.mark.django_db(transaction=True)]

PER_PERSON = ["meta", "google_dm", "linkedin", "tiktok", "netflix"]


sandbox = sandbox_fixture  # the property test's fakes, settings pointed at them


@pytest.fixture
def machine(sandbox, user):
    return lambda code: machine_for(code, sandbox, user, sandbox_connection(code, sandbox, user))()


@pytest.mark.parametrize("code", PER_PERSON)
def test_a_person_who_returns_then_leaves_after_a_cancelled_run_is_removed(machine, code):
    state = machine(code)
    state.import_file(duplicate=None, maid=False, members={0, 1, 4, 5}, phone=False)
    state.run_to_the_end()
    state.import_file(duplicate=None, maid=False, members={0}, phone=False)
    state.import_file(duplicate=None, maid=False, members={5}, phone=False)  # 5 is back, with the same email
    state.run_cancelled_part_way(after=1)  # the removals went, 5's add did not
    state.import_file(duplicate=None, maid=False, members={0}, phone=False)  # and 5 leaves again
    state.run_to_the_end()
    state.the_platform_holds_the_audience()  # before the fix, 5's email stayed on the platform


@pytest.mark.parametrize("code", ["meta", "tiktok"])
def test_a_shared_phone_withheld_for_a_newcomer_who_then_leaves_is_removed(machine, code):
    state = machine(code)  # persons 6 and 7 share a phone
    state.import_file(duplicate=None, maid=False, members={0, 7}, phone=True)
    state.run_to_the_end()
    state.import_file(duplicate=None, maid=False, members={0, 6}, phone=True)  # 7 leaves, 6 (same phone) joins
    state.run_cancelled_part_way(after=1)  # 7's removal kept the phone; 6's add did not go
    assert SyncBatch.objects.exclude(deferred=b"").exists()
    state.import_file(duplicate=None, maid=False, members={0}, phone=True)  # 6 leaves before being sent
    state.run_to_the_end()
    state.the_platform_holds_the_audience()


@pytest.mark.parametrize("code", ["meta", "tiktok"])
def test_removing_one_of_two_people_sharing_a_phone_keeps_the_other(machine, code):
    state = machine(code)
    state.import_file(duplicate=None, maid=False, members={0, 1, 2, 3, 6, 7}, phone=True)
    state.run_to_the_end()
    state.import_file(duplicate=None, maid=False, members={6}, phone=True)
    state.run_to_the_end()
    state.the_platform_holds_the_audience()
