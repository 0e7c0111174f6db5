"""Inverse-contract PnL (COIN-M): contracts of a fixed USD value, PnL in the base coin."""

from __future__ import annotations

from decimal import Decimal as D

from mmkit.backtest.inverse import inverse_pnl
from mmkit.model import Fill, Liquidity, Side


def fill(side: Side, qty: str, price: str, liquidity: Liquidity = Liquidity.MAKER) -> Fill:
    return Fill("binance_coinm", f"t{qty}{price}{side.value}", "c", "BTCUSD_PERP", side, D(price), D(qty), D(0), "BTC",
                liquidity, 0, 0)


def test_a_long_round_trip_earns_contracts_times_size_times_the_inverse_move() -> None:
    # 10 contracts of 100 USD bought at 50,000 and sold at 60,000: 1000 * (1/50000 - 1/60000) BTC.
    result = inverse_pnl([fill(Side.BUY, "10", "50000"), fill(Side.SELL, "10", "60000")], D(100), D(0), D(0), D(60000))
    assert D(result["realized"]) == (D(1000) * (1 / D(50000) - 1 / D(60000))).quantize(D("0.00000001"))
    assert result["position_contracts"] == "0" and result["unit"] == "BTC"
    assert D(result["total_usd"]) == (D(result["total"]) * 60000).quantize(D("0.01"))


def test_a_short_gains_when_the_price_falls_and_fees_are_in_coin() -> None:
    result = inverse_pnl([fill(Side.SELL, "5", "40000", Liquidity.TAKER)], D(100), D(2), D(5), D(32000))
    # Unrealized: 500 * (1/32000 - 1/40000) = 0.003125 BTC; taker fee 500/40000 * 5 bps = 0.00000625 BTC.
    assert result["unrealized"] == "0.00312500" and result["fees"] == "0.00000625"
    assert result["total"] == "0.00311875"


def test_adding_to_a_position_averages_the_inverse_price() -> None:
    fills = [fill(Side.BUY, "1", "40000"), fill(Side.BUY, "1", "60000"), fill(Side.SELL, "2", "48000")]
    result = inverse_pnl(fills, D(100), D(0), D(0), None)
    # Entry 1/p averaged: (1/40000 + 1/60000) / 2 = 1/48000, so selling at 48,000 is flat.
    assert D(result["realized"]) == 0 and result["total_usd"] is None
