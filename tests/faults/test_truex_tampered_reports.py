"""A real fill whose only trade report reaches us damaged (the TrueX simulator's tamper mode).

The venue filled our order for real (its fills log and the order's CumQty say
so), but the one 35=8 about it is one we must not believe as it stands:
refused by QuickFIX's dictionary check (an ExecType outside the spec, a
required tag missing), or readable but incomplete or contradicting the order
we sent (no LastQty, no ClOrdID, a trade whose OrdStatus says New, the other
side, another symbol), or skipped over by a SequenceReset-GapFill. Before: QuickFIX answered the venue with a session
Reject and the application never heard of the fill (nothing counted, the
ledger short by the fill, no halt); a readable one was booked as it came
(the other side's position) or counted as malformed with the fill lost.

Now: the report is counted (``malformed``), nothing in it is booked, and the
connector asks the venue about every live order at once (status by cancel);
the answer's CumQty books the fill (flagged, synthetic) and halts the
ledger, saying fills were missing. Position == the venue's fills, exactly.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from mmkit.model import Side
from mmkit.orders.validation import QuarantineKind
from tests.faults.test_proxy_faults import LedgerRig, _open

pytestmark = pytest.mark.integration


async def _fill_through_tamper(tmp_path: Path, kind: str) -> LedgerRig:
    rig = LedgerRig(tmp_path, {"tamper": kind})
    await rig.start()
    rig.submit("s1", Side.SELL, "60005", "0.03")
    await rig.pump(_open(rig, "s1"), 10)
    rig.exchange.submit_taker(Side.BUY, Decimal("0.01"), Decimal("60010"))  # a real fill; its report damaged
    return rig


@pytest.mark.parametrize(
    "kind",
    ["bad_exec_type", "no_ord_status", "no_last_qty", "no_clordid", "impossible_status", "wrong_side",
     "wrong_symbol", "skipped"],
)
async def test_a_damaged_trade_report_is_counted_and_the_fill_booked_from_the_venues_answer(
    tmp_path: Path, kind: str
) -> None:
    rig = await _fill_through_tamper(tmp_path, kind)
    try:
        await rig.pump(lambda: bool(rig.alarms), 10)
        assert rig.connector is not None
        counters = rig.connector.health_counters()
        if kind == "skipped":  # never sent: a SequenceReset-GapFill answered our resend request over it
            assert (counters["malformed"], counters["gap_fills"]) == (0, 1)
        else:
            assert counters["malformed"] == 1, "the damaged report was not counted"
            refused = 1 if kind in ("bad_exec_type", "no_ord_status") else 0  # QuickFIX refused it unseen
            assert counters["refused_by_session"] == refused
        assert "fills missing" in rig.alarms[0].reason
        assert [f.trade_id.startswith("SYN-") for f in rig.booked] == [True]  # booked once, from CumQty
        assert rig.position() == rig.venue_position() == Decimal("-0.01")
    finally:
        await rig.stop()
    assert rig.exchange.open_orders(rig.oe_comp) == []
    rig.assert_ledger_matches_venue()


async def test_a_fill_sent_a_day_ahead_is_refused_by_quickfix_and_found_at_once(tmp_path: Path) -> None:
    """QuickFIX's latency check (120 s) refuses it and logs the session out: counted (``refused_by_session``),
    and the fill found from CumQty (the recheck, or the re-logon's reconcile, whichever answers first)."""
    rig = await _fill_through_tamper(tmp_path, "future_sending_time")
    try:
        await rig.pump(lambda: bool(rig.alarms), 15)
        assert rig.connector is not None
        assert rig.connector.health_counters()["refused_by_session"] == 1
        assert "fills missing" in rig.alarms[0].reason
        assert rig.position() == rig.venue_position() == Decimal("-0.01")
        await rig.pump(lambda: rig.connector is not None and rig.connector.connected, 15)
    finally:
        await rig.stop()
    rig.assert_ledger_matches_venue()


async def test_a_thousand_digit_last_qty_is_quarantined_and_the_venues_cum_qty_booked(tmp_path: Path) -> None:
    """Not a finding: the connector reads it exactly, the engine quarantines it (overfill) and books CumQty."""
    rig = await _fill_through_tamper(tmp_path, "huge_qty")
    try:
        await rig.pump(lambda: bool(rig.quarantined) and bool(rig.alarms), 10)
        assert [q.kind for q in rig.quarantined] == [QuarantineKind.OVERFILL]
        assert rig.position() == rig.venue_position() == Decimal("-0.01")
    finally:
        await rig.stop()
    rig.assert_ledger_matches_venue()
