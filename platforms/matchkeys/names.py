"""First and last names, first initial and city: letters only (the stored form), and Google's given / family name
form (Data Manager)."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from .reject import _Reject

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
