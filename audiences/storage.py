"""How members are stored: one row per person, compact columns (audiences.models.MemberRecord), written by the
import through a staging table and applied to the audience in one transaction, read back by the sync engine.

The stored record of a member is platforms.matchkeys' ``stored`` dict (digests as bytes, codes and raw values as
text); in the database the date of birth is a number and the mobile advertiser id the UUID's 16 bytes. Every bulk
read and write goes through SQL here (the ORM's per-row cost dominates at millions of rows); on PostgreSQL the
import stages each chunk with a binary COPY.

The import (``Stage`` then ``apply_stage``; an audience's first import writes straight into it, see below):

1. Each chunk's members, de-duplicated by person within the chunk (the first row of a person is kept; a later row
   only adds the keys it lacks), are upserted into a temporary staging table by the same rule, so duplicates across
   chunks merge the same way.
2. ``apply_stage``, in one transaction with the audience row locked: the versions of departing or changing members
   that a sync still holds are kept (MemberVersion), the changes are recorded (MemberChange, unless there are too
   many to be worth it), leavers are deleted, changed members updated in place, new members inserted, and the
   audience moves to the new generation with its counts. A failure before the commit leaves the audience as it was.

An audience's first import (audiences.filling) has nobody to compare with: ``Stage(into=(audience, generation))``
upserts each chunk straight into the member table by the same merge rule, while the file is still being read, and
``apply_filled`` only counts them. Nothing reads those rows until then (an audience of generation 0 has no members).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass

from django.db import DatabaseError, connection

try:
    from psycopg.types.string import BytesBinaryDumper
except ImportError:  # SQLite only
    BytesBinaryDumper = None

from audiences.models import Audience, Member, MemberChange, MemberVersion
from platforms import matchkeys

# The record columns, in the stored dict's key order (matchkeys.STORED_KEYS).
RECORD_COLUMNS: tuple[str, ...] = matchkeys.STORED_KEYS
_DOB = RECORD_COLUMNS.index("dob")
_M = RECORD_COLUMNS.index("m")
# PostgreSQL types of the record columns, for binary COPY.
_PG_TYPES = {**dict.fromkeys(matchkeys.DIGEST_KEYS, "bytea"), "fi": "text", "st": "text", "dob": "int4",
             "g": "text", "z": "text", "zg": "text", "c": "text", "x": "text", "m": "bytea"}
# The chunk table takes the stored dict's values as they are (a date of birth as its "YYYYMMDD" text, a mobile id as
# its UUID text), so a chunk's COPY rows are built in C; the statement that moves them on converts these two.
_COPY_TYPES = {**_PG_TYPES, "dob": "text", "m": "text"}
_FROM_COPY = {"dob": '"dob"::int4', "m": 'uuid_send("m"::uuid)'}
# A re-import changing more than this share of the audience records no changes: a sync then compares the whole
# audience, which costs about the same.
CHANGES_MAX_SHARE = 0.25
# Members per statement in IN lists on SQLite (whose statements take at most 32,766 parameters).
SQLITE_PIECE = 5_000


def qn(name: str) -> str:
    return connection.ops.quote_name(name)


MEMBER = Member._meta.db_table
_STAGES = itertools.count(1)
VERSION = MemberVersion._meta.db_table
CHANGE = MemberChange._meta.db_table


def to_row(stored: Mapping[str, object]) -> list:
    """A stored dict as the record columns' database values."""
    row = list(map(stored.get, RECORD_COLUMNS))
    if row[_DOB] is not None:
        row[_DOB] = int(row[_DOB])
    if (m := row[_M]) is not None:
        # A stored id is the canonical lowercase UUID (matchkeys): its 32 hex digits are its 16 bytes.
        row[_M] = bytes.fromhex(m.replace("-", "")) if len(m) == 36 else uuid.UUID(m).bytes
    return row


def db_value(column: str, value):
    """One stored value as its column holds it."""
    if value is None:
        return None
    if column == "m":
        return uuid.UUID(value).bytes
    if column == "dob":
        return int(value)
    return value


