"""Cash that is not a fill (a perpetual's funding) in the PnL: the total, the drawdown and the kill switch see it.

A ledger that never books one shows nothing of it (the backtest determinism tests hold its reports' bytes).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from mmkit.model import FairValue, Fill, Liquidity, Side
from mmkit.risk.kill_switch import KillSwitch, KillSwitchConfig
from mmkit.risk.pnl import PnLConfig, PnLTracker

NS = 1_000_000_000


def _fill(n: int, side: Side, price: str, qty: str, hedge: bool = False) -> Fill:
    return Fill("v", f"t{n}", f"c{n}", "BTCUSDT", side, Decimal(price), Decimal(qty), Decimal("0.5"), "USDT",
                Liquidity.MAKER, n * NS, n * NS, is_hedge=hedge)


def _ledger() -> PnLTracker:
    pnl = PnLTracker(PnLConfig(quote_asset="USDT"))
    pnl.on_fill(_fill(1, Side.BUY, "100.0", "2"))
    pnl.mark(Decimal("101.25"), 2 * NS)
    return pnl


def test_without_a_cash_flow_nothing_is_added_or_shown() -> None:
    pnl = _ledger()
    figures = pnl.figures()
    assert str(figures.total) == "2.00" and "cash_flows" not in pnl.summary_line()
    assert figures.cash_flows == 0 and pnl.cash_flows() == {} and "cash_flows" not in pnl.summary()


def test_a_cash_flow_moves_the_total_the_quote_book_and_the_drawdown_not_realized() -> None:
    pnl = _ledger()
    before = pnl.figures()
    pnl.book_cash_flow(Decimal("-30"), 3 * NS, "funding")
    after = pnl.figures()
    assert after is not before  # the memo is dropped: every reader keyed on the object sees a new total
    assert after.total == before.total - 30 and after.cash_flows == Decimal(-30)
    assert after.realized == before.realized and after.fees == before.fees
    assert pnl.total(hedge=False) == after.total and pnl.total(hedge=True) == 0
    assert pnl.max_drawdown == pnl.peak - after.total >= 30
    assert pnl.cash_flows() == {"funding": Decimal(-30)} and pnl.summary()["cash_flows"] == "-30.00"
    pnl.book_cash_flow(Decimal("12.5"), 4 * NS, "funding")
    assert pnl.cash_flows() == {"funding": Decimal("-17.5")} and pnl.total() == before.total - Decimal("17.5")


def test_a_cash_flow_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(ValueError, match="finite"):
        _ledger().book_cash_flow(Decimal("NaN"), 0, "funding")


def test_the_kill_switch_trips_on_a_loss_only_the_cash_flow_makes_and_its_reason_names_it() -> None:
    pnl = _ledger()
    switch = KillSwitch(KillSwitchConfig(max_loss=Decimal(20), max_drawdown=None))
    fair = FairValue(Decimal(100), 1.0, 3 * NS)
    assert switch.evaluate(3 * NS, fair, pnl.figures().total) is False
    switch.pnl_note = lambda: "of which funding -30 USDT"
    assert switch.evaluate(3 * NS, fair, pnl.figures().total) is False  # no PnL reason: the note says nothing
    pnl.book_cash_flow(Decimal("-30"), 3 * NS, "funding")
    assert switch.evaluate(3 * NS, fair, pnl.figures().total) is True
    assert switch.reason.startswith("loss ") and switch.reason.endswith("(of which funding -30 USDT)")
