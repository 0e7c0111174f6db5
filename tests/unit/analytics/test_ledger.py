"""The ledger figures shared by the live report and `mmkit history`."""

from __future__ import annotations

from decimal import Decimal as D

from mmkit.analytics.ledger import fee_in_quote, summarize
from mmkit.model import Fill, Liquidity, Side


def fill(n: int, side: Side, price: str, qty: str, ts: int, fee: str = "0", currency: str = "USDT") -> Fill:
    return Fill("v", f"t{n}", f"c{n}", "BTCUSDT", side, D(price), D(qty), D(fee), currency, Liquidity.MAKER, ts, ts)


def test_two_sessions_fifo_carried_unrealized_at_each_closing_mark() -> None:
    fills = [fill(1, Side.BUY, "100", "2", 10, "0.1"), fill(2, Side.SELL, "103", "1", 20),
             fill(3, Side.SELL, "104", "2", 110, "0.001", "BTC")]
    marks = [(5, D(100)), (15, D(101)), (50, D(102)), (105, D(104)), (200, D(106))]
    groups = {0: "s1", 1: "s1", 2: "s2"}
    s1, s2 = summarize(fills, lambda i, f: groups[i], marks)
    # s1: bought 2 @100, sold 1 @103 -> realized 3; 1 left long, closing mark = last mark before s2's first fill
    assert s1.realized == D(3) and s1.closing_mark == D(104) and s1.unrealized == D(4)  # mark at 105 < 110
    assert s1.fees == {"USDT": D("0.1")} and s1.fees_quote == D("0.1")
    assert s1.total == D(3) - D("0.1") + D(4)
    # capture: buy 2 @100 vs mark 100 (0 bps), sell 1 @103 vs mark 101 -> (103-101)/101 bps, qty-weighted
    expected = (D(0) * 2 + (D(103) - D(101)) / D(101) * 10_000) / 3
    assert s1.capture_bps == expected
    # s2: sells 2 @104 -> closes the carried long (realized 4), opens a short of 1 marked at the last mark 106
    assert s2.realized == D(4) and s2.closing_mark == D(106) and s2.unrealized == D(-2)
    assert s2.fees == {"BTC": D("0.001")} and s2.fees_quote == D("0.104")  # base fee at the fill price
    assert s2.as_dict()["fees_by_currency"] == {"BTC": "0.001"}


def test_without_marks_unrealized_at_last_fill_price_and_no_capture() -> None:
    (only,) = summarize([fill(1, Side.BUY, "100", "1", 10), fill(2, Side.BUY, "110", "1", 20)],
                        lambda i, f: "day")
    assert only.closing_mark is None and only.unrealized == D(10)  # 2 long at avg 105, marked at 110
    assert only.capture_bps is None


def test_fee_in_quote_converts_only_base_fees() -> None:
    assert fee_in_quote(fill(1, Side.BUY, "100", "1", 0, "0.5", "USDT"), "BTC") == D("0.5")
    assert fee_in_quote(fill(1, Side.BUY, "100", "1", 0, "0.5", "btc"), "BTC") == D(50)
