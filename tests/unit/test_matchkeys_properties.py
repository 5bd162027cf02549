"""Property tests for platforms.matchkeys: never raises, idempotent on normalized input, and the phone
fast path always agrees with phonenumbers itself."""

import datetime

import phonenumbers
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from platforms import matchkeys as mk
from platforms.matchkeys import (
    DIGEST_KEYS,
    KEYS,
    PLATFORM_CODES,
    explain,
    normalize,
    platform_values,
    prepare,
    prepare_record,
)

REGIONS = ["US", "GB", "FR", "DE", "CA", "IN", "BR", "AU", "JP", "IT", "MX", "NL", "ZA", "CN", "RU", None]
ALL_KEYS = (*KEYS, "dob_year", "dob_month", "dob_day")
fast = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def reference_e164(raw, region):
    """phonenumbers' own answer: parse with the region, valid numbers only, E.164."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# --- never raises --------------------------------------------------------------------------------------


@fast
@given(
    platform=st.sampled_from(PLATFORM_CODES),
    key=st.sampled_from(ALL_KEYS),
    raw=st.text(),
    region=st.sampled_from(REGIONS),
)
def test_explain_never_raises_on_arbitrary_text(platform, key, raw, region):
    result = explain(platform, key, raw, default_region=region)
    assert (result.value is None) == bool(result.reason)
    assert result.value is None or isinstance(result.value, str)


@fast
@given(row=st.dictionaries(st.sampled_from(KEYS), st.text()), region=st.sampled_from(REGIONS))
def test_prepare_record_never_raises_and_values_are_strings(row, region):
    record = prepare_record(row, default_region=region)
    # Digest keys hold 32-byte SHA-256 digests; the others non-empty text.
    assert all((len(v) == 32) if k in DIGEST_KEYS else (isinstance(v, str) and v) for k, v in record.stored.items())
    assert {k for k, _ in record.rejections} <= set(row)
    for code in PLATFORM_CODES:
        assert all(isinstance(v, str) for v in platform_values(code, record.stored).values())


@fast
@given(key=st.sampled_from(ALL_KEYS), raw=st.text(), region=st.sampled_from(REGIONS))
def test_prepare_equals_platform_values_for_any_text(key, raw, region):
    source = "date_of_birth" if key.startswith("dob_") else key
    stored = prepare_record({source: raw}, default_region=region).stored
    for code in PLATFORM_CODES:
        if key == "date_of_birth":
            continue
        assert prepare(code, key, raw, default_region=region) == platform_values(code, stored).get(key)


# --- idempotent on normalized input --------------------------------------------------------------------

REALISTIC = {
    "email": st.emails().map(lambda e: f"  {e.upper()} "),
    "phone": st.from_regex(r"\+?1? ?\(?[2-9]\d\d\)?[ .-]?[2-9]\d\d[ .-]?\d{4}", fullmatch=True),
    "first_name": st.text(alphabet=st.characters(categories=("L", "M", "Zs", "Pd", "Po")), max_size=20),
    "last_name": st.text(alphabet=st.characters(categories=("L", "M", "Zs", "Pd", "Po")), max_size=20),
    "first_initial": st.text(alphabet=st.characters(categories=("L",)), min_size=1, max_size=5),
    "city": st.sampled_from(["San Francisco", "São Paulo", "Köln", "St. Louis", "Zürich", "東京"]),
    "state": st.sampled_from(["CA", "california", "New York", "ON", "Bayern", "Île-de-France"]),
    "postal_code": st.from_regex(
        r"\d{5}(-\d{4})?|[A-Z]\d[A-Z] ?\d[A-Z]\d|[a-z]{1,2}\d{1,2} ?\d[a-z]{2}", fullmatch=True
    ),
    "country": st.sampled_from(["us", "USA", "United Kingdom", "deu", "FR", "Japan", "Brasil"]),
    "date_of_birth": st.dates(min_value=datetime.date(1901, 1, 1), max_value=datetime.date(2020, 12, 31)).flatmap(
        lambda d: st.sampled_from(
            [
                d.isoformat(),
                d.strftime("%Y%m%d"),
                d.strftime("%d/%m/%Y"),
                d.strftime("%B %d, %Y"),
                d.strftime("%d %b %Y"),
            ]
        )
    ),
    "gender": st.sampled_from(["M", "male", "F", "Female", "w", "Frau"]),
    "external_id": st.text(min_size=1, max_size=30),
    "maid": st.uuids().map(lambda u: str(u).upper()),
}

# Normalized forms that are themselves inputs of the same normalizer. Meta's phone digits (no "+") and the
# date parts are outputs only: "16502530000" is not a number one can re-read without its "+".
IDEMPOTENT = [(key, None) for key in KEYS] + [
    ("email", "google_ads"),
    ("email", "ttd"),
    ("postal_code", "meta"),
    ("country", "google_ads"),
    ("country", "meta"),
]


@fast
@pytest.mark.parametrize(("key", "platform"), IDEMPOTENT)
@given(data=st.data(), region=st.sampled_from(["US", "GB", "CA", "DE", "FR"]))
def test_normalize_is_idempotent(key, platform, data, region):
    raw = data.draw(st.one_of(REALISTIC[key], st.text()))
    once = normalize(key, raw, platform=platform, default_region=region)
    if once is not None:
        assert normalize(key, once, platform=platform, default_region=region) == once


# --- phone fast path == phonenumbers --------------------------------------------------------------------


def example_numbers():
    types = [phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE]
    formats = [
        phonenumbers.PhoneNumberFormat.NATIONAL,
        phonenumbers.PhoneNumberFormat.INTERNATIONAL,
        phonenumbers.PhoneNumberFormat.E164,
    ]
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in types:
            number = phonenumbers.example_number_for_type(region, kind)
            if number is None:
                continue
            for fmt in formats:
                yield region, phonenumbers.format_number(number, fmt)


def test_phone_matches_phonenumbers_for_every_regions_example_numbers():
    mismatches = []
    for region, text in example_numbers():
        for default in (region, "US", "GB"):
            ours = normalize("phone", text, default_region=default)
            if ours != reference_e164(text, default):
                mismatches.append((region, default, text, ours))
    assert mismatches == []


@settings(max_examples=3000, deadline=None)
@given(
    text=st.from_regex(r"\+?[0-9 ()./-]{2,20}", fullmatch=True),
    region=st.sampled_from(sorted(phonenumbers.SUPPORTED_REGIONS)),
)
@example(text="0165 025 30000", region="US")
@example(text="+0165 025 30000", region="US")
@example(text="011 44 20 7946 0958", region="US")
@example(text="16502530000", region="US")
@example(text="3912345678", region="IT")
def test_phone_fast_path_agrees_with_phonenumbers(text, region):
    fast_answer = mk._phone_fast(text, region)
    if fast_answer is not None:
        assert fast_answer == reference_e164(text, region)
    assert normalize("phone", text, default_region=region) == reference_e164(text, region)


@fast
@given(
    rows=st.lists(st.dictionaries(st.sampled_from(KEYS), st.one_of(st.text(), *REALISTIC.values())), max_size=8),
    region=st.sampled_from(REGIONS),
)
def test_batch_paths_equal_one_row_at_a_time(rows, region):
    single = [prepare_record(row, default_region=region) for row in rows]
    assert mk.prepare_records(rows, default_region=region) == single
    keys = list(KEYS)
    assert mk.prepare_rows([[row.get(k) for k in keys] for row in rows], keys, default_region=region) == single
