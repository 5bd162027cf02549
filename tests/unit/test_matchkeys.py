"""platforms.matchkeys: one normalizer per key, per-platform differences, storage without raw PII."""

import base64
import hashlib
import json

import pytest

from platforms import matchkeys as mk
from platforms.matchkeys import (
    KEY_LABELS,
    KEYS,
    PLATFORM_CODES,
    accepted_keys,
    coverage_keys,
    explain,
    fingerprint,
    guess_key,
    normalize,
    platform_values,
    prepare,
    prepare_record,
    prepare_records,
)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def b64sha(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


# --- public surface ------------------------------------------------------------------------------------


def test_keys_and_labels_cover_the_contract():
    assert KEYS == (
        "email", "phone", "first_name", "last_name", "first_initial", "city", "state", "postal_code",
        "country", "date_of_birth", "gender", "external_id", "maid",
    )  # fmt: skip
    assert set(KEY_LABELS) == set(KEYS)
    assert KEY_LABELS["email"] == "Email"


@pytest.mark.parametrize(
    ("header", "key"),
    [
        ("Email", "email"),
        ("E-mail Address", "email"),
        ("Phone Number", "phone"),
        ("mobile", "phone"),
        ("First Name", "first_name"),
        ("fname", "first_name"),
        ("Surname", "last_name"),
        ("ZIP", "postal_code"),
        ("Post Code", "postal_code"),
        ("Country Code", "country"),
        ("DOB", "date_of_birth"),
        ("Birth Date", "date_of_birth"),
        ("Sex", "gender"),
        ("Customer ID", "external_id"),
        ("IDFA", "maid"),
        ("State/Province", "state"),
        ("favourite colour", None),
        ("", None),
    ],
)
def test_guess_key_maps_common_headers(header, key):
    assert guess_key(header) == key


def test_accepted_keys_per_platform():
    assert accepted_keys("meta") == (
        "email", "phone", "first_name", "last_name", "first_initial", "city", "state", "postal_code", "country",
        "dob_year", "dob_month", "dob_day", "gender", "external_id", "maid",
    )  # fmt: skip
    assert set(accepted_keys("google_ads")) == {"email", "phone", "first_name", "last_name", "country", "postal_code"}
    assert set(accepted_keys("linkedin")) == {"email", "maid"}
    assert set(accepted_keys("tiktok")) == {"email", "phone", "maid"}
    assert set(accepted_keys("ttd")) == {"email", "phone"}
    assert set(accepted_keys("netflix")) == {"email", "phone", "maid"}
    for code in PLATFORM_CODES:
        assert set(accepted_keys(code)) <= set(mk.OUTPUT_KEYS)
    with pytest.raises(ValueError):
        accepted_keys("myspace")


# --- email ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("  Alice.Smith@Example.COM ", "alice.smith@example.com"),
        ("\tBOB@example.co.uk\n", "bob@example.co.uk"),
        ("mailto:carol@example.org", "carol@example.org"),
        ("josé@exämple.de", "josé@exämple.de"),
        ("Jose\u0301@example.com", "jos\u00e9@example.com"),  # NFD -> NFC
        ("dan+news@example.com", "dan+news@example.com"),
    ],
)
def test_email_trimmed_lowercased_nfc_for_every_hashing_platform(raw, normalized):
    for code in ("meta", "linkedin", "netflix"):
        assert prepare(code, "email", raw) == sha(normalized)
    assert prepare("ttd", "email", raw) == b64sha(normalized)
    # TikTok's own rule: the local part loses "+" and what follows it (any domain).
    local, _, domain = normalized.rpartition("@")
    assert prepare("tiktok", "email", raw) == sha(f"{local.split('+')[0]}@{domain}")


@pytest.mark.parametrize(
    "raw", ["", "   ", "alice", "alice@", "@example.com", "alice@example", "a b@example.com", "a@@example.com",
            ".alice@example.com", "al..ice@example.com", "alice@example..com"]
)  # fmt: skip
def test_email_rejections_have_a_reason(raw):
    result = explain("meta", "email", raw)
    assert result.value is None
    assert result.reason in ("empty", "not an email address")


