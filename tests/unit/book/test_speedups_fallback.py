"""A missing compiled module falls back to the pure-Python path with one logged warning."""

from __future__ import annotations

from decimal import Decimal

import pytest
from loguru import logger

from mmkit import _speedups
from mmkit.backtest.sequencing import BookSequencer
from mmkit.book.book import OrderBook
from mmkit.book.levels import PyLevels


def test_a_missing_extension_falls_back_to_pure_python_with_one_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_speedups.ENV_PURE, raising=False)
    # As after an install without a C compiler: the import failed, nothing warned yet.
    monkeypatch.setattr(_speedups, "_loaded", {"_levels": None, "_sequencer": None})
    monkeypatch.setattr(_speedups, "_errors", {"_levels": "ImportError: no module", "_sequencer": "ImportError: x"})
    monkeypatch.setattr(_speedups, "_warned", set())
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message)), level="WARNING", format="{message}")
    try:
        book = OrderBook(Decimal("0.01"), Decimal("1"))
        OrderBook(Decimal("0.01"), Decimal("1"))
        sequencer = BookSequencer(lambda event: None)
    finally:
        logger.remove(sink)
    assert type(book._levels) is PyLevels
    assert type(sequencer) is BookSequencer
    assert not _speedups.compiled_available()
    warned = [line for line in lines if "is not used" in line]
    assert len(warned) == 2, lines  # one per module, not one per book
    assert "mmkit._speedups._levels" in warned[0] and "ImportError: no module" in warned[0]
    assert "pure-Python path" in warned[0]


def test_the_compiled_modules_are_built_by_the_install() -> None:
    """A normal install builds them (setup.py); a broken build must show up here, not as a silent slow path."""
    assert _speedups.compiled_available(), _speedups.import_error()


def test_a_module_built_from_other_source_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkout pulled without a reinstall: its .pyx changed, the built module did not."""
    monkeypatch.delenv(_speedups.ENV_PURE, raising=False)
    real = _speedups._import("_levels")
    assert _speedups.stale_reason("_levels", real) is None  # this install's build matches its source
    assert real.SOURCE_SHA  # type: ignore[attr-defined]

    class Old:
        __file__ = real.__file__
        SOURCE_SHA = "0" * 64
        CLevels = real.CLevels  # type: ignore[attr-defined]

    monkeypatch.setattr(_speedups, "_import", lambda name: Old)
    monkeypatch.setattr(_speedups, "_loaded", {})
    monkeypatch.setattr(_speedups, "_errors", {})
    monkeypatch.setattr(_speedups, "_warned", set())
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message)), level="WARNING", format="{message}")
    try:
        assert _speedups.levels_class() is PyLevels
    finally:
        logger.remove(sink)
    assert any("stale build" in line and "_levels.pyx" in line for line in lines), lines
