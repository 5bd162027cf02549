"""What the platforms' credential forms share (each form lives in its platform's adapter module): the identifier
validators, so that every form normalises ids the same way and adapters rely on one format."""

import re

from django import forms


def digits_id(value: str, *, field: str, length: int | None = None) -> str:
    cleaned = re.sub(r"[\s-]", "", value or "")
    if not cleaned.isdigit():
        raise forms.ValidationError(f"{field} must contain digits only (dashes and spaces are fine).")
    if length and len(cleaned) != length:
        raise forms.ValidationError(f"{field} must have exactly {length} digits; this one has {len(cleaned)}.")
    return cleaned


def alnum_id(value: str, field: str) -> str:
    value = (value or "").strip()
    if not re.fullmatch(r"[A-Za-z0-9]{3,40}", value):
        raise forms.ValidationError(f"{field} is 3 to 40 letters and digits, e.g. a1b2c3d.")
    return value


