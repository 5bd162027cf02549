"""Match keys: normalize raw customer data once, hash it, and hand every platform its exact values.

Flow: the importer calls ``prepare_record(raw_row, default_region=...)`` (or the batch form
``prepare_records``) and stores ``PreparedRecord.stored`` in ``Member.keys``; at sync time an adapter gets
``platform_values(code, stored)``. ``prepare(code, key, raw)`` is the one-value form of the same thing
(``prepare(c, k, raw) == platform_values(c, prepare_record({k: raw}).stored)[k]``), with ``explain``
giving the rejection reason.

Stored keys (``PreparedRecord.stored``; short because millions of members are stored as JSON). Hashes are
SHA-256 lowercase hex of the normalized string shown; only ``z``, ``c``, ``x`` and ``m`` are kept unhashed
because some platform takes them unhashed (Google: postal code and country; Meta: EXTERN_ID and MADID):

    e   email: trimmed, lowercased, NFC
    eg  email with the dots of a gmail.com / googlemail.com local part removed (Google; only when != e)
    eu  email as UID2 normalizes it: gmail.com local part without dots and "+tag" (The Trade Desk; only != e)
    p   phone E.164 with "+"          pd  phone E.164 digits without "+" (Meta, TikTok)
    fn  first name   ln  last name   fi  first initial   ct  city   st  state / region   (hashed)
    z   postal code, unhashed: US 5 digits; elsewhere uppercase, single spaces (Google's form)
    c   country, ISO 3166-1 alpha-2 uppercase, unhashed
    dy  dm  dd   date of birth year "YYYY", month "MM", day "DD" (hashed; Meta takes them split)
    g   gender "m" / "f" (hashed)
    x   external id, trimmed, unhashed       m   mobile advertiser id, lowercase UUID, unhashed

Date of birth and Meta: Meta's schema has no full-date key, so ``prepare("meta", "date_of_birth", raw)``
is None (reason says so); ask for ``"dob_year"`` / ``"dob_month"`` / ``"dob_day"`` with the raw date instead.

Documented choices where the platforms' docs leave room:
- Names and cities keep letters (accented ones too, NFC) and combining marks; spaces, digits and
  punctuation are removed ("Mary-Ann" -> "maryann", "São Paulo" -> "sãopaulo"), for every platform.
- Google: dots removed from gmail.com / googlemail.com local parts (Customer Match docs); "+tags" are
  kept (the Google Ads API docs do not ask to strip them; the newer Data Manager API does).
- The Trade Desk: base64 of the SHA-256 digest (UID2 hashed-email / hashed-phone format).
- Phones must be valid numbers (``phonenumbers.is_valid_number``); national numbers are read with the
  audience's default region; "+CC" numbers are accepted whatever the region.
- Ambiguous numeric dates (03/04/1985) follow the region's convention: month first for the US and its
  territories, day first elsewhere. Two-digit years pivot on the current year. Future dates and years
  before 1900 are rejected.
- US ZIP codes: first five digits of ZIP / ZIP+4; a four-digit ZIP gets its leading zero back (lost by
  spreadsheets).
"""

from __future__ import annotations

import base64
import datetime as _dt
import gc
import re
import time as _time
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from hashlib import sha256
from itertools import compress, repeat, zip_longest
from typing import NamedTuple

import phonenumbers
from phonenumbers import phonenumberutil as _pnu

KEYS: tuple[str, ...] = (
    "email",
    "phone",
    "first_name",
    "last_name",
    "first_initial",
    "city",
    "state",
    "postal_code",
    "country",
    "date_of_birth",
    "gender",
    "external_id",
    "maid",
)

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

# Output key names of platform_values (our names; adapters map them to the platform's schema).
OUTPUT_KEYS: tuple[str, ...] = (
    "email",
    "phone",
    "first_name",
    "last_name",
    "first_initial",
    "city",
    "state",
    "postal_code",
    "country",
    "dob_year",
    "dob_month",
    "dob_day",
    "gender",
    "external_id",
    "maid",
)

# How a stored value becomes the value sent (an adapter's ``match_keys`` names one per output key).
HEX = "hex"  # a stored digest, sent as lowercase hex
RAW = "raw"  # stored text, sent as is
SHA = "sha"  # stored text (a code or an id), sent as the SHA-256 hex of it
SHA_LOWER = "sha_lower"  # stored text, sent as the SHA-256 hex of its lowercase form
SHA_ZIP = "sha_zip"  # a stored postal code, sent as the SHA-256 hex of Meta's form (lowercase, no spaces/dashes)
B64 = "b64"  # a stored digest, sent as base64 of its bytes (The Trade Desk / UID2)
# A stored date YYYYMMDD, sent as the SHA-256 hex of its year, month or day.
DOB_YEAR, DOB_MONTH, DOB_DAY = "dob_year", "dob_month", "dob_day"


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


# ---------------------------------------------------------------------------------------------------------
# Hashing helpers


def _h(value: str) -> str:
    return sha256(value.encode()).hexdigest()


_h_cached = lru_cache(maxsize=1 << 16)(_h)


def _b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii")


# ---------------------------------------------------------------------------------------------------------
# Normalizers: raw text -> normalized string (before hashing), or raise _Reject(reason).


class _Reject(Exception):
    __slots__ = ("reason",)

    def __init__(self, reason: str):
        self.reason = reason