def to_stored(row: Sequence[object]) -> dict:
    """The record columns' database values (in RECORD_COLUMNS order) as a stored dict."""
    stored = {key: value for key, value in zip(RECORD_COLUMNS, row, strict=True) if value is not None}
    if "dob" in stored:
        stored["dob"] = f"{stored['dob']:08d}"
    m = stored.get("m")
    if m is not None:
        stored["m"] = str(uuid.UUID(bytes=bytes(m)))
    for key in matchkeys.DIGEST_KEYS:  # psycopg gives bytes, sqlite3 bytes; anything else (memoryview) becomes bytes
        value = stored.get(key)
        if value is not None and value.__class__ is not bytes:
            stored[key] = bytes(value)
    return stored


def merge_into(kept: dict, later: Mapping[str, object]) -> bool:
    """Merge a later row of the same person into ``kept``: only the keys ``kept`` lacks are taken. True when the
    later row added something."""
    added = False
    for key, value in later.items():
        if key not in kept:
            kept[key] = value
            added = True
    return added


def _distinct(a: str, b: str) -> str:
    """SQL: the two column expressions differ (NULLs compare as values)."""
    return f"{a} IS DISTINCT FROM {b}" if connection.vendor == "postgresql" else f"{a} IS NOT {b}"


def _record_differs(left: str, right: str) -> str:
    return "(" + " OR ".join(_distinct(f"{left}.{qn(c)}", f"{right}.{qn(c)}") for c in RECORD_COLUMNS) + ")"


# ---------------------------------------------------------------------------------------------------------
# The import's staging table


