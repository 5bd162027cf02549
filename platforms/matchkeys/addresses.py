"""State / region (US states and Canadian provinces as their codes), postal code (stored, Google's ZIP+4 and
Meta's forms) and country (ISO 3166-1 alpha-2)."""

from __future__ import annotations

import re
from functools import lru_cache

from .names import _letters
from .reject import _Reject

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
