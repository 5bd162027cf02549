"""Differential tests: our Meta values against the facebook-business SDK's multi-key normalizer, over generated
inputs, for every key Meta takes (``MetaAdapter.match_keys``).

For every generated input both sides accept, ``prepare("meta", key, raw)`` must equal what
``CustomAudience.format_params`` puts in the payload for that schema key. Generation stays inside the inputs on
which the SDK normalizes correctly; where the SDK is documented wrong (accented letters, national phone numbers,
state names, spaced postal codes, country names, MADID hashed, EXTERN_ID lowercased -- see
tests/unit/test_matchkeys_sdk_crosscheck.py and docs/platforms.md) the relation we keep is pinned instead:
- MADID: Meta takes it unhashed; the SDK hashes it, so the SDK's value is the SHA-256 of ours;
- EXTERN_ID: we send it as is; the SDK lowercases it, so the two agree on lowercase ids.
"""

from __future__ import annotations

import datetime
import hashlib
import string

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from platforms.adapters import get_adapter_class
from platforms.matchkeys import prepare

customaudience = pytest.importorskip("facebook_business.adobjects.customaudience")
CustomAudience = customaudience.CustomAudience
Schema = CustomAudience.Schema.MultiKeySchema
many = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Our output key -> Meta's multi-key schema key.
SCHEMA = {
    "email": Schema.email, "phone": Schema.phone, "first_name": Schema.fn, "last_name": Schema.ln,
    "first_initial": Schema.fi, "city": Schema.ct, "state": Schema.st, "postal_code": Schema.zip,
    "country": Schema.country, "dob_year": Schema.doby, "dob_month": Schema.dobm, "dob_day": Schema.dobd,
    "gender": Schema.gen, "external_id": Schema.extern_id, "maid": Schema.madid,
}


def sdk(key: str, raw: str) -> str:
    params = CustomAudience.format_params([SCHEMA[key]], [[raw]], is_raw=True)
    return params["payload"]["data"][0][0]


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def test_every_key_meta_takes_has_a_differential_test_here():
    assert set(get_adapter_class("meta").match_keys) == set(SCHEMA) == set(TESTED)


PAD = st.sampled_from(["", " ", "  ", "\t"])
ATOM = st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=1, max_size=8)
EMAIL = st.builds(lambda a, local, tag, domain, b: f"{a}{local}{tag}@{domain}{b}", PAD,
                  st.lists(ATOM, min_size=1, max_size=3).map(".".join),
                  st.sampled_from(["", "+news", "+X1"]),
                  st.sampled_from(["example.com", "Example.ORG", "gmail.com", "mail.co.uk"]), PAD)
# Valid numbers written with their country code and no trunk prefix (the SDK keeps digits only).
PHONE = st.sampled_from([
    "+1 650 253 0000", "+1 (212) 555-0198", "+44 20 7946 0958", "+44 7911 123456", "+33 6 12 34 56 78",
    "+49 30 901820", "+39 06 6982 1234", "+81 3-1234-5678", "+61 2 9374 4000", "+34 912 34 56 78",
    "+1-415-555-2671", "+52 55 1234 5678",
])
ASCII_NAME = st.builds(lambda pad, parts, end: pad + " ".join(parts) + end, PAD,
                       st.lists(st.text(alphabet=string.ascii_letters, min_size=1, max_size=9), min_size=1,
                                max_size=2), PAD)
NAME_WITH_PUNCTUATION = st.builds(lambda a, b, sep: f"{a}{sep}{b}", st.text(string.ascii_letters, min_size=1,
                                  max_size=6), st.text(string.ascii_letters, min_size=1, max_size=6),
                                  st.sampled_from(["-", "'", ". ", " "]))
US_STATE = st.sampled_from(["CA", "ny", " TX ", "wa", "Fl", "IL"])
US_ZIP = st.builds(lambda z, ext: z + ext, st.text(string.digits, min_size=5, max_size=5).filter(
    lambda z: z != "00000"), st.sampled_from(["", "-1234"]))
COUNTRY = st.sampled_from(["US", "us", "GB", "fr", " DE ", "Jp", "ca"])
GENDER = st.sampled_from(["m", "f", "M", "F", "male", "Female", "MALE"])
DATE = st.dates(min_value=datetime.date(1920, 1, 1), max_value=datetime.date(2005, 12, 31))
EXTERN = st.text(alphabet=string.ascii_lowercase + string.digits + "-_", min_size=1, max_size=20)
MAID = st.uuids().map(str)


def agree(key: str, raw: str, *, region: str = "US", sdk_raw: str | None = None) -> None:
    ours = prepare("meta", key, raw, default_region=region)
    assume(ours is not None)
    assert ours == sdk(key, raw if sdk_raw is None else sdk_raw)


TESTED = set()


def covers(*keys):
    TESTED.update(keys)
    return lambda f: f


@covers("email")
@many
@given(raw=EMAIL)
@example(raw="  Alice.Smith@Example.COM ")
def test_email_equals_the_sdk(raw):
    agree("email", raw)


@covers("phone")
@many
@given(raw=PHONE)
def test_phone_equals_the_sdk_for_numbers_written_with_their_country_code(raw):
    agree("phone", raw)


@covers("first_name", "last_name", "city")
@many
@given(raw=st.one_of(ASCII_NAME, NAME_WITH_PUNCTUATION), key=st.sampled_from(["first_name", "last_name", "city"]))
@example(raw="MARY-ANN", key="first_name")
@example(raw="O'Brien", key="last_name")
def test_names_and_cities_in_ascii_letters_equal_the_sdk(raw, key):
    agree(key, raw)


@covers("first_initial")
@many
@given(raw=st.text(alphabet=string.ascii_letters, min_size=1, max_size=1))
def test_first_initial_equals_the_sdk(raw):
    agree("first_initial", raw)


@covers("state")
@many
@given(raw=US_STATE)
def test_us_state_codes_equal_the_sdk(raw):
    agree("state", raw)


@covers("postal_code")
@many
@given(raw=US_ZIP)
def test_us_zip_equals_the_sdk_given_the_first_five_digits(raw):
    # Meta: "US: first 5 digits"; the SDK only lowercases, so it is given what Meta's rule keeps.
    agree("postal_code", raw, sdk_raw=raw[:5])


@covers("country")
@many
@given(raw=COUNTRY)
def test_country_codes_equal_the_sdk(raw):
    agree("country", raw)


@covers("gender")
@many
@given(raw=GENDER)
def test_gender_equals_the_sdk(raw):
    agree("gender", raw)


@covers("dob_year", "dob_month", "dob_day")
@many
@given(date=DATE, written=st.sampled_from(["{y:04d}-{m:02d}-{d:02d}", "{m}/{d}/{y:04d}", "{y:04d}{m:02d}{d:02d}"]))
def test_birth_date_parts_equal_the_sdk(date, written):
    raw = written.format(y=date.year, m=date.month, d=date.day)
    agree("dob_year", raw, sdk_raw=str(date.year))
    agree("dob_month", raw, sdk_raw=str(date.month))
    agree("dob_day", raw, sdk_raw=str(date.day))


@covers("external_id")
@many
@given(raw=EXTERN)
def test_lowercase_external_ids_equal_the_sdk(raw):
    agree("external_id", raw)


@covers("maid")
@many
@given(raw=MAID, upper=st.booleans())
def test_the_sdks_madid_is_the_hash_of_the_unhashed_id_we_send(raw, upper):
    written = raw.upper() if upper else raw
    ours = prepare("meta", "maid", written)
    assert ours == raw.lower()
    assert sdk("maid", written) == sha(ours)
