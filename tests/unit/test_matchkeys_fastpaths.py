"""The batch fast paths of platforms.matchkeys equal a plain reference built from the one-value normalizers.

``prepare_records`` / ``prepare_rows`` work column by column with bounded value caches and per-region
columns; ``platform_values`` builds a full member in one dict display and falls back to a key-by-key
function. Each is checked here against a straightforward reimplementation of the documented rules (stored
key order and rejection order included), on batches with repeated values, mixed countries, non-string cells
and short rows, and with caches small enough to rotate many times.
"""

import gc
from hashlib import sha256

import phonenumbers
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from platforms import matchkeys as mk
from platforms.matchkeys import KEYS, PLATFORM_CODES, PLATFORM_KEYS, STORED_KEYS, platform_values

from .test_matchkeys_properties import REALISTIC

REGIONS = ["US", "GB", "CA", "FR", "DE", "IN", None]
many = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def h(value):
    return sha256(value.encode()).digest()


def reference_record(row, default_region):
    """PreparedRecord.stored (in insertion order) and rejections for one row, one key at a time."""
    region = default_region.upper() if default_region else None
    stored, rejections = {}, []

    def norm(key, platform=None, reg=None):
        raw = row.get(key)
        if not raw:  # empty cells are skipped silently
            return None
        value, reason = mk._normalize(key, raw, platform, reg)
        if value is None:
            rejections.append((key, reason))
        return value

    country = norm("country", "google_ads")
    if country is not None:
        stored["c"] = country
    reg = country or region
    email = norm("email")
    if email is not None:
        stored["e"] = h(email)
        google, uid2, tiktok = mk._google_email(email), mk._uid2_email(email), mk._tiktok_email(email)
        if google != email:
            stored["eg"] = h(google)
        if uid2 != google:
            stored["eu"] = h(uid2)
        if tiktok != email:
            stored["et"] = h(tiktok)
    phone = norm("phone", reg=reg)
    if phone is not None:
        stored["p"], stored["pd"] = h(phone), h(phone[1:])
    initial = norm("first_initial")
    if initial is not None:
        stored["fi"] = initial
    first = norm("first_name")
    if first is not None:
        stored["fn"] = h(first)
        stored.setdefault("fi", first[0])
        google = mk._normalize("first_name", row["first_name"], "google_dm", None)[0]
        if google != first:  # Google's Formatter form, stored only where it differs
            stored["fng"] = h(google)
    last = norm("last_name")
    if last is not None:
        stored["ln"] = h(last)
        google = mk._normalize("last_name", row["last_name"], "google_dm", None)[0]
        if google != last:
            stored["lng"] = h(google)
    for key, short, hashed, regional in (
        ("postal_code", "z", False, True),
        ("date_of_birth", "dob", False, True),
        ("gender", "g", False, False),
        ("city", "ct", True, False),
        ("state", "st", False, True),
        ("external_id", "x", False, False),
        ("maid", "m", False, False),
    ):
        value = norm(key, reg=reg if regional else None)
        if value is None:
            continue
        stored[short] = h(value) if hashed else value
        if key == "postal_code":  # Google's (Data Manager) ZIP+4 where it differs
            google = mk._normalize(key, row[key], "google_dm", reg)[0]
            if google != value:
                stored["zg"] = google
    return list(stored.items()), rejections


def as_reference(records):
    return [(list(r.stored.items()), r.rejections) for r in records]


# Small pools make values repeat inside a batch and across batches (cache hits, and misses after rotation).
POOLS = {key: st.lists(strategy, min_size=1, max_size=4) for key, strategy in REALISTIC.items()}
ODD = st.one_of(st.text(max_size=12), st.integers(-3, 10**12), st.just(""), st.none(), st.just("  "))