_EMAIL_ATOM = r'[^@\s<>(),;:"\[\]\\.]+'
# local part: dot-separated atoms (no leading, trailing or double dot); domain: at least two labels.
_EMAIL_RE = re.compile(rf"{_EMAIL_ATOM}(?:\.{_EMAIL_ATOM})*@(?:{_EMAIL_ATOM}\.)+{_EMAIL_ATOM}")


def _norm_email(raw: str) -> str:
    value = raw.strip()
    if not value.isascii():
        value = unicodedata.normalize("NFC", value)
    value = value.lower()
    if value.startswith("mailto:"):
        value = value[7:]
    if _EMAIL_RE.fullmatch(value) is None:
        raise _Reject("not an email address" if value else "empty")
    return value


def _google_email(email: str) -> str:
    """Google Customer Match (Google's Formatter): for gmail.com / googlemail.com, remove "+" and everything
    after it from the local part, then every dot. Other domains unchanged. A local part left empty ("+x@gmail.com",
    which Google's Formatter refuses) keeps the address as it is."""
    local, _, domain = email.rpartition("@")
    if domain == "gmail.com" or domain == "googlemail.com":
        local = local.split("+", 1)[0].replace(".", "")
        return local + "@" + domain if local else email
    return email


def _uid2_email(email: str) -> str:
    """UID2 (The Trade Desk): gmail.com local part without dots and without "+" and what follows."""
    local, _, domain = email.rpartition("@")
    if domain == "gmail.com":
        local = local.split("+", 1)[0].replace(".", "")
        return local + "@" + domain if local else email  # UID2 refuses an empty local part
    return email


# --- phone ---

_PHONE_PUNCT = str.maketrans("", "", " ()-./\t\u00a0\u2010\u2011\u2012\u2013\u2014\u2212")
_TYPE_DESCS = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
    "mobile",
)


class _RegionPlan:
    """Precompiled phonenumbers metadata for the fast path.

    ``valid`` is phonenumbers' "number type is not UNKNOWN" test (general description, then any type
    description, each with its possible lengths) folded into one regex per number length.
    """

    __slots__ = ("cc_str", "np_re", "idd_re", "general", "max_len", "by_len", "any_len", "fast")

    def __init__(self, region: str):
        meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
        # Patterns compiled as bytes: the fast path works on the ASCII bytes of the number (cheaper to
        # clean, and hashed as they are).
        self.cc_str = str(meta.country_code).encode()
        npp = meta.national_prefix_for_parsing
        self.np_re = re.compile(npp.encode()) if npp else None
        self.idd_re = re.compile(meta.international_prefix.encode()) if meta.international_prefix else None
        general = meta.general_desc
        gp = general.national_number_pattern
        self.general = re.compile(gp.encode()) if gp else None
        general_lengths = [n for n in general.possible_length if n > 0]
        self.max_len = max(general_lengths) if general_lengths else 0
        types = [d for d in (_desc(getattr(meta, n, None)) for n in _TYPE_DESCS) if d is not None]
        lengths = set(general_lengths)
        for type_lengths, _ in types:
            lengths |= type_lengths or set()
        self.by_len = {}
        for n in lengths:
            if general_lengths and n not in general_lengths:
                continue
            patterns = [p for type_lengths, p in types if type_lengths is None or n in type_lengths]
            if patterns:
                self.by_len[n] = re.compile("|".join(f"(?:{p})" for p in patterns).encode())
        unbounded = [p for type_lengths, p in types if type_lengths is None]
        self.any_len = None
        if unbounded and not general_lengths:
            self.any_len = re.compile("|".join(f"(?:{p})" for p in unbounded).encode())
        regions = _pnu.COUNTRY_CODE_TO_REGION_CODE.get(meta.country_code, ())
        # Fast path only where phonenumbers' own region choice is certain: the calling code's main region,
        # no leading-digits rule, no national-prefix transform rule.
        self.fast = (
            bool(regions)
            and regions[0] == region
            and not meta.leading_digits
            and not meta.national_prefix_transform_rule
            and self.general is not None
        )

    def general_match(self, number: bytes) -> bool:
        return self.general.fullmatch(number) is not None

    def strip_np(self, number: bytes) -> bytes:
        # phonenumbers' _maybe_strip_national_prefix_carrier_code, without transform rules.
        if self.np_re is None or not number:
            return number
        m = self.np_re.match(number)
        if m is None:
            return number
        rest = number[m.end() :]
        if self.general.fullmatch(number) is not None and self.general.fullmatch(rest) is None:
            return number
        return rest

    def valid(self, nsn: bytes) -> bool:
        if not nsn or nsn[0] == 48 or self.general.fullmatch(nsn) is None:  # 48: b"0"
            return False
        pattern = self.by_len.get(len(nsn), self.any_len)
        return pattern is not None and pattern.fullmatch(nsn) is not None


def _tiktok_email(email: str) -> str:
    """TikTok: the local part without "+" and what follows it (TikTok's audience formatting rules)."""
    local, _, domain = email.rpartition("@")
    if "+" in local:
        local = local.split("+", 1)[0]
        if local:
            return local + "@" + domain
    return email




def _desc(desc):
    if desc is None or not desc.national_number_pattern:
        return None
    lengths = desc.possible_length
    if lengths and lengths[0] == -1:
        return None
    return (set(lengths) if lengths else None, desc.national_number_pattern)


@lru_cache(maxsize=512)
def _plan(region: str) -> _RegionPlan | None:
    if region not in _pnu.SUPPORTED_REGIONS:
        return None
    plan = _RegionPlan(region)
    return plan if plan.fast else None


_CALLING_CODES = frozenset(str(cc).encode() for cc in _pnu.COUNTRY_CODE_TO_REGION_CODE)


