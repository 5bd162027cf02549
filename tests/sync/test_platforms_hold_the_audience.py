"""The invariant marketers rely on, as a stateful property, per platform, against that platform's sandbox fake
through the real adapter and the real engine:

after any sequence of imports (people join, leave and return; their phone, name, postal code or device id change;
columns are mapped and unmapped; duplicates inside a file) and runs (complete, cancelled part-way, failed part-way
and resumed; the mode switched between add and mirror), once a run completes the platform holds

- in mirror mode: exactly the identifiers of the current members (every one of them, and no other),
- in add mode: at least every identifier of every current member,

where "identifiers" are what the platform matches a person on alone (email, phone, mobile id, external id), in the
platform's own form. The fakes remove the way the platforms do: a removal removes every record matching any
identifier sent. So a removal that carried an identifier a current member holds would break the invariant.
"""

from __future__ import annotations

import dataclasses
import itertools
import os

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from audiences.imports import import_records
from audiences.models import Audience
from audiences.storage import all_records
from credentials import services as connections
from credentials.forms import credentials_form_for
from platforms.adapters import get_adapter_class
from platforms.errors import TransientError
from platforms.matchkeys import platform_values, prepare_records
from platforms.models import Platform
from sandbox.credentials import DEMO_CREDENTIALS
from sandbox.running import running_fake_platforms
from syncs import runs
from syncs.engine import execute_run
from syncs.models import Sync, SyncRun

pytestmark = [pytest.mark.django_db(transaction=True)]

PLATFORMS = ["meta", "google_dm", "google_ads", "linkedin", "tiktok", "ttd", "netflix"]
BATCH = 3  # people per batch, so that runs have several batches to cancel or fail between
PEOPLE = 8


# What each fake holds, as (our identifier key, value) pairs ------------------------------------------------------

def _by_column(pairs, columns: dict[str, str]) -> set[tuple[str, str]]:
    return {(columns[kind], value) for kind, value in pairs if kind in columns}


def held_identifiers(code: str, fakes, platform_audience_id: str) -> set[tuple[str, str]]:
    keys = set(get_adapter_class(code).identifier_keys)
    return {pair for pair in _held(code, fakes, platform_audience_id) if pair[0] in keys}


def _held(code: str, fakes, platform_audience_id: str) -> set[tuple[str, str]]:
    from platforms.adapters import linkedin, meta, netflix, tiktok, ttd

    if code == "meta":
        records = fakes.http["meta"].audience_members(platform_audience_id)
        return _by_column((pair for record in records for pair in record), {m: k for k, m in meta.SCHEMA_KEYS})
    if code == "google_ads":
        records = fakes.google.list_members(platform_audience_id)
        return _by_column((pair for record in records for pair in record),
                          {"hashed_email": "email", "hashed_phone_number": "phone"})
    if code == "google_dm":
        records = fakes.datamanager.list_members(platform_audience_id)
        return _by_column((pair for record in records for pair in record),
                          {"email_address": "email", "phone_number": "phone"})
    if code == "netflix":
        records = fakes.http["netflix"].segment_members(platform_audience_id)
        return _by_column((pair for record in records for pair in record), {c: k for k, c in netflix.SCHEMA})
    module = {"linkedin": linkedin.ID_TYPES, "tiktok": tiktok.ID_TYPES, "ttd": ttd.PII_TYPES}[code]
    return _by_column(fakes.http[code].audience_members(platform_audience_id), {t: k for k, t in module})


def current_identifiers(code: str, audience: Audience) -> set[tuple[str, str]]:
    keys = get_adapter_class(code).identifier_keys
    found = set()
    for _, _, stored in all_records(audience.pk):
        values = platform_values(code, stored)
        found.update((key, values[key]) for key in keys if key in values)
    return found


