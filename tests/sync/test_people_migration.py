"""The data migrations to people (audiences/0010_people + syncs/0003_people, then audiences/0011 and syncs/0004 drop
the old rows), run for real: the database is taken back to the state before them (Django's MigrationExecutor), old
members and old sync members are written in the old shapes (``keys``: hex digests, hashed low-variety codes, raw
postal code / country / external id / mobile id), and the database is migrated forward again.

What must hold afterwards: the members are people (the person key; duplicates by person key merged, the first
stored kept), their records are what an import of the same rows stores today (so a re-import changes nobody), and
each sync still knows what its platform holds: the next run sends nothing for an unchanged person, adds the changed
and the new, and removes only identifiers no current member holds; the run after that sends nothing at all.

Transactional (the schema changes), and on whatever database the suite runs on: SQLite by default, PostgreSQL in CI.
"""

from __future__ import annotations

import hashlib

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from audiences import storage
from audiences.imports import import_records
from audiences.models import Audience, Member, MemberVersion
from platforms.matchkeys import person_id, person_order, prepare_records, values_function
from syncs import engine
from syncs.models import Sync, SyncMember, SyncRun
from tests.sync.conftest import ScriptedAdapter

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("audiences", "0009_syncs_moved_to_syncs_app"), ("syncs", "0002_syncs_tables")]
LEGACY_TABLES = ("audiences_legacymember", "syncs_legacysyncmember")
GENERATION = 3
tiktok_values = values_function("tiktok")


def row(i: int, *, phone: str | None = None, first_name: str = "Ann", **extra) -> dict:
    return {"email": f"Person{i}@Example.com", "phone": phone or f"+1 212 555 {i:04d}", "first_name": first_name,
            "last_name": f"Smith{i}", "postal_code": "10001", "country": "US", "city": "New York", "state": "NY",
            "date_of_birth": f"1980-01-{i % 28 + 1:02d}", "gender": "F" if i % 2 else "M", **extra}


def stored(one: dict) -> dict:
    (record,) = prepare_records([one], default_region="US")
    assert not record.rejections
    # The old storage had none of these: the rows here are ones for which the new import stores none either.
    assert not {"et", "fng", "lng", "zg"} & set(record.stored)
    return record.stored


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def legacy_keys(record: dict) -> dict:
    """A stored record in the shape Member.keys / SyncMember.keys had before person ids."""
    keys = {k: record[k].hex() for k in ("e", "eg", "eu", "p", "pd", "fn", "ln", "ct") if k in record}
    keys |= {k: _sha(record[k]) for k in ("fi", "st", "g") if k in record}
    if "dob" in record:
        dob = record["dob"]
        keys |= {"dy": _sha(dob[:4]), "dm": _sha(dob[4:6]), "dd": _sha(dob[6:])}
    keys |= {k: record[k] for k in ("z", "c", "x", "m") if k in record}
    return keys


def fingerprint(keys: dict) -> str:
    return _sha("\x1f".join(f"{k}\x1f{v}" for k, v in sorted(keys.items())))


class RecordingAdapter(ScriptedAdapter):
    """The scripted TikTok fake (removes every record matching any identifier sent), keeping every row it got."""

    def __init__(self):
        super().__init__()
        self.rows: dict[str, list[dict]] = {"add": [], "remove": []}

    def add_members(self, audience_id, batch, *, session=None):
        self.rows["add"].extend(batch)
        return super().add_members(audience_id, batch, session=session)

    def remove_members(self, audience_id, batch, *, session=None):
        self.rows["remove"].extend(batch)
        return super().remove_members(audience_id, batch, session=session)


def holds(records) -> set[frozenset]:
    """What the fake holds after receiving these stored records."""
    return {frozenset(tiktok_values(r).items()) for r in records}


# The people of the mirror sync's audience (person key: email, no external ids).
UNCHANGED = range(10)
CHANGED, LEFT, JOINED, DUPLICATE = 10, 11, 12, 13
CURRENT = {i: stored(row(i)) for i in UNCHANGED}
CURRENT[CHANGED] = stored(row(CHANGED, phone="+1 212 555 9010"))  # a new phone: an update, not a leave and a join
CURRENT[JOINED] = stored(row(JOINED))
CURRENT[DUPLICATE] = stored(row(DUPLICATE))  # stored first: kept
DUPLICATE_LATER = stored(row(DUPLICATE, phone="+1 212 555 8013", first_name="Anna"))  # same email, stored second
OLD_CHANGED = stored(row(CHANGED))  # the record the platform got before the phone changed
OLD_LEFT = stored(row(LEFT))
STALE_GENERATION = stored(row(14))  # a member of an earlier generation only
# What the mirror sync had sent (its old SyncMember rows): everyone but the joiner, both records of the duplicate.
MIRROR_HELD = [CURRENT[i] for i in UNCHANGED] + [OLD_CHANGED, OLD_LEFT, CURRENT[DUPLICATE], DUPLICATE_LATER]

