"""Planning a run: who the platform must receive, whose old identifiers it must lose, and whether to hold the run.

The sync remembers which version of each person's record it put on the platform (SyncMember: person,
generation). A person is, for this sync:

- **joining**: a current member with no version on the platform -> added;
- **changed**: a current member whose version on the platform is an older one -> the current record is added, and
  (mirror mode) the old version's identifiers that no current member holds are removed;
- **leaving**: versions on the platform of someone no longer a member -> (mirror mode) their identifiers that no
  current member holds are removed;
- **unchanged**: everything else.

The candidates come from one full join of the audience with what the sync holds (keeping only the rows that
differ), or, when the platform held the audience exactly as of a generation whose later changes the imports
recorded (``Sync.confirmed_generation``, ``Audience.changes_recorded_from``), from those recorded changes alone.
The plan is written as SyncBatch rows listing their people (removes first: on platforms that remove by any
identifier, "add new, then remove old" could remove the new record by the identifier both share).

A mirror run that would remove more people than ``Sync.hold_threshold`` per cent of those the platform holds is
held for review (status "held") instead of sent; the marketer confirms or cancels it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.db import connection, transaction

from audiences import storage
from audiences.models import Audience
from platforms.adapters.base import Operation
from syncs.engine.context import RunContext
from syncs.models import Sync, SyncBatch, SyncMember, SyncRun

logger = logging.getLogger(__name__)

Kind = SyncBatch.Kind
Status = SyncRun.Status
# Rows fetched at a time from the plan's queries (a first run streams every member through them).
PAGE = 10_000
HEARTBEAT_EVERY = 500_000
HELD = SyncMember._meta.db_table


@dataclass
class Counts:
    joining: int = 0
    changed: int = 0
    leaving: int = 0
    members: int = 0

    @property
    def unchanged(self) -> int:
        return max(0, self.members - self.joining - self.changed)


@dataclass
class Plan:
    counts: Counts = field(default_factory=Counts)
    adds: list[bytes] = field(default_factory=list)
    removes: list[bytes] = field(default_factory=list)


def _rows(cursor_sql: str, params: list) -> Iterator[tuple]:
    with connection.chunked_cursor() as cursor:
        cursor.execute(cursor_sql, params)
        while page := cursor.fetchmany(PAGE):
            yield from page


def candidates(*, sync_id: int, audience_id: int, since: int | None) -> Iterator[tuple[bytes, int | None, set, bool]]:
    """(person, current generation or None, generations the platform holds, whether it holds the current one),
    ascending by person, for every person who may need something sent. ``since``: only those the imports after
    that generation changed (the recorded changes); None: the full comparison."""
    member, held, change = storage.qn(storage.MEMBER), storage.qn(HELD), storage.qn(storage.CHANGE)
    if since is None:
        sql = (
            "SELECT COALESCE(m.person, h.person), m.generation, h.generation, "  # noqa: S608 - our table names
            "CASE WHEN m.person IS NOT NULL AND h.person IS NOT NULL THEN "
            f"EXISTS (SELECT 1 FROM {held} c WHERE c.sync_id = %s AND c.person = m.person "
            "AND c.generation = m.generation) END "
            f"FROM (SELECT person, generation FROM {member} WHERE audience_id = %s) m "
            f"FULL JOIN (SELECT person, generation FROM {held} WHERE sync_id = %s) h ON m.person = h.person "
            "WHERE m.person IS NULL OR h.person IS NULL OR m.generation <> h.generation ORDER BY 1"
        )
        params = [sync_id, audience_id, sync_id]
    else:
        sql = (
            "SELECT c.person, m.generation, h.generation, NULL "  # noqa: S608
            f"FROM (SELECT DISTINCT person FROM {change} WHERE audience_id = %s AND generation > %s) c "
            f"LEFT JOIN {member} m ON m.audience_id = %s AND m.person = c.person "
            f"LEFT JOIN {held} h ON h.sync_id = %s AND h.person = c.person ORDER BY 1"
        )
        params = [audience_id, since, audience_id, sync_id]
    person, current, generations, current_held = None, None, set(), False
    for row in _rows(sql, params):
        key = bytes(row[0])
        if key != person:
            if person is not None:
                yield person, current, generations, current_held or current in generations
            person, current, generations, current_held = key, row[1], set(), False
        if row[2] is not None:
            generations.add(row[2])
        if row[3]:
            current_held = True
    if person is not None:
        yield person, current, generations, current_held or current in generations


def classify(rows, *, mirror: bool, heartbeat=None) -> Plan:
    """The plan of ``candidates``: persons to add, persons with versions to remove, and the counts."""
    plan = Plan()
    counts, adds, removes = plan.counts, plan.adds, plan.removes
    for step, (person, current, held, current_held) in enumerate(rows, start=1):
        if heartbeat is not None and step % HEARTBEAT_EVERY == 0:
            heartbeat()  # planning tens of millions takes a while: stay visibly alive
        if current is None:
            if held:
                counts.leaving += 1
                if mirror:
                    removes.append(person)
        elif not held:
            counts.joining += 1
            adds.append(person)
        elif current_held:
            # The current record is there; an older one is still to be removed. (``held`` lacks the current
            # generation in the full comparison, whose rows are only those that differ: compare, do not count.)
            if held - {current}:
                counts.changed += 1
                if mirror:
                    removes.append(person)
        else:
            counts.changed += 1
            adds.append(person)
            if mirror:
                removes.append(person)
    return plan


def plan_source(sync: Sync, audience_generation: int, changes_recorded_from: int | None) -> int | None | bool:
    """Where the plan's candidates come from: False when nothing can have changed (the platform holds this very
    generation), a generation to read the recorded changes after, or None for the full comparison."""
    confirmed = sync.confirmed_generation
    if confirmed is not None and confirmed == audience_generation:
        return False
    if confirmed is not None and changes_recorded_from is not None and confirmed >= changes_recorded_from:
        return confirmed
    return None


def compute(sync: Sync, *, heartbeat=None) -> tuple[Plan, int]:
    """The plan of ``sync`` against its audience as it is now, and the generation it is for."""
    generation, members, recorded_from = Audience.objects.filter(pk=sync.audience_id).values_list(
        "generation", "member_count", "changes_recorded_from").get()
    source = plan_source(sync, generation, recorded_from)
    if source is False or generation == 0:
        # Generation 0: no import applied yet; member rows there are a first import's, still being written
        # (audiences.filling), and nobody's members.
        plan = Plan()
    else:
        rows = candidates(sync_id=sync.pk, audience_id=sync.audience_id, since=source)
        plan = classify(rows, mirror=sync.mode == Sync.Mode.MIRROR, heartbeat=heartbeat)
    plan.counts.members = members
    return plan, generation


def held_people(sync_id: int) -> int:
    """How many people the platform holds, by this sync's records."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(DISTINCT person) FROM {storage.qn(HELD)} WHERE sync_id = %s",  # noqa: S608
                       [sync_id])
        return cursor.fetchone()[0]