@lru_cache(maxsize=512)
def _plan_for_cc(cc: bytes) -> _RegionPlan | None:
    """The fast plan of a calling code's main region (None: leave it to phonenumbers)."""
    regions = _pnu.COUNTRY_CODE_TO_REGION_CODE.get(int(cc))
    return _plan(regions[0]) if regions and regions[0] != "001" else None


_PHONE_PUNCT_BYTES = b" ()-./\t\r\n"


def _phone_fast_bytes(value: str, region: str | None) -> bytes | None:
    """E.164 (ASCII bytes, with "+") for the common shapes, identical to phonenumbers' answer;
    None = ask phonenumbers."""
    if not value.isascii():
        return None
    digits = value.encode().translate(None, _PHONE_PUNCT_BYTES)
    if digits[:1] == b"+":
        digits = digits[1:]
        if not digits.isdigit() or digits[0] == 48:
            return None
        for size in (1, 2, 3):
            cc = digits[:size]
            if cc in _CALLING_CODES:
                plan = _plan_for_cc(cc)
                if plan is None:
                    return None
                nsn = plan.strip_np(digits[size:])
                return b"+" + cc + nsn if plan.valid(nsn) else None
        return None
    if region is None or not digits.isdigit():
        return None
    plan = _plan(region)
    if plan is None:
        return None
    if plan.idd_re is not None and plan.idd_re.match(digits):
        return None
    cc = plan.cc_str
    if digits.startswith(cc):
        # phonenumbers reads a leading copy of the region's own calling code as that code when the number
        # does not fit the plan with it but does without it (or is too long with it).
        potential = plan.strip_np(digits[len(cc) :])
        if (not plan.general_match(digits) and plan.general_match(potential)) or len(digits) > plan.max_len:
            nsn = plan.strip_np(potential)
            return b"+" + cc + nsn if plan.valid(nsn) else None
    nsn = plan.strip_np(digits)
    return b"+" + cc + nsn if plan.valid(nsn) else None


def _phone_fast(value: str, region: str | None) -> str | None:
    result = _phone_fast_bytes(value, region)
    return None if result is None else result.decode()


@lru_cache(maxsize=1 << 15)
def _phone_slow(value: str, region: str | None) -> str | None:
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _norm_phone(raw: str, region: str | None) -> str:
    """E.164 with "+"."""
    value = raw.strip()
    if not value:
        raise _Reject("empty")
    if len(value) > 40:
        raise _Reject("not a valid phone number")
    e164 = _phone_fast(value, region) or _phone_slow(value, region)
    if e164 is None:
        _phone_reject(value, region)
    return e164


def _phone_reject(value: str, region: str | None):
    if region is None and value[:1] != "+":
        raise _Reject("no country code and no default region")
    raise _Reject("not a valid phone number")


# --- names, city ---

_NON_LOWER_ASCII = re.compile(r"[^a-z]+")


def _letters(raw: str) -> str:
    """Lowercase letters (and combining marks) only, NFC."""
    if raw.isascii():
        return _NON_LOWER_ASCII.sub("", raw.lower())
    value = unicodedata.normalize("NFC", unicodedata.normalize("NFC", raw).lower())
    kept = "".join(ch for ch in value if ch.isalpha() or unicodedata.category(ch)[0] == "M")
    value = unicodedata.normalize("NFC", kept)
    # A second lowering pass settles the rare letters whose lowercase is not stable under NFC.
    return value if value == value.lower() else _letters_settle(value)


def _letters_settle(value: str) -> str:
    for _ in range(3):
        nxt = unicodedata.normalize("NFC", value.lower())
        nxt = unicodedata.normalize(
            "NFC", "".join(ch for ch in nxt if ch.isalpha() or unicodedata.category(ch)[0] == "M")
        )
        if nxt == value:
            break
        value = nxt
    return value


@lru_cache(maxsize=1 << 16)
def _norm_name(raw: str) -> str:
    value = _letters(raw)
    if not value:
        raise _Reject("no letters")
    return value


# Titles and suffixes Google's formatting guide asks to leave out ("Don't include prefixes such as Mrs.", "Don't
# include suffixes such as Jr."), as whole words with an optional dot, followed / preceded by a space (or a comma).
_NAME_PREFIX = re.compile(r"^(?:mr|mrs|ms|miss|mx|dr)\.?\s+(?=\S)")
_NAME_SUFFIX = re.compile(r"(?<=\S)(?:\s*,)?\s+(?:jr|sr|ii|iii|iv)\.?$")
_GOOGLE_GIVEN, _GOOGLE_FAMILY = "given", "family"


def _google_name(raw: str, part: str) -> str:
    """Google's given / family name form (Data Manager): NFC, trimmed, lowercased, inner spaces and punctuation
    kept (Google's Formatter: ``strip().lower()``), without a leading title (given) / trailing suffix (family)."""
    value = raw.strip()
    if not value.isascii():
        value = unicodedata.normalize("NFC", value)
    value = value.lower()
    letters = _letters(value)
    if not letters:
        raise _Reject("no letters")  # exactly when the letters-only form rejects
    if not _name_like(value):
        # Digits, brackets, symbols: a damaged cell, not a name's own punctuation; the letters are the best guess.
        return letters
    bare = _NAME_PREFIX.sub("", value) if part == _GOOGLE_GIVEN else _NAME_SUFFIX.sub("", value)
    return bare if _letters(bare) else value


_NAME_PUNCT = frozenset(" '’.-,")


