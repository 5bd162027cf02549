"""How a stored value becomes the value sent: the encodings an adapter's ``match_keys`` table names, and their
functions (``_ENCODERS``), used by the compiled ``platform_values``."""

from __future__ import annotations

import base64
from functools import lru_cache

from .addresses import _meta_zip
from .hashing import _h, _h_cached

# How a stored value becomes the value sent (an adapter's ``match_keys`` names one per output key).
HEX = "hex"  # a stored digest, sent as lowercase hex
RAW = "raw"  # stored text, sent as is
SHA = "sha"  # stored text (a code or an id), sent as the SHA-256 hex of it
SHA_LOWER = "sha_lower"  # stored text, sent as the SHA-256 hex of its lowercase form
SHA_ZIP = "sha_zip"  # a stored postal code, sent as the SHA-256 hex of Meta's form (lowercase, no spaces/dashes)
B64 = "b64"  # a stored digest, sent as base64 of its bytes (The Trade Desk / UID2)
# A stored date YYYYMMDD, sent as the SHA-256 hex of its year, month or day.
DOB_YEAR, DOB_MONTH, DOB_DAY = "dob_year", "dob_month", "dob_day"


@lru_cache(maxsize=1 << 17)  # holds every 5-digit US ZIP: a US audience's sync stops hashing ZIPs once warm
def _h_meta_zip(stored_zip: str) -> str:
    return _h(stored_zip if stored_zip.isdigit() else _meta_zip(stored_zip))


@lru_cache(maxsize=1024)
def _h_lower(value: str) -> str:
    return _h(value.lower())


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