def would_hold(sync: Sync, counts: Counts, held: int) -> bool:
    """Whether a run removing ``counts.leaving`` people of ``held`` goes past the sync's threshold."""
    if sync.mode != Sync.Mode.MIRROR or not sync.hold_threshold or not counts.leaving or not held:
        return False
    return counts.leaving * 100 > sync.hold_threshold * held


def _everyone(audience_id: int) -> Iterator[bytes]:
    sql = f"SELECT person FROM {storage.qn(storage.MEMBER)} WHERE audience_id = %s ORDER BY person"  # noqa: S608
    for (person,) in _rows(sql, [audience_id]):
        yield bytes(person)


def _chunks(persons, size: int) -> Iterator[list[bytes]]:
    chunk = []
    for person in persons:
        chunk.append(person)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def plan_run(ctx: RunContext) -> bool:
    """Plan the run once (a resumed run keeps its plan) and write its batches. Returns False when the run is held
    for review instead of being sent."""
    run = SyncRun.objects.get(pk=ctx.run.pk)
    if run.audience_generation is not None:  # planned by an earlier attempt of this run
        ctx.run = run
        return True
    caps = ctx.adapter.capabilities
    with ctx.lease.keep_alive():  # one statement over tens of millions of rows may outlast the stale limit
        plan, generation = compute(ctx.sync, heartbeat=ctx.heartbeat)
    counts = plan.counts
    mirror = ctx.sync.mode == Sync.Mode.MIRROR
    note = ""
    batches: list[tuple[str, list[bytes]]] = []
    if mirror and plan.removes and Operation.REMOVE not in caps.operations and Operation.REPLACE in caps.operations:
        # No per-person removal: one replace session over the whole audience.
        batches = [(Kind.REPLACE, chunk) for chunk in _chunks(_everyone(ctx.audience.pk), caps.batch_size)]
        exact = True
    else:
        if plan.removes and Operation.REMOVE in caps.operations:
            batches = [(Kind.REMOVE, chunk) for chunk in _chunks(plan.removes, caps.batch_size)]
        elif mirror and plan.removes:
            note = (f"{ctx.connection.platform.name} cannot remove people from an audience; "
                    "only additions were sent.")
        batches += [(Kind.ADD, chunk) for chunk in _chunks(plan.adds, caps.batch_size)]
        exact = not note
    held = held_people(ctx.sync.pk) if counts.leaving and mirror else None
    hold = not run.hold_confirmed and would_hold(ctx.sync, counts, held or 0)
    size_before = _size_before(ctx) if batches else None
    with transaction.atomic():
        # Written only if this worker still holds the run (and nobody planned it meanwhile).
        ctx.lease.write(
            where={"audience_generation__isnull": True},
            audience_generation=generation, total_batches=len(batches), to_add=counts.joining,
            to_update=counts.changed, to_remove=counts.leaving if mirror else 0, unchanged=counts.unchanged,
            held_before=held, size_before=size_before, error_message=note, leaves_exact=exact,
        )
        if batches:
            # From the first checkpoint on, what is held is no longer exactly one generation.
            Sync.objects.filter(pk=ctx.sync.pk).update(confirmed_generation=None)
        SyncBatch.objects.bulk_create(
            [SyncBatch(run_id=ctx.run.pk, seq=seq, kind=kind, size=len(persons), persons=b"".join(persons))
             for seq, (kind, persons) in enumerate(batches, start=1)],
            batch_size=100,
        )
    ctx.run = SyncRun.objects.get(pk=ctx.run.pk)
    logger.info("sync run %s planned: %s batches, %s joining, %s changed, %s leaving", ctx.run.pk, len(batches),
                counts.joining, counts.changed, counts.leaving)
    return not hold