def _name_like(value: str) -> bool:
    """Letters (and combining marks) with only the punctuation names carry: spaces, apostrophes, dots, hyphens."""
    if value.isascii():
        return all(ch.isalpha() or ch in _NAME_PUNCT for ch in value)
    return all(ch.isalpha() or ch in _NAME_PUNCT or unicodedata.category(ch)[0] == "M" for ch in value)


def _norm_initial(raw: str) -> str:
    return _norm_name(raw)[0]


_norm_city = _norm_name


# --- state ---

_US_STATES = {
    "alabama": "al", "alaska": "ak", "arizona": "az", "arkansas": "ar", "california": "ca", "colorado": "co",
    "connecticut": "ct", "delaware": "de", "districtofcolumbia": "dc", "washingtondc": "dc", "florida": "fl",
    "georgia": "ga", "hawaii": "hi", "idaho": "id", "illinois": "il", "indiana": "in", "iowa": "ia",
    "kansas": "ks", "kentucky": "ky", "louisiana": "la", "maine": "me", "maryland": "md",
    "massachusetts": "ma", "michigan": "mi", "minnesota": "mn", "mississippi": "ms", "missouri": "mo",
    "montana": "mt", "nebraska": "ne", "nevada": "nv", "newhampshire": "nh", "newjersey": "nj",
    "newmexico": "nm", "newyork": "ny", "northcarolina": "nc", "northdakota": "nd", "ohio": "oh",
    "oklahoma": "ok", "oregon": "or", "pennsylvania": "pa", "rhodeisland": "ri", "southcarolina": "sc",
    "southdakota": "sd", "tennessee": "tn", "texas": "tx", "utah": "ut", "vermont": "vt", "virginia": "va",
    "washington": "wa", "westvirginia": "wv", "wisconsin": "wi", "wyoming": "wy", "puertorico": "pr",
    "guam": "gu", "americansamoa": "as", "virginislands": "vi", "usvirginislands": "vi",
    "northernmarianaislands": "mp", "armedforcesamericas": "aa", "armedforceseurope": "ae",
    "armedforcespacific": "ap",
}  # fmt: skip
_CA_PROVINCES = {
    "alberta": "ab", "britishcolumbia": "bc", "manitoba": "mb", "newbrunswick": "nb",
    "newfoundlandandlabrador": "nl", "newfoundland": "nl", "novascotia": "ns", "northwestterritories": "nt",
    "nunavut": "nu", "ontario": "on", "princeedwardisland": "pe", "quebec": "qc", "québec": "qc",
    "saskatchewan": "sk", "yukon": "yt",
}  # fmt: skip
_STATE_CODES = {
    "US": (frozenset(_US_STATES.values()), _US_STATES),
    "CA": (frozenset(_CA_PROVINCES.values()), _CA_PROVINCES),
}


@lru_cache(maxsize=1 << 14)
def _norm_state(raw: str, region: str | None) -> str:
    value = _letters(raw)
    if not value:
        raise _Reject("no letters")
    table = _STATE_CODES.get(region or "")
    if table is None:
        return value
    codes, names = table
    if value in codes:
        return value
    code = names.get(value)
    if code is None:
        raise _Reject("not a US state" if region == "US" else "not a Canadian province")
    return code


# --- postal code ---

_US_ZIP = re.compile(r"(\d{4,5})(?:[- ]?\d{4})?")
_POSTAL_OK = re.compile(r"[0-9A-Z](?:[0-9A-Z -]{0,10}[0-9A-Z])?")
_SPACES = re.compile(r"\s+")


@lru_cache(maxsize=1 << 16)
def _norm_postal(raw: str, region: str | None) -> str:
    """Stored / Google form: US 5 digits; elsewhere trimmed, uppercase, single spaces."""
    if len(raw) == 5 and raw.isdigit() and raw.isascii():
        return raw
    zip4 = region == "US" and len(raw) == 10 and raw[5] == "-" and raw.isascii()
    if zip4 and raw[:5].isdigit() and raw[6:].isdigit():
        return raw[:5]  # ZIP+4, every one a different value
    value = _SPACES.sub(" ", raw.strip()).upper()
    if not value:
        raise _Reject("empty")
    if region == "US":
        m = _US_ZIP.fullmatch(value)
        if m is None:
            raise _Reject("not a US ZIP code")
        return m.group(1).zfill(5)
    if not value.isascii() or _POSTAL_OK.fullmatch(value) is None:
        raise _Reject("not a postal code")
    return value


_US_ZIP4 = re.compile(r"\s*(\d{4,5})[- ]?(\d{4})\s*")


def _google_postal(raw: str, region: str | None) -> str | None:
    """Google's form of a US ZIP+4 ("94105-1234"; the Data Manager takes "5 digits followed by the 4-digit
    extension"), or None when the input carried no extension (the stored 5-digit form is Google's then)."""
    if region != "US":
        return None
    m = _US_ZIP4.fullmatch(raw)
    return f"{m.group(1).zfill(5)}-{m.group(2)}" if m else None


@lru_cache(maxsize=1 << 16)
def _meta_zip(stored_zip: str) -> str:
    return stored_zip.lower().replace(" ", "").replace("-", "")


@lru_cache(maxsize=1 << 17)  # holds every 5-digit US ZIP: a US audience's sync stops hashing ZIPs once warm
def _h_meta_zip(stored_zip: str) -> str:
    return _h(stored_zip if stored_zip.isdigit() else _meta_zip(stored_zip))


@lru_cache(maxsize=1024)
def _h_lower(value: str) -> str:
    return _h(value.lower())


