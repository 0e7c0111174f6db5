"""Restart recovery when an order was partly filled and then replaced (found by tests/e2e/test_sigkill_recovery.py).

FIX venues (TrueX) keep one OrderID across a cancel/replace and report CumQty
for the whole order, while the ledger books each fill under the ClOrdID that
was live at the time. Recovery must compare the two per venue order id, or a
venue without fill history makes every such restart refuse to quote.
"""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import attrs
import pytest

from mmkit.app.config import StoreSection
from mmkit.app.engine import EngineStartError
from mmkit.app.persistence import attach_persistence, default_store_url
from mmkit.connector import load_venue_rules
from mmkit.model import OrderStatusReport, Side
from mmkit.store.queries import StoreQueries
from mmkit.testing.fake_connector import FakeConnector, FakeOrder
from mmkit.testing.harness import Harness
from strategies.simple import SimpleConfig, SimpleController

INSTANCE = "replaced"


class CumQtyVenue(FakeConnector):
    """A FakeConnector that reports filled quantity the FIX way: cumulative over the order's ClOrdIDs."""

    def _report(self, order: FakeOrder) -> OrderStatusReport:
        report = super()._report(order)
        chain = [o for o in self._orders.values() if o.venue_order_id == order.venue_order_id]
        upto = chain[: chain.index(order) + 1]
        return attrs.evolve(report, filled_qty=sum((o.filled_qty for o in upto), D(0)))


def harness(venue: FakeConnector) -> Harness:
    controller = SimpleController(SimpleConfig(half_spread_bps=D(10), order_size=D("0.01")))
    return Harness(controller, rules=venue.rules, venue=venue)


async def crashed_after_fill_and_replace(tmp_path: Path, venue: CumQtyVenue) -> tuple[str, str]:
    """Run A: the bid fills partly and is re-sized (a replace, same venue order id); all of it is
    written, then A dies. Returns (original bid, its replacement)."""
    a = harness(venue)
    p = attach_persistence(a.engine, StoreSection(), INSTANCE, tmp_path)
    await a.engine.start()
    a.set_fair("60000")
    a.tick(2)
    bid = next(o for o in venue.open_orders if o.side is Side.BUY)
    venue.fill(bid.client_id, "0.004")
    a.tick(3)
    replacement = next(o for o in venue.open_orders if o.side is Side.BUY)
    assert replacement.client_id != bid.client_id and replacement.venue_order_id == bid.venue_order_id
    assert p.recorder.flush()
    p.recorder.record_fill = lambda fill: False  # type: ignore[method-assign]
    p.recorder.record_order = lambda *a, **k: False  # type: ignore[method-assign]
    return bid.client_id, replacement.client_id


def rules_without_fill_history() -> CumQtyVenue:
    return CumQtyVenue(attrs.evolve(load_venue_rules("sim"), supports_fill_history=False))


async def test_a_replaced_partly_filled_order_is_recovered_not_refused(tmp_path: Path) -> None:
    venue = rules_without_fill_history()
    bid, replacement = await crashed_after_fill_and_replace(tmp_path, venue)
    venue.cancel(replacement, "BTC-PYUSD")  # the venue cancels it while we are down (cancel on disconnect)
    assert venue._report(venue.order(replacement)).filled_qty == D("0.004")  # type: ignore[arg-type]

    b = harness(venue)
    p = attach_persistence(b.engine, StoreSection(), INSTANCE, tmp_path)
    await b.engine.start()
    assert p.recovery is not None and replacement in p.recovery.closed
    assert b.position == D("0.004")
    assert p.close() == 0
    q = StoreQueries(default_store_url(StoreSection(), INSTANCE, tmp_path))
    try:
        last = q.order_history("sim", replacement)[-1]
        # the ledger's convention: this ClOrdID's own fills (none), not the whole order's CumQty
        assert (last.state, last.filled_qty) == ("CANCELED", D(0))
        assert q.order_history("sim", bid)[-1].filled_qty == D("0.004")
    finally:
        q.close()


async def test_a_fill_missing_on_the_replacement_still_refuses(tmp_path: Path) -> None:
    venue = rules_without_fill_history()
    _, replacement = await crashed_after_fill_and_replace(tmp_path, venue)
    venue.fill(replacement, "0.002")  # never recorded, and the venue cannot list it later
    venue.cancel(replacement, "BTC-PYUSD")

    b = harness(venue)
    p = attach_persistence(b.engine, StoreSection(), INSTANCE, tmp_path)
    with pytest.raises(EngineStartError, match=rf"{replacement} \(venue filled 0.006, ledger 0.004\)"):
        await b.engine.start()
    assert p.close() == 0