def _size_before(ctx: RunContext) -> int | None:
    """The audience size the platform reports before anything is sent (None when it reports none)."""
    from syncs.engine.finish import platform_status

    status = platform_status(ctx)
    return status.size if status is not None else None


@dataclass
class Preview:
    """What a run of the sync would do now, in people, and how many members its platform can use."""

    joining: int
    changed: int
    leaving: int
    unchanged: int
    usable: int
    members: int
    held: int
    would_hold: bool
    removes: bool  # whether leavers would be removed (mirror mode on a platform that can)

    @property
    def leaving_share(self) -> float | None:
        return self.leaving / self.held if self.held else None


def preview(sync: Sync) -> Preview:
    """The plan of a run started now, without writing anything."""
    plan, _ = compute(sync)
    counts = plan.counts
    held = held_people(sync.pk) if counts.leaving else 0
    usable = (Audience.objects.filter(pk=sync.audience_id).values_list("platform_coverage", flat=True).get()
              or {}).get(sync.connection.platform.code, 0)
    adapter_ops = sync.connection.platform.adapter_class.capabilities.operations
    removes = sync.mode == Sync.Mode.MIRROR and bool({Operation.REMOVE, Operation.REPLACE} & set(adapter_ops))
    return Preview(joining=counts.joining, changed=counts.changed, leaving=counts.leaving,
                   unchanged=counts.unchanged, usable=usable, members=counts.members, held=held,
                   would_hold=would_hold(sync, counts, held), removes=removes)
