"""The structure docs/architecture.md describes, checked: product code never imports tests, the sync engine names
no platform (what differs is asked of the adapter)."""

from __future__ import annotations

import re
from pathlib import Path

from platforms.adapters.registry import all_adapter_classes

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("activation_manager", "platforms", "credentials", "audiences", "syncs", "sandbox", "alerts", "bench")


def product_files():
    for package in PRODUCT:
        yield from (path for path in (ROOT / package).rglob("*.py") if "migrations" not in path.parts)


def test_no_product_module_imports_the_tests():
    offenders = [str(path.relative_to(ROOT)) for path in product_files()
                 if re.search(r"^\s*(from|import)\s+tests\b", path.read_text(), re.M)]
    assert offenders == []


def test_the_sync_engine_names_no_platform():
    words = set()
    for adapter in all_adapter_classes().values():
        words |= {adapter.code.lower(), *adapter.name.lower().replace("(", " ").replace(")", " ").split()}
    words -= {"the", "api", "ads", "data", "manager", "desk", "trade"}  # ordinary words in platform names
    engine = ROOT / "syncs" / "engine"
    found = {}
    for path in engine.glob("*.py"):
        text = re.sub(r"_meta\b", "", path.read_text().lower())
        hits = sorted(word for word in words if re.search(rf"\b{re.escape(word)}\b", text))
        if hits:
            found[path.name] = hits
    assert found == {}
