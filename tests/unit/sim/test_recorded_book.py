"""The replay venue's recorded book (an int OrderBook fed by recorded events) against a naive sorted reference."""

from __future__ import annotations

import random
from decimal import Decimal

from mmkit.connector import load_venue_rules
from mmkit.model import BookDelta, BookSnapshot, Level, Side
from mmkit.sim.replay_venue import ReplayBookVenue
from tests.unit.sim.naive_book import naive_levels_through

D = Decimal
SYMBOL = "BTCUSDT"


def _venue() -> ReplayBookVenue:
    return ReplayBookVenue(load_venue_rules("binance"), lambda: 0, book_increments=(D("0.01"), D("0.00000001")))


def _delta(seq: int, bids: list[Level], asks: list[Level]) -> BookDelta:
    return BookDelta("binance", SYMBOL, seq, seq, tuple(bids), tuple(asks), seq, seq)



def test_random_updates_match_a_naive_sorted_book() -> None:
    rng = random.Random(5)
    venue = _venue()
    book = venue.books[SYMBOL]
    naive: dict[Side, dict[Decimal, Decimal]] = {Side.BUY: {}, Side.SELL: {}}
    for step in range(3000):
        bids = [(D(rng.randint(9900, 10000)) / 100, D(rng.choice([0, 0, 1, 7])) / 1000) for _ in range(4)]
        asks = [(D(rng.randint(10001, 10100)) / 100, D(rng.choice([0, 0, 1, 7])) / 1000) for _ in range(4)]
        venue.on_market_event(_delta(step + 1, bids, asks))
        for side, levels in ((Side.BUY, bids), (Side.SELL, asks)):
            for price, qty in levels:
                if qty > 0:
                    naive[side][price] = qty
                else:
                    naive[side].pop(price, None)
        best_bid, best_ask = book.best_bid(), book.best_ask()
        assert (best_bid[0] if best_bid else None) == (max(naive[Side.BUY]) if naive[Side.BUY] else None)
        assert (best_ask[0] if best_ask else None) == (min(naive[Side.SELL]) if naive[Side.SELL] else None)
        probe = D(rng.randint(9950, 10050)) / 100
        lots = book.size_at_int(Side.BUY, book.price_to_int(probe))
        assert book.size_to_decimal(lots) == naive[Side.BUY].get(probe, D(0))
        for side in (Side.BUY, Side.SELL):
            limit = None if step % 50 == 0 else probe
            assert venue._levels_through(book, side, limit) == naive_levels_through(naive, side, limit)
    assert venue.refused_events == 0


def test_snapshot_replaces_and_drops_empty_levels() -> None:
    venue = _venue()
    book = venue.books[SYMBOL]
    venue.on_market_event(_delta(1, [(D("99"), D(1))], [(D("101"), D(1))]))
    snapshot = BookSnapshot("binance", SYMBOL, 2, ((D("98"), D(2)), (D("97"), D(0))), ((D("102"), D(3)),), 2, 2)
    venue.on_market_event(snapshot)
    assert book.depth(Side.BUY, 10) == [(D("98"), D(2))]
    assert book.mid() == D(100)
    assert venue._levels_through(book, Side.BUY, D("101")) == []
    assert venue._levels_through(book, Side.SELL, None) == [(D("98"), D(2))]


def test_an_event_off_the_books_grid_is_refused_whole_and_counted() -> None:
    venue = _venue()
    book = venue.books[SYMBOL]
    venue.on_market_event(_delta(1, [(D("99.00"), D(1))], [(D("101.00"), D(1))]))
    venue.on_market_event(_delta(2, [(D("99.50"), D(1))], [(D("100.005"), D(1))]))  # a price finer than 0.01
    assert venue.refused_events == 1
    assert book.depth(Side.BUY, 10) == [(D("99.00"), D(1))]  # nothing of the refused diff was applied
    assert book.depth(Side.SELL, 10) == [(D("101.00"), D(1))]
