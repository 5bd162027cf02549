"""Columns already hashed by the marketer: SHA-256 hex digests of emails or phone numbers.

A digest cannot be normalized again, so it can only stand for the plain form of its key as stored:

- ``email_sha256`` is stored as ``e``, the digest of the trimmed, lowercased address. The platforms that read
  their own form of an address first (Google: no dots or "+suffix" in a gmail.com local part, ``eg``; UID2 for The
  Trade Desk, ``eu``; TikTok: no "+suffix", ``et``) fall back to ``e``: they get the digest as given, and the
  mapping page says that such addresses may not match there.
- ``phone_sha256`` is stored as ``p``, the digest of the number in E.164 with its "+" (Google, TikTok, The Trade
  Desk, Netflix). Meta hashes the number without the "+" (``pd``), which cannot be made from a digest: Meta gets no
  phone for these members, and the page says so.

The person key then uses that digest (``matchkeys.person_id`` reads ``e`` / ``p``), so a member identified by a
plain email in one import and by its digest in the next is the same person.
"""

from __future__ import annotations

import re
from hashlib import sha256

from platforms import matchkeys

# Mapping key -> (the match key it stands for, the stored key it fills).
KEYS: dict[str, tuple[str, str]] = {"email_sha256": ("email", "e"), "phone_sha256": ("phone", "p")}
LABELS = {"email_sha256": "Email (already hashed)", "phone_sha256": "Phone (already hashed)"}
# What the digest must be the SHA-256 of, for the help text.
EXPECTED_FORM = {
    "email_sha256": "the address trimmed and lowercased (zoe@example.com)",
    "phone_sha256": "the number in E.164 with its “+” (+33612345678)",
}
_DIGEST = re.compile(r"[0-9a-f]{64}")
_EMPTY_DIGEST = sha256(b"").hexdigest()
NOT_A_DIGEST = "not a SHA-256 hash (64 hexadecimal characters)"
DIGEST_OF_NOTHING = "the hash of an empty value"
# Words in a header that say its values are hashed.
_HASH_WORDS = re.compile(r"sha[-_ ]?256|hashed|hash|(?<![a-z])sha(?![a-z])", re.IGNORECASE)

# What a platform does to a key before hashing that a digest cannot undergo, by the stored key its table reads
# first (the platforms' normalization, docs/platforms.md).
_OWN_FORMS = {
    "eg": "removes the dots and any “+suffix” from gmail.com and googlemail.com addresses before hashing",
    "eu": "(UID2) removes the dots and any “+suffix” from gmail.com addresses before hashing",
    "et": "removes any “+suffix” from an address before hashing",
}
_OTHER_FORMS = {"pd": "the hash of the number without its “+” (33612345678)"}


def base_key(key: str) -> str:
    """The match key a mapping key stands for ("email_sha256" -> "email")."""
    return KEYS[key][0] if key in KEYS else key


def is_digest(value: str) -> bool:
    return len(value) == 64 and _DIGEST.fullmatch(value.lower()) is not None


def guess_key(header: str, values: list[str]) -> str | None:
    """The mapping key of a column from its header and its first values: the already-hashed form of email or phone
    when the header says so ("email_sha256", "hashed_phone") or every value is a SHA-256 digest."""
    plain = matchkeys.guess_key(header)
    digests = bool(values) and all(is_digest(value.strip()) for value in values)
    says_hashed = _HASH_WORDS.search(header or "") is not None
    if digests or says_hashed:
        named = plain or matchkeys.guess_key(_HASH_WORDS.sub("", header or ""))
        hashed = f"{named}_sha256"
        if hashed in KEYS:
            return hashed  # values that are not digests are dropped, each with its reason
        if digests:
            # An external id may well be a digest (taken as it is); digests of a name or a city cannot be used.
            return plain if plain == "external_id" else None
    return plain


def column(cells) -> list:
    """Per cell: None (empty), the 32-byte digest, or the reason the value is dropped (a str)."""
    out = []
    append = out.append
    for value in cells:
        if not value or not (value := value.strip()):
            append(None)
            continue
        value = value.lower()
        if len(value) != 64 or _DIGEST.fullmatch(value) is None:
            append(NOT_A_DIGEST)
        elif value == _EMPTY_DIGEST:
            append(DIGEST_OF_NOTHING)
        else:
            append(bytes.fromhex(value))
    return out


def platform_notes(key: str, platform_codes) -> list[tuple[str, str]]:
    """(platform name, what happens to this already-hashed key there) for each platform where it cannot follow the
    platform's own rule; platforms that take the digest as it is, or do not take the key at all, say nothing."""
    from platforms.adapters.registry import get_adapter_class

    match_key, stored = KEYS[key]
    notes = []
    for code in platform_codes:
        adapter = get_adapter_class(code)
        entry = adapter.match_keys.get(match_key)
        if entry is None:
            continue
        sources = entry[0]
        if stored not in sources:
            form = _OTHER_FORMS.get(sources[0], "another form of it")
            notes.append((adapter.name, f"cannot use it: {adapter.name} takes {form}, which cannot be made from a "
                                        "hash."))
        elif sources[0] != stored and sources[0] in _OWN_FORMS:
            notes.append((adapter.name, f"gets the hash as given: {adapter.name} {_OWN_FORMS[sources[0]]}, which "
                                        "cannot be done to a hash, so such addresses may not match."))
    return notes


def take_columns(chunk: list, results: list, hashed_columns: list[tuple[int, str, str]]) -> None:
    """Put a chunk's already-hashed columns' digests into its prepared records (or their problems).
    ``hashed_columns``: (column index, match key, stored key)."""
    for index, key, stored_key in hashed_columns:
        entries = column([cells[index] if index < len(cells) else None for cells in chunk])
        for record, entry in zip(results, entries, strict=True):
            if entry is None:
                continue
            if entry.__class__ is bytes:
                record.stored[stored_key] = entry
            else:
                record.rejections.append((key, entry))