def test_google_drops_gmail_dots_and_the_plus_suffix():
    # Google's Formatter.format_email_address (google-ads-datamanager-util): gmail.com and googlemail.com lose the
    # "+" suffix and every "." of the local part (an earlier belief that "+tags" stay was wrong).
    assert prepare("google_ads", "email", "John.Doe@Gmail.com") == sha("johndoe@gmail.com")
    assert prepare("google_ads", "email", "j.o.h.n@googlemail.com") == sha("john@googlemail.com")
    assert prepare("google_ads", "email", "john.doe+ads@gmail.com") == sha("johndoe@gmail.com")
    assert prepare("google_ads", "email", "john.doe+ads@example.com") == sha("john.doe+ads@example.com")
    assert prepare("google_dm", "email", "Cloudy.SanFrancisco+shopping@googlemail.com") == sha(
        "cloudysanfrancisco@googlemail.com")
    assert prepare("google_dm", "email", "user.name+NYC@Example.com") == sha("user.name+nyc@example.com")
    # Other domains keep their dots, and Meta keeps gmail dots.
    assert prepare("google_ads", "email", "john.doe@example.com") == sha("john.doe@example.com")
    assert prepare("meta", "email", "John.Doe@Gmail.com") == sha("john.doe@gmail.com")


def test_ttd_email_is_base64_sha256_of_uid2_normalized_email():
    assert prepare("ttd", "email", "user@example.com") == b64sha("user@example.com")
    assert prepare("ttd", "email", "Jane.Doe+promo@gmail.com") == b64sha("janedoe@gmail.com")
    assert prepare("ttd", "email", "jane.doe+promo@example.com") == b64sha("jane.doe+promo@example.com")
    # Same digest as the hex sent elsewhere, only encoded differently.
    hexed = prepare("netflix", "email", "user@example.com")
    assert base64.b64decode(prepare("ttd", "email", "user@example.com")) == bytes.fromhex(hexed)


# --- phone ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("(650) 253-0000", "US", "+16502530000"),
        ("650.253.0000", "US", "+16502530000"),
        ("1-650-253-0000", "US", "+16502530000"),
        ("+1 650 253 0000", "US", "+16502530000"),
        ("+1 650 253 0000", "GB", "+16502530000"),  # "+CC" numbers ignore the region
        ("020 7946 0958", "GB", "+442079460958"),
        ("+44 (0)20 7946 0958", "US", "+442079460958"),
        ("07911 123456", "GB", "+447911123456"),
        ("0612345678", "FR", "+33612345678"),
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("+49 30 901820", "FR", "+4930901820"),
        ("0044 20 7946 0958", "FR", "+442079460958"),
        ("+39 06 6982 1234", "US", "+390669821234"),  # Italian leading zero kept
    ],
)
def test_phone_is_e164_with_plus_except_meta_and_tiktok_digits_only(raw, region, e164):
    assert normalize("phone", raw, default_region=region) == e164
    assert prepare("google_ads", "phone", raw, default_region=region) == sha(e164)
    assert prepare("tiktok", "phone", raw, default_region=region) == sha(e164[1:])  # TikTok: digits, no "+"
    assert prepare("netflix", "phone", raw, default_region=region) == sha(e164)
    assert prepare("ttd", "phone", raw, default_region=region) == b64sha(e164)
    assert prepare("meta", "phone", raw, default_region=region) == sha(e164[1:])
    assert normalize("phone", raw, platform="meta", default_region=region) == e164[1:]


@pytest.mark.parametrize(
    ("raw", "region", "reason"),
    [
        ("555-0100", "US", "not a valid phone number"),  # too short
        ("(123) 456-7890", "US", "not a valid phone number"),  # area code 123 does not exist
        ("+999 1234 5678", "US", "not a valid phone number"),
        ("call me", "US", "not a valid phone number"),
        ("6502530000", None, "no country code and no default region"),
        ("", "US", "empty"),
    ],
)
def test_phone_rejects_invalid_numbers(raw, region, reason):
    result = explain("google_ads", "phone", raw, default_region=region)
    assert result.value is None
    assert result.reason == reason


def test_linkedin_takes_no_phone():
    result = explain("linkedin", "phone", "+16502530000")
    assert result.value is None and "does not take phone" in result.reason


