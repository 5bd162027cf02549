"""Match keys: normalize raw customer data once, hash it, and hand every platform its exact values.

Flow: the importer calls ``prepare_rows(rows, keys, default_region=...)`` (or ``prepare_record`` /
``prepare_records`` for mappings) and stores ``PreparedRecord.stored`` as the member's record; at sync time an
adapter gets ``platform_values(code, stored)``. ``prepare(code, key, raw)`` is the one-value form of the same
thing (``prepare(c, k, raw) == platform_values(c, prepare_record({k: raw}).stored)[k]``), with ``explain``
giving the rejection reason.

Stored keys (``PreparedRecord.stored``; short names, one column each of ``audiences.models.MemberRecord``).
Digests are the SHA-256 (32 bytes) of the normalized string shown; codes are kept readable and hashed when sent
(a handful of possible values each: a hash would protect nothing); raw values are kept because some platform
takes them unhashed (Google: postal code and country; Meta: EXTERN_ID and MADID):

    e   email: trimmed, lowercased, NFC                                                          (digest)
    eg  Google's form: a gmail.com / googlemail.com local part without "+tag" and dots (only when != e)
    eu  UID2's form: a gmail.com local part without "+tag" and dots (The Trade Desk; only when != eg)
    et  TikTok's form: the local part without "+tag" (only when != e)
    p   phone E.164 with "+"          pd  phone E.164 digits without "+" (Meta, TikTok)
    fn  first name   ln  last name   (letters only)   fng  lng  Google's forms where they differ   ct  city
    fi  first initial   st  state / region code   dob  date of birth YYYYMMDD   g  gender "m" / "f"  (codes)
    z   postal code: US 5 digits; elsewhere uppercase, single spaces   zg  Google's US ZIP+4, when given (raw)
    c   country, ISO 3166-1 alpha-2 uppercase     x   external id, trimmed     m   mobile advertiser id, UUID

Date of birth and Meta: Meta's schema has no full-date key, so ``prepare("meta", "date_of_birth", raw)``
is None (reason says so); ask for ``"dob_year"`` / ``"dob_month"`` / ``"dob_day"`` with the raw date instead.

Documented choices where the platforms' docs leave room:
- Names and cities keep letters (accented ones too, NFC) and combining marks; spaces, digits and
  punctuation are removed ("Mary-Ann" -> "maryann", "São Paulo" -> "sãopaulo"), for every platform; the Data
  Manager also gets Google's own form of the names (``fng`` / ``lng``).
- Google: "+tags" and dots removed from gmail.com / googlemail.com local parts (Google's Formatter).
- The Trade Desk: base64 of the SHA-256 digest (UID2 hashed-email / hashed-phone format).
- Phones must be valid numbers (``phonenumbers.is_valid_number``); national numbers are read with the
  audience's default region; "+CC" numbers are accepted whatever the region.
- Ambiguous numeric dates (03/04/1985) follow the region's convention: month first for the US and its
  territories, day first elsewhere. Two-digit years pivot on the current year. Future dates and years
  before 1900 are rejected.
- US ZIP codes: first five digits of ZIP / ZIP+4; a four-digit ZIP gets its leading zero back (lost by
  spreadsheets).

Layout (callers import from ``platforms.matchkeys``; the parts are an implementation detail):

    keys             the match keys, the stored keys, CSV header aliases, coverage
    emails, phones, names, addresses, dates, gender, ids
                     the normalizers, one per kind of value: raw text -> normalized string, or ``_Reject(reason)``
    reject           ``_Reject``, the one exception a normalizer raises
    hashing          SHA-256 as hex or as the stored digest
    encodings        how a stored value is sent (HEX, RAW, SHA, ... and their functions)
    columns          the batch path's per-key work on one column of cells, and its caches
    records          prepare_record / prepare_records / prepare_rows / prepare_columns, transpose /
                     prepare_transposed, is_identifiable
    persons          person keys, person_id, fingerprint
    platform_tables  each platform's table (from its adapter) and the compiled platform_values
    one_value        normalize, prepare, explain
"""

from __future__ import annotations

