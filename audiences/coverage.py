"""What an audience's members carry: members per match key, and members each platform can use by the keys it takes
(``Audience.key_coverage`` / ``platform_coverage``, computed by every import in one aggregate query)."""

from __future__ import annotations

from django.db.models import Count, Q

from audiences.models import Member
from platforms import matchkeys

# Keys that, beside a first and last name, let a platform match a person on a name: any one of them where the platform
# takes them (Meta); a platform whose composite has none of the optional ones matches on the full address only
# (Google: first and last name, country and postal code, all four).
_NAME_DETAILS = frozenset({"city", "dob_year", "dob_month", "dob_day"})


def _present(adapter, key: str) -> Q:
    """The member carries a value for ``key`` in any column the platform's chain reads."""
    condition = Q()
    for column in adapter.match_keys[key][0]:
        condition |= Q(**{f"{column}__isnull": False})
    return condition


def _usable(adapter) -> Q | None:
    """Members the platform can match: one of its identifier keys, or its name-and-address composite."""
    condition = Q()
    for key in adapter.identifier_keys:
        condition |= _present(adapter, key)
    composite = [key for key in adapter.composite_identifier if key in adapter.match_keys]
    if {"first_name", "last_name"} <= set(composite):
        names = _present(adapter, "first_name") & _present(adapter, "last_name")
        details = [key for key in composite if key not in ("first_name", "last_name", "first_initial", "country",
                                                            "state", "gender")]
        if _NAME_DETAILS & set(composite):  # a name with any one detail
            any_detail = Q()
            for key in details:
                any_detail |= _present(adapter, key)
            condition |= names & any_detail
        else:  # the whole address
            for key in composite:
                names &= _present(adapter, key)
            condition |= names
    return condition or None


def key_coverage(audience_id: int) -> tuple[dict[str, int], dict[str, int]]:
    """(members carrying each match key, members each platform can use by the keys it takes), in one query."""
    from platforms.adapters.registry import all_adapter_classes

    members = Member.objects.filter(audience_id=audience_id)
    aggregates = {key: Count("person", filter=Q(**{f"{short}__isnull": False})) for key, short in matchkeys._COVERAGE}
    aggregates["name_zip"] = Count("person", filter=Q(fn__isnull=False, ln__isnull=False, z__isnull=False))
    usable = {code: _usable(adapter) for code, adapter in all_adapter_classes().items()}
    counts = members.aggregate(**aggregates, **{f"platform_{code}": Count("person", filter=q)
                                                for code, q in usable.items() if q is not None})
    coverage = {key: counts[key] for key in [*(k for k, _ in matchkeys._COVERAGE), "name_zip"] if counts[key]}
    platforms = {code: counts.get(f"platform_{code}") or 0 for code in usable}
    return coverage, platforms