# --- names, initial, city, state -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("  John ", "john"),
        ("O'Brien", "obrien"),
        ("Mary-Ann", "maryann"),
        ("José", "josé"),
        ("Jose\u0301", "jos\u00e9"),
        ("ZOË", "zoë"),
        ("Dr. Smith Jr.", "drsmithjr"),
        ("Müller", "müller"),
        ("Nguyễn", "nguyễn"),
    ],
)
def test_names_lowercase_letters_only_accents_kept(raw, normalized):
    assert prepare("meta", "first_name", raw) == sha(normalized)
    assert prepare("meta", "last_name", raw) == sha(normalized)
    assert prepare("google_ads", "last_name", raw) == sha(normalized)


def test_name_without_letters_is_rejected():
    assert explain("meta", "first_name", "1234 --").reason == "no letters"


def test_first_initial_from_explicit_column_or_derived_from_first_name():
    assert prepare("meta", "first_initial", "J.") == sha("j")
    assert prepare("meta", "first_initial", "Émile") == sha("é")
    record = prepare_record({"first_name": "Jane"}, default_region="US")
    assert platform_values("meta", record.stored)["first_initial"] == sha("j")
    # An explicit initial column wins over the derived one.
    record = prepare_record({"first_name": "Jane", "first_initial": "K"}, default_region="US")
    assert platform_values("meta", record.stored)["first_initial"] == sha("k")


@pytest.mark.parametrize(("raw", "normalized"), [("San Francisco", "sanfrancisco"), ("São Paulo", "sãopaulo"),
                                                 ("St. Louis", "stlouis"), ("  NEW YORK  ", "newyork")])  # fmt: skip
def test_city_letters_only_no_spaces(raw, normalized):
    assert prepare("meta", "city", raw) == sha(normalized)


@pytest.mark.parametrize(
    ("raw", "region", "normalized"),
    [
        ("CA", "US", "ca"),
        ("California", "US", "ca"),
        (" new york ", "US", "ny"),
        ("District of Columbia", "US", "dc"),
        ("Ontario", "CA", "on"),
        ("QC", "CA", "qc"),
        ("Bayern", "DE", "bayern"),
        ("Île-de-France", "FR", "îledefrance"),
    ],
)
def test_state_two_letter_code_in_us_and_canada_letters_elsewhere(raw, region, normalized):
    assert prepare("meta", "state", raw, default_region=region) == sha(normalized)


def test_state_unknown_us_state_rejected():
    assert explain("meta", "state", "Narnia", default_region="US").reason == "not a US state"


def test_state_uses_the_rows_country_over_the_default_region():
    record = prepare_record({"state": "Bavaria", "country": "DE"}, default_region="US")
    assert platform_values("meta", record.stored)["state"] == sha("bavaria")
    assert record.rejections == []


# --- postal code, country ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "region", "google", "meta"),
    [
        ("94105", "US", "94105", "94105"),
        ("94105-1234", "US", "94105", "94105"),
        ("941051234", "US", "94105", "94105"),
        ("2134", "US", "02134", "02134"),  # spreadsheet lost the leading zero
        ("sw1a  1aa", "GB", "SW1A 1AA", "sw1a1aa"),
        ("K1A 0B1", "CA", "K1A 0B1", "k1a0b1"),
        ("75008", "FR", "75008", "75008"),
        ("1010-123", "PT", "1010-123", "1010123"),
    ],
)
def test_postal_code_google_unhashed_meta_hashed_without_spaces(raw, region, google, meta):
    assert prepare("google_ads", "postal_code", raw, default_region=region) == google
    assert prepare("meta", "postal_code", raw, default_region=region) == sha(meta)


@pytest.mark.parametrize(("raw", "region"), [("ABCDE", "US"), ("123", "US"), ("12345-12", "US"), ("#$%", "GB")])
def test_postal_code_rejections(raw, region):
    assert prepare("google_ads", "postal_code", raw, default_region=region) is None


@pytest.mark.parametrize(
    ("raw", "alpha2"),
    [("US", "US"), ("us", "US"), ("USA", "US"), ("United States", "US"), ("U.S.", "US"), ("gbr", "GB"),
     ("United Kingdom", "GB"), ("UK", "GB"), ("Deutschland", "DE"), ("Germany", "DE"), ("FRA", "FR"),
     ("Côte d'Ivoire", "CI"), ("South Korea", "KR"), ("Viet Nam", "VN")],
)  # fmt: skip
def test_country_alpha2_uppercase_for_google_hashed_lowercase_for_meta(raw, alpha2):
    assert prepare("google_ads", "country", raw) == alpha2
    assert prepare("meta", "country", raw) == sha(alpha2.lower())


