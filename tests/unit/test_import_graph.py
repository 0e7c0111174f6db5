"""DESIGN.md's dependency rules, enforced on the source (not on what happens to be imported)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def top(name: str) -> str:
    return name.split(".", maxsplit=1)[0]


def test_mmkit_never_imports_connectors_or_strategies() -> None:
    offenders = [
        (str(p.relative_to(ROOT)), m)
        for p in (ROOT / "mmkit").rglob("*.py")
        for m in imported_modules(p)
        if top(m) in ("connectors", "strategies")
    ]
    assert offenders == []


def test_strategies_import_only_mmkit() -> None:
    offenders = [
        (str(p.relative_to(ROOT)), m)
        for p in (ROOT / "strategies").rglob("*.py")
        for m in imported_modules(p)
        if top(m) == "connectors"
    ]
    assert offenders == []


def test_model_and_clock_import_nothing_of_mmkit() -> None:
    for name in ("model.py", "clock.py"):
        mods = imported_modules(ROOT / "mmkit" / name)
        assert not [m for m in mods if top(m) == "mmkit"], name


def test_instrument_imports_only_model() -> None:
    """Instrument rules sit one step above the value types: they may use mmkit.model and nothing else of mmkit."""
    mods = imported_modules(ROOT / "mmkit" / "instrument.py")
    assert {m for m in mods if top(m) == "mmkit"} == {"mmkit.model"}


def test_only_app_wires_connectors_by_name() -> None:
    """Nothing but mmkit.app (its sub-packages included) and the test kit resolves dotted names into classes."""
    users = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "mmkit").rglob("*.py")
        if "importlib" in imported_modules(p) and p.relative_to(ROOT / "mmkit").parts[0] not in ("app", "testing")
    ]
    assert users == []