from . import (
    addresses,
    columns,
    dates,
    emails,
    encodings,
    gender,
    hashing,
    ids,
    keys,
    names,
    one_value,
    persons,
    phones,
    platform_tables,
    records,
    reject,
)
from .encodings import B64, DOB_DAY, DOB_MONTH, DOB_YEAR, HEX, RAW, SHA, SHA_LOWER, SHA_ZIP
from .keys import (
    CODE_KEYS,
    DIGEST_KEYS,
    HEADER_ALIASES,
    KEY_LABELS,
    KEYS,
    OUTPUT_KEYS,
    RAW_KEYS,
    STORED_KEYS,
    coverage_keys,
    guess_key,
)
from .one_value import Explanation, explain, normalize, prepare
from .persons import PERSON_BYTES, PERSON_KEY_LABELS, PERSON_KEYS, fingerprint, person_id, person_order
from .platform_tables import accepted_keys, match_keys_of, platform_codes, platform_values, values_function
from .records import (
    PreparedRecord,
    is_identifiable,
    prepare_columns,
    prepare_record,
    prepare_records,
    prepare_rows,
    prepare_transposed,
    transpose,
)

# Internals that tests, the audience's coverage counts and the benchmark read here, where they were before the
# module became a package (the same objects).
_COVERAGE = keys._COVERAGE
_PLATFORM_VALUES = platform_tables._PLATFORM_VALUES
_b64_digest = encodings._b64_digest
_normalize = one_value._normalize
_google_email, _uid2_email, _tiktok_email = emails._google_email, emails._uid2_email, emails._tiktok_email
_NAME_PREFIX, _NAME_SUFFIX = names._NAME_PREFIX, names._NAME_SUFFIX
_SPACES, _US_ZIP, _country_tables = addresses._SPACES, addresses._US_ZIP, addresses._country_tables
_plan, _phone_fast = phones._plan, phones._phone_fast
_ColumnCache, _phone_column = columns._ColumnCache, columns._phone_column
_country_col, _initial_col, _gender_col = columns._country_col, columns._initial_col, columns._gender_col
_first_name_col, _last_name_col, _city_col = columns._first_name_col, columns._last_name_col, columns._city_col
_postal_col, _dob_col, _state_col = columns._postal_col, columns._dob_col, columns._state_col

__all__ = [
    "B64",
    "CODE_KEYS",
    "DIGEST_KEYS",
    "DOB_DAY",
    "DOB_MONTH",
    "DOB_YEAR",
    "HEADER_ALIASES",
    "HEX",
    "KEYS",
    "KEY_LABELS",
    "OUTPUT_KEYS",
    "PERSON_BYTES",
    "PERSON_KEYS",
    "PERSON_KEY_LABELS",
    "RAW",
    "RAW_KEYS",
    "SHA",
    "SHA_LOWER",
    "SHA_ZIP",
    "STORED_KEYS",
    "Explanation",
    "PreparedRecord",
    "accepted_keys",
    "clear_value_caches",
    "coverage_keys",
    "explain",
    "fingerprint",
    "guess_key",
    "is_identifiable",
    "match_keys_of",
    "normalize",
    "person_id",
    "person_order",
    "platform_codes",
    "platform_values",
    "prepare",
    "prepare_columns",
    "prepare_record",
    "prepare_records",
    "prepare_rows",
    "prepare_transposed",
    "values_function",
    "transpose",
]

# Every part that may hold a per-value cache (clear_value_caches walks them all).
_MODULES = (
    keys, hashing, emails, phones, names, addresses, dates, gender, ids, encodings, columns, records, persons,
    platform_tables, one_value, reject,
)  # fmt: skip

# Compiled tables, built once per process and small: never emptied.
_BUILT_ONCE = frozenset({"_plan", "_plan_for_cc", "_country_tables"})


def clear_value_caches() -> None:
    """Empty every per-value cache (lru_cache functions and column caches), not the compiled phone plans and
    country tables. The importer calls it when its memory budget is reached; benchmarks between passes."""
    for module in _MODULES:
        for name, obj in list(vars(module).items()):
            if name in _BUILT_ONCE or isinstance(obj, type):
                continue
            clear = getattr(obj, "cache_clear", None)
            if callable(clear):
                clear()


def __getattr__(name: str):
    # Views of the registry, for callers that want every platform at once (each adapter declares its own table).
    if name == "PLATFORM_CODES":
        return platform_codes()
    if name == "PLATFORM_KEYS":
        return {code: match_keys_of(code) for code in platform_codes()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
