"""External ids (trimmed, at most 256 characters) and mobile advertiser ids (IDFA / GAID as a lowercase UUID)."""

from __future__ import annotations

import re
import unicodedata

from .reject import _Reject


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
