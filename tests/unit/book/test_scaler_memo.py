"""The book's Decimal -> int conversion is memoized by value and still refuses off-grid values."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mmkit.book import book as book_module
from mmkit.book.book import OffGridError, OrderBook
from mmkit.model import BookDelta


def test_equal_values_with_different_exponents_share_an_entry() -> None:
    book = OrderBook(Decimal("0.01"), Decimal("0.00000001"))
    assert book.price_to_int(Decimal("61737.63000000")) == 6173763
    assert book.price_to_int(Decimal("61737.63")) == 6173763
    assert book.size_to_int(Decimal("0.00000000")) == 0
    assert book.size_to_int(Decimal("0")) == 0


def test_off_grid_values_raise_every_time() -> None:
    book = OrderBook(Decimal("0.01"), Decimal("1"))
    for _ in range(2):
        with pytest.raises(OffGridError):
            book.price_to_int(Decimal("1.005"))


def test_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(book_module, "_MEMO_SIZE", 8)
    book = OrderBook(Decimal("0.01"), Decimal("1"))
    for k in range(100):
        assert book.price_to_int(Decimal(k) / 100) == k
    assert len(book._price.memo) <= 8


def test_deltas_apply_the_same_through_hits_and_misses() -> None:
    book = OrderBook(Decimal("0.01"), Decimal("0.001"))
    levels = ((Decimal("100.00"), Decimal("1.000")), (Decimal("99.99"), Decimal("0")))
    for seq in (1, 2):  # the second delta converts entirely from the memo
        book.apply_delta(BookDelta("v", "S", seq, seq, levels, ((Decimal("100.01"), Decimal("2")),), seq, seq))
    assert book.best_bid() == (Decimal("100.00"), Decimal("1.000"))
    assert book.best_ask() == (Decimal("100.01"), Decimal("2.000"))
    with pytest.raises(OffGridError):
        book.apply_delta(BookDelta("v", "S", 3, 3, ((Decimal("100.005"), Decimal(1)),), (), 3, 3))
