"""A hostile counterparty on a real FIX session (issue 11, cases 3 and 4).

The strict TrueX simulator fills our order for real, then the
:class:`tests.faults.counterparty.HostileCounterparty` sends reports the
venue never executed. Each case asserts position == the venue's own fills,
no fill counted twice, nothing left open after stop, and that anything
impossible was quarantined with an alarm saying why (the engine halts on it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from mmkit.model import Side
from mmkit.orders.validation import QuarantineKind
from tests.faults.counterparty import HostileCounterparty
from tests.faults.test_proxy_faults import LedgerRig, _open


@pytest.fixture
async def filled(tmp_path: Path) -> AsyncIterator[tuple[LedgerRig, HostileCounterparty, dict[str, str]]]:
    """A rig whose order s1 (sell 0.03 @ 60005) has one real fill of 0.01 booked."""
    rig = LedgerRig(tmp_path)
    await rig.start()
    try:
        rig.submit("s1", Side.SELL, "60005", "0.03")
        await rig.pump(_open(rig, "s1"), 10)
        rig.exchange.submit_taker(Side.BUY, Decimal("0.01"), Decimal("60010"))
        await rig.pump(lambda: len(rig.booked) == 1, 10)
        hostile = HostileCounterparty(rig.exchange, rig.oe_comp, rig.fills_log)
        [real] = hostile.real_fills()
        yield rig, hostile, real
    finally:
        await rig.stop()
    assert rig.exchange.open_orders(rig.oe_comp) == [], "an order was left open at the venue"
    rig.assert_ledger_matches_venue()


Filled = tuple[LedgerRig, HostileCounterparty, dict[str, str]]


async def test_duplicate_report_is_counted_once(filled: Filled) -> None:
    rig, hostile, real = filled
    hostile.duplicate(real)
    await rig.pump(lambda: rig.stream.duplicate_fills == 1, 10)
    assert rig.alarms == [] and rig.position() == Decimal("-0.01")


async def test_late_duplicate_after_cancel_is_counted_once(filled: Filled) -> None:
    rig, hostile, real = filled
    rig.tracker.cancel("s1")
    await rig.pump(lambda: rig.tracker.get("s1").is_done, 10)  # type: ignore[union-attr]
    hostile.late(real)
    await rig.pump(lambda: rig.stream.duplicate_fills == 1, 10)
    assert rig.alarms == [] and rig.position() == Decimal("-0.01")


@pytest.mark.parametrize(
    ("send", "kind"),
    [
        ("conflicting", QuarantineKind.CONFLICT),
        ("overfill", QuarantineKind.OVERFILL),
        ("negative", QuarantineKind.QTY),
        ("off_price", QuarantineKind.BAND),
    ],
)
async def test_impossible_report_is_quarantined_and_halts(filled: Filled, send: str, kind: QuarantineKind) -> None:
    rig, hostile, real = filled
    exec_id = getattr(hostile, send)(real)
    await rig.pump(lambda: bool(rig.quarantined), 10)
    [bad] = rig.quarantined
    assert bad.kind is kind and bad.fill.trade_id == exec_id
    assert rig.alarms and kind.value in rig.alarms[0].reason  # the halt says why
    assert rig.position() == Decimal("-0.01")  # never booked
    rig.exchange.submit_taker(Side.BUY, Decimal("0.01"), Decimal("60010"))  # real trading still books
    await rig.pump(lambda: rig.position() == Decimal("-0.02"), 10)
