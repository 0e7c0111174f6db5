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
    warned = [line for line in lines if "not built" in line]
    assert len(warned) == 2, lines  # one per module, not one per book
    assert "mmkit._speedups._levels" in warned[0] and "ImportError: no module" in warned[0]
    assert "pure-Python path" in warned[0]


def test_the_compiled_modules_are_built_by_the_install() -> None:
    """A normal install builds them (setup.py); a broken build must show up here, not as a silent slow path."""
    assert _speedups.compiled_available(), _speedups.import_error()
