"""The one-value forms: ``normalize`` (the normalized string before hashing), ``prepare`` (the exact value sent
to a platform) and ``explain`` (that value, or why there is none). They go through the same code as a row."""

from __future__ import annotations

from .addresses import _google_postal, _meta_zip, _norm_country, _norm_postal, _norm_state
from .dates import _norm_dob
from .emails import _google_email, _norm_email, _tiktok_email, _uid2_email
from .encodings import SHA_LOWER, SHA_ZIP
from .gender import _norm_gender
from .ids import _norm_external_id, _norm_maid
from .keys import KEY_LABELS
from .names import _GOOGLE_FAMILY, _GOOGLE_GIVEN, _google_name, _norm_initial, _norm_name
from .phones import _norm_phone
from .platform_tables import match_keys_of, platform_values
from .records import prepare_record
from .reject import _Reject


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