# The add-only sync's audience has external ids: the person key is the external id; C-2 is in it twice.
EXTERNAL = [stored({"external_id": "C-1", "email": "b1@example.com", "country": "US"}),
            stored({"external_id": "C-2", "email": "b2@example.com", "country": "US"}),
            stored({"external_id": "C-2", "email": "b3@example.com", "country": "US"})]


def write_legacy_state(apps) -> dict:
    """The old shapes, through the models of the state before the migrations."""
    User = apps.get_model("auth", "User")
    Platform = apps.get_model("platforms", "Platform")
    Connection = apps.get_model("credentials", "Connection")
    OldAudience = apps.get_model("audiences", "Audience")
    OldMember = apps.get_model("audiences", "Member")
    OldSync = apps.get_model("syncs", "Sync")
    OldSyncMember = apps.get_model("syncs", "SyncMember")
    OldRun = apps.get_model("syncs", "SyncRun")

    owner = User.objects.create(username="alice", password="!")
    tiktok = Connection.objects.create(owner=owner, platform=Platform.objects.get(code="tiktok"), label="Main",
                                       config={"advertiser_id": "adv-1"}, secrets={"access_token": "tok-123456"})

    def members(audience, records, generation=GENERATION):
        for record in records:
            keys = legacy_keys(record)
            OldMember.objects.create(audience=audience, generation=generation, keys=keys, fingerprint=fingerprint(keys))

    def sync_members(sync, records):
        for record in records:
            keys = legacy_keys(record)
            OldSyncMember.objects.create(sync=sync, keys=keys, fingerprint=fingerprint(keys))

    loyal = OldAudience.objects.create(owner=owner, name="Loyal", default_country="US", status="ready",
                                       generation=GENERATION, member_count=14)
    members(loyal, [STALE_GENERATION], generation=GENERATION - 1)
    members(loyal, [CURRENT[i] for i in (*UNCHANGED, CHANGED, JOINED, DUPLICATE)] + [DUPLICATE_LATER])
    mirror = OldSync.objects.create(owner=owner, audience=loyal, connection=tiktok, mode="mirror",
                                    platform_audience_id="aud-mirror", confirmed_generation=GENERATION)
    sync_members(mirror, MIRROR_HELD)

    customers = OldAudience.objects.create(owner=owner, name="Customers", default_country="US", status="ready",
                                           generation=GENERATION, member_count=3)
    members(customers, EXTERNAL)
    add_only = OldSync.objects.create(owner=owner, audience=customers, connection=tiktok, mode="add",
                                      platform_audience_id="aud-add", confirmed_generation=GENERATION)
    sync_members(add_only, EXTERNAL)

    runs = {status: OldRun.objects.create(sync=mirror, status=status, audience_generation=GENERATION)
            for status in ("succeeded", "failed")}
    runs["running"] = OldRun.objects.create(sync=add_only, status="running", audience_generation=GENERATION)
    return {"loyal": loyal.pk, "customers": customers.pk, "mirror": mirror.pk, "add_only": add_only.pk,
            "runs": {status: run.pk for status, run in runs.items()}}


@pytest.fixture
def migrated(db):
    """Back to the state before the migrations, the legacy rows written, forward to the latest state again."""
    executor = MigrationExecutor(connection)
    # Every other app stays as it is (none depends on the migrations taken back).
    before = BEFORE + [node for node in executor.loader.graph.leaf_nodes() if node[0] not in ("audiences", "syncs")]
    try:
        executor.migrate(before)
        ids = write_legacy_state(executor.loader.project_state(before).apps)
        executor = MigrationExecutor(connection)  # the graph as the database now has it
        executor.migrate(executor.loader.graph.leaf_nodes())
    except BaseException:
        executor = MigrationExecutor(connection)  # whatever failed, the next tests get the latest schema
        executor.migrate(executor.loader.graph.leaf_nodes())
        raise
    return ids


def person(record: dict, key: str = "email") -> bytes:
    return person_id(record, person_order(key))


def run(sync: Sync, adapter, sleeps, limiter) -> SyncRun:
    return engine.execute_run(run_id=SyncRun.objects.create(sync=sync).pk, adapter=adapter, sleep=sleeps,
                              limiter=limiter)


