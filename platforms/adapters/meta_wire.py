"""The Meta adapter's wire side: the multi-key payload of a users request, the form encoding of its body (done with
C string methods, equal to urlencode's), and the reading of Meta's answers (batch counts, usage headers, token
dates, messages with tokens masked). The adapter, ``platforms/adapters/meta.py``, calls the Graph API through the
SDK and translates its errors; the limits quoted there apply here."""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Mapping, Sequence
from urllib.parse import quote_plus

import requests

from platforms.adapters.base import BatchResult, PreparedMember, TokenExpiry
from platforms.errors import AuthError

# Our match-key name -> Meta's multi-key schema name, in the fixed column order we send.
SCHEMA_KEYS: tuple[tuple[str, str], ...] = (
    ("email", "EMAIL"),
    ("phone", "PHONE"),
    ("gender", "GEN"),
    ("dob_year", "DOBY"),
    ("dob_month", "DOBM"),
    ("dob_day", "DOBD"),
    ("last_name", "LN"),
    ("first_name", "FN"),
    ("first_initial", "FI"),
    ("city", "CT"),
    ("state", "ST"),
    ("postal_code", "ZIP"),
    ("country", "COUNTRY"),
    ("maid", "MADID"),
    ("external_id", "EXTERN_ID"),
)
DEFAULT_RETRY_AFTER = 60.0


# quote_plus, done with C string methods: member payloads are megabytes of hex digits and JSON punctuation, and
# urllib quotes them one byte at a time in Python (half a second per 10,000-member batch, more than the rest
# of the request). The result is identical to urlencode's; anything outside the expected alphabet falls back.
_FORM_ESCAPES = (("%", "%25"), ("+", "%2B"), (" ", "+"), ('"', "%22"), (",", "%2C"), (":", "%3A"),
                 ("[", "%5B"), ("]", "%5D"), ("{", "%7B"), ("}", "%7D"), ("/", "%2F"), ("=", "%3D"), ("&", "%26"))
_FORM_SAFE = re.compile(r"[A-Za-z0-9_.~%+\-]*")


def form_quote(value: str) -> str:
    quoted = value
    for char, escape in _FORM_ESCAPES:
        if char in quoted:
            quoted = quoted.replace(char, escape)
    return quoted if _FORM_SAFE.fullmatch(quoted) else quote_plus(value)


def form_encode(fields: Mapping) -> str:
    """``urllib.parse.urlencode(fields)`` for str / int / float values, as requests would send them."""
    return "&".join(
        f"{form_quote(str(key))}={form_quote(value if isinstance(value, str) else str(value))}"
        for key, value in fields.items()
        if value is not None
    )


class _FastFormSession(requests.Session):
    """The SDK's requests session, with form bodies encoded by ``form_encode`` instead of urllib."""

    @classmethod
    def replacing(cls, original: requests.Session) -> _FastFormSession:
        session = cls()
        session.verify = original.verify
        session.params.update(original.params)
        session.proxies.update(original.proxies)
        return session

    def request(self, method, url, data=None, **kwargs):
        plain = isinstance(data, Mapping) and all(isinstance(v, (str, int, float)) or v is None for v in data.values())
        if data and plain and not kwargs.get("files"):
            data = form_encode(data)
            headers = dict(kwargs.pop("headers", None) or {})
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
            kwargs["headers"] = headers
        return super().request(method, url, data=data, **kwargs)


def build_payload(batch: Sequence[PreparedMember]) -> dict:
    """Meta's multi-key payload: the schema columns present in this batch (fixed order), one row per member,
    an empty string where a member lacks a column. Values go as given (already hashed where Meta hashes)."""
    present = set().union(*(member.keys() for member in batch))
    unknown = present - {key for key, _ in SCHEMA_KEYS}
    if unknown:
        raise ValueError(f"Meta has no schema column for {', '.join(sorted(unknown))}")
    columns = [(key, meta) for key, meta in SCHEMA_KEYS if key in present]
    return {
        "schema": [meta for _, meta in columns],
        "data": [[str(member.get(key) or "") for key, _ in columns] for member in batch],
    }


def token_expiry_of(info: dict) -> TokenExpiry | None:
    """debug_token's dates as the connection's expiry: the earlier of the token's and data access's (0: never)."""
    if info and info.get("is_valid") is False:
        raise AuthError("Meta: the access token is no longer valid (debug_token says so). Sign in again or paste a "
                        "new access token.")
    dates = []
    for key, what in (("expires_at", "access token"), ("data_access_expires_at", "data access")):
        value = _as_int(info.get(key)) or 0
        if value > 0:
            dates.append((value, what))
    if not dates:
        return None
    value, what = min(dates)
    renewable = what == "access token" and str(info.get("type") or "").upper() == "USER"
    return TokenExpiry(datetime.datetime.fromtimestamp(value, tz=datetime.UTC), what=what, renewable=renewable,
                       source="debug_token")


def _batch_result(body: dict, *, sent: int) -> BatchResult:
    received = _as_int(body.get("num_received"))
    invalid = _as_int(body.get("num_invalid_entries")) or 0
    messages = []
    if invalid:
        # invalid_entry_samples maps sample values (hashes, possibly raw input) to reasons: keep only the reasons.
        samples = body.get("invalid_entry_samples") or {}
        reasons = sorted({str(reason) for reason in samples.values()}) if isinstance(samples, dict) else []
        messages.append(f"Meta rejected {invalid} row(s)" + (f": {'; '.join(reasons)}" if reasons else "."))
    return BatchResult(received=sent if received is None else received, invalid=invalid, messages=tuple(messages))


def _retry_after(headers) -> float:
    """Seconds until Meta lifts a throttle, from its usage headers; our default when it does not say."""
    waits: list[float] = []
    headers = headers or {}
    buc = _header_json(headers, "x-business-use-case-usage")
    if isinstance(buc, dict):
        for entries in buc.values():
            for entry in entries if isinstance(entries, list) else [entries]:
                if isinstance(entry, dict) and entry.get("estimated_time_to_regain_access") is not None:
                    waits.append(float(entry["estimated_time_to_regain_access"]) * 60)  # minutes
    account = _header_json(headers, "x-ad-account-usage")
    if isinstance(account, dict):
        if account.get("estimated_time_to_regain_access") is not None:
            waits.append(float(account["estimated_time_to_regain_access"]) * 60)
        elif account.get("reset_time_duration") is not None:
            waits.append(float(account["reset_time_duration"]))  # seconds
    waits = [w for w in waits if w > 0]
    return max(waits) if waits else DEFAULT_RETRY_AFTER


def _header_json(headers, name: str):
    value = None
    for key, candidate in dict(headers).items():
        if key.lower() == name:
            value = candidate
            break
    if not value:
        return None
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return None


def _status_text(value) -> str:
    if isinstance(value, dict):
        return str(value.get("description") or value.get("code") or "")
    return str(value or "")


def _as_int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


_TOKENISH = re.compile(r"(access_token|appsecret_proof)=[^&\s]+")


def _clean_message(message) -> str:
    """Meta's own words, with any token-looking query parameter masked (belt and braces)."""
    return _TOKENISH.sub(r"\1=…", str(message or "")).strip()
