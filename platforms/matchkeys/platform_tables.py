"""Each platform's match-key table (declared by its adapter) and ``platform_values``: the function, generated
from the table once per process, that turns a stored record into what the platform receives."""

from __future__ import annotations

from collections.abc import Mapping

from .encodings import _ENCODERS


def match_keys_of(platform_code: str) -> Mapping[str, tuple[tuple[str, ...], str]]:
    """A platform's match-key table, as its adapter declares it: output key -> (stored keys, first present wins;
    encoding). Raises ValueError for an unknown platform."""
    from platforms.adapters.registry import get_adapter_class
    from platforms.errors import UnknownPlatform

    try:
        return get_adapter_class(platform_code).match_keys
    except UnknownPlatform:
        raise ValueError(f"unknown platform {platform_code!r}") from None


def platform_codes() -> tuple[str, ...]:
    from platforms.adapters.registry import all_adapter_classes

    return tuple(all_adapter_classes())


def _compile_platform_values_slow(code: str, table):
    """Straight-line code for one platform, generated from its table: any subset of stored keys."""
    namespace: dict = {}
    lines = [f"def platform_values_{code}_slow(stored):", "    get = stored.get", "    out = {}"]
    for out_key, (sources, encoding) in table.items():
        lines.append(f"    v = get({sources[0]!r})")
        for source in sources[1:]:
            lines.append(f"    if v is None: v = get({source!r})")
        encoder = _ENCODERS[encoding]
        if encoder is None:
            lines.append(f"    if v is not None: out[{out_key!r}] = v")
        else:
            namespace[f"enc_{encoding}"] = encoder
            lines.append(f"    if v is not None: out[{out_key!r}] = enc_{encoding}(v)")
    lines.append("    return out")
    exec("\n".join(lines), namespace)  # noqa: S102 - source built from the adapters' declared tables
    return namespace[f"platform_values_{code}_slow"]


def _compile_platform_values(code: str, table):
    """The per-member function the sync calls (once per member per sync), generated from the platform's table.

    Fast path: a member with every key the platform takes (the common case for a full file) is one dict
    display with constant keys (the dict is built presized, in one step). A missing key raises KeyError
    before anything is built and the member goes the slow, key-by-key way. Same result, same key order.
    """
    slow = _compile_platform_values_slow(code, table)
    namespace: dict = {"slow": slow}
    items = []
    for out_key, (sources, encoding) in table.items():
        value = f"stored[{sources[-1]!r}]"
        for source in reversed(sources[:-1]):  # first present wins
            value = f"(stored[{source!r}] if {source!r} in stored else {value})"
        encoder = _ENCODERS[encoding]
        if encoder is not None:
            namespace[f"enc_{encoding}"] = encoder
            value = f"enc_{encoding}({value})"
        items.append(f"{out_key!r}: {value}")
    lines = [
        f"def platform_values_{code}(stored):",
        "    try:",
        f"        return {{{', '.join(items)}}}",
        "    except KeyError:",
        "        return slow(stored)",
    ]
    exec("\n".join(lines), namespace)  # noqa: S102 - source built from the adapters' declared tables
    fast = namespace[f"platform_values_{code}"]
    fast.slow = slow
    return fast


_PLATFORM_VALUES: dict = {}


def values_function(platform_code: str):
    """The compiled ``platform_values`` of one platform (built once per process)."""
    build = _PLATFORM_VALUES.get(platform_code)
    if build is None:
        build = _PLATFORM_VALUES[platform_code] = _compile_platform_values(platform_code, match_keys_of(platform_code))
    return build


def platform_values(platform_code: str, stored: Mapping[str, object]) -> dict[str, str]:
    """One member as ``platform_code``'s adapter receives it: {output key: exact value to send}.

    Only keys the platform takes (``accepted_keys``), only those the member has, in the table's order.
    """
    return values_function(platform_code)(stored)


def accepted_keys(platform_code: str) -> tuple[str, ...]:
    """The output keys (platform_values names) ``platform_code`` takes."""
    return tuple(match_keys_of(platform_code))
