"""Raw rows to stored records: ``prepare_record`` / ``prepare_records`` / ``prepare_rows`` / ``prepare_columns``
(the importer's entry points), and whether a stored record is identifiable."""

from __future__ import annotations

import gc
from collections.abc import Iterable, Mapping, Sequence
from itertools import compress, repeat, zip_longest
from typing import NamedTuple

from .columns import (
    _city_col,
    _country_col,
    _dob_col,
    _email_column,
    _external_id_column,
    _first_name_col,
    _gender_col,
    _initial_col,
    _last_name_col,
    _maid_column,
    _phone_column,
    _postal_col,
    _state_col,
)
from .keys import KEYS


class PreparedRecord(NamedTuple):
    """One raw row after normalization: ``stored`` (what Member.keys holds), ``rejections`` [(key, reason)]
    and ``identifiable``."""

    stored: dict[str, str]
    rejections: list[tuple[str, str]]

    @property
    def identifiable(self) -> bool:
        return is_identifiable(self.stored)


def is_identifiable(stored: Mapping[str, str]) -> bool:
    """At least one key some platform can match on alone: email, phone, mobile id, external id, or a
    first + last name with a postal code, city or birth date (Meta's and Google's name-and-address matching)."""
    if "e" in stored or "p" in stored or "m" in stored or "x" in stored:
        return True
    return "fn" in stored and "ln" in stored and ("z" in stored or "ct" in stored or "dob" in stored)


def prepare_record(raw: Mapping[str, object], *, default_region: str | None) -> PreparedRecord:
    """Normalize and hash one row ({match key: raw text}); empty cells are skipped silently.

    The row's own country (when valid) sets the region for its phone, state, postal code and date;
    otherwise ``default_region`` (the audience's) does. An explicit first initial wins over the one
    derived from the first name. For many rows use ``prepare_records`` (same result, faster).
    """
    return prepare_records((raw,), default_region=default_region)[0]


def prepare_records(rows: Iterable[Mapping[str, object]], *, default_region: str | None) -> list[PreparedRecord]:
    """``prepare_record`` for many rows at once (the importer's entry point): column by column, so each
    key's normalizer runs in a tight loop and repeated values come from cache."""
    rows = rows if isinstance(rows, list | tuple) else list(rows)
    with _gc_paused():
        columns = {key: [row.get(key) for row in rows] for key in _present_keys(rows)}
        return _prepare_columns(columns, len(rows), default_region)


def prepare_rows(
    rows: Sequence[Sequence[object]], keys: Sequence[str | None], *, default_region: str | None
) -> list[PreparedRecord]:
    """``prepare_records`` for CSV-shaped rows: ``rows`` are lists of cells in file order, ``keys[i]`` is the
    match key of column i (None: column not used). Short rows read as empty cells. Transposes in C, the
    cheapest way in for an importer."""
    if not rows:
        return []
    with _gc_paused():
        return prepare_transposed(transpose(rows), keys, len(rows), default_region=default_region)


def transpose(rows: Sequence[Sequence[object]]) -> list[tuple]:
    """CSV-shaped rows as columns (tuples, one per column of the widest row), in C; a short row's missing cells
    are None. For a caller that reads the columns itself too (the importer's counts), then ``prepare_transposed``."""
    with _gc_paused():
        # zip_longest: a short row (missing trailing cells) must not shift or truncate the columns.
        return list(zip_longest(*rows))


def prepare_transposed(columns: Sequence[Sequence[object]], keys: Sequence[str | None], count: int, *,
                       default_region: str | None) -> list[PreparedRecord]:
    """``prepare_rows`` for rows already transposed (``transpose``): ``columns[i]`` holds column i's cells."""
    with _gc_paused():
        return _prepare_columns({key: cells for key, cells in zip(keys, columns) if key}, count,  # noqa: B905
                                default_region)


def _present_keys(rows) -> list[str]:
    first = rows[0] if rows else {}
    keys = [k for k in KEYS if k in first]
    if any(len(row) != len(first) or any(k not in row for k in keys) for row in rows[1:]):
        # Ragged rows: look at every key.
        seen = set()
        for row in rows:
            seen.update(row)
        keys = [k for k in KEYS if k in seen]
    return keys


def prepare_columns(
    columns: Mapping[str, Sequence[object]], count: int, *, default_region: str | None
) -> list[PreparedRecord]:
    """``prepare_records`` for data already in columns ({match key: [cell per row]}, ``count`` rows)."""
    with _gc_paused():
        return _prepare_columns(columns, count, default_region)


class _gc_paused:  # noqa: N801 - used as a context manager, like contextlib's
    """Pause the cyclic GC for a batch. The batch allocates a few objects per cell while the caches and the
    caller hold many: with the collector running, its full collections rescan all of them again and again
    (measured: ~45 % of the time; ~20 % when only the transposition ran unpaused). Nothing here creates
    reference cycles. Re-entrant: only the outermost pause re-enables."""

    __slots__ = ("paused",)

    def __enter__(self):
        self.paused = gc.isenabled()
        if self.paused:
            gc.disable()

    def __exit__(self, *exc):
        if self.paused:
            gc.enable()


