"""OrderBook: Decimal edge, integer core, top of book, depth, vwap, crossed detection."""

from __future__ import annotations

import random
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest

from mmkit.book import OffGridError, OrderBook
from mmkit.model import BookDelta, BookSnapshot, Side
from tests.unit.book.cores import CORES

D = Decimal
Pairs = Sequence[tuple[str, str]]


def snap(bids: Pairs, asks: Pairs, seq: int = 10) -> BookSnapshot:
    return BookSnapshot(
        venue="v",
        symbol="S",
        seq=seq,
        bids=tuple((D(p), D(q)) for p, q in bids),
        asks=tuple((D(p), D(q)) for p, q in asks),
        ts_event=1,
        ts_recv=2,
    )


def delta(bids: Pairs = (), asks: Pairs = (), first: int = 11, seq: int = 11) -> BookDelta:
    return BookDelta(
        venue="v",
        symbol="S",
        first_seq=first,
        seq=seq,
        bids=tuple((D(p), D(q)) for p, q in bids),
        asks=tuple((D(p), D(q)) for p, q in asks),
        ts_event=5,
        ts_recv=6,
    )


@pytest.fixture
def book() -> OrderBook:
    b = OrderBook(D("0.01"), D("0.00000001"), venue="v", symbol="S")
    b.apply_snapshot(
        snap(
            bids=[("100.00", "1"), ("99.99", "2"), ("99.50", "3")],
            asks=[("100.01", "0.5"), ("100.05", "1.5"), ("101", "4")],
        )
    )
    return b


def test_snapshot_sets_top_of_book_and_seq(book: OrderBook) -> None:
    assert book.best_bid() == (D("100.00"), D("1"))
    assert book.best_ask() == (D("100.01"), D("0.5"))
    assert book.mid() == D("100.005")
    assert book.spread() == D("0.01")
    assert book.seq == 10
    assert book.ts_event == 1
    assert (book.bid_count, book.ask_count) == (3, 3)


def test_snapshot_replaces_previous_levels(book: OrderBook) -> None:
    book.apply_snapshot(snap(bids=[("90", "1")], asks=[("91", "1")], seq=20))
    assert book.depth(Side.BUY, 10) == [(D("90"), D("1"))]
    assert book.depth(Side.SELL, 10) == [(D("91"), D("1"))]
    assert book.seq == 20


def test_delta_updates_inserts_and_deletes(book: OrderBook) -> None:
    book.apply_delta(delta(bids=[("100.00", "0"), ("99.99", "2.5"), ("99.98", "7")], asks=[("100.02", "1")]))
    assert book.best_bid() == (D("99.99"), D("2.5"))
    assert book.depth(Side.BUY, 2) == [(D("99.99"), D("2.5")), (D("99.98"), D("7"))]
    assert book.best_ask() == (D("100.01"), D("0.5"))
    assert book.depth(Side.SELL, 2) == [(D("100.01"), D("0.5")), (D("100.02"), D("1"))]
    assert book.seq == 11
    assert book.ts_event == 5


def test_deleting_a_missing_level_is_a_no_op(book: OrderBook) -> None:
    book.apply_delta(delta(bids=[("42.00", "0")], asks=[("500", "0")]))
    assert (book.bid_count, book.ask_count) == (3, 3)
    assert book.best_bid() == (D("100.00"), D("1"))


def test_deleting_every_level_empties_the_side(book: OrderBook) -> None:
    book.apply_delta(delta(asks=[("100.01", "0"), ("100.05", "0"), ("101", "0")]))
    assert book.best_ask() is None
    assert book.mid() is None
    assert book.spread() is None
    assert not book.is_crossed()


def test_readded_level_after_delete_is_top_again(book: OrderBook) -> None:
    # The stale heap entry for 100.01 must not shadow, nor duplicate, the re-added level.
    book.apply_delta(delta(asks=[("100.01", "0")]))
    assert book.best_ask() == (D("100.05"), D("1.5"))
    book.apply_delta(delta(asks=[("100.01", "2")], first=12, seq=12))
    assert book.best_ask() == (D("100.01"), D("2"))
    book.apply_delta(delta(asks=[("100.01", "0")], first=13, seq=13))
    assert book.best_ask() == (D("100.05"), D("1.5"))