@st.composite
def batches(draw, max_rows=25):
    pools = {key: draw(pool) for key, pool in POOLS.items()}
    keys = draw(st.lists(st.sampled_from(KEYS), unique=True, min_size=1))
    rows = []
    for _ in range(draw(st.integers(0, max_rows))):
        row = {}
        for key in keys:
            kind = draw(st.integers(0, 9))
            if kind < 7:
                row[key] = draw(st.sampled_from(pools[key]))
            elif kind < 9:
                row[key] = draw(ODD)
        rows.append(row)
    return rows


@many
@given(rows=batches(), region=st.sampled_from(REGIONS))
def test_prepare_records_equals_the_one_key_at_a_time_reference(rows, region):
    expected = [reference_record(row, region) for row in rows]
    assert as_reference(mk.prepare_records(rows, default_region=region)) == expected


@many
@given(rows=batches(), region=st.sampled_from(REGIONS), data=st.data())
def test_prepare_rows_equals_the_reference_with_short_rows(rows, region, data):
    keys = [*KEYS, None]
    cells = []
    for row in rows:
        line = [row.get(k) for k in KEYS] + ["ignored column"]
        cells.append(line[: data.draw(st.integers(0, len(line)))])  # short rows: missing trailing cells
    expected = [
        reference_record({k: v for k, v in zip(KEYS, line, strict=False) if v is not None}, region) for line in cells
    ]
    assert as_reference(mk.prepare_rows(cells, keys, default_region=region)) == expected


@pytest.fixture
def tiny_caches(monkeypatch):
    """Column caches of two entries per generation: every batch rotates them many times."""
    caches = [mk._country_col, mk._initial_col, mk._first_name_col, mk._last_name_col, mk._city_col, mk._gender_col]
    for cache in caches:
        monkeypatch.setattr(cache, "half", 2)
        cache.cache_clear()
    for regional in (mk._postal_col, mk._dob_col, mk._state_col):
        monkeypatch.setattr(regional, "maxsize", 4)
        regional.cache_clear()
    yield
    for cache in (*caches, mk._postal_col, mk._dob_col, mk._state_col):
        cache.cache_clear()  # drop entries made under the tiny bound


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(rows=batches(max_rows=40), region=st.sampled_from(REGIONS))
def test_rotating_caches_give_the_same_records(tiny_caches, rows, region):
    expected = [reference_record(row, region) for row in rows]
    assert as_reference(mk.prepare_records(rows, default_region=region)) == expected
    assert as_reference(mk.prepare_records(rows, default_region=region)) == expected  # now from cache


def test_column_cache_is_bounded_and_keeps_values_in_use():
    calls = []
    cache = mk._ColumnCache(lambda v: calls.append(v) or v.upper(), maxsize=100)
    for start in range(0, 10_000, 37):
        values = [f"v{i}" for i in range(start, start + 37)] + ["hot"] * 5
        assert cache.column(values) == [v.upper() for v in values]
        assert len(cache.young) + len(cache.old) <= 100 + 38
    assert calls.count("hot") <= 2  # survives rotations while in use
    assert cache.one("hot") == "HOT" and cache.one(7) == "7"


def test_column_cache_keys_numbers_as_their_text():
    # 1, 1.0 and True are the same dict key; as cells they are "1", "1.0" and "True".
    records = mk.prepare_records(
        [{"external_id": 1}, {"external_id": 1.0}, {"external_id": True}, {"postal_code": 94107}],
        default_region="US",
    )
    assert [r.stored for r in records] == [{"x": "1"}, {"x": "1.0"}, {"x": "True"}, {"z": "94107"}]


def test_rows_of_another_country_use_their_own_region_in_a_mostly_default_batch():
    rows = [{"country": "US", "postal_code": "94107-1234", "date_of_birth": "03/04/1985", "state": "california"}] * 3
    rows.insert(1, {"country": "GB", "postal_code": "sw1a  1aa", "date_of_birth": "03/04/1985", "state": "Wales"})
    out = mk.prepare_records(rows, default_region="US")
    assert [r.stored["z"] for r in out] == ["94107", "SW1A 1AA", "94107", "94107"]
    assert [mk.normalize("dob_month", "03/04/1985", default_region=r.stored["c"]) for r in out] == [
        "03", "04", "03", "03"
    ]  # fmt: skip
    assert [r.stored["dob"][4:6] for r in out] == ["03", "04", "03", "03"]
    assert out[1].stored["st"] == "wales" and out[0].stored["st"] == "ca"