class Stage:
    """A temporary table of the file's people (one connection's, dropped at the end of the session): person plus
    the record columns, one row per person, merged by ``merge_into``'s rule across chunks.

    ``into=(audience id, generation)``: no staging table; the people go straight into that audience's member rows,
    as that generation, by the same rule (its first import: audiences.filling)."""

    def __init__(self, into: tuple[int, int] | None = None):
        # Temporary tables are the connection's own; the number keeps two stages on one connection apart.
        self.table = f"audiences_import_stage_{next(_STAGES)}"
        self.postgres = connection.vendor == "postgresql"
        self.columns = ", ".join(qn(c) for c in RECORD_COLUMNS)
        self.into = into

    def create(self) -> None:
        types = dict(_PG_TYPES)
        if not self.postgres:
            types = {c: ("blob" if t == "bytea" else "integer" if t == "int4" else "text") for c, t in types.items()}
        person_type = "bytea" if self.postgres else "blob"
        columns = ", ".join(f"{qn(c)} {types[c]}" for c in RECORD_COLUMNS)
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.table}")
            if self.into is None:
                cursor.execute(f"CREATE TEMP TABLE {self.table} (person {person_type} PRIMARY KEY, {columns})")
            if self.postgres:
                copied = ", ".join(f"{qn(c)} {_COPY_TYPES[c]}" for c in RECORD_COLUMNS)
                cursor.execute(f"DROP TABLE IF EXISTS {self.table}_chunk")
                cursor.execute(f"CREATE TEMP TABLE {self.table}_chunk (person bytea, {copied})")

    def drop(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.table}")
            if self.postgres:
                cursor.execute(f"DROP TABLE IF EXISTS {self.table}_chunk")

    def write(self, members: Mapping[bytes, Mapping[str, object]]) -> None:
        """Upsert one chunk's members ({person: stored}, persons unique within the chunk)."""
        if not members:
            return
        if self.into is None:
            target, key, fixed, values = self.table, "person", "", ""
        else:
            audience_id, generation = (int(i) for i in self.into)
            target, key, fixed, values = qn(MEMBER), "audience_id, person", "audience_id, generation, ", \
                f"{audience_id}, {generation}, "
        fill = ", ".join(f"{qn(c)} = COALESCE({target}.{qn(c)}, EXCLUDED.{qn(c)})" for c in RECORD_COLUMNS)
        upsert = (f"INSERT INTO {target} ({fixed}person, {self.columns}) {{}} "  # noqa: S608 - our names, ints
                  f"ON CONFLICT ({key}) DO UPDATE SET {fill}")
        with connection.cursor() as cursor:
            if self.postgres:
                chunk = f"{self.table}_chunk"
                # psycopg dumps bytea by type name with the DB-API ``Binary`` wrapper's dumper, written in Python;
                # the plain bytes dumper is its C one: the COPY of a chunk takes half the time.
                cursor.adapters.register_dumper(bytes, BytesBinaryDumper)
                with cursor.copy(f"COPY {chunk} (person, {self.columns}) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(["bytea", *(_COPY_TYPES[c] for c in RECORD_COLUMNS)])
                    write_row, columns = copy.write_row, RECORD_COLUMNS
                    for person, stored in members.items():
                        write_row([person, *map(stored.get, columns)])
                # Straight into the audience: in person order, so each chunk walks the member index front to back.
                order = " ORDER BY person" if self.into is not None else ""
                select = ", ".join(_FROM_COPY.get(c, qn(c)) for c in RECORD_COLUMNS)
                cursor.execute(upsert.format(f"SELECT {values}person, {select} FROM {chunk}{order}"))  # noqa: S608
                cursor.execute(f"TRUNCATE {chunk}")
            else:
                marks = ", ".join(["%s"] * (len(RECORD_COLUMNS) + 1))
                cursor.executemany(upsert.format(f"VALUES ({values}{marks})"),
                                   [[person, *to_row(stored)] for person, stored in members.items()])

    def count(self) -> int:
        """The people staged (or written into the audience) so far."""
        with connection.cursor() as cursor:
            if self.into is None:
                cursor.execute(f"SELECT COUNT(*) FROM {self.table}")  # noqa: S608
            else:
                cursor.execute(f"SELECT COUNT(*) FROM {qn(MEMBER)} WHERE audience_id = %s", [self.into[0]])  # noqa: S608
            return cursor.fetchone()[0]


@contextmanager
def relaxed_commits() -> Iterator[None]:
    """Within: commits that do not wait for the write-ahead log to reach the disk (PostgreSQL's synchronous_commit
    off), for the import's chunk transactions. A database crash may lose the last few of them, all of a chunk or
    none of it (its people with its checkpoint), never anything else, and a restarted import reads its file again
    from the top. The apply that ends the import commits as usual, after this."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO OFF")
    try:
        yield
    finally:
        # Not in the way of the error that ended the stream (a lost connection resets itself).
        with suppress(DatabaseError), connection.cursor() as cursor:
            cursor.execute("RESET synchronous_commit")


def delete_members(audience_id: int) -> int:
    """Every member row of the audience goes (rows a first import wrote and never applied: audiences.filling)."""
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {qn(MEMBER)} WHERE audience_id = %s", [audience_id])  # noqa: S608
        return cursor.rowcount


@dataclass
class Applied:
    generation: int
    members: int
    joined: int
    changed: int
    left: int
    recorded: bool


def apply_stage(stage: Stage, *, audience_id: int, generation: int, sync_ids: Sequence[int]) -> Applied:
    """Make the staged people the audience's membership as ``generation`` (call inside a transaction that holds
    the audience row). Returns what changed; nothing is written when nothing changed."""
    s, a = stage.table, audience_id
    cols = stage.columns
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {qn(MEMBER)} WHERE audience_id = %s", [a])  # noqa: S608
        before = cursor.fetchone()[0]
        if before == 0:
            cursor.execute(  # the first import: every staged person joins, in person order (a compact index)
                f"INSERT INTO {qn(MEMBER)} (audience_id, person, generation, {cols}) "  # noqa: S608
                f"SELECT %s, person, %s, {cols} FROM {s} ORDER BY person", [a, generation])
            joined = cursor.rowcount
            return Applied(generation, joined, joined, 0, 0, recorded=False)

        # Who leaves, whose record changes, who joins: once, into a small table the writes below join against.
        changes = f"{s}_changes"
        cursor.execute(f"DROP TABLE IF EXISTS {changes}")
        cursor.execute(
            f"CREATE TEMP TABLE {changes} AS "  # noqa: S608 - our own table names
            f"SELECT m.person AS person, 'l' AS kind FROM {qn(MEMBER)} m WHERE m.audience_id = %s "
            f"AND NOT EXISTS (SELECT 1 FROM {s} n WHERE n.person = m.person) "
            f"UNION ALL SELECT m.person, 'c' FROM {qn(MEMBER)} m JOIN {s} n ON n.person = m.person "
            f"WHERE m.audience_id = %s AND {_record_differs('m', 'n')} "
            f"UNION ALL SELECT n.person, 'j' FROM {s} n WHERE NOT EXISTS (SELECT 1 FROM {qn(MEMBER)} m "
            "WHERE m.audience_id = %s AND m.person = n.person)", [a, a, a])
        cursor.execute(f"SELECT kind, COUNT(*) FROM {changes} GROUP BY kind")  # noqa: S608
        counts = {"l": 0, "c": 0, "j": 0} | dict(cursor.fetchall())
        total = counts["l"] + counts["c"] + counts["j"]
        after = before - counts["l"] + counts["j"]
        if total == 0:
            cursor.execute(f"DROP TABLE {changes}")
            return Applied(generation - 1, before, 0, 0, 0, recorded=True)
        going = f"SELECT person FROM {changes} WHERE kind IN ('l', 'c')"  # noqa: S608

        if sync_ids:
            # The versions some sync holds and that stop being current: kept, so their identifiers can be removed.
            held = ", ".join(str(int(i)) for i in sync_ids)
            cursor.execute(
                f"INSERT INTO {qn(VERSION)} (audience_id, person, generation, {cols}) "  # noqa: S608
                f"SELECT m.audience_id, m.person, m.generation, {', '.join('m.' + qn(c) for c in RECORD_COLUMNS)} "
                f"FROM {qn(MEMBER)} m WHERE m.audience_id = %s AND m.person IN ({going}) "
                f"AND EXISTS (SELECT 1 FROM syncs_syncmember h WHERE h.sync_id IN ({held}) "
                "AND h.person = m.person AND h.generation = m.generation) "
                "ON CONFLICT DO NOTHING", [a])
        recorded = total <= CHANGES_MAX_SHARE * max(before, after)
        if recorded:
            cursor.execute(
                f"INSERT INTO {qn(CHANGE)} (audience_id, generation, person) "  # noqa: S608
                f"SELECT %s, %s, person FROM {changes} WHERE true ON CONFLICT DO NOTHING", [a, generation])
        cursor.execute(f"DELETE FROM {qn(MEMBER)} WHERE audience_id = %s AND person IN "  # noqa: S608
                       f"(SELECT person FROM {changes} WHERE kind = 'l')", [a])
        assignments = ", ".join(f"{qn(c)} = n.{qn(c)}" for c in RECORD_COLUMNS)
        cursor.execute(
            f"UPDATE {qn(MEMBER)} SET generation = %s, {assignments} FROM {s} n "  # noqa: S608
            f"WHERE {qn(MEMBER)}.audience_id = %s AND {qn(MEMBER)}.person = n.person "
            f"AND n.person IN (SELECT person FROM {changes} WHERE kind = 'c')", [generation, a])
        cursor.execute(
            f"INSERT INTO {qn(MEMBER)} (audience_id, person, generation, {cols}) "  # noqa: S608
            f"SELECT %s, n.person, %s, {', '.join('n.' + qn(c) for c in RECORD_COLUMNS)} FROM {s} n "
            f"WHERE n.person IN (SELECT person FROM {changes} WHERE kind = 'j') ORDER BY n.person",
            [a, generation])
        cursor.execute(f"DROP TABLE {changes}")
    return Applied(generation, after, counts["j"], counts["c"], counts["l"], recorded=recorded)


def apply_filled(stage: Stage, *, generation: int, members: int | None = None) -> Applied:
    """A first import's people, already written into the audience as ``generation`` (``Stage(into=...)``), become
    its membership: they all joined; nothing to record, no sync held anything. ``members``: their number, when the
    caller has just counted them (a count of ten million rows takes a second)."""
    members = stage.count() if members is None else members
    return Applied(generation, members, members, 0, 0, recorded=False)


def forget_changes(*, audience: Audience, recorded: bool, generation: int) -> int | None:
    """After an import: the MemberChange rows no sync can use any more go, and the audience's
    ``changes_recorded_from`` moves on. Returns the new value."""
    from syncs.models import Sync

    confirmed = [g for g in Sync.objects.filter(audience=audience).values_list("confirmed_generation", flat=True)
                 if g is not None]
    since = audience.changes_recorded_from
    if not recorded:
        since = generation
    elif since is None:
        since = generation - 1
    # Changes up to the oldest confirmed generation are read by nobody: a sync confirmed there reads after it.
    cutoff = min(confirmed) if confirmed else generation
    MemberChange.objects.filter(audience=audience, generation__lte=cutoff).delete()
    return max(since, cutoff) if since is not None else cutoff


def delete_slice(model, column: str, value: int, *, limit: int) -> int:
    """Delete up to ``limit`` rows of ``model`` whose ``column`` is ``value``, in person order (a table of people:
    member, kept version, change, synced member). Returns how many went."""
    table = qn(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {table} WHERE {qn(column)} = %s AND person IN "  # noqa: S608 - our own names
            f"(SELECT person FROM {table} WHERE {qn(column)} = %s ORDER BY person LIMIT %s)", [value, value, limit])
        return cursor.rowcount


# ---------------------------------------------------------------------------------------------------------
# Reading members back (the sync engine)


def pieces(items: Sequence, size: int = SQLITE_PIECE) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _in_persons(column: str, persons: Sequence[bytes]) -> Iterator[tuple[str, list]]:
    """SQL conditions selecting ``persons``: one array parameter on PostgreSQL, IN lists in pieces elsewhere."""
    if connection.vendor == "postgresql":
        yield f"{column} = ANY(%s)", [list(persons)]
    else:
        for piece in pieces(persons):
            yield f"{column} IN ({', '.join(['%s'] * len(piece))})", list(piece)


def current_records(audience_id: int, persons: Sequence[bytes]) -> list[tuple[bytes, int, dict]]:
    """(person, generation, stored) of those of ``persons`` who are current members, in person order."""
    cols = ", ".join(qn(c) for c in RECORD_COLUMNS)
    rows = []
    with connection.cursor() as cursor:
        for condition, params in _in_persons("person", persons):
            cursor.execute(f"SELECT person, generation, {cols} FROM {qn(MEMBER)} "  # noqa: S608
                           f"WHERE audience_id = %s AND {condition}", [audience_id, *params])
            rows += cursor.fetchall()
    rows.sort(key=lambda row: bytes(row[0]))
    return [(bytes(row[0]), row[1], to_stored(row[2:])) for row in rows]


def all_records(audience_id: int) -> Iterator[tuple[bytes, int, dict]]:
    """(person, generation, stored) of every current member, in person order, streamed."""
    cols = ", ".join(qn(c) for c in RECORD_COLUMNS)
    with connection.chunked_cursor() as cursor:
        cursor.execute(f"SELECT person, generation, {cols} FROM {qn(MEMBER)} WHERE audience_id = %s "  # noqa: S608
                       "ORDER BY person", [audience_id])
        while page := cursor.fetchmany(10_000):
            for row in page:
                yield bytes(row[0]), row[1], to_stored(row[2:])


def versions(audience_id: int, pairs: Iterable[tuple[bytes, int]]) -> dict[tuple[bytes, int], dict]:
    """The stored records of earlier versions ((person, generation) -> stored) that are kept."""
    wanted = set(pairs)
    persons = sorted({person for person, _ in wanted})
    cols = ", ".join(qn(c) for c in RECORD_COLUMNS)
    found = {}
    with connection.cursor() as cursor:
        for condition, params in _in_persons("person", persons):
            cursor.execute(f"SELECT person, generation, {cols} FROM {qn(VERSION)} "  # noqa: S608
                           f"WHERE audience_id = %s AND {condition}", [audience_id, *params])
            for row in cursor.fetchall():
                key = (bytes(row[0]), row[1])
                if key in wanted:
                    found[key] = to_stored(row[2:])
    return found


def held_values(audience_id: int, candidates: Mapping[tuple[str, ...], set], *,
                on_platform_of: int | None = None) -> dict[tuple[str, ...], set]:
    """Which candidate values current members hold, per stored-key chain (the platform's value of a key is the
    first of its chain's columns a member has): {chain: {values held}}. One scan of the audience on PostgreSQL.
    ``on_platform_of``: a sync id; only members whose current version that sync's platform holds count."""
    chains = [chain for chain, values in candidates.items() if values]
    on_platform, extra = "", []
    if on_platform_of is not None:
        from syncs.models import SyncMember  # audiences does not import syncs at module level

        on_platform = (f" AND EXISTS (SELECT 1 FROM {qn(SyncMember._meta.db_table)} h "  # noqa: S608 - our tables
                       f"WHERE h.sync_id = %s AND h.person = {qn(MEMBER)}.person "
                       f"AND h.generation = {qn(MEMBER)}.generation)")
        extra = [on_platform_of]
    if not chains:
        return {}
    held: dict[tuple[str, ...], set] = {chain: set() for chain in chains}

    def expression(chain):
        columns = [qn(c) for c in chain]
        return columns[0] if len(columns) == 1 else f"COALESCE({', '.join(columns)})"

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            selects = ", ".join(expression(chain) for chain in chains)
            matches = " OR ".join(f"{expression(chain)} = ANY(%s)" for chain in chains)
            params = [_pg_array(candidates[chain]) for chain in chains]
            cursor.execute(f"SELECT {selects} FROM {qn(MEMBER)} WHERE audience_id = %s AND ({matches})"  # noqa: S608
                           f"{on_platform}", [audience_id, *params, *extra])
            for row in cursor.fetchall():
                for chain, value in zip(chains, row, strict=True):
                    if value is not None and _value(value) in candidates[chain]:
                        held[chain].add(_value(value))
        else:
            for chain in chains:
                values = list(candidates[chain])
                for piece in pieces(values):
                    cursor.execute(
                        f"SELECT DISTINCT {expression(chain)} FROM {qn(MEMBER)} WHERE audience_id = %s "  # noqa: S608
                        f"AND {expression(chain)} IN ({', '.join(['%s'] * len(piece))}){on_platform}",
                        [audience_id, *piece, *extra])
                    held[chain].update(_value(row[0]) for row in cursor.fetchall())
    return held


def _value(value):
    return bytes(value) if isinstance(value, memoryview) else value


def _pg_array(values: set) -> list:
    return list(values)


def holds_record(audience_id: int, stored: Mapping[str, object], columns: Sequence[str]) -> bool:
    """Whether a current member has exactly these values in ``columns`` (a composite identifier)."""
    row = to_row(stored)
    conditions, params = [], [audience_id]
    for column in columns:
        value = row[RECORD_COLUMNS.index(column)]
        if value is None:
            conditions.append(f"{qn(column)} IS NULL")
        else:
            conditions.append(f"{qn(column)} = %s")
            params.append(value)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM {qn(MEMBER)} WHERE audience_id = %s AND {' AND '.join(conditions)} "  # noqa: S608
                       "LIMIT 1", params)
        return cursor.fetchone() is not None
