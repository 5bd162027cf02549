"""Reads for the audience and mapping pages (and the sync preview): what each platform can use of an audience, what
became of each column's values, and what a mapping would do before anything is imported."""

from __future__ import annotations

from dataclasses import dataclass, field

from audiences import hashed
from audiences.models import Audience, ImportJob
from platforms import matchkeys

# Output keys in words, as the per-platform lines name them ("email or mobile advertiser ID").
_KEY_WORDS = {"email": "email", "phone": "phone", "maid": "mobile advertiser ID", "external_id": "external ID"}


def _adapter(code: str):
    from platforms.adapters.registry import get_adapter_class

    return get_adapter_class(code)


def platform_keys_text(code: str) -> str:
    """The keys a platform can tell a person by, in words: "email or mobile advertiser ID"; with "name and
    address" where it matches on a name with an address too."""
    adapter = _adapter(code)
    words = [_KEY_WORDS.get(key, key.replace("_", " ")) for key in adapter.identifier_keys]
    if adapter.composite_identifier:
        words.append("name and address")
    return ", ".join(words[:-1]) + (" or " if len(words) > 1 else "") + words[-1] if words else "nothing"


def platform_codes_for(owner) -> list[str]:
    """The platforms an owner has connected (by name), else every active platform: what the audience page and the
    mapping notes speak of."""
    from credentials.models import Connection
    from platforms.models import Platform

    connected = list(Connection.objects.filter(owner=owner).exclude(status=Connection.Status.DISCONNECTED)
                     .order_by("platform__name").values_list("platform__code", flat=True).distinct())
    codes = list(dict.fromkeys(connected)) or list(Platform.objects.filter(active=True).order_by("name")
                                                   .values_list("code", flat=True))
    known = set(matchkeys.platform_codes())
    return [code for code in codes if code in known]


@dataclass(frozen=True)
class PlatformCoverage:
    """How many of an audience's members one platform can use, by the keys it takes."""

    code: str
    name: str
    usable: int
    members: int
    keys: str  # "email or mobile advertiser ID"

    @property
    def share(self) -> int:
        return round(self.usable * 100 / self.members) if self.members else 0

    @property
    def unusable(self) -> int:
        return max(self.members - self.usable, 0)


def platform_usable(audience: Audience, code: str) -> PlatformCoverage:
    """What platform ``code`` can use of ``audience`` (``Audience.platform_coverage``, computed by each import): for
    the sync preview and the audience page."""
    adapter = _adapter(code)
    return PlatformCoverage(code=code, name=adapter.name, usable=(audience.platform_coverage or {}).get(code, 0),
                            members=audience.member_count or 0, keys=platform_keys_text(code))


def platform_coverage(audience: Audience, codes: list[str] | None = None) -> list[PlatformCoverage]:
    """``platform_usable`` for each of ``codes`` (default: the owner's connected platforms, else all)."""
    return [platform_usable(audience, code) for code in (codes if codes is not None else
                                                         platform_codes_for(audience.owner))]


# ---------------------------------------------------------------------------------------------------------
# Per column


@dataclass(frozen=True)
class ColumnCounts:
    """What became of one mapped column's values (values, one per row read)."""

    column: str
    key: str
    used: int
    dropped: list[tuple[str, int]]
    empty: int
    in_rejected_rows: int

    @property
    def dropped_total(self) -> int:
        return sum(count for _, count in self.dropped)

    @property
    def total(self) -> int:
        return self.used + self.dropped_total + self.empty + self.in_rejected_rows


def column_counts(job: ImportJob | None) -> list[ColumnCounts]:
    if job is None:
        return []
    return [ColumnCounts(column=c["column"], key=hashed.LABELS.get(c["key"]) or matchkeys.KEY_LABELS.get(c["key"],
                                                                                                          c["key"]),
                         used=c["used"], dropped=list(c["dropped"].items()), empty=c["empty"],
                         in_rejected_rows=c["in_rejected_rows"]) for c in job.column_counts or ()]


# ---------------------------------------------------------------------------------------------------------
# The mapping page