# --- country ---

_COUNTRY_EXTRA = {
    "usa": "US", "us": "US", "unitedstates": "US", "unitedstatesofamerica": "US", "america": "US",
    "uk": "GB", "greatbritain": "GB", "britain": "GB", "england": "GB", "scotland": "GB", "wales": "GB",
    "northernireland": "GB", "unitedkingdom": "GB", "russia": "RU", "southkorea": "KR", "korea": "KR",
    "northkorea": "KP", "iran": "IR", "syria": "SY", "vietnam": "VN", "laos": "LA", "bolivia": "BO",
    "venezuela": "VE", "tanzania": "TZ", "moldova": "MD", "taiwan": "TW", "czechia": "CZ",
    "czechrepublic": "CZ", "holland": "NL", "thenetherlands": "NL", "deutschland": "DE", "espana": "ES",
    "españa": "ES", "italia": "IT", "brasil": "BR", "méxico": "MX", "turkey": "TR", "türkiye": "TR",
    "ivorycoast": "CI", "uae": "AE", "emirates": "AE", "macau": "MO", "hongkong": "HK", "palestine": "PS",
    "vaticancity": "VA", "capeverde": "CV", "swaziland": "SZ", "burma": "MM", "eastimor": "TL",
    "brunei": "BN", "micronesia": "FM",
}  # fmt: skip


@lru_cache(maxsize=1)
def _country_tables() -> tuple[frozenset, dict, dict]:
    try:
        import pycountry
    except ImportError:  # pragma: no cover - pycountry comes with facebook-business
        alpha2 = frozenset(v for v in _COUNTRY_EXTRA.values())
        return alpha2, {}, dict(_COUNTRY_EXTRA)
    alpha2 = set()
    alpha3 = {}
    names = {}
    for c in pycountry.countries:
        alpha2.add(c.alpha_2)
        alpha3[c.alpha_3] = c.alpha_2
        for attr in ("name", "common_name", "official_name"):
            name = getattr(c, attr, None)
            if name:
                names[_letters(name)] = c.alpha_2
    alpha2.add("XK")  # Kosovo: user-assigned, used by platforms
    names.update(_COUNTRY_EXTRA)
    return frozenset(alpha2), alpha3, names


@lru_cache(maxsize=4096)
def _norm_country(raw: str) -> str:
    """ISO 3166-1 alpha-2, uppercase."""
    value = raw.strip()
    if not value:
        raise _Reject("empty")
    alpha2, alpha3, names = _country_tables()
    upper = value.upper().replace(".", "")
    if len(upper) == 2 and upper in alpha2:
        return upper
    if len(upper) == 3 and upper in alpha3:
        return alpha3[upper]
    code = names.get(_letters(value))
    if code is None:
        raise _Reject("not a country")
    return code


# --- date of birth ---

_MONTHS = {
    "jan": 1, "january": 1, "feb": 2, "february": 2, "mar": 3, "march": 3, "apr": 4, "april": 4, "may": 5,
    "jun": 6, "june": 6, "jul": 7, "july": 7, "aug": 8, "august": 8, "sep": 9, "sept": 9, "september": 9,
    "oct": 10, "october": 10, "nov": 11, "november": 11, "dec": 12, "december": 12,
}  # fmt: skip
_MONTH_FIRST_REGIONS = frozenset({"US", "PR", "GU", "VI", "AS", "MP", "UM", "FM", "MH", "PW"})
_DOB_ISO = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[t ][0-9:.]*(?:z|[+-]\d\d:?\d\d)?)?")
_DOB_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})")
_DOB_NUMERIC = re.compile(r"(\d{1,2})[-/. ](\d{1,2})[-/. ](\d{4}|\d{2})(?:[t ][0-9:.]*)?")
_DOB_DAY_MONTHNAME = re.compile(r"(\d{1,2})(?:st|nd|rd|th)?[ \-/.]+([a-z]+)\.?,?[ \-/.]+(\d{4}|\d{2})")
_DOB_MONTHNAME_DAY = re.compile(r"([a-z]+)\.?[ \-/.]+(\d{1,2})(?:st|nd|rd|th)?,?[ \-/.]+(\d{4}|\d{2})")


def _today() -> _dt.date:
    # date.today() costs a clock read and an object per call; the day changes rarely.
    now = _time.monotonic()
    if now - _TODAY[1] > 60:
        _TODAY[:] = [_dt.date.today(), now]
    return _TODAY[0]


_TODAY: list = [_dt.date.today(), _time.monotonic()]


def _full_year(year: str, today: _dt.date) -> int:
    y = int(year)
    if len(year) == 2:
        y += 2000
        if y > today.year:
            y -= 100
    return y