# --- platform_values: one dict display, or key by key ----------------------------------------------------

TEXT = st.one_of(st.sampled_from(["94107", "SW1A 1AA", "us", "GB", "x-1"]), st.text(min_size=1, max_size=10))
DATES = st.dates().map(lambda d: d.strftime("%Y%m%d"))


@st.composite
def stored_members(draw):
    # Digest keys hold SHA-256 digests; code and raw keys hold text (a date for "dob").
    keys = draw(st.lists(st.sampled_from(STORED_KEYS), unique=True))
    return {k: h(draw(st.text(max_size=8))) if k in mk.DIGEST_KEYS else draw(DATES if k == "dob" else TEXT)
            for k in keys}


@many
@given(stored=stored_members(), code=st.sampled_from(PLATFORM_CODES))
def test_platform_values_fast_path_equals_key_by_key(stored, code):
    fast = platform_values(code, stored)
    slow = mk.values_function(code).slow(stored)
    assert list(fast.items()) == list(slow.items())
    assert list(fast) == [k for k in PLATFORM_KEYS[code] if k in fast]


@pytest.mark.parametrize("code", PLATFORM_CODES)
def test_platform_values_of_a_full_member_takes_the_fast_path(code):
    stored = ({k: h(k) for k in mk.DIGEST_KEYS} | {"fi": "j", "st": "ca", "dob": "19850312", "g": "f"}
              | {"z": "94107", "c": "US", "x": "CRM-1", "m": "a" * 36})
    slow = mk.values_function(code).slow
    assert platform_values(code, stored) == slow(stored)
    assert len(platform_values(code, stored)) == len(PLATFORM_KEYS[code])


# --- the GC pause ---------------------------------------------------------------------------------------


def test_gc_pause_covers_the_transposition_and_restores_the_collector():
    seen = []

    class Row(list):
        def __iter__(self):  # runs during prepare_rows' transposition
            seen.append(gc.isenabled())
            return super().__iter__()

    assert gc.isenabled()
    mk.prepare_rows([Row(["a@b.com"]), Row(["c@d.com"])], ["email"], default_region="US")
    assert seen and not any(seen)
    assert gc.isenabled()
    with pytest.raises(TypeError):
        mk.prepare_rows([["a@b.com"], 5], ["email"], default_region="US")
    assert gc.isenabled()
    gc.disable()
    try:
        mk.prepare_records([{"email": "a@b.com"}], default_region="US")
        assert not gc.isenabled()  # left as found
    finally:
        gc.enable()


def test_falsy_and_unhashable_cells_read_as_before():
    # Falsy cells are empty (as they always were); unhashable ones read as their text (they used to raise).
    rows = [{"first_name": 0, "city": False, "gender": 0.0, "last_name": ["Do", "e"], "state": ["CA"]}]
    (record,) = mk.prepare_records(rows, default_region="US")
    assert (list(record.stored.items()), record.rejections) == reference_record(rows[0], "US")
    assert list(record.stored.items()) == [("ln", h("doe")), ("st", "ca")]


