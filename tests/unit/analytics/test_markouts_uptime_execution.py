"""Markouts by side, two-sided uptime, fill rate per level and order-to-trade."""

from __future__ import annotations

import math
from decimal import Decimal as D

from mmkit.analytics.execution import OrderRow, attach_fills, fill_rate_by_level, order_to_trade
from mmkit.analytics.markouts import fill_markout, headline, markout_table
from mmkit.analytics.quoting import uptime
from mmkit.model import NS_PER_S, Fill, Liquidity, Side

NAN = math.nan


def fill(n: int, side: Side, price: str, qty: str, ts_s: float, client: str = "", hedge: bool = False) -> Fill:
    ts = int(ts_s * NS_PER_S)
    return Fill("v", f"t{n}", client or f"c{n}", "BTCUSDT", side, D(price), D(qty), D("0.01"), "USDT",
                Liquidity.MAKER, ts, ts, is_hedge=hedge)


# mid: 100 until 10 s, then 101 until 20 s, then 99 (one sample a second, 0..30 s)
TS = [i * NS_PER_S for i in range(31)]
MID = [100.0 if i < 10 else (101.0 if i < 20 else 99.0) for i in range(31)]


def test_markout_sign_is_in_our_favour_by_side() -> None:
    buy = fill(1, Side.BUY, "100", "1", 9.5)
    sell = fill(2, Side.SELL, "100", "1", 9.5)
    assert fill_markout(buy, TS, MID, 1) == 100.0  # mid 101 one second later: +1 % for the buyer
    assert fill_markout(sell, TS, MID, 1) == -100.0  # and -1 % for the seller (adverse)
    assert fill_markout(buy, TS, MID, 0) == 0.0
    assert fill_markout(buy, TS, MID, 30) is None  # past the last sample: left out, not guessed


def test_markout_table_means_counts_and_headline() -> None:
    fills = [fill(1, Side.BUY, "100", "1", 9.5), fill(2, Side.BUY, "101", "1", 15),
             fill(3, Side.SELL, "101", "1", 19.5), fill(4, Side.SELL, "50", "1", 5, hedge=True)]
    table = markout_table(fills, TS, MID, horizons_s=(1, 10))
    assert table["buy"]["n"] == [2, 2] and table["sell"]["n"] == [1, 1] and table["all"]["n"] == [3, 3]
    assert table["buy"]["mean_bps"][0] == 50.0  # +100 bps and 0 bps
    assert table["sell"]["mean_bps"][0] == round((101 - 99) / 101 * 10_000, 4)
    top = headline(table, horizons_s=(1, 10, 60))
    assert top["buy_1s_bps"] == 50.0 and top["all_60s_bps"] is None


def test_two_sided_uptime_is_not_every_tick() -> None:
    """The issue's case: quoting enabled on every tick, both sides live on 15 % of them."""
    bid = [100.0 if i < 15 else NAN for i in range(100)]
    ask = [101.0 if i < 15 or i >= 90 else NAN for i in range(100)]
    out = uptime(bid, ask)
    assert out["two_sided_ticks"] == 15 and out["two_sided_uptime_pct"] == 15.0
    assert out["any_side_ticks"] == 25 and out["any_side_uptime_pct"] == 25.0
    assert uptime([], [])["two_sided_uptime_pct"] is None


def test_fill_rate_per_level_and_order_to_trade() -> None:
    orders = [
        OrderRow("a", Side.BUY, 0, D(100), D(1), 0),
        OrderRow("b", Side.SELL, 0, D(101), D(1), 0),
        OrderRow("c", Side.BUY, 1, D(99), D(2), 0),
        OrderRow("d", Side.BUY, 1, D(99), D(2), 0, state="rejected"),
        OrderRow("e", Side.BUY, None, D(98), D(1), 0),
    ]
    fills = [fill(1, Side.BUY, "100", "1", 1, "a"), fill(2, Side.BUY, "99", "0.5", 2, "c"),
             fill(3, Side.BUY, "99", "1", 2, "zz", hedge=True)]
    rates = fill_rate_by_level(orders, fills)
    assert list(rates) == ["0", "1", "none"]
    assert rates["0"] == {"orders": 2, "fills": 1, "offered_qty": "2", "filled_qty": "1", "fill_rate_pct": 50.0}
    assert rates["1"]["orders"] == 1 and rates["1"]["fill_rate_pct"] == 25.0  # the rejected order offered nothing
    assert rates["none"]["fills"] == 0  # hedge fills are not quote fills
    attach_fills(orders, fills)
    assert orders[0].state == "filled" and orders[2].filled_qty == D("0.5") and orders[2].state == "open"
    assert order_to_trade(30, 3) == 10.0 and order_to_trade(5, 0) is None
