"""The replay venue's recorded book (dicts + lazy heaps) against a naive sorted reference."""

from __future__ import annotations

import random
from decimal import Decimal

from mmkit.model import Side
from mmkit.sim.venue import _RecordedBook


def _naive_levels_through(book: dict[Side, dict[Decimal, Decimal]], side: Side, limit: Decimal | None) -> list:
    opposite = book[side.opposite]
    prices = sorted(opposite, reverse=side is Side.SELL)
    out = []
    for price in prices:
        if limit is not None and (price > limit if side is Side.BUY else price < limit):
            break
        out.append((price, opposite[price]))
    return out


def test_random_updates_match_a_naive_sorted_book() -> None:
    rng = random.Random(5)
    book = _RecordedBook()
    naive: dict[Side, dict[Decimal, Decimal]] = {Side.BUY: {}, Side.SELL: {}}
    for step in range(3000):
        bids = [(Decimal(rng.randint(9900, 10000)) / 100, Decimal(rng.choice([0, 0, 1, 7]))) for _ in range(4)]
        asks = [(Decimal(rng.randint(10001, 10100)) / 100, Decimal(rng.choice([0, 0, 1, 7]))) for _ in range(4)]
        book.apply(bids, asks)
        for side, levels in ((Side.BUY, bids), (Side.SELL, asks)):
            for price, qty in levels:
                if qty > 0:
                    naive[side][price] = qty
                else:
                    naive[side].pop(price, None)
        assert book.best(Side.BUY) == (max(naive[Side.BUY]) if naive[Side.BUY] else None)
        assert book.best(Side.SELL) == (min(naive[Side.SELL]) if naive[Side.SELL] else None)
        probe = Decimal(rng.randint(9950, 10050)) / 100
        assert book.qty_at(Side.BUY, probe) == naive[Side.BUY].get(probe, Decimal(0))
        for side in (Side.BUY, Side.SELL):
            limit = None if step % 50 == 0 else probe
            assert book.levels_through(side, limit) == _naive_levels_through(naive, side, limit)


def test_heap_stays_bounded_under_churn() -> None:
    book = _RecordedBook()
    for k in range(20_000):
        price = Decimal(k)
        book.apply([(price, Decimal(1))], [])
        book.apply([(price, Decimal(0))], [])
    assert book.best(Side.BUY) is None
    assert len(book._bid_heap) < 5_000


def test_snapshot_replaces_and_drops_empty_levels() -> None:
    book = _RecordedBook()
    book.apply([(Decimal("99"), Decimal(1))], [(Decimal("101"), Decimal(1))])
    book.replace([(Decimal("98"), Decimal(2)), (Decimal("97"), Decimal(0))], [(Decimal("102"), Decimal(3))])
    assert book.bids == {Decimal("98"): Decimal(2)}
    assert book.mid() == Decimal(100)
    assert book.levels_through(Side.BUY, Decimal("101")) == []
    assert book.levels_through(Side.SELL, None) == [(Decimal("98"), Decimal(2))]
