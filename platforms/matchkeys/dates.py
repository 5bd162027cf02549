"""Date of birth: YYYYMMDD from the formats real files carry; ambiguous numeric dates by the region's convention."""

from __future__ import annotations

import datetime as _dt
import re
import time as _time
from functools import lru_cache

from .reject import _Reject

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
