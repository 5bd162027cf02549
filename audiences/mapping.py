"""The column mapping and the person key of an import: what a column may be mapped to, the rules a mapping must
follow, which key says who a member is, and the mapping a re-import starts from (the audience's last one).
audiences/imports.py re-exports these; the mapping page and the import_audience command call them there."""

from __future__ import annotations

from audiences import hashed, sniffing
from audiences.models import Audience, ImportJob
from audiences.sniffing import Sniffed, column_label
from audiences.uploads import UnusableFile
from platforms import matchkeys

# What a column may be mapped to: the match keys, and the already-hashed forms of some.
MAPPING_KEYS: tuple[str, ...] = (*matchkeys.KEYS, *hashed.KEYS)



def key_label(key: str) -> str:
    """A mapping key in words ("Email", "Email (already hashed)")."""
    return hashed.LABELS.get(key) or matchkeys.KEY_LABELS.get(key, key)


def initial_mapping(audience: Audience, sniffed: Sniffed) -> dict[str, str]:
    """The mapping a file starts from: the audience's last mapping where the headers match (a re-import), else
    the guess from headers and values."""
    mapping = sniffed.mapping
    if audience.last_mapping:
        mapping = sniffing.remembered_mapping(sniffed.headers, audience.last_mapping, mapping)
    return {str(i): mapping.get(str(i), "") for i in range(len(sniffed.headers))}


def clean_mapping(job: ImportJob, mapping: dict[str, str]) -> dict[str, str]:
    """Validate {str(index): key or ""}; UnusableFile if nothing maps, ValueError on a bad or doubled key (a key
    and its already-hashed form count as one)."""
    cleaned, used = {}, {}
    for index in range(len(job.headers)):
        key = (mapping.get(str(index)) or "").strip()
        if key and key not in MAPPING_KEYS:
            raise ValueError(f"{column_label(job.headers, index)}: unknown match key {key!r}")
        base = hashed.base_key(key)
        if key and base in used:
            raise ValueError(
                f"{matchkeys.KEY_LABELS[base]} is mapped twice ({column_label(job.headers, used[base])} and "
                f"{column_label(job.headers, index)}); map it to one column."
            )
        if key:
            used[base] = index
        cleaned[str(index)] = key
    if not used:
        raise UnusableFile("No column is mapped to a match key: map at least one column (email, phone, ...).")
    return cleaned


def mapped_person_keys(mapping: dict[str, str]) -> list[str]:
    """The person keys a mapping offers (a column maps to the key or its already-hashed form), in PERSON_KEYS order."""
    present = {hashed.base_key(key) for key in mapping.values() if key}
    return [key for key in matchkeys.PERSON_KEYS if key in present]


def clean_person_key(mapping: dict[str, str], person_key: str) -> str:
    """ValueError unless ``person_key`` is a person key some column maps to."""
    if person_key not in matchkeys.PERSON_KEYS:
        raise ValueError(f"unknown person key {person_key!r} (one of {', '.join(matchkeys.PERSON_KEYS)})")
    if person_key not in mapped_person_keys(mapping):
        raise ValueError(f"No column is mapped to {matchkeys.PERSON_KEY_LABELS[person_key]}, so it cannot say who a "
                         "member is. Map a column to it, or choose another person key.")
    return person_key


def default_person_key(keys) -> str:
    """The person key a file suggests: its external id column when it has one, else email, else phone, else
    the mobile advertiser id (a column already hashed counts as its key)."""
    present = {hashed.base_key(key) for key in (keys.values() if isinstance(keys, dict) else keys) if key}
    for key in matchkeys.PERSON_KEYS:
        if key in present:
            return key
    return "email"


def person_key_of(order: tuple[str, ...]) -> str:
    return {"x": "external_id", "e": "email", "p": "phone", "m": "maid"}[order[0]]


def mapping_by_header(job: ImportJob) -> dict[str, str]:
    """The job's mapping by column header, "" for a column left out (what a re-import starts from)."""
    return {column_label(job.headers, int(index)): key or "" for index, key in job.column_mapping.items()}