@lru_cache(maxsize=1 << 16)
def _norm_dob(raw: str, region: str | None) -> str:
    """YYYYMMDD."""
    value = raw.strip().lower()
    if not value:
        raise _Reject("empty")
    today = _today()
    if len(value) == 10 and value[4] == "-" and value[7] == "-" and value.isascii():
        y, mo, d = value[:4], value[5:7], value[8:]
        if not (y.isdigit() and mo.isdigit() and d.isdigit()):
            raise _Reject("not a date")
        y, mo, d = int(y), int(mo), int(d)
    elif m := _DOB_COMPACT.fullmatch(value) or _DOB_ISO.fullmatch(value):
        y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
    elif m := _DOB_NUMERIC.fullmatch(value):
        a, b = int(m.group(1)), int(m.group(2))
        y = _full_year(m.group(3), today)
        month_first = (b > 12 and a <= 12) or (region in _MONTH_FIRST_REGIONS and not (a > 12 and b <= 12))
        mo, d = (a, b) if month_first else (b, a)
    elif (m := _DOB_DAY_MONTHNAME.fullmatch(value)) and m.group(2) in _MONTHS:
        d, mo, y = int(m.group(1)), _MONTHS[m.group(2)], _full_year(m.group(3), today)
    elif (m := _DOB_MONTHNAME_DAY.fullmatch(value)) and m.group(1) in _MONTHS:
        mo, d, y = _MONTHS[m.group(1)], int(m.group(2)), _full_year(m.group(3), today)
    else:
        raise _Reject("not a date")
    try:
        date = _dt.date(y, mo, d)
    except ValueError:
        raise _Reject("impossible date") from None
    if date > today or y < 1900:
        raise _Reject("implausible birth date")
    return f"{y:04d}{mo:02d}{d:02d}"


# --- gender ---

_GENDERS = {
    **dict.fromkeys(
        ("m", "male", "man", "men", "mr", "h", "homme", "masculin", "hombre", "masculino", "herr", "mann",
         "männlich", "maennlich", "maschio", "boy"),
        "m",
    ),
    **dict.fromkeys(
        ("f", "female", "woman", "women", "w", "mrs", "ms", "miss", "femme", "féminin", "feminin", "mujer",
         "femenino", "frau", "weiblich", "femmina", "donna", "girl"),
        "f",
    ),
}  # fmt: skip


@lru_cache(maxsize=1024)
def _norm_gender(raw: str) -> str:
    value = raw.strip().lower().rstrip(".")
    if not value:
        raise _Reject("empty")
    g = _GENDERS.get(value) or _GENDERS.get(unicodedata.normalize("NFC", value))
    if g is None:
        raise _Reject("not m or f")
    return g


# --- ids ---


def _norm_external_id(raw: str) -> str:
    value = raw.strip()
    if not value.isascii():
        value = unicodedata.normalize("NFC", value)
    if not value:
        raise _Reject("empty")
    if len(value) > 256:
        raise _Reject("longer than 256 characters")
    return value


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_HEX32 = re.compile(r"[0-9a-f]{32}")
_ZERO_MAID = "00000000-0000-0000-0000-000000000000"


def _norm_maid(raw: str) -> str:
    value = raw.strip().lower()
    if not value:
        raise _Reject("empty")
    if _UUID.fullmatch(value) is None:
        if _HEX32.fullmatch(value) is None:
            raise _Reject("not an IDFA / GAID")
        value = f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"
    if value == _ZERO_MAID:
        raise _Reject("limited ad tracking (all zeros)")
    return value


# ---------------------------------------------------------------------------------------------------------
# Public API


def _region(default_region: str | None) -> str | None:
    return default_region.upper() if default_region else None


def normalize(key: str, raw: object, *, platform: str | None = None, default_region: str | None = None) -> str | None:
    """The normalized string (before hashing) for ``key``; None if unusable. Never raises on bad input.

    ``platform`` picks the platform's form where it differs (Meta phone digits without "+", Google gmail
    without dots, Google country uppercase, Meta postal code without spaces). ``date_of_birth`` gives
    YYYYMMDD; ``dob_year`` / ``dob_month`` / ``dob_day`` its parts.
    """
    return _normalize(key, raw, platform, _region(default_region))[0]


def _normalize(key: str, raw: object, platform: str | None, region: str | None) -> tuple[str | None, str]:
    if raw is None:
        return None, "empty"
    if not isinstance(raw, str):
        raw = str(raw)
    source_key = _SOURCE_KEY.get(key, key)
    if source_key not in _BASE_FORMS:
        return None, f"unknown match key {key!r}"
    try:
        value = _BASE_FORMS[source_key](raw, region)
        if platform is not None:
            value = _platform_form(platform, key, raw, value, region)
        elif key in _DOB_PARTS:
            value = _DOB_PARTS[key](value)
    except _Reject as reject:
        return None, reject.reason
    return value, ""


_BASE_FORMS = {
    "email": lambda raw, region: _norm_email(raw),
    "phone": _norm_phone,
    "first_name": lambda raw, region: _norm_name(raw),
    "last_name": lambda raw, region: _norm_name(raw),
    "city": lambda raw, region: _norm_name(raw),
    "first_initial": lambda raw, region: _norm_initial(raw),
    "state": _norm_state,
    "postal_code": _norm_postal,
    "country": lambda raw, region: _norm_country(raw),
    "date_of_birth": _norm_dob,
    "gender": lambda raw, region: _norm_gender(raw),
    "external_id": lambda raw, region: _norm_external_id(raw),
    "maid": lambda raw, region: _norm_maid(raw),
}
_DOB_PARTS = {"dob_year": lambda d: d[:4], "dob_month": lambda d: d[4:6], "dob_day": lambda d: d[6:]}
# The platform's own form of a value, by the stored variant its table reads first (its normalization choice).
_VARIANT_FORMS = {
    "eg": lambda raw, base, region: _google_email(base),
    "eu": lambda raw, base, region: _uid2_email(base),
    "et": lambda raw, base, region: _tiktok_email(base),
    "pd": lambda raw, base, region: base[1:],
    "fng": lambda raw, base, region: _google_name(raw, _GOOGLE_GIVEN),
    "lng": lambda raw, base, region: _google_name(raw, _GOOGLE_FAMILY),
    "zg": lambda raw, base, region: _google_postal(raw, region) or base,
}
_ENCODING_FORMS = {SHA_ZIP: lambda value: _meta_zip(value), SHA_LOWER: str.lower}


