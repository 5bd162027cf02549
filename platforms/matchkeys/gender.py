"""Gender: "m" / "f" from the words files use for them, in several languages."""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from .reject import _Reject

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
