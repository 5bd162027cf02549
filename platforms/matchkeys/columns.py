"""The batch path's per-key work: one column of cells at a time, to the entries ``records._prepare_columns``
assembles into stored records. Repeating keys go through bounded column caches; the others through one tight
loop each (hot code: names used per cell are bound locally)."""

from __future__ import annotations

import unicodedata
from hashlib import sha256

from .addresses import _google_postal, _norm_country, _norm_postal, _norm_state
from .dates import _norm_dob
from .emails import _EMAIL_RE, _google_email, _tiktok_email, _uid2_email
from .gender import _norm_gender
from .hashing import _d
from .ids import _UUID, _ZERO_MAID, _norm_external_id, _norm_maid
from .names import _GOOGLE_FAMILY, _GOOGLE_GIVEN, _google_name, _norm_name
from .phones import _norm_phone, _phone_fast_bytes
from .reject import _Reject

# Per-key entries for the batch path: raw cell -> None (empty cell), the stored value(s), or a _Rejected.
# Keys whose values repeat across a list (names, cities, dates, ZIPs, ...) are cached, rejections included.


class _Rejected:
    __slots__ = ("reason",)

    def __init__(self, reason: str):
        self.reason = reason


# Keys whose values rarely repeat (email, phone, ids) get no cache; each has a column function: one Python
# loop over the column, the per-cell work inline (a call per cell from map() costs more than the work itself
# for ids). Entries: None (empty cell), the stored value(s), or a _Rejected.


def _email_column(cells) -> list:
    """Entries: the digest, or (digest, Google digest, UID2 digest, TikTok digest) where a platform's form of the
    address differs (see _email_variants)."""
    out = []
    append = out.append
    fullmatch = _EMAIL_RE.fullmatch
    for value in cells:
        if not value:
            append(None)
            continue
        if value.__class__ is not str:
            value = str(value)
        email = value.strip()
        if not email.isascii():
            email = unicodedata.normalize("NFC", email)
        email = email.lower()
        if fullmatch(email) is None:
            # ":" never matches, so a "mailto:" prefix is only looked for here.
            if email.startswith("mailto:"):
                email = email[7:]
            if fullmatch(email) is None:
                append(_Rejected("not an email address" if email else "empty"))
                continue
        e = sha256(email.encode()).digest()
        if "@g" not in email and "+" not in email:
            append(e)
            continue
        variants = _email_variants(email)
        append(e if variants is None else (e, *variants))
    return out


def _email_variants(email: str) -> tuple[bytes | None, bytes | None, bytes | None] | None:
    """Digests of the platforms' own forms of a normalized address, each None where it adds nothing:
    ``eg`` Google's form when it differs from the address; ``eu`` UID2's form when it differs from Google's
    (The Trade Desk reads eu, else eg, else e); ``et`` TikTok's form when it differs from the address.
    None when no platform's form differs."""
    google, uid2, tiktok = _google_email(email), _uid2_email(email), _tiktok_email(email)
    if google == email and uid2 == email and tiktok == email:
        return None
    return (None if google == email else _d(google), None if uid2 == google else _d(uid2),
            None if tiktok == email else _d(tiktok))


def _phone_column(cells, regions) -> list:
    """Entries: (digest of "+E164", digest of the E.164 digits)."""
    out = []
    append = out.append
    fast = _phone_fast_bytes
    for value, region in zip(cells, regions):  # noqa: B905 - regions may be an endless repeat
        if not value:
            append(None)
            continue
        if value.__class__ is not str:
            value = str(value)
        e164 = fast(value, region) if len(value) <= 40 else None
        if e164 is None:
            try:
                e164 = _norm_phone(value, region).encode()
            except _Reject as reject:
                append(_Rejected(reject.reason))
                continue
        append((sha256(e164).digest(), sha256(e164[1:]).digest()))
    return out


def _external_id_column(cells) -> list:
    out = []
    append = out.append
    for value in cells:
        if not value:
            append(None)
            continue
        if value.__class__ is not str:
            value = str(value)
        value = value.strip()
        if value and len(value) <= 256 and value.isascii():
            append(value)
            continue
        try:
            append(_norm_external_id(value))
        except _Reject as reject:
            append(_Rejected(reject.reason))
    return out


def _maid_column(cells) -> list:
    out = []
    append = out.append
    uuid = _UUID.fullmatch
    for value in cells:
        if not value:
            append(None)
            continue
        if value.__class__ is not str:
            value = str(value)
        value = value.strip().lower()
        if uuid(value) is not None and value != _ZERO_MAID:
            append(value)
            continue
        try:
            append(_norm_maid(value))
        except _Reject as reject:
            append(_Rejected(reject.reason))
    return out


_MISS = object()


def _as_text(value):
    """A cell as the normalizers read it: str, or None for an empty one (falsy cells are skipped)."""
    if value.__class__ is str or value is None:
        return value
    return str(value) if value else None


