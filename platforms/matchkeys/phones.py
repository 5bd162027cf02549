"""Phone numbers: E.164, through a precompiled fast path for the common shapes (identical to phonenumbers'
answer, tested against it) and phonenumbers itself for the rest."""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
from phonenumbers import phonenumberutil as _pnu

from .reject import _Reject

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
