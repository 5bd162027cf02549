"""The match keys (what a column holds), the stored keys (what a member's record holds, one short name each),
the CSV header aliases and the coverage table."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

# The match keys (what a column holds) with their labels, in the order the pages list them.
KEY_LABELS: dict[str, str] = {
    "email": "Email",
    "phone": "Phone",
    "first_name": "First name",
    "last_name": "Last name",
    "first_initial": "First initial",
    "city": "City",
    "state": "State / region",
    "postal_code": "Postal code",
    "country": "Country",
    "date_of_birth": "Date of birth",
    "gender": "Gender",
    "external_id": "External ID",
    "maid": "Mobile advertiser ID",
}
KEYS: tuple[str, ...] = tuple(KEY_LABELS)

# Output key names of platform_values (our names; adapters map them to the platform's schema).
OUTPUT_KEYS: tuple[str, ...] = (
    *KEYS[:KEYS.index("date_of_birth")], "dob_year", "dob_month", "dob_day", *KEYS[KEYS.index("date_of_birth") + 1:],
)


# Which stored keys carry each match key (coverage, and prepare_record's bookkeeping).
_COVERAGE: tuple[tuple[str, str], ...] = (
    ("email", "e"),
    ("phone", "p"),
    ("first_name", "fn"),
    ("last_name", "ln"),
    ("first_initial", "fi"),
    ("city", "ct"),
    ("state", "st"),
    ("postal_code", "z"),
    ("country", "c"),
    ("date_of_birth", "dob"),
    ("gender", "g"),
    ("external_id", "x"),
    ("maid", "m"),
)

# CSV header -> key. Headers are compared after lowercasing and dropping everything but letters and digits.
HEADER_ALIASES: dict[str, str] = {}
for _key, _aliases in {
    "email": "email e-mail emailaddress email_address mail e_mail courriel correo eposta emails primaryemail",
    "phone": "phone phonenumber phone_number telephone tel mobile mobilephone cell cellphone msisdn "
    "mobilenumber contactnumber téléphone telefono telefon handy",
    "first_name": "first_name firstname fname givenname given_name forename first prenom prénom vorname nombre",
    "last_name": "last_name lastname lname surname familyname family_name last nom nachname apellido",
    "first_initial": "first_initial firstinitial fi initial",
    "city": "city town locality ville stadt ciudad",
    "state": "state region province st stateprovince state_province county",
    "postal_code": "postal_code postalcode postcode zip zipcode zip_code plz cp codepostal",
    "country": "country countrycode country_code nation pays land pais",
    "date_of_birth": "date_of_birth dateofbirth dob birthdate birth_date birthday dateofbirthday",
    "gender": "gender sex geschlecht genre",
    "external_id": "external_id externalid extern_id customerid customer_id userid user_id id crmid memberid "
    "member_id accountid clientid",
    "maid": "maid madid idfa gaid aaid adid advertisingid advertising_id mobileadid mobile_advertiser_id "
    "deviceid device_id mobileid",
}.items():
    for _alias in _aliases.split():
        HEADER_ALIASES[re.sub(r"[^0-9a-zà-ÿ]", "", _alias)] = _key
_HEADER_STRIP = re.compile(r"[^0-9a-zà-ÿ]")


def guess_key(header: str) -> str | None:
    """The match key a CSV column header most likely holds, or None."""
    if not header:
        return None
    cleaned = _HEADER_STRIP.sub("", unicodedata.normalize("NFC", str(header)).strip().lower())
    return HEADER_ALIASES.get(cleaned)


# Stored keys, in a fixed order (the Member columns): SHA-256 digests, short codes hashed at send time, raw values.
DIGEST_KEYS: tuple[str, ...] = ("e", "eg", "eu", "et", "p", "pd", "fn", "ln", "fng", "lng", "ct")
CODE_KEYS: tuple[str, ...] = ("fi", "st", "dob", "g")
RAW_KEYS: tuple[str, ...] = ("z", "zg", "c", "x", "m")
STORED_KEYS: tuple[str, ...] = DIGEST_KEYS + CODE_KEYS + RAW_KEYS


def coverage_keys(stored: Mapping[str, str]) -> tuple[str, ...]:
    """The match keys (KEYS names) a member carries, for the audience's key coverage counts."""
    return tuple(key for key, short in _COVERAGE if short in stored)
