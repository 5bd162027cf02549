"""SHA-256, as hex (``_h``, with a cached form for values that repeat) or as the 32-byte digest stored (``_d``)."""

from __future__ import annotations

from functools import lru_cache
from hashlib import sha256


def _h(value: str) -> str:
    return sha256(value.encode()).hexdigest()


_h_cached = lru_cache(maxsize=1 << 16)(_h)


def _d(value: str) -> bytes:
    return sha256(value.encode()).digest()
