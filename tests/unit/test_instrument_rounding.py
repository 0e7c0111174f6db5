"""Instrument rounding and checks after the speed work: band lookup by bisection and value-keyed memos.

The memos are keyed by Decimal *value*, so inputs that are equal but written
with different exponents share an entry; these tests pin that the answers
are the ones the plain rules give, whatever was asked before.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from mmkit.instrument import IncrementBand, Instrument
from mmkit.model import RejectReason, Side

D = Decimal


@pytest.fixture
def inst() -> Instrument:
    return Instrument(
        "sim",
        "BTC-USD",
        "BTC",
        "USD",
        (
            IncrementBand(10, "0.10", "0.0001"),
            IncrementBand(100000, "0.50", "0.00001"),
            IncrementBand(500000, 1, "0.000001"),
        ),
        min_notional=D(10),
        max_qty=D(5),
        price_band=D("0.025"),
    )


@pytest.mark.parametrize(
    ("price", "tick"),
    [
        ("5", "0.10"),
        ("10", "0.10"),
        ("99999.99", "0.10"),
        ("100000", "0.50"),
        ("499999", "0.50"),
        ("500000", "1"),
        ("9e6", "1"),
    ],
)
def test_band_for_picks_the_last_band_starting_at_or_below(inst: Instrument, price: str, tick: str) -> None:
    assert inst.tick_for(D(price)) == D(tick)  # below every start: the first band


def test_round_price_crosses_into_the_next_band(inst: Instrument) -> None:
    assert str(inst.round_price(D("99999.95"), Side.SELL)) == "100000.00"
    assert str(inst.round_price(D("99999.95"), Side.BUY)) == "99999.90"
    assert str(inst.round_price(D("100000.2"), Side.BUY)) == "100000.00"


def test_round_qty_memo_is_per_lot_and_exponent_free(inst: Instrument) -> None:
    assert str(inst.round_qty(D("0.123456"), D(60000))) == "0.1234"
    assert str(inst.round_qty(D("0.123456"), D(200000))) == "0.12345"  # same size, other lot
    assert str(inst.round_qty(D("0.1230"), D(60000))) == "0.1230"
    assert str(inst.round_qty(D("0.123"), D(60000))) == "0.1230"  # equal value, shares the entry, same answer


def test_check_order_memo_keeps_the_mid_dependent_band_check_live(inst: Instrument) -> None:
    price, qty = D("60000.10"), D("0.01")
    assert inst.check_order(price, qty, D(60000)) is None
    assert inst.check_order(price, qty, D(70000)) is RejectReason.PRICE_BAND  # memo hit, other mid
    assert inst.check_order(price, qty) is None


@pytest.mark.parametrize(
    ("price", "qty", "reason"),
    [
        ("0", "0.01", RejectReason.INVALID_PRICE),
        ("60000.05", "0.01", RejectReason.INVALID_PRICE),
        ("60000.1", "0.00015", RejectReason.INVALID_QTY),
        ("60000.1", "6", RejectReason.INVALID_QTY),
        ("60000.1", "0.0001", RejectReason.MIN_NOTIONAL),
        ("60000.1", "0.01", None),
    ],
)
def test_check_order_reasons_twice(inst: Instrument, price: str, qty: str, reason: RejectReason | None) -> None:
    assert inst.check_order(D(price), D(qty)) is reason
    assert inst.check_order(D(price), D(qty)) is reason  # the memoized answer is the same


def test_memo_is_bounded_and_stays_correct(inst: Instrument) -> None:
    for i in range(10_000):
        assert inst.check_order(D(60000) + D(i) / 10, D("0.01")) is None
    assert inst.check_order(D("60000.05"), D("0.01")) is RejectReason.INVALID_PRICE
    assert len(inst._memo.static_checks) <= 4096


def test_memo_does_not_change_equality_hash_or_repr(inst: Instrument) -> None:
    twin = Instrument(inst.venue, inst.symbol, inst.base, inst.quote, inst.increments, inst.min_notional,
                      inst.min_qty, inst.max_qty, inst.price_band)  # fmt: skip
    inst.check_order(D("60000.1"), D("0.01"))  # fills inst's memo only
    assert inst == twin and hash(inst) == hash(twin) and repr(inst) == repr(twin)