# The people ------------------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Person:
    n: int
    phone: int
    maid: int | None
    external: bool
    first: str = "Ann"
    last: str = "Lee"
    zip: str = "10001"

    def row(self, *, phone: bool, maid: bool) -> dict:
        row = {"email": f"person{self.n}@example.com", "first_name": self.first, "last_name": self.last,
               "postal_code": self.zip, "country": "US"}
        if phone:
            row["phone"] = f"+1 212 555 {self.phone:04d}"
        if maid and self.maid is not None:
            row["maid"] = f"6d92078a-8246-4ba4-ae5b-{self.maid:012d}"
        if self.external:
            row["external_id"] = f"CRM-{self.n}"
        return row


class Switchboard:
    """Wraps the real adapter: small batches, and a scripted cancel or failure after some platform calls."""

    def __init__(self, adapter, run_id: int):
        self.adapter, self.run_id = adapter, run_id
        self.capabilities = dataclasses.replace(adapter.capabilities, batch_size=BATCH)
        self.calls = 0
        self.cancel_after: int | None = None
        self.fail_after: int | None = None

    def __getattr__(self, name):
        return getattr(self.adapter, name)

    def _batch_call(self, method, *args, **kwargs):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise TransientError("the sandbox is briefly unreachable (scripted)")
        result = getattr(self.adapter, method)(*args, **kwargs)
        if self.cancel_after is not None and self.calls >= self.cancel_after:
            SyncRun.objects.filter(pk=self.run_id).update(cancel_requested=True)
        return result

    def add_members(self, *args, **kwargs):
        return self._batch_call("add_members", *args, **kwargs)

    def remove_members(self, *args, **kwargs):
        return self._batch_call("remove_members", *args, **kwargs)

    def replace_members(self, *args, **kwargs):
        return self._batch_call("replace_members", *args, **kwargs)