def test_depth_is_best_first_and_limited(book: OrderBook) -> None:
    assert [p for p, _ in book.depth(Side.BUY, 2)] == [D("100.00"), D("99.99")]
    assert [p for p, _ in book.depth(Side.SELL, 5)] == [D("100.01"), D("100.05"), D("101")]
    assert book.depth(Side.BUY, 0) == []


def test_vwap_and_price_for_volume_walk_the_side(book: OrderBook) -> None:
    # Bids: 1 @ 100.00, 2 @ 99.99, 3 @ 99.50. Taking 2.5 reaches 99.99.
    assert book.vwap(Side.BUY, D("2.5")) == (D("100.00") + D("1.5") * D("99.99")) / D("2.5")
    assert book.price_for_volume(Side.BUY, D("2.5")) == D("99.99")
    assert book.vwap(Side.BUY, D("0.5")) == D("100.00")
    assert book.price_for_volume(Side.SELL, D("0.5")) == D("100.01")
    assert book.price_for_volume(Side.SELL, D("0.50000001")) == D("100.05")
    assert book.price_for_volume(Side.SELL, D("6")) == D("101")


def test_vwap_none_when_side_too_thin(book: OrderBook) -> None:
    assert book.vwap(Side.BUY, D("6.00000001")) is None
    assert book.price_for_volume(Side.SELL, D("100")) is None
    with pytest.raises(ValueError):
        book.vwap(Side.BUY, D("0"))


def test_vwap_beyond_partial_selection_uses_all_levels() -> None:
    # 40 levels: more than the 32 picked before the full sort kicks in.
    book = OrderBook(D("1"), D("1"))
    book.set_snapshot_int([(1000 - i, 1) for i in range(40)], [(2000 + i, 1) for i in range(40)], seq=1)
    assert book.price_for_volume(Side.BUY, D("40")) == D("961")
    assert book.vwap(Side.SELL, D("40")) == D(sum(2000 + i for i in range(40))) / 40
    assert book.vwap(Side.SELL, D("41")) is None


def test_crossed_and_locked_detection(book: OrderBook) -> None:
    assert not book.is_crossed()
    book.apply_delta(delta(bids=[("100.01", "1")]))  # locked
    assert book.is_crossed()
    book.apply_delta(delta(bids=[("100.01", "0")], first=12, seq=12))
    assert not book.is_crossed()
    book.apply_delta(delta(asks=[("99.00", "1")], first=13, seq=13))  # crossed
    assert book.is_crossed()
    assert book.spread() == D("-1.00")


def test_clear_empties_everything(book: OrderBook) -> None:
    book.clear()
    assert book.best_bid() is None
    assert book.best_ask() is None
    assert book.seq == -1
    assert book.depth(Side.SELL, 3) == []


def test_off_grid_prices_and_sizes_are_refused(book: OrderBook) -> None:
    with pytest.raises(OffGridError):
        book.apply_delta(delta(bids=[("100.001", "1")]))
    with pytest.raises(OffGridError):
        book.apply_delta(delta(bids=[("100.00", "0.000000001")]))
    with pytest.raises(ValueError):
        book.apply_delta(delta(bids=[("100.00", "-1")]))
    assert book.best_bid() == (D("100.00"), D("1"))


def test_non_power_of_ten_increment() -> None:
    book = OrderBook(D("0.5"), D("0.25"))
    book.apply_snapshot(snap(bids=[("10.5", "0.75")], asks=[("11", "1.25")]))
    assert book.best_bid() == (D("10.5"), D("0.75"))
    assert book.best_bid_level_int() == (21, 3)
    with pytest.raises(OffGridError):
        book.apply_delta(delta(bids=[("10.25", "1")]))


def test_invalid_increment_rejected() -> None:
    with pytest.raises(ValueError):
        OrderBook(D("0"), D("1"))


