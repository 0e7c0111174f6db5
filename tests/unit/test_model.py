from __future__ import annotations

from decimal import Decimal as D

import attrs
import pytest

from mmkit.instrument import IncrementBand, Instrument
from mmkit.model import Fill, Liquidity, OrderRequest, RejectReason, Side, TargetQuote, to_decimal


def truex_like() -> Instrument:
    return Instrument(
        venue="truex",
        symbol="BTC-PYUSD",
        base="BTC",
        quote="PYUSD",
        increments=(
            IncrementBand("0", "0.10", "0.0001"),
            IncrementBand("100000", "0.50", "0.00001"),
            IncrementBand("500000", "1", "0.000001"),
        ),
        min_notional="1",
        price_band="0.025",
    )


def test_floats_are_refused_for_money() -> None:
    with pytest.raises(TypeError):
        to_decimal(0.1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        TargetQuote(Side.BUY, 0, 0.1, "1")  # type: ignore[arg-type]


def test_side_sign_and_opposite() -> None:
    assert Side.BUY.sign == 1 and Side.SELL.sign == -1
    assert Side.BUY.opposite is Side.SELL and Side.SELL.opposite is Side.BUY


@pytest.mark.parametrize(
    ("price", "bid", "ask", "lot"),
    [
        ("61234.567", "61234.50", "61234.60", "0.0001"),
        ("99999.97", "99999.90", "100000.00", "0.0001"),
        ("100000.20", "100000.00", "100000.50", "0.00001"),
        ("250000.26", "250000.00", "250000.50", "0.00001"),
        ("600000.40", "600000", "600001", "0.000001"),
    ],
)
def test_tick_depends_on_price_and_bids_round_down_asks_up(price: str, bid: str, ask: str, lot: str) -> None:
    inst = truex_like()
    assert inst.round_price(D(price), Side.BUY) == D(bid)
    assert inst.round_price(D(price), Side.SELL) == D(ask)
    assert inst.lot_for(D(price)) == D(lot)


def test_round_qty_floors_to_lot_of_that_price() -> None:
    inst = truex_like()
    assert inst.round_qty(D("0.123456789"), D("60000")) == D("0.1234")
    assert inst.round_qty(D("0.123456789"), D("200000")) == D("0.12345")


def test_check_order_names_each_rule() -> None:
    inst = truex_like()
    mid = D("60000")
    assert inst.check_order(D("60000.0"), D("0.0010"), mid) is None
    assert inst.check_order(D("60000.05"), D("0.0010"), mid) is RejectReason.INVALID_PRICE
    assert inst.check_order(D("60000.0"), D("0.00015"), mid) is RejectReason.INVALID_QTY
    assert inst.check_order(D("5000.0"), D("0.0001"), None) is RejectReason.MIN_NOTIONAL
    assert inst.check_order(D("61600.0"), D("0.0010"), mid) is RejectReason.PRICE_BAND
    assert inst.check_order(D("61500.0"), D("0.0010"), mid) is None  # exactly at the band edge


def test_increment_bands_must_be_sorted() -> None:
    with pytest.raises(ValueError, match="sorted"):
        Instrument("v", "S", "B", "Q", (IncrementBand("100", "1", "1"), IncrementBand("0", "1", "1")))


def test_client_id_length_is_enforced() -> None:
    OrderRequest("a" * 18, "v", "S", Side.BUY, D(1), D(1))
    with pytest.raises(ValueError, match="18"):
        OrderRequest("a" * 19, "v", "S", Side.BUY, D(1), D(1))


def test_values_are_frozen_and_fill_key_is_venue_trade_id() -> None:
    fill = Fill("truex", "T1", "c1", "BTC-PYUSD", Side.BUY, D("100"), D("2"), D("0"), "PYUSD", Liquidity.MAKER, 1, 2)
    assert fill.key == ("truex", "T1")
    assert fill.notional == D("200")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        fill.qty = D(3)  # type: ignore[misc]