def test_country_rejection():
    assert explain("meta", "country", "Atlantis").reason == "not a country"
    assert explain("meta", "country", "ZZ").reason == "not a country"


# --- date of birth -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "region", "yyyymmdd"),
    [
        ("1985-03-12", "US", "19850312"),
        ("19850312", "US", "19850312"),
        ("1985-03-12T00:00:00Z", "US", "19850312"),
        ("1985-03-12 10:30:00", "DE", "19850312"),
        ("1985/3/12", "US", "19850312"),
        ("03/12/1985", "US", "19850312"),  # US: month first
        ("12/03/1985", "GB", "19850312"),  # elsewhere: day first
        ("12.03.1985", "DE", "19850312"),
        ("25/12/1985", "US", "19851225"),  # unambiguous: 25 cannot be a month
        ("12/25/1985", "GB", "19851225"),
        ("12 March 1985", "US", "19850312"),
        ("March 12, 1985", "GB", "19850312"),
        ("12-Mar-1985", "US", "19850312"),
        ("Mar 12th 1985", "US", "19850312"),
        ("3/12/85", "US", "19850312"),
    ],
)
def test_date_of_birth_formats_to_yyyymmdd_and_meta_gets_split_hashes(raw, region, yyyymmdd):
    assert normalize("date_of_birth", raw, default_region=region) == yyyymmdd
    assert prepare("meta", "dob_year", raw, default_region=region) == sha(yyyymmdd[:4])
    assert prepare("meta", "dob_month", raw, default_region=region) == sha(yyyymmdd[4:6])
    assert prepare("meta", "dob_day", raw, default_region=region) == sha(yyyymmdd[6:])


@pytest.mark.parametrize(
    ("raw", "reason"),
    [("1985-02-30", "impossible date"), ("31/04/1985", "impossible date"), ("13/13/1985", "impossible date"),
     ("2999-01-01", "implausible birth date"), ("1850-01-01", "implausible birth date"), ("yesterday", "not a date"),
     ("Smarch 12, 1985", "not a date")],
)  # fmt: skip
def test_date_of_birth_rejections(raw, reason):
    assert explain("meta", "dob_year", raw, default_region="GB").reason == reason


def test_meta_full_date_of_birth_is_not_a_key():
    result = explain("meta", "date_of_birth", "1985-03-12")
    assert result.value is None
    assert "dob_year" in result.reason
    assert explain("google_ads", "date_of_birth", "1985-03-12").reason == (
        "Google Ads API (allowlisted accounts) does not take date of birth")


# --- gender, ids ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "g"),
    [("M", "m"), ("male", "m"), (" Male ", "m"), ("Herr", "m"), ("F", "f"), ("female", "f"), ("W", "f"),
     ("Frau", "f"), ("Femme", "f"), ("weiblich", "f")],
)  # fmt: skip
def test_gender_m_or_f(raw, g):
    assert prepare("meta", "gender", raw) == sha(g)


@pytest.mark.parametrize("raw", ["x", "unknown", "non-binary", "?"])
def test_gender_other_values_rejected(raw):
    assert explain("meta", "gender", raw).reason == "not m or f"


def test_external_id_sent_as_is_to_meta_trimmed():
    assert prepare("meta", "external_id", "  CRM-00042 ") == "CRM-00042"
    assert prepare("google_ads", "external_id", "CRM-00042") is None


def test_maid_lowercase_uuid_unhashed_for_meta_and_linkedin_hashed_elsewhere():
    raw = " 6D92078A-8246-4BA4-AE5B-76104861E7DC "
    maid = "6d92078a-8246-4ba4-ae5b-76104861e7dc"
    assert prepare("meta", "maid", raw) == maid
    assert prepare("linkedin", "maid", raw) == maid
    assert prepare("tiktok", "maid", raw) == sha(maid)
    assert prepare("netflix", "maid", raw) == sha(maid)
    assert prepare("meta", "maid", "6D92078A82464BA4AE5B76104861E7DC") == maid


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("not-a-device", "not an IDFA / GAID"),
        ("00000000-0000-0000-0000-000000000000", "limited ad tracking (all zeros)"),
    ],
)
def test_maid_rejections(raw, reason):
    assert explain("meta", "maid", raw).reason == reason


# --- records, storage, fingerprint ---------------------------------------------------------------------