def _platform_form(platform: str, key: str, raw: str, base: str, region: str | None) -> str:
    table = match_keys_of(platform)
    entry = table.get(key)
    if entry is None:
        return _DOB_PARTS[key](base) if key in _DOB_PARTS else base
    sources, encoding = entry
    form = _VARIANT_FORMS.get(sources[0])
    value = form(raw, base, region) if form is not None else base
    if key in _DOB_PARTS:
        value = _DOB_PARTS[key](value)
    transform = _ENCODING_FORMS.get(encoding)
    return transform(value) if transform is not None else value


class Explanation:
    """What ``prepare`` sends for one value (``value``; None if nothing) and, if nothing, why (``reason``)."""

    __slots__ = ("value", "reason")

    def __init__(self, value: str | None, reason: str = ""):
        self.value = value
        self.reason = reason

    def __repr__(self):
        return f"Explanation(value={self.value!r}, reason={self.reason!r})"

    def __bool__(self):
        return self.value is not None


def explain(platform_code: str, key: str, raw_value: object, *, default_region: str | None = None) -> Explanation:
    """Like ``prepare`` but returns the value and, when it is None, the reason."""
    try:
        table = match_keys_of(platform_code)
    except ValueError:
        return Explanation(None, f"unknown platform {platform_code!r}")
    name = _platform_name(platform_code)
    out_key = key
    if key == "date_of_birth":
        if "dob_year" in table:
            return Explanation(None, f"{name} takes dob_year / dob_month / dob_day")
        return Explanation(None, f"{name} does not take date of birth")
    if out_key not in table:
        label = KEY_LABELS.get(key, key)
        return Explanation(None, f"{name} does not take {label.lower()}")
    # Build the stored value exactly as prepare_record would, then encode it as platform_values does.
    record = prepare_record({_SOURCE_KEY.get(key, key): raw_value}, default_region=default_region)
    values = platform_values(platform_code, record.stored)
    value = values.get(out_key)
    if value is None:
        reason = record.rejections[0][1] if record.rejections else "empty"
        return Explanation(None, reason)
    return Explanation(value, "")


_SOURCE_KEY = {"dob_year": "date_of_birth", "dob_month": "date_of_birth", "dob_day": "date_of_birth"}


def _platform_name(platform_code: str) -> str:
    from platforms.adapters.registry import get_adapter_class

    return get_adapter_class(platform_code).name


def prepare(platform_code: str, key: str, raw_value: object, *, default_region: str | None = None) -> str | None:
    """The exact string sent to ``platform_code`` for ``key`` (hashed where it hashes), or None if unusable.

    ``key`` is one of KEYS, or ``dob_year`` / ``dob_month`` / ``dob_day`` (given the raw date) for Meta.
    ``explain`` gives the reason for a None.
    """
    return explain(platform_code, key, raw_value, default_region=default_region).value


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


def _d(value: str) -> bytes:
    return sha256(value.encode()).digest()


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
        # zip_longest: a short row (missing trailing cells) must not shift or truncate the columns.
        columns = {key: cells for key, cells in zip(keys, zip_longest(*rows)) if key}  # noqa: B905
        return _prepare_columns(columns, len(rows), default_region)


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


# Stored keys, in a fixed order (the Member columns): SHA-256 digests, short codes hashed at send time, raw values.
DIGEST_KEYS: tuple[str, ...] = ("e", "eg", "eu", "et", "p", "pd", "fn", "ln", "fng", "lng", "ct")
CODE_KEYS: tuple[str, ...] = ("fi", "st", "dob", "g")
RAW_KEYS: tuple[str, ...] = ("z", "zg", "c", "x", "m")
STORED_KEYS: tuple[str, ...] = DIGEST_KEYS + CODE_KEYS + RAW_KEYS

# The person key: which identifier says who a member is across imports (docs/sync.md). The audience's choice comes
# first; a row without it falls back in this order, then to its name and address.
PERSON_KEYS: tuple[str, ...] = ("external_id", "email", "phone", "maid")
PERSON_KEY_LABELS = {"external_id": "External ID", "email": "Email", "phone": "Phone", "maid": "Mobile advertiser ID"}
_PERSON_STORED = {"external_id": "x", "email": "e", "phone": "p", "maid": "m"}
PERSON_BYTES = 12


def person_order(person_key: str | None) -> tuple[str, ...]:
    """The stored keys a person id is taken from, in order: the audience's person key, then the others."""
    first = _PERSON_STORED.get(person_key or "", "x")
    return (first, *[k for k in ("x", "e", "p", "m") if k != first])


def person_id(stored: Mapping[str, object], order: tuple[str, ...]) -> bytes | None:
    """A member's identity: 12 bytes, the kind of key it comes from (one letter) and 11 bytes of its digest.
    None for a record with no identifying key at all."""
    for key in order:
        value = stored.get(key)
        if value is None:
            continue
        if value.__class__ is bytes:  # e, p: already a digest
            return key.encode() + value[:11]
        return key.encode() + sha256(value.encode()).digest()[:11]
    if "fn" in stored and "ln" in stored:
        parts = [stored["fn"], stored["ln"], str(stored.get("z") or "").encode(), stored.get("ct") or b"",
                 str(stored.get("dob") or "").encode()]
        return b"n" + sha256(b"\x1f".join(parts)).digest()[:11]
    return None


