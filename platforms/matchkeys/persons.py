"""Who a member is: the person key and the person id taken from a stored record, and the record's fingerprint."""

from __future__ import annotations

from collections.abc import Mapping
from hashlib import sha256

from .keys import STORED_KEYS

# The person key: which identifier says who a member is across imports (docs/sync.md). The audience's choice comes
# first; a row without it falls back in this order, then to its name and address.
PERSON_KEYS: tuple[str, ...] = ("external_id", "email", "phone", "maid")
PERSON_KEY_LABELS = {"external_id": "External ID", "email": "Email", "phone": "Phone", "maid": "Mobile advertiser ID"}
_PERSON_STORED = {"external_id": "x", "email": "e", "phone": "p", "maid": "m"}
PERSON_BYTES = 12


def person_order(person_key: str | None) -> tuple[str, ...]:
    """The stored keys a person id is taken from, in order: the audience's person key, then the others."""
    first = _PERSON_STORED.get(person_key or "", "x")
    return (first, *[k for k in ("x", "e", "p", "m") if k != first])


def person_id(stored: Mapping[str, object], order: tuple[str, ...]) -> bytes | None:
    """A member's identity: 12 bytes, the kind of key it comes from (one letter) and 11 bytes of its digest.
    None for a record with no identifying key at all."""
    for key in order:
        value = stored.get(key)
        if value is None:
            continue
        if value.__class__ is bytes:  # e, p: already a digest
            return key.encode() + value[:11]
        return key.encode() + sha256(value.encode()).digest()[:11]
    if "fn" in stored and "ln" in stored:
        parts = [stored["fn"], stored["ln"], str(stored.get("z") or "").encode(), stored.get("ct") or b"",
                 str(stored.get("dob") or "").encode()]
        return b"n" + sha256(b"\x1f".join(parts)).digest()[:11]
    return None


def fingerprint(stored: Mapping[str, object]) -> str:
    """A digest of a member's whole record (same stored keys and values -> same fingerprint)."""
    parts = []
    for k in STORED_KEYS:
        v = stored.get(k)
        if v is not None:
            parts.append(k.encode())
            parts.append(v if v.__class__ is bytes else str(v).encode())
    return sha256(b"\x1f".join(parts)).hexdigest()