@pytest.mark.parametrize("core", CORES)
def test_int_path_matches_a_naive_model_under_random_updates(core: type[Any]) -> None:
    """Random inserts/deletes against a brute-force dict model, with heap compaction exercised."""
    rebuilds = 0
    rng = random.Random(7)
    book = OrderBook(D("1"), D("1"))
    book._levels = core()
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    for step in range(3000):
        b_levels = [(rng.randint(900, 1000), rng.choice((0, 0, rng.randint(1, 9)))) for _ in range(rng.randint(0, 6))]
        a_levels = [(rng.randint(1001, 1100), rng.choice((0, 0, rng.randint(1, 9)))) for _ in range(rng.randint(0, 6))]
        entries = book._levels.heap_entries
        book.apply_levels_int(b_levels, a_levels, seq=step)
        rebuilds += book._levels.heap_entries < entries  # only a compaction shrinks the heaps in an update
        for model, levels in ((bids, b_levels), (asks, a_levels)):
            for price, size in levels:
                if size:
                    model[price] = size
                else:
                    model.pop(price, None)
        assert book.best_bid_int() == (max(bids) if bids else None)
        assert book.best_ask_int() == (min(asks) if asks else None)
    assert book.levels_int(Side.BUY) == sorted(bids.items(), reverse=True)
    assert book.levels_int(Side.SELL) == sorted(asks.items())
    assert book.seq == 2999
    assert rebuilds >= 2  # compaction ran mid-stream, and the answers above stayed right


def test_tick_of_is_the_tick_or_none_off_the_grid() -> None:
    book = OrderBook(D("0.01"), D("1"))
    assert book.tick_of(D("100.25")) == 10025
    assert book.tick_of(D("100.25")) == 10025  # a memo hit
    assert book.tick_of(D("100.255")) is None
    with pytest.raises(OffGridError):
        book.price_to_int(D("100.255"))


@pytest.mark.parametrize("core", CORES)
def test_a_copy_is_equal_and_independent_and_applying_a_diff_twice_changes_nothing(core: type[Any]) -> None:
    """What the replay's shared book (mmkit.backtest.shared_book) rests on: a copy shows the same levels,
    seq, time and grid on the same kind of core and moves on its own; a diff applied a second time (sizes
    are absolute, a price listed twice ends at its last size) leaves the same levels and best prices."""
    rng = random.Random(3)
    book = OrderBook(D("0.01"), D("0.00000001"), venue="v", symbol="S")
    book._levels = core()
    book.apply_levels_int([(p, rng.randint(1, 9)) for p in range(9_000, 10_000, 7)],
                          [(p, rng.randint(1, 9)) for p in range(10_001, 11_000, 5)], seq=41)
    book.ts_event = 77
    twin = book.copy()
    assert type(twin._levels) is core and twin is not book and twin._levels is not book._levels
    assert (twin.seq, twin.ts_event, twin.venue, twin.symbol) == (41, 77, "v", "S")
    assert twin.same_levels(book) and book.same_levels(twin)
    assert twin.price_increment == book.price_increment and twin.size_increment == book.size_increment
    twin.apply_levels_int([(9_000, 0)], [])
    assert not twin.same_levels(book) and book.size_at_int(Side.BUY, 9_000) > 0
    coarse = OrderBook(D("0.1"), D("0.00000001"))
    assert not coarse.same_levels(OrderBook(D("0.01"), D("0.00000001")))  # empty, but not on one grid
    for _ in range(300):
        bids = [(rng.randint(9_900, 10_000), rng.choice((0, rng.randint(1, 9)))) for _ in range(rng.randint(0, 8))]
        asks = [(rng.randint(10_001, 10_100), rng.choice((0, rng.randint(1, 9)))) for _ in range(rng.randint(0, 8))]
        book.apply_levels_int(bids, asks)
        once = (book.levels_int(Side.BUY), book.levels_int(Side.SELL), book.best_bid_int(), book.best_ask_int())
        book.apply_levels_int(bids, asks)
        assert (book.levels_int(Side.BUY), book.levels_int(Side.SELL), book.best_bid_int(),
                book.best_ask_int()) == once