class _ColumnCache:
    """A bounded value cache for a column of cells: raw cell -> batch entry (None for an empty cell, the
    stored value(s), or a _Rejected), for keys whose values repeat across a list (names, cities, dates,
    ZIPs, countries, ...).

    Used a whole column at a time: the column's distinct values are looked up once, the misses computed, and
    the cells mapped through a plain dict in C. An lru_cache hit per cell costs 3-4x a dict lookup on large
    caches (it relinks its list on every hit, touching cold memory). Bounded with two generations: when the
    young one reaches ``maxsize // 2`` entries it becomes the old one (whose hits are promoted back); so at
    most ``maxsize`` entries are held, and values in use survive a rotation.
    """

    __slots__ = ("compute", "half", "young", "old")

    def __init__(self, compute, maxsize: int):
        self.compute = compute
        self.half = maxsize // 2
        self.young: dict = {}
        self.old: dict = {}

    def column(self, cells) -> list:
        young = self.young
        try:
            missing = set(cells).difference(young)
        except TypeError:  # an unhashable cell (prepare_records of odd objects)
            missing = {0}
        if missing:
            if any(v.__class__ is not str and v is not None for v in missing):
                # Only str (and None) are keys: 1, 1.0 and True are equal dict keys but read differently.
                cells = list(map(_as_text, cells))
                missing = set(cells).difference(young)
            old = self.old
            compute = self.compute
            for value in missing:
                entry = old.get(value, _MISS)
                young[value] = compute(value) if entry is _MISS else entry
        out = list(map(young.__getitem__, cells))
        if len(young) > self.half:
            self.old, self.young = young, {}
        return out

    def one(self, value):
        if value.__class__ is not str and value is not None:
            value = _as_text(value)
        entry = self.young.get(value, _MISS)
        if entry is _MISS:
            entry = self.old.get(value, _MISS)
            if entry is _MISS:
                entry = self.compute(value)
            self.young[value] = entry
            if len(self.young) > self.half:
                self.old, self.young = self.young, {}
        return entry

    def cache_clear(self):
        self.young, self.old = {}, {}


def _cached_column(normalize_and_hash, maxsize: int) -> _ColumnCache:
    def compute(value):
        if not value:
            return None
        try:
            return normalize_and_hash(value)
        except _Reject as reject:
            return _Rejected(reject.reason)

    return _ColumnCache(compute, maxsize)


class _RegionalColumn:
    """A _ColumnCache per region, for keys whose normalizer depends on the region."""

    def __init__(self, normalize_and_hash, maxsize: int):
        self.normalize_and_hash = normalize_and_hash
        self.maxsize = maxsize
        self.per_region: dict = {}

    def for_region(self, region) -> _ColumnCache:
        cache = self.per_region.get(region)
        if cache is None:
            normalize_and_hash = self.normalize_and_hash

            def compute(value):
                if not value:
                    return None
                try:
                    return normalize_and_hash(value, region)
                except _Reject as reject:
                    return _Rejected(reject.reason)

            cache = self.per_region[region] = _ColumnCache(compute, self.maxsize)
        return cache

    def cache_clear(self):
        self.per_region.clear()


# The batch path calls the normalizers unwrapped: the column caches hold their results already.
_norm_name_u = _norm_name.__wrapped__
_norm_state_u = _norm_state.__wrapped__
_norm_postal_u = _norm_postal.__wrapped__
_norm_dob_u = _norm_dob.__wrapped__
_norm_country_u = _norm_country.__wrapped__
_norm_gender_u = _norm_gender.__wrapped__


def _google_name_digest(value: str, part: str, letters: str) -> bytes | None:
    """The digest of Google's name form (Data Manager) when it differs from the letters-only form (else None: fn
    / ln serve)."""
    try:
        google = _google_name(value, part)
    except _Reject:
        return None
    return None if google == letters else _d(google)


def _first_name_stored(value: str) -> tuple[bytes, str, bytes | None]:
    """(Meta-form digest, first initial code, Google-form digest when it differs from the Meta form)."""
    first = _norm_name_u(value)
    return _d(first), first[0], _google_name_digest(value, _GOOGLE_GIVEN, first)


def _last_name_stored(value: str) -> tuple[bytes, bytes | None]:
    last = _norm_name_u(value)
    return _d(last), _google_name_digest(value, _GOOGLE_FAMILY, last)


def _postal_stored(value: str, region: str | None) -> str | tuple[str, str]:
    """The stored postal code, with Google's ZIP+4 form when the input carried the extension."""
    stored = _norm_postal_u(value, region)
    google = _google_postal(value, region) if region == "US" and len(value) > 5 else None
    return stored if google is None else (stored, google)


def _city_stored(value: str) -> bytes:
    return _d(_norm_name_u(value))


def _initial_stored(value: str) -> str:
    return _norm_name_u(value)[0]


def _state_stored(value: str, region: str | None) -> str:
    return _norm_state_u(value, region)


def _dob_stored(value: str, region: str | None) -> str:
    return _norm_dob_u(value, region)


def _gender_stored(value: str) -> str:
    return _norm_gender_u(value)


_country_col = _cached_column(_norm_country_u, 1 << 12)
_initial_col = _cached_column(_initial_stored, 1 << 12)
_first_name_col = _cached_column(_first_name_stored, 1 << 16)
_last_name_col = _cached_column(_last_name_stored, 1 << 17)
_city_col = _cached_column(_city_stored, 1 << 15)
_gender_col = _cached_column(_gender_stored, 1 << 10)
_postal_col = _RegionalColumn(_postal_stored, 1 << 18)
_dob_col = _RegionalColumn(_dob_stored, 1 << 18)
_state_col = _RegionalColumn(_state_stored, 1 << 14)
