"""`mmkit history` / the live report on an inverse contract: coin PnL, the same as the engine's ledger."""

from __future__ import annotations

from decimal import Decimal as D

from mmkit.analytics.ledger import summarize
from mmkit.app.history_cmd import format_history
from mmkit.instrument import IncrementBand, Instrument
from mmkit.model import Fill, Liquidity, Side
from mmkit.risk.pnl import PnLConfig, PnLTracker
from mmkit.risk.settlement import Settlement

COINM = Instrument("binance_coinm", "BTCUSD_PERP", "BTC", "USD", (IncrementBand(D(0), D("0.1"), D(1)),),
                   contract_size=D(100), inverse=True)
SETTLEMENTS = {("binance_coinm", "BTCUSD_PERP"): Settlement.of(COINM)}


def fill(n: int, side: Side, price: str, qty: str, ts: int, fee: str = "0", currency: str = "BTC") -> Fill:
    return Fill("binance_coinm", f"t{n}", f"c{n}", "BTCUSD_PERP", side, D(price), D(qty), D(fee), currency,
                Liquidity.MAKER, ts, ts)


FILLS = [fill(1, Side.BUY, "50000", "10", 10, "0.000004"), fill(2, Side.SELL, "60000", "4", 20, "0.02", "USD"),
         fill(3, Side.SELL, "40000", "10", 110, "0.000005")]
MARKS = [(5, D(50000)), (105, D(45000)), (200, D(42000))]


def test_history_books_coin_pnl_like_the_engine() -> None:
    s1, s2 = summarize(FILLS, lambda i, f: "s1" if f.ts_event < 100 else "s2", MARKS, settlements=SETTLEMENTS)
    # s1: long 10 @50000, sold 4 @60000: 400 * (1/50000 - 1/60000) = 1/750 BTC; 6 left, marked at 45,000.
    assert abs(s1.realized - D(1) / D(750)) < D("1e-20")
    assert abs(s1.unrealized - D(600) * (D(1) / D(50000) - D(1) / D(45000))) < D("1e-20")
    assert s1.fees_quote == D("0.000004") + D("0.02") / D(60000)  # the USD fee converted to coin at its fill
    assert s1.notional == D(1400) and s1.unit == "BTC"  # contracts x 100 USD
    # The engine's tracker over the same fills and the same last mark: the same coin total for the session.
    engine = PnLTracker(PnLConfig().for_instrument(COINM))
    for f in FILLS[:2]:
        engine.on_fill(f)
    engine.mark(D(45000), 105)
    assert abs(engine.total() - s1.total) < D("1e-20")
    assert s1.total_in_quote == s1.total * D(45000)
    row = s2.as_dict()
    assert row["pnl_unit"] == "BTC" and row["volume_contracts"] == "10" and "realized_quote" not in row
    text = format_history("inst", "session", [s1, s2], {})
    assert "binance_coinm:BTCUSD_PERP is inverse" in text and "in BTC" in text


def test_without_settlements_the_same_fills_read_linear_and_far_off() -> None:
    (linear, _) = summarize(FILLS, lambda i, f: "s1" if f.ts_event < 100 else "s2", MARKS)
    (inverse, _) = summarize(FILLS, lambda i, f: "s1" if f.ts_event < 100 else "s2", MARKS, settlements=SETTLEMENTS)
    assert linear.realized == D(40000)  # 4 "BTC" x 10,000: what history printed for a COIN-M session
    assert inverse.realized < D("0.002")


def test_the_live_status_line_shows_coin_pnl_to_the_satoshi_with_its_value_in_quote() -> None:
    from mmkit.app.report import _pnl_line

    engine = PnLTracker(PnLConfig().for_instrument(COINM))
    engine.on_fill(FILLS[0])
    engine.mark(D(40000), 1)
    line = _pnl_line(engine)  # 1000 * (1/50000 - 1/40000) = -0.005 BTC, minus the 0.000004 BTC fee
    assert "PnL total -0.00500400 BTC (-200.16 USD)" in line and "fees 0.00000400 BTC" in line


def test_a_flat_coin_pnl_per_hour_reads_as_positional_satoshis() -> None:
    from mmkit.analytics.performance import pnl_rate

    rate = pnl_rate([0, 3600 * 10**9], [0.0, 0.0], D(0), quantum=D("0.00000001"))
    assert rate["pnl_per_hour"] == "0.00000000"
    assert pnl_rate([0, 3600 * 10**9], [0.0, 0.0], D("-20.7912"))["pnl_per_hour"] == "-20.79"