def _prepare_columns(columns, count, default_region):
    region = default_region.upper() if default_region else None

    def col(key, cache):
        cells = columns.get(key)
        return repeat(None, count) if cells is None else cache.column(cells)

    countries = col("country", _country_col)
    # The row's own country (when valid) sets its region; without a country column every row has the default
    # (an endless repeat: each map below stops with its own cells).
    others = ()
    if "country" in columns:
        region_of = {c: (c if c.__class__ is str else region) for c in set(countries)}
        regions = list(map(region_of.__getitem__, countries))
        if any(r != region for r in region_of.values()):
            foreign = {c for c, r in region_of.items() if r != region}
            others = list(compress(range(count), map(foreign.__contains__, countries)))
    else:
        regions = repeat(region)

    def regional(key, per_region):
        cells = columns.get(key)
        if cells is None:
            return repeat(None, count)
        if not others:
            return per_region.for_region(region).column(cells)
        # Rows of another country: out of the default region's column, then one by one in their own.
        local = list(cells)
        for i in others:
            local[i] = None
        out = per_region.for_region(region).column(local)
        for i in others:
            out[i] = per_region.for_region(regions[i]).one(cells[i])
        return out

    def unique(key, column):  # keys whose values rarely repeat: no cache
        cells = columns.get(key)
        return repeat(None, count) if cells is None else column(cells)

    emails = unique("email", _email_column)
    phones = _phone_column(columns["phone"], regions) if "phone" in columns else repeat(None, count)
    initials = col("first_initial", _initial_col)
    firsts = col("first_name", _first_name_col)
    lasts = col("last_name", _last_name_col)
    postals = regional("postal_code", _postal_col)
    dobs = regional("date_of_birth", _dob_col)
    genders = col("gender", _gender_col)
    cities = col("city", _city_col)
    states = regional("state", _state_col)
    externals = unique("external_id", _external_id_column)
    maids = unique("maid", _maid_column)

    out = []
    append = out.append
    new = tuple.__new__
    for _, c, e, p, fi, fn, ln, z, dob, g, ct, st, x, m in zip(  # noqa: B905 - range(count) bounds the repeats
        range(count),
        countries,
        emails,
        phones,
        initials,
        firsts,
        lasts,
        postals,
        dobs,
        genders,
        cities,
        states,
        externals,
        maids,
    ):
        d = {}
        rej = []
        # Rejections in KEY order of processing: country, email, phone, first_initial, first_name, last_name,
        # postal_code, date_of_birth, gender, city, state, external_id, maid.
        if c is not None:
            if c.__class__ is str:
                d["c"] = c
            else:
                rej.append(("country", c.reason))
        if e is not None:
            if e.__class__ is bytes:
                d["e"] = e
            elif e.__class__ is tuple:
                d["e"] = e[0]
                if e[1] is not None:
                    d["eg"] = e[1]
                if e[2] is not None:
                    d["eu"] = e[2]
                if e[3] is not None:
                    d["et"] = e[3]
            else:
                rej.append(("email", e.reason))
        if p is not None:
            if p.__class__ is tuple:
                d["p"], d["pd"] = p
            else:
                rej.append(("phone", p.reason))
        if fi is not None:
            if fi.__class__ is str:
                d["fi"] = fi
            else:
                rej.append(("first_initial", fi.reason))
        if fn is not None:
            if fn.__class__ is tuple:
                d["fn"] = fn[0]
                if "fi" not in d:
                    d["fi"] = fn[1]
                if fn[2] is not None:
                    d["fng"] = fn[2]
            else:
                rej.append(("first_name", fn.reason))
        if ln is not None:
            if ln.__class__ is tuple:
                d["ln"] = ln[0]
                if ln[1] is not None:
                    d["lng"] = ln[1]
            else:
                rej.append(("last_name", ln.reason))
        if z is not None:
            if z.__class__ is str:
                d["z"] = z
            elif z.__class__ is tuple:
                d["z"], d["zg"] = z
            else:
                rej.append(("postal_code", z.reason))
        if dob is not None:
            if dob.__class__ is str:
                d["dob"] = dob
            else:
                rej.append(("date_of_birth", dob.reason))
        if g is not None:
            if g.__class__ is str:
                d["g"] = g
            else:
                rej.append(("gender", g.reason))
        if ct is not None:
            if ct.__class__ is bytes:
                d["ct"] = ct
            else:
                rej.append(("city", ct.reason))
        if st is not None:
            if st.__class__ is str:
                d["st"] = st
            else:
                rej.append(("state", st.reason))
        if x is not None:
            if x.__class__ is str:
                d["x"] = x
            else:
                rej.append(("external_id", x.reason))
        if m is not None:
            if m.__class__ is str:
                d["m"] = m
            else:
                rej.append(("maid", m.reason))
        append(new(PreparedRecord, (d, rej)))
    return out
