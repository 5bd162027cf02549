"""Reading a batch: its people's records as the platform takes them.

- **add / replace**: the current records of the batch's people (an add skips the ones whose current version the
  platform already holds: a resumed batch, or a person whose changed record another batch added).
- **remove**: the versions the platform holds of the batch's people that are no longer current, read from the
  kept versions (MemberVersion). Each becomes a removal row carrying only identifiers that no current member holds
  (platforms remove whoever matches any identifier sent); with no such identifier left, a name-and-address
  composite when the platform matches on one and no current member has the same; else nothing is sent for it
  ("kept": everything it had belongs to current members too).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import connection

from audiences import storage
from platforms.matchkeys import values_function
from syncs.engine.context import RunContext
from syncs.models import SyncBatch, SyncMember

Kind = SyncBatch.Kind
PERSON = 12


@dataclass
class BatchRead:
    """What a batch sends (``values``, one dict per row) and what its checkpoint records."""

    values: list[dict] = field(default_factory=list)
    # (person, generation) of every version the batch covers: held after an add / replace, forgotten after a remove.
    versions: list[tuple[bytes, int]] = field(default_factory=list)
    # The stored records of an add's versions (kept as MemberVersion if an import replaces them before the
    # checkpoint).
    records: dict[tuple[bytes, int], dict] = field(default_factory=dict)
    kept: int = 0  # removal rows with nothing to send
    leavers: int = 0  # people of a remove batch who are no longer members
    # Those of them a removal row was sent for (a changed person's old identifiers are part of their update, so
    # "removed" counts people who left, like the plan's "to remove").
    leavers_removed: int = 0
    # A remove's versions not to forget yet: they share an identifier with a current member whose current
    # version the platform does not hold yet, so that identifier is on the platform on their account.
    deferred: list[tuple[bytes, int]] = field(default_factory=list)


def persons_of(batch: SyncBatch) -> list[bytes]:
    data = bytes(batch.persons)
    return [data[i:i + PERSON] for i in range(0, len(data), PERSON)]


def read_batch(ctx: RunContext, batch: SyncBatch) -> BatchRead:
    if batch.kind == Kind.REMOVE:
        return _removals(ctx, persons_of(batch))
    return _current(ctx, persons_of(batch), skip_held=batch.kind == Kind.ADD)


def _held(sync_id: int, persons: list[bytes]) -> set[tuple[bytes, int]]:
    table = storage.qn(SyncMember._meta.db_table)
    found = set()
    with connection.cursor() as cursor:
        for condition, params in storage._in_persons("person", persons):
            cursor.execute(f"SELECT person, generation FROM {table} WHERE sync_id = %s AND {condition}",  # noqa: S608
                           [sync_id, *params])
            found.update((bytes(p), g) for p, g in cursor.fetchall())
    return found


def _current(ctx: RunContext, persons: list[bytes], *, skip_held: bool) -> BatchRead:
    read = BatchRead()
    build = values_function(ctx.code)
    held = _held(ctx.sync.pk, persons) if skip_held else set()
    for person, generation, stored in storage.current_records(ctx.audience.pk, persons):
        if (person, generation) in held:
            continue
        read.values.append(build(stored))
        read.versions.append((person, generation))
        read.records[(person, generation)] = stored
    return read


def _removals(ctx: RunContext, persons: list[bytes]) -> BatchRead:
    read = BatchRead()
    current = {person: generation for person, generation, _ in storage.current_records(ctx.audience.pk, persons)}
    stale = sorted(pair for pair in _held(ctx.sync.pk, persons) if current.get(pair[0]) != pair[1])
    read.versions = stale
    read.leavers = len({person for person, _ in stale if person not in current})
    if not stale:
        return read
    records = storage.versions(ctx.audience.pk, stale)
    adapter = ctx.adapter
    table = adapter.match_keys
    build = values_function(ctx.code)
    identifiers, chains, firsts, held = shared_identifiers(ctx, stale, records)
    read.deferred = not_yet_covered(ctx, stale, firsts, chains, held)
    removed_leavers: set[bytes] = set()
    composite = [key for key in adapter.composite_identifier if key in table]
    composite_columns = sorted({column for key in composite for column in table[key][0]})
    for pair, found in zip(stale, firsts, strict=True):
        if found is None:  # no record of what was sent (should not happen): nothing can be removed for it
            read.kept += 1
            continue
        stored = records[pair]
        values = build(stored)
        row = {key: values[key] for key in identifiers
               if found.get(key) is not None and found[key] not in held.get(chains[key], ())}
        if not row and composite and not any(found.get(key) is not None for key in identifiers):
            # Only a name and an address identify this record: sent whole, unless a current member has them too.
            parts = {key: values[key] for key in composite if key in values}
            if parts and not storage.holds_record(ctx.audience.pk, stored, composite_columns):
                row = parts
        if row:
            read.values.append(row)
            if pair[0] not in current:
                removed_leavers.add(pair[0])
        else:
            read.kept += 1
    read.leavers_removed = len(removed_leavers)
    return read


def shared_identifiers(ctx: RunContext, stale: list[tuple[bytes, int]], records: dict):
    """The platform's identifiers of each stale version, before encoding (the stored value each key's chain reads
    first), and which of them current members hold (one query for the whole batch): (identifier keys, their
    chains, per version {key: value} or None when its record is gone, {chain: values current members hold})."""
    table = ctx.adapter.match_keys
    identifiers = [key for key in ctx.adapter.identifier_keys if key in table]
    chains = {key: table[key][0] for key in identifiers}
    firsts = []
    for pair in stale:
        stored = records.get(pair)
        firsts.append(None if stored is None else {key: _first(stored, chain) for key, chain in chains.items()})
    wanted: dict[tuple[str, ...], set] = {chain: set() for chain in chains.values()}
    for found in firsts:
        for key, value in (found or {}).items():
            if value is not None:
                wanted[chains[key]].add(value)
    return identifiers, chains, firsts, storage.held_values(ctx.audience.pk, wanted)


def not_yet_covered(ctx: RunContext, stale, firsts, chains, held) -> list[tuple[bytes, int]]:
    """The stale versions holding an identifier that a current member holds too, while no current member the
    platform holds has it: the platform keeps that identifier on the stale version's account for now."""
    shared: dict[tuple[str, ...], set] = {chain: set() for chain in chains.values()}
    for found in firsts:
        for key, value in (found or {}).items():
            if value is not None and value in held.get(chains[key], ()):
                shared[chains[key]].add(value)
    if not any(shared.values()):
        return []
    covered = storage.held_values(ctx.audience.pk, shared, on_platform_of=ctx.sync.pk)
    return [pair for pair, found in zip(stale, firsts, strict=True) if found and any(
        value is not None and value in shared[chains[key]] and value not in covered.get(chains[key], ())
        for key, value in found.items())]


def _first(stored: dict, chain: tuple[str, ...]):
    """The value a member's record gives for a key read through ``chain``, as the database holds it."""
    for column in chain:
        value = stored.get(column)
        if value is not None:
            return storage.db_value(column, value)
    return None
