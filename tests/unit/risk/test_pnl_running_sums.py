"""The ledger's running position / signed cost always equal the sums over its open lots."""

from __future__ import annotations

import random
from decimal import Decimal as D

from mmkit.model import Side
from mmkit.risk.pnl import Book


def test_running_sums_match_the_lots_over_random_fills() -> None:
    rng = random.Random(5)
    book = Book("v", hedge=False)
    for _ in range(2000):
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        qty = D(rng.randint(1, 50)) / D(1000)
        price = D(60000 + rng.randint(-500, 500)) / D(1)
        book.apply(side, qty, price)
        mark = D(60000 + rng.randint(-500, 500))
        assert book.position == sum((lot.qty * lot.side.sign for lot in book.lots), D(0))
        expected = sum(((mark - lot.price) * lot.qty * lot.side.sign for lot in book.lots), D(0))
        assert book.unrealized(mark) == expected