def machine_for(code: str, fakes, owner, connection):
    counter = itertools.count()

    class PlatformHoldsTheAudience(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            n = next(counter)
            self.audience = Audience.objects.create(owner=owner, name=f"{code} {n}", default_country="US")
            self.sync = Sync.objects.create(owner=owner, audience=self.audience, connection=connection, mode="mirror",
                                            hold_threshold=0)
            # Eight people; two share a phone, some have a device id or an external id. The same people in every
            # example (each example has an audience and a platform audience of its own): a failure replays exactly.
            self.people = [Person(n=i, phone=(i if i != 7 else 6), maid=i if i % 3 == 0 else None,
                                  external=i % 2 == 0) for i in range(PEOPLE)]
            self.fresh = itertools.count(1000)
            self.imported = False
            self.exact = False  # whether the last run completed (the invariant then holds)

        # Imports --------------------------------------------------------------------------------------------
        @rule(members=st.sets(st.integers(0, PEOPLE - 1), min_size=1), phone=st.booleans(), maid=st.booleans(),
              duplicate=st.none() | st.integers(0, PEOPLE - 1))
        def import_file(self, members, phone, maid, duplicate):
            rows = [self.people[i].row(phone=phone, maid=maid) for i in sorted(members)]
            if duplicate is not None and duplicate in members:
                # The same person again, later in the file, in capitals and with a phone the first row lacks.
                twin = self.people[duplicate].row(phone=True, maid=maid)
                twin["email"] = twin["email"].upper()
                twin["phone"] = f"+1 212 555 {next(self.fresh) % 10000:04d}"
                rows.append(twin)
            import_records(audience=self.audience, records=[r.stored for r in prepare_records(
                rows, default_region="US")], person_key="email")
            self.imported = True
            self.exact = False

        @rule(i=st.integers(0, PEOPLE - 1), what=st.sampled_from(["phone", "name", "zip", "maid"]))
        def person_changes(self, i, what):
            person = self.people[i]
            if what == "phone":
                person.phone = next(self.fresh) % 10000
            elif what == "name":
                person.last = person.last + "son"
            elif what == "zip":
                person.zip = f"{10000 + next(self.fresh) % 90000}"
            else:
                person.maid = next(self.fresh)

        @rule(mode=st.sampled_from(["add", "mirror"]))
        def switch_mode(self, mode):
            from syncs.services import update_sync

            update_sync(sync=Sync.objects.get(pk=self.sync.pk), mode=mode)
            self.sync.refresh_from_db()
            self.exact = False

        # Runs -----------------------------------------------------------------------------------------------
        def _run(self, *, cancel_after=None, fail_after=None):
            run = runs.start_run(sync=Sync.objects.get(pk=self.sync.pk))
            switchboard = Switchboard(connection.adapter(), run.pk)
            switchboard.cancel_after, switchboard.fail_after = cancel_after, fail_after
            run = execute_run(run_id=run.pk, adapter=switchboard, sleep=lambda s: None)
            self.sync.refresh_from_db()
            return run, switchboard

        @precondition(lambda self: self.imported)
        @rule()
        def run_to_the_end(self):
            run, _ = self._run()
            assert run.status == SyncRun.Status.SUCCEEDED, (run.status, run.error_message)
            self.exact = True

        @precondition(lambda self: self.imported)
        @rule(after=st.integers(1, 3))
        def run_cancelled_part_way(self, after):
            run, _ = self._run(cancel_after=after)
            assert run.status in (SyncRun.Status.CANCELLED, SyncRun.Status.SUCCEEDED), run.error_message
            self.exact = run.status == SyncRun.Status.SUCCEEDED

        @precondition(lambda self: self.imported)
        @rule(after=st.integers(0, 3))
        def run_failed_part_way_then_resumed(self, after):
            run, _ = self._run(fail_after=after)
            if run.status == SyncRun.Status.FAILED:
                runs.resume_run(run=run)
                run = execute_run(run_id=run.pk, adapter=Switchboard(connection.adapter(), run.pk),
                                  sleep=lambda s: None)
            assert run.status == SyncRun.Status.SUCCEEDED, (run.status, run.error_message)
            self.exact = True

        # The invariant -------------------------------------------------------------------------------------
        @invariant()
        def the_platform_holds_the_audience(self):
            if not self.exact:
                return
            if code == "google_ads":
                fakes.google.finish_jobs()
            held = held_identifiers(code, fakes, self.sync.platform_audience_id)
            current = current_identifiers(code, self.audience)
            missing = current - held
            assert not missing, f"current members' identifiers the platform lacks: {sorted(missing)[:5]}"
            if self.sync.mode == Sync.Mode.MIRROR:
                extra = held - current
                assert not extra, f"identifiers of no current member still on the platform: {sorted(extra)[:5]}"

    return PlatformHoldsTheAudience


@pytest.fixture
def sandbox(settings):
    with running_fake_platforms() as fakes:
        for name, value in fakes.settings_overrides().items():
            setattr(settings, name, value)
        settings.PLATFORM_RETRY_ATTEMPTS = 1  # a scripted failure fails the run at once
        yield fakes


def sandbox_connection(code: str, sandbox, user):
    """The user's connection to the platform's sandbox, made as the connect form makes it."""
    values = dict(DEMO_CREDENTIALS[code])
    if code == "netflix":
        values["base_url"] = sandbox.netflix_base_url()
    form = credentials_form_for(code)(data=values)
    assert form.is_valid(), form.errors
    label, config, secrets = form.split()
    return connections.connect(owner=user, platform=Platform.objects.get(code=code), label=label, config=config,
                               secrets=secrets)


@pytest.mark.parametrize("code", PLATFORMS)
def test_after_any_imports_and_runs_the_platform_holds_exactly_the_audience(code, sandbox, user):
    machine = machine_for(code, sandbox, user, sandbox_connection(code, sandbox, user))
    examples = int(os.environ.get("STATE_MACHINE_EXAMPLES", "12"))  # more to explore; CI keeps the suite quick
    run_state_machine_as_test(machine, settings=settings(
        max_examples=examples, stateful_step_count=12, deadline=None, derandomize=examples == 12,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