@pytest.mark.parametrize("with_initial", [False, True])
def test_full_rows_with_gmail_variants_take_the_display_path_and_match_the_reference(with_initial):
    base = {"country": "US", "phone": "(650) 253-0000", "first_name": "Ann", "last_name": "Lee", "city": "Reno",
            "state": "NV", "postal_code": "89501", "date_of_birth": "1980-02-03", "gender": "f",
            "external_id": "CRM-1", "maid": "6D92078A-8246-4BA4-AE5B-76104861E7DC"}  # fmt: skip
    if with_initial:
        base["first_initial"] = "B"
    emails = ["a.b@gmail.com", "a.b+x@gmail.com", "ab+x@gmail.com", "a.b@googlemail.com", "ab@gmail.com",
              "x@example.com", "nope", ""]  # fmt: skip
    rows = [{**base, "email": email} for email in emails]
    records = mk.prepare_records(rows, default_region="US")
    assert as_reference(records) == [reference_record(row, "US") for row in rows]
    # Google's form drops dots and the "+" suffix on gmail.com and googlemail.com; UID2's on gmail.com only (so it
    # is stored only where it differs from Google's); TikTok's drops the "+" suffix on any domain.
    assert [("eg" in r.stored, "eu" in r.stored, "et" in r.stored) for r in records[:6]] == [
        (True, False, False), (True, False, True), (True, False, True), (True, True, False), (False, False, False),
        (False, False, False)
    ]  # fmt: skip


# --- phone column: the batch loop agrees with the one-value normalizer ---------------------------------

PHONE_REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)


def phone_entry(text, region):
    value, reason = mk._normalize("phone", text, None, region)
    return (h(value), h(value[1:])) if value is not None else reason


@settings(max_examples=3000, deadline=None)
@given(
    texts=st.lists(st.from_regex(r"\+?[0-9 ()./-]{2,20}", fullmatch=True), min_size=1, max_size=5),
    region=st.sampled_from([*PHONE_REGIONS, None]),
)
@example(texts=["(212) 555-0123", "212-555-0123", "1 212 555 0123", "011 44 20 7946 0958"], region="US")
@example(texts=["07911 123456", "020 7946 0958", "0044 20 7946 0958", "447911123456"], region="GB")
@example(texts=["3912345678", "0612345678"], region="IT")
def test_phone_column_equals_the_one_value_normalizer(texts, region):
    entries = mk._phone_column(texts, [region] * len(texts))
    assert [e if e.__class__ is tuple else e.reason for e in entries] == [phone_entry(t, region) for t in texts]


@settings(max_examples=1000, deadline=None)
@given(raw=st.from_regex(r"[0-9][0-9 a-]{8,10}[0-9]", fullmatch=True))
@example(raw="9410--1234")
@example(raw="94107-1234")
def test_us_zip_plus_four_shortcut_equals_the_zip_pattern(raw):
    value = mk._SPACES.sub(" ", raw.strip()).upper()
    m = mk._US_ZIP.fullmatch(value)
    expected = (m.group(1).zfill(5), "") if m else (None, "not a US ZIP code")
    assert mk._normalize("postal_code", raw, None, "US") == expected


def test_clear_value_caches_empties_value_caches_but_keeps_the_compiled_tables():
    from platforms import matchkeys

    matchkeys.prepare_rows([["ANN@example.com", "+1 212 555 0100", "Ann", "US"]],
                           ["email", "phone", "first_name", "country"], default_region="US")
    plan_before = matchkeys._plan("US")
    # Every part of the package, not only the names it re-exports.
    caches = {(module.__name__, name): obj for module in matchkeys._MODULES for name, obj in vars(module).items()
              if hasattr(obj, "cache_info") and name not in matchkeys._BUILT_ONCE}
    sizes = {key: cache.cache_info().currsize for key, cache in caches.items()}
    assert any(sizes.values())
    matchkeys.clear_value_caches()
    after = {key: cache.cache_info().currsize for key, cache in caches.items()}
    assert not any(after.values())
    assert matchkeys._plan("US") is plan_before


def test_clear_value_caches_walks_every_part_of_the_package():
    import pkgutil

    from platforms import matchkeys

    parts = {info.name for info in pkgutil.iter_modules(matchkeys.__path__)}
    assert parts == {module.__name__.rsplit(".", 1)[1] for module in matchkeys._MODULES}