def fingerprint(stored: Mapping[str, object]) -> str:
    """A digest of a member's whole record (same stored keys and values -> same fingerprint)."""
    parts = []
    for k in STORED_KEYS:
        v = stored.get(k)
        if v is not None:
            parts.append(k.encode())
            parts.append(v if v.__class__ is bytes else str(v).encode())
    return sha256(b"\x1f".join(parts)).hexdigest()


def _hex(digest: bytes) -> str:
    return digest.hex()


@lru_cache(maxsize=1 << 12)
def _h_code(value: str) -> str:
    return _h(value)


def _b64_digest(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def _dob_year(dob: str) -> str:
    return _h_code(dob[:4])


def _dob_month(dob: str) -> str:
    return _h_code(dob[4:6])


def _dob_day(dob: str) -> str:
    return _h_code(dob[6:])


_ENCODERS = {
    HEX: _hex,
    RAW: None,
    SHA_LOWER: _h_lower,
    SHA_ZIP: _h_meta_zip,
    SHA: _h_cached,
    B64: _b64_digest,
    DOB_YEAR: _dob_year,
    DOB_MONTH: _dob_month,
    DOB_DAY: _dob_day,
}


def match_keys_of(platform_code: str) -> Mapping[str, tuple[tuple[str, ...], str]]:
    """A platform's match-key table, as its adapter declares it: output key -> (stored keys, first present wins;
    encoding). Raises ValueError for an unknown platform."""
    from platforms.adapters.registry import get_adapter_class
    from platforms.errors import UnknownPlatform

    try:
        return get_adapter_class(platform_code).match_keys
    except UnknownPlatform:
        raise ValueError(f"unknown platform {platform_code!r}") from None


def platform_codes() -> tuple[str, ...]:
    from platforms.adapters.registry import all_adapter_classes

    return tuple(all_adapter_classes())


def _compile_platform_values_slow(code: str, table):
    """Straight-line code for one platform, generated from its table: any subset of stored keys."""
    namespace: dict = {}
    lines = [f"def platform_values_{code}_slow(stored):", "    get = stored.get", "    out = {}"]
    for out_key, (sources, encoding) in table.items():
        lines.append(f"    v = get({sources[0]!r})")
        for source in sources[1:]:
            lines.append(f"    if v is None: v = get({source!r})")
        encoder = _ENCODERS[encoding]
        if encoder is None:
            lines.append(f"    if v is not None: out[{out_key!r}] = v")
        else:
            namespace[f"enc_{encoding}"] = encoder
            lines.append(f"    if v is not None: out[{out_key!r}] = enc_{encoding}(v)")
    lines.append("    return out")
    exec("\n".join(lines), namespace)  # noqa: S102 - source built from the adapters' declared tables
    return namespace[f"platform_values_{code}_slow"]


def _compile_platform_values(code: str, table):
    """The per-member function the sync calls (once per member per sync), generated from the platform's table.

    Fast path: a member with every key the platform takes (the common case for a full file) is one dict
    display with constant keys (the dict is built presized, in one step). A missing key raises KeyError
    before anything is built and the member goes the slow, key-by-key way. Same result, same key order.
    """
    slow = _compile_platform_values_slow(code, table)
    namespace: dict = {"slow": slow}
    items = []
    for out_key, (sources, encoding) in table.items():
        value = f"stored[{sources[-1]!r}]"
        for source in reversed(sources[:-1]):  # first present wins
            value = f"(stored[{source!r}] if {source!r} in stored else {value})"
        encoder = _ENCODERS[encoding]
        if encoder is not None:
            namespace[f"enc_{encoding}"] = encoder
            value = f"enc_{encoding}({value})"
        items.append(f"{out_key!r}: {value}")
    lines = [
        f"def platform_values_{code}(stored):",
        "    try:",
        f"        return {{{', '.join(items)}}}",
        "    except KeyError:",
        "        return slow(stored)",
    ]
    exec("\n".join(lines), namespace)  # noqa: S102 - source built from the adapters' declared tables
    fast = namespace[f"platform_values_{code}"]
    fast.slow = slow
    return fast


_PLATFORM_VALUES: dict = {}


def values_function(platform_code: str):
    """The compiled ``platform_values`` of one platform (built once per process)."""
    build = _PLATFORM_VALUES.get(platform_code)
    if build is None:
        build = _PLATFORM_VALUES[platform_code] = _compile_platform_values(platform_code, match_keys_of(platform_code))
    return build


def platform_values(platform_code: str, stored: Mapping[str, object]) -> dict[str, str]:
    """One member as ``platform_code``'s adapter receives it: {output key: exact value to send}.

    Only keys the platform takes (``accepted_keys``), only those the member has, in the table's order.
    """
    return values_function(platform_code)(stored)


def accepted_keys(platform_code: str) -> tuple[str, ...]:
    """The output keys (platform_values names) ``platform_code`` takes."""
    return tuple(match_keys_of(platform_code))


def coverage_keys(stored: Mapping[str, str]) -> tuple[str, ...]:
    """The match keys (KEYS names) a member carries, for the audience's key coverage counts."""
    return tuple(key for key, short in _COVERAGE if short in stored)


# Compiled tables, built once per process and small: never emptied.
_BUILT_ONCE = frozenset({"_plan", "_plan_for_cc", "_country_tables"})


def clear_value_caches() -> None:
    """Empty every per-value cache (lru_cache functions and column caches), not the compiled phone plans and
    country tables. The importer calls it when its memory budget is reached; benchmarks between passes."""
    for name, obj in list(globals().items()):
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