FULL_ROW = {
    "email": " John.Doe+x@GMail.com ",
    "phone": "(650) 253-0000",
    "first_name": "José",
    "last_name": "O'Brien",
    "city": "San Francisco",
    "state": "California",
    "postal_code": "94105-1234",
    "country": "USA",
    "date_of_birth": "March 12, 1985",
    "gender": "Female",
    "external_id": " C-1 ",
    "maid": "6D92078A-8246-4BA4-AE5B-76104861E7DC",
}


def dig(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def test_prepare_record_stores_hashes_and_only_the_unhashed_values_platforms_take():
    record = prepare_record(FULL_ROW, default_region="US")
    assert record.rejections == []
    assert record.identifiable
    stored = record.stored
    assert stored == {
        "e": dig("john.doe+x@gmail.com"),
        "eg": dig("johndoe@gmail.com"),  # Google's form; UID2's is the same, so no "eu"
        "et": dig("john.doe@gmail.com"),  # TikTok's form
        "p": dig("+16502530000"),
        "pd": dig("16502530000"),
        "fn": dig("josé"),
        "fi": "j",
        "ln": dig("obrien"),
        "lng": dig("o'brien"),  # Google's Formatter keeps the apostrophe (Data Manager)
        "ct": dig("sanfrancisco"),
        "st": "ca",
        "z": "94105",
        "zg": "94105-1234",  # ZIP+4 for the Data Manager
        "c": "US",
        "dob": "19850312",
        "g": "f",
        "x": "C-1",
        "m": "6d92078a-8246-4ba4-ae5b-76104861e7dc",
    }
    # No raw PII with more than a handful of possible values is kept readable: only the codes (initial, state,
    # birth date parts, gender) whose SHA-256 protects nothing, and the values platforms take unhashed.
    readable = {k: v for k, v in stored.items() if not isinstance(v, bytes)}
    assert set(readable) == set(mk.CODE_KEYS) | set(mk.RAW_KEYS)
    dumped = json.dumps(readable, ensure_ascii=False) + repr([v for v in stored.values() if isinstance(v, bytes)])
    for raw in ("john", "doe", "6502530000", "josé", "brien", "francisco"):
        assert raw not in dumped.lower()


def test_platform_values_per_platform_from_storage_alone():
    stored = prepare_record(FULL_ROW, default_region="US").stored
    meta = platform_values("meta", stored)
    assert meta["email"] == sha("john.doe+x@gmail.com")
    assert meta["phone"] == sha("16502530000")
    assert meta["postal_code"] == sha("94105")
    assert meta["country"] == sha("us")
    assert (meta["dob_year"], meta["dob_month"], meta["dob_day"]) == (sha("1985"), sha("03"), sha("12"))
    assert meta["maid"] == "6d92078a-8246-4ba4-ae5b-76104861e7dc"
    assert meta["external_id"] == "C-1"
    assert list(meta) == list(accepted_keys("meta"))
    assert platform_values("google_ads", stored) == {
        "email": sha("johndoe@gmail.com"),
        "phone": sha("+16502530000"),
        "first_name": sha("josé"),
        "last_name": sha("obrien"),
        "country": "US",
        "postal_code": "94105",
    }
    assert platform_values("linkedin", stored) == {
        "email": sha("john.doe+x@gmail.com"),
        "maid": "6d92078a-8246-4ba4-ae5b-76104861e7dc",
    }
    assert platform_values("tiktok", stored) == {
        "email": sha("john.doe@gmail.com"),
        "phone": sha("16502530000"),
        "maid": sha("6d92078a-8246-4ba4-ae5b-76104861e7dc"),
    }
    assert platform_values("ttd", stored) == {"email": b64sha("johndoe@gmail.com"), "phone": b64sha("+16502530000")}
    assert platform_values("netflix", stored)["phone"] == sha("+16502530000")


def test_platform_values_only_keys_the_member_has():
    stored = prepare_record({"email": "a@example.com"}, default_region="US").stored
    assert stored == {"e": dig("a@example.com")}
    assert platform_values("google_ads", stored) == {"email": sha("a@example.com")}
    assert platform_values("ttd", stored) == {"email": b64sha("a@example.com")}
    with pytest.raises(ValueError):
        platform_values("myspace", stored)


def test_prepare_record_collects_rejections_and_keeps_good_keys():
    record = prepare_record(
        {"email": "not-an-email", "phone": "12", "first_name": "Ann", "gender": "?", "city": ""}, default_region="US"
    )
    assert record.rejections == [
        ("email", "not an email address"),
        ("phone", "not a valid phone number"),
        ("gender", "not m or f"),
    ]
    assert set(record.stored) == {"fn", "fi"}
    assert not record.identifiable


@pytest.mark.parametrize(
    ("row", "identifiable"),
    [
        ({"email": "a@example.com"}, True),
        ({"phone": "+16502530000"}, True),
        ({"maid": "6d92078a-8246-4ba4-ae5b-76104861e7dc"}, True),
        ({"external_id": "42"}, True),
        ({"first_name": "Ann", "last_name": "Lee", "postal_code": "94105"}, True),
        ({"first_name": "Ann", "last_name": "Lee", "city": "Springfield"}, True),
        ({"first_name": "Ann", "last_name": "Lee", "date_of_birth": "1985-03-12"}, True),
        ({"first_name": "Ann", "date_of_birth": "1985-03-12"}, False),
        ({"first_name": "Ann", "last_name": "Lee"}, False),
        ({"country": "US", "gender": "f"}, False),
        ({}, False),
    ],
)
def test_identifiable_means_some_platform_can_match(row, identifiable):
    assert prepare_record(row, default_region="US").identifiable is identifiable


def test_a_stored_name_with_a_birth_date_is_identifiable():
    # The stored birth date is one key, "dob" (YYYYMMDD); no stored record has a "dy".
    assert mk.is_identifiable({"fn": dig("ann"), "ln": dig("lee"), "dob": "19850312"})
    assert not mk.is_identifiable({"fn": dig("ann"), "ln": dig("lee"), "dy": "1985"})


def test_default_region_drives_national_phone_numbers():
    us = prepare_record({"phone": "020 7946 0958"}, default_region="US")
    gb = prepare_record({"phone": "020 7946 0958"}, default_region="gb")
    assert "p" not in us.stored
    assert gb.stored["p"] == dig("+442079460958")
    # The row's own country wins over the audience default.
    row = prepare_record({"phone": "020 7946 0958", "country": "United Kingdom"}, default_region="US")
    assert row.stored["p"] == dig("+442079460958")


def test_fingerprint_stable_and_distinct():
    a = prepare_record(FULL_ROW, default_region="US").stored
    b = prepare_record(dict(FULL_ROW, email="JOHN.DOE+x@gmail.com  "), default_region="US").stored
    c = prepare_record(dict(FULL_ROW, email="other@example.com"), default_region="US").stored
    assert fingerprint(a) == fingerprint(b) == fingerprint(dict(reversed(list(a.items()))))
    assert fingerprint(a) != fingerprint(c)
    assert len(fingerprint(a)) == 64 and int(fingerprint(a), 16) >= 0
    assert fingerprint({"e": "x"}) != fingerprint({"p": "x"})


def test_person_id_follows_the_person_key_then_falls_back():
    full = prepare_record(FULL_ROW, default_region="US").stored
    by_email, by_id = mk.person_id(full, mk.person_order("email")), mk.person_id(full, mk.person_order("external_id"))
    assert by_email == b"e" + dig("john.doe+x@gmail.com")[:11] and len(by_email) == mk.PERSON_BYTES
    assert by_id == b"x" + dig("C-1")[:11]
    # The same person with another phone, name or address is the same person.
    moved = prepare_record(dict(FULL_ROW, phone="+1 415 555 0101", city="Oakland", postal_code="94601"),
                           default_region="US").stored
    assert mk.person_id(moved, mk.person_order("email")) == by_email
    # A row without the chosen key falls back: email, phone, device id, then name and address.
    phone_only = prepare_record({"phone": "(650) 253-0000"}, default_region="US").stored
    assert mk.person_id(phone_only, mk.person_order("email")) == b"p" + dig("+16502530000")[:11]
    named = prepare_record({"first_name": "Ann", "last_name": "Lee", "postal_code": "10001"}, default_region="US")
    assert mk.person_id(named.stored, mk.person_order("email"))[:1] == b"n"
    assert mk.person_id({}, mk.person_order("email")) is None


def test_coverage_keys_names_the_match_keys_carried():
    stored = prepare_record(FULL_ROW, default_region="US").stored
    assert coverage_keys(stored) == KEYS
    assert coverage_keys(prepare_record({"email": "a@example.com", "gender": "m"}, default_region="US").stored) == (
        "email",
        "gender",
    )


def test_prepare_records_batch_equals_one_by_one():
    rows = [FULL_ROW, {"email": "x@example.com"}, {"phone": "bad"}]
    batch = prepare_records(rows, default_region="US")
    single = [prepare_record(r, default_region="US") for r in rows]
    assert [r.stored for r in batch] == [r.stored for r in single]
    assert [r.rejections for r in batch] == [r.rejections for r in single]


# --- prepare() equals the stored path ------------------------------------------------------------------

_SAMPLES = {
    "email": ["Jane.Doe@gmail.com", "x+y@Example.org", "bad"],
    "phone": ["(650) 253-0000", "+44 20 7946 0958", "07911 123456", "nope"],
    "first_name": ["José", "O'Neil", "42"],
    "last_name": ["Müller-Lüdenscheidt", "x"],
    "first_initial": ["j", "Émile"],
    "city": ["São Paulo", "NYC"],
    "state": ["California", "ON", "Bavaria"],
    "postal_code": ["94105-1234", "SW1A 1AA", "!!"],
    "country": ["USA", "gb", "Atlantis"],
    "gender": ["Female", "m", "?"],
    "external_id": [" abc ", ""],
    "maid": ["6D92078A-8246-4BA4-AE5B-76104861E7DC", "x"],
}
_DOB_SAMPLES = ["1985-03-12", "03/04/1985", "Feb 30 1985"]


@pytest.mark.parametrize("platform", PLATFORM_CODES)
@pytest.mark.parametrize("region", ["US", "GB", None])
def test_prepare_equals_platform_values_of_prepare_record(platform, region):
    for key, samples in _SAMPLES.items():
        for raw in samples:
            expected = platform_values(platform, prepare_record({key: raw}, default_region=region).stored).get(key)
            assert prepare(platform, key, raw, default_region=region) == expected, (key, raw)
    for raw in _DOB_SAMPLES:
        values = platform_values(platform, prepare_record({"date_of_birth": raw}, default_region=region).stored)
        for part in ("dob_year", "dob_month", "dob_day"):
            assert prepare(platform, part, raw, default_region=region) == values.get(part)


def test_prepare_on_unknown_platform_or_key():
    assert explain("myspace", "email", "a@example.com").reason == "unknown platform 'myspace'"
    assert prepare("meta", "shoe_size", "42") is None
    assert normalize("shoe_size", "42") is None
    assert prepare("meta", "email", None) is None
    assert prepare("meta", "external_id", 42) == "42"


def test_prepare_rows_reads_csv_shaped_rows_with_a_column_mapping():
    keys = ["email", None, "phone", "country"]
    rows = [
        ["a@example.com", "ignored", "(650) 253-0000", "US"],
        ["B@example.com", "ignored", "020 7946 0958", "GB"],
        ["c@example.com"],  # short row: the missing cells are empty
        ["bad", "x", "12", "Atlantis"],
    ]
    records = mk.prepare_rows(rows, keys, default_region="US")
    assert [r.stored for r in records] == [
        prepare_record({"email": r[0], "phone": r[2], "country": r[3]}, default_region="US").stored
        for r in (rows[0], rows[1], ["c@example.com", None, None, None], rows[3])
    ]
    assert records[1].stored["p"] == dig("+442079460958")
    assert records[3].rejections == [
        ("country", "not a country"),
        ("email", "not an email address"),
        ("phone", "not a valid phone number"),
    ]
    assert mk.prepare_rows([], keys, default_region="US") == []


def test_prepare_records_handles_ragged_dict_rows():
    rows = [{"email": "a@example.com"}, {"phone": "+16502530000", "gender": "f"}, {}]
    records = prepare_records(rows, default_region="US")
    assert [sorted(r.stored) for r in records] == [["e"], ["g", "p", "pd"], []]


def test_batch_leaves_the_garbage_collector_as_it_found_it():
    import gc

    assert gc.isenabled()
    prepare_records([FULL_ROW], default_region="US")
    assert gc.isenabled()
    gc.disable()
    try:
        prepare_records([FULL_ROW], default_region="US")
        assert not gc.isenabled()
    finally:
        gc.enable()