@dataclass(frozen=True)
class MissingColumn:
    """A column the audience's last import mapped that this file lacks or leaves unmapped."""

    header: str
    key: str  # label
    members: int  # members holding that key now: they lose it
    why: str  # "is not in this file" / "is not mapped" / "is mapped to Phone"
    person_key: bool  # the audience's members are identified by it


@dataclass
class MappingNotes:
    """What the mapping page says before anything is imported."""

    person_key: str
    fallback: str  # how rows lacking the person key are identified, in words
    reidentify: int = 0  # members re-identified by a change of person key (0: none)
    previous_person_key: str = ""
    missing: list[MissingColumn] = field(default_factory=list)
    # (column header, key label, what the digest must be of, [(platform, note)])
    hashed: list[tuple[str, str, str, list[tuple[str, str]]]] = field(default_factory=list)


_PERSON_WORDS = {"external_id": ("an", "external ID"), "email": ("an", "email address"),
                 "phone": ("a", "phone number"), "maid": ("a", "mobile advertiser ID")}
_NAME_AND_ADDRESS = "first and last name with postal code, city and date of birth"


def person_key_fallback(person_key: str, mapping: dict[str, str]) -> str:
    """The rule for rows without the person key, in words, naming only the keys this file has."""
    if person_key not in _PERSON_WORDS:  # no column identifies a person on its own
        return f"Each row is identified by its {_NAME_AND_ADDRESS}."
    present = {hashed.base_key(key) for key in mapping.values() if key}
    stored = {"x": "external_id", "e": "email", "p": "phone", "m": "maid"}
    fallbacks = [stored[k] for k in matchkeys.person_order(person_key)[1:] if stored[k] in present]
    article, word = _PERSON_WORDS[person_key]
    if fallbacks:
        then = ", then by its ".join(_PERSON_WORDS[key][1] for key in fallbacks)
        return f"A row without {article} {word} is identified by its {then}, and failing those by {_NAME_AND_ADDRESS}."
    return f"A row without {article} {word} is identified by its {_NAME_AND_ADDRESS}."


def mapping_notes(*, job: ImportJob, headers: list[str], mapping: dict[str, str], person_key: str,
                  platform_codes: list[str] | None = None) -> MappingNotes:
    """The person key's fallback rule, the members a change of person key re-identifies, the columns the last import
    mapped that this one would not (with the members holding that key), and per already-hashed column what each
    platform can do with it."""
    audience = job.audience
    notes = MappingNotes(person_key=person_key, fallback=person_key_fallback(person_key, mapping))
    members = audience.member_count or 0
    if members and audience.person_key and person_key != audience.person_key:
        notes.reidentify = members
        notes.previous_person_key = matchkeys.PERSON_KEY_LABELS.get(audience.person_key, audience.person_key)
    by_header = {header.strip().lower(): mapping.get(str(i), "") for i, header in enumerate(headers)}
    for header, key in (audience.last_mapping or {}).items():
        if not key or not members:
            continue
        now = by_header.get(header.strip().lower())
        if now == key:
            continue
        base = hashed.base_key(key)
        if now is None:
            why = "is not in this file"
        elif not now:
            why = "is not mapped"
        else:
            why = f"is mapped to {hashed.LABELS.get(now) or matchkeys.KEY_LABELS.get(now, now)}"
        if hashed.base_key(now or "") == base:
            continue  # the same key, plain or already hashed: nobody loses it
        notes.missing.append(MissingColumn(
            header=header, key=hashed.LABELS.get(key) or matchkeys.KEY_LABELS.get(key, key),
            members=(audience.key_coverage or {}).get(base, 0), why=why, person_key=base == audience.person_key))
    codes = platform_codes if platform_codes is not None else platform_codes_for(job.owner)
    for index, header in enumerate(headers):
        key = mapping.get(str(index), "")
        if key in hashed.KEYS:
            notes.hashed.append((header or f"column {index + 1}", hashed.LABELS[key], hashed.EXPECTED_FORM[key],
                                 hashed.platform_notes(key, codes)))
    return notes
