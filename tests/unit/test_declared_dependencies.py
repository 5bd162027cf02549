"""Every third-party module the code imports comes from a distribution declared in pyproject.toml.

An undeclared import works on a machine where something else happened to install it (pycountry came in
through another package) and breaks on a fresh one. Product code must be covered by [project].dependencies;
tests, benchmarks and scripts may also use the dev extra.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import re
import sys
import tomllib
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = {"activation_manager", "platforms", "credentials", "audiences", "fakes", "tests", "bench", "scripts", "syncs",
        "sandbox", "manage", "alerts"}
PRODUCT = ["activation_manager", "platforms", "credentials", "audiences", "syncs", "sandbox", "fakes", "manage.py",
           "alerts"]
OTHER = ["tests", "bench", "scripts"]


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.match(r"\s*([A-Za-z0-9_.\-]+)", requirement).group(1)).lower()


def declared() -> tuple[set[str], set[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    main = {_name(r) for r in project["dependencies"]}
    dev = {_name(r) for r in project.get("optional-dependencies", {}).get("dev", [])}
    return main, main | dev


@cache
def file_owners() -> dict[Path, str]:
    owners = {}
    for dist in importlib.metadata.distributions():
        for file in dist.files or ():
            owners[Path(dist.locate_file(file)).resolve()] = _name(dist.metadata["Name"])
    return owners


def distribution_of(module: str) -> str | None:
    """The distribution that provides ``module`` (dotted), found through the file it is loaded from."""
    parts = module.split(".")
    for depth in range(len(parts), 0, -1):
        try:
            spec = importlib.util.find_spec(".".join(parts[:depth]))
        except (ImportError, ValueError):
            continue
        if spec is None:
            continue
        paths = [spec.origin] if spec.origin and spec.origin not in ("built-in", "frozen") else []
        for location in spec.submodule_search_locations or []:  # a package, or a namespace package's folder
            paths.append(str(Path(location) / "__init__.py"))
            paths += sorted(str(p) for p in Path(location).glob("*.py"))[:1]
        for path in paths:
            owner = file_owners().get(Path(path).resolve())
            if owner:
                return owner
    return None


def imports_in(paths: list[str]) -> dict[str, set[str]]:
    """Third-party modules imported (module -> files importing it)."""
    found: dict[str, set[str]] = {}
    files = []
    for entry in paths:
        path = ROOT / entry
        files += [path] if path.is_file() else [p for p in path.rglob("*.py") if "migrations" not in p.parts]
    for file in files:
        tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in OURS or top in sys.stdlib_module_names or top == "__future__":
                    continue
                found.setdefault(name, set()).add(str(file.relative_to(ROOT)))
    return found


@pytest.mark.parametrize("paths,which", [(PRODUCT, 0), (OTHER, 1)], ids=["product", "tests-bench-scripts"])
def test_every_imported_distribution_is_declared(paths, which):
    allowed = declared()[which]
    missing = {}
    for module, files in sorted(imports_in(paths).items()):
        owner = distribution_of(module)
        if owner is None or owner not in allowed:
            missing[module] = (owner, sorted(files)[:3])
    assert missing == {}, f"imported but not declared in pyproject.toml: {missing}"
