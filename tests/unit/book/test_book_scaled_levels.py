"""OrderBook takes a reader's pre-scaled integer levels only when they are on its own grid."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mmkit.book.book import OffGridError, OrderBook
from mmkit.model import BookDelta, BookSnapshot, ScaledLevels, Side

TICK, LOT = Decimal("0.01"), Decimal("0.001")
BIDS = ((Decimal("100.00"), Decimal("1.000")), (Decimal("99.99"), Decimal("2.000")))
ASKS = ((Decimal("100.02"), Decimal("0.500")),)


def _scaled(tick: Decimal, lot: Decimal, bids: tuple[tuple[int, int], ...],
            asks: tuple[tuple[int, int], ...]) -> ScaledLevels:
    return ScaledLevels(tick, lot, bids, asks)


def test_on_grid_the_integers_are_applied_and_agree_with_the_decimals() -> None:
    scaled = _scaled(TICK, LOT, ((10000, 1000), (9999, 2000)), ((10002, 500),))
    with_ints, plain = OrderBook(TICK, LOT), OrderBook(TICK, LOT)
    with_ints.apply_snapshot(BookSnapshot("v", "S", 1, BIDS, ASKS, 5, 6, scaled=scaled))
    plain.apply_snapshot(BookSnapshot("v", "S", 1, BIDS, ASKS, 5, 6))
    delta_scaled = _scaled(Decimal("0.01"), Decimal("0.001"), ((10000, 0),), ((10001, 250),))
    delta_levels = (((Decimal("100.00"), Decimal(0)),), ((Decimal("100.01"), Decimal("0.25")),))
    with_ints.apply_delta(BookDelta("v", "S", 2, 2, *delta_levels, 7, 8, scaled=delta_scaled))
    plain.apply_delta(BookDelta("v", "S", 2, 2, *delta_levels, 7, 8))
    for side in (Side.BUY, Side.SELL):
        assert with_ints.depth(side, 10) == plain.depth(side, 10)
    assert with_ints.seq == plain.seq == 2 and with_ints.ts_event == plain.ts_event == 7
    assert with_ints.best_ask() == (Decimal("100.01"), Decimal("0.250"))


def test_the_integers_are_what_is_applied_on_the_grid() -> None:
    # Deliberately different from the Decimals: proves which form the book read (a trusted reader's ints).
    book = OrderBook(TICK, LOT)
    book.apply_snapshot(BookSnapshot("v", "S", 1, BIDS, ASKS, 0, 0, scaled=_scaled(TICK, LOT, ((5000, 1),), ())))
    assert book.depth(Side.BUY, 5) == [(Decimal("50.00"), Decimal("0.001"))]


def test_another_grid_falls_back_to_the_checked_decimals() -> None:
    book = OrderBook(TICK, LOT)
    other = _scaled(Decimal("0.1"), LOT, ((1, 1),), ())
    book.apply_snapshot(BookSnapshot("v", "S", 1, BIDS, ASKS, 0, 0, scaled=other))
    assert book.best_bid() == (Decimal("100.00"), Decimal("1.000"))
    off_grid = ((Decimal("100.005"), Decimal(1)),)
    with pytest.raises(OffGridError):
        book.apply_delta(BookDelta("v", "S", 2, 2, off_grid, (), 0, 0, scaled=other))
