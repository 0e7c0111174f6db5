"""The book's heaps hold only levels near the top (a window); the best price must still always be right.

A small window and a drifting price make the window move hundreds of times,
with levels inserted both inside and outside it and the best levels deleted.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest

from mmkit.book.book import OrderBook
from mmkit.book.levels import PyLevels
from tests.unit.book.cores import CORES


class _Book:
    """An OrderBook whose core has a small heap window (the window is a core parameter)."""

    def __new__(cls, core: type[Any], window: int) -> OrderBook:
        book = OrderBook(Decimal("0.01"), Decimal("1"))
        book._levels = core(window)
        return book


@pytest.mark.parametrize("core", CORES)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_best_prices_match_a_naive_book_while_the_window_moves(core: type[Any], seed: int) -> None:
    rng = random.Random(seed)
    book = _Book(core, 20)
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    mid = 100_000
    # As a tracker does: a snapshot first (it also sets the windows around its best prices).
    bids.update({mid - k: 1 for k in range(1, 40)})
    asks.update({mid + k: 1 for k in range(1, 40)})
    book.set_snapshot_int(bids.items(), asks.items(), seq=0)
    rebuilds = 0
    for step in range(4000):
        mid += rng.choice((-3, -1, 0, 1, 3)) + (5 if step % 1000 < 500 else -5) * (step % 7 == 0)
        bid_levels = [(mid - rng.choice((1, 2, 5, 30, 200)), rng.choice((0, 0, 1, 4))) for _ in range(5)]
        ask_levels = [(mid + rng.choice((1, 2, 5, 30, 200)), rng.choice((0, 0, 1, 4))) for _ in range(5)]
        if step % 97 == 0 and bids:  # the best bid goes, whatever else happens
            bid_levels.append((max(bids), 0))
        # As on a venue, levels the price has moved through are gone: the top follows the price.
        bid_levels += [(price, 0) for price in bids if price >= mid]
        ask_levels += [(price, 0) for price in asks if price <= mid]
        floor_before, ceiling_before = book._levels.bounds
        book.apply_levels_int(bid_levels, ask_levels)
        for levels, naive in ((bid_levels, bids), (ask_levels, asks)):
            for price, size in levels:
                if size:
                    naive[price] = size
                else:
                    naive.pop(price, None)
        assert book.best_bid_int() == (max(bids) if bids else None)
        assert book.best_ask_int() == (min(asks) if asks else None)
        rebuilds += book._levels.bounds != (floor_before, ceiling_before)
        assert book.bid_count == len(bids) and book.ask_count == len(asks)
    assert rebuilds > 10, "the window never moved: the test would not catch a stale window"


@pytest.mark.parametrize("core", CORES)
def test_clear_and_snapshot_reset_the_window(core: type[Any]) -> None:
    book = _Book(core, 10)
    book.set_snapshot_int([(1000, 1), (900, 1)], [(1010, 1), (1100, 1)], seq=1)
    assert book.best_bid_int() == 1000 and book.best_ask_int() == 1010
    book.apply_levels_int([(1000, 0)], [(1010, 0)])  # the best levels go; the next ones are outside the window
    assert book.best_bid_int() == 900 and book.best_ask_int() == 1100
    book.clear()
    book.apply_levels_int([(5, 1), (500, 1)], [(600, 1), (6000, 1)])
    assert book.best_bid_int() == 500 and book.best_ask_int() == 600
    book.apply_levels_int([(500, 0)], [(600, 0)])
    assert book.best_bid_int() == 5 and book.best_ask_int() == 6000


@pytest.mark.parametrize("core", CORES)
def test_a_window_must_be_positive(core: type[Any]) -> None:
    with pytest.raises(ValueError, match="window"):
        core(0)
    assert PyLevels().bounds == core().bounds  # an empty core admits every price