def test_members_become_people_and_syncs_keep_what_their_platform_holds(migrated, sleeps, free_limiter):
    assert not set(LEGACY_TABLES) & set(connection.introspection.table_names())

    # Members are people: one per person key, the duplicate merged (its first stored row kept), the stale
    # generation's member gone; the records are exactly what an import of the same rows stores today.
    loyal = Audience.objects.get(pk=migrated["loyal"])
    assert (loyal.person_key, loyal.member_count, loyal.generation) == ("email", 13, GENERATION)
    expected = {person(r): r for r in CURRENT.values()}
    records = {p: (generation, record) for p, generation, record in storage.all_records(loyal.pk)}
    assert records == {p: (GENERATION, r) for p, r in expected.items()}
    customers = Audience.objects.get(pk=migrated["customers"])
    assert (customers.person_key, customers.member_count) == ("external_id", 2)
    assert {p: r for p, _, r in storage.all_records(customers.pk)} == {
        person(r, "external_id"): r for r in EXTERNAL[:2]}

    # What each sync held: the current record where it was that, else a kept version holding the old record.
    mirror = Sync.objects.get(pk=migrated["mirror"])
    held = {(bytes(p), g) for p, g in SyncMember.objects.filter(sync=mirror).values_list("person", "generation")}
    current_held = {(person(CURRENT[i]), GENERATION) for i in (*UNCHANGED, DUPLICATE)}
    assert current_held <= held
    kept = held - current_held
    assert {p for p, _ in kept} == {person(OLD_CHANGED), person(OLD_LEFT), person(DUPLICATE_LATER)}
    assert all(g < 0 for _, g in kept)
    assert storage.versions(loyal.pk, kept) == {
        (p, g): {person(OLD_CHANGED): OLD_CHANGED, person(OLD_LEFT): OLD_LEFT,
                 person(DUPLICATE_LATER): DUPLICATE_LATER}[p] for p, g in kept}
    assert MemberVersion.objects.filter(audience=loyal).count() == 3
    assert not Member.objects.filter(audience=loyal, person=person(STALE_GENERATION)).exists()
    assert set(Sync.objects.values_list("confirmed_generation", flat=True)) == {None}
    statuses = dict(SyncRun.objects.values_list("pk", "status"))
    assert {status: statuses[pk] for status, pk in migrated["runs"].items()} == {
        "succeeded": "succeeded", "failed": "cancelled", "running": "cancelled"}

    # The platforms hold what the old syncs had sent.
    adapter = RecordingAdapter()
    adapter.audiences = {"aud-mirror": holds(MIRROR_HELD), "aud-add": holds(EXTERNAL)}


    # The next mirror run: adds the joiner and the changed person's new record, nobody unchanged; removes the
    # leaver and the identifiers of old records that no current member holds (the old phone, the duplicate's
    # second phone), never an email or phone a current member has.
    first = run(mirror, adapter, sleeps, free_limiter)
    assert first.status == SyncRun.Status.SUCCEEDED, first.error_message
    assert (first.to_add, first.to_update, first.to_remove) == (1, 2, 1)
    assert sorted(r["email"] for r in adapter.rows["add"]) == sorted(
        tiktok_values(CURRENT[i])["email"] for i in (CHANGED, JOINED))
    current_values = {value for r in CURRENT.values() for value in tiktok_values(r).values()}
    removed_values = {value for r in adapter.rows["remove"] for value in r.values()}
    assert removed_values and not removed_values & current_values
    assert removed_values == {*tiktok_values(OLD_LEFT).values(), tiktok_values(OLD_CHANGED)["phone"],
                              tiktok_values(DUPLICATE_LATER)["phone"]}
    assert adapter.audiences["aud-mirror"] == holds(CURRENT.values())  # exactly the current members

    # The add-only sync: the platform already holds both people; nothing to send, nothing removed.
    add_only = Sync.objects.get(pk=migrated["add_only"])
    sent = run(add_only, adapter, sleeps, free_limiter)
    assert (sent.status, sent.sent, sent.removed) == (SyncRun.Status.SUCCEEDED, 0, 0)
    assert adapter.audiences["aud-add"] == holds(EXTERNAL)

    # A re-import of the same rows changes nobody (the migrated records are the importer's), and the runs after
    # it send nothing at all.
    applied = import_records(audience=loyal, records=list(CURRENT.values()))
    assert (applied.joined, applied.changed, applied.left) == (0, 0, 0)
    applied = import_records(audience=customers, records=EXTERNAL[:2])
    assert (applied.joined, applied.changed, applied.left) == (0, 0, 0)
    adapter.rows = {"add": [], "remove": []}
    for sync in (mirror, add_only):
        again = run(sync, adapter, sleeps, free_limiter)
        assert (again.status, again.sent, again.removed) == (SyncRun.Status.SUCCEEDED, 0, 0)
    assert adapter.rows == {"add": [], "remove": []}
