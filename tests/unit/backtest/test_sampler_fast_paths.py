"""BacktestSampler's cheap paths (issue 16) give what the plain reads give.

* each order's price is kept as a float, by the order, at most
  ``_PRICE_FLOATS_KEPT`` of them: rows stay right across many orders and the
  memo never grows past its bound;
* order events go to their kind's handler by class: a subclass of an event
  counts as its base, an event of no kind the sampler counts changes nothing;
* quiet ticks are written as one repeated run of the last row.
"""

from __future__ import annotations

import math
from decimal import Decimal as D

import attrs
import pytest

from mmkit.backtest import sampler as sampler_module
from mmkit.model import OrderCanceled, OrderCancelRejected, OrderExpired, RejectReason, Side
from tests.unit.backtest.test_sampler_memo import Rig, expected, same


@attrs.frozen(slots=True)
class VenueCanceled(OrderCanceled):
    """A connector's own subclass of a cancel."""


def test_rows_stay_right_and_the_price_memo_bounded_across_many_orders(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sampler_module, "_PRICE_FLOATS_KEPT", 3)
    rig = Rig()
    for i in range(8):  # each round: a new bid and ask inside the last ones, which are asked to go
        bid = rig.place(Side.BUY, str(59900 + i))
        ask = rig.place(Side.SELL, str(60100 - i))
        rig.fake.ack(bid)
        rig.fake.ack(ask)
        rig.pump()
        rig.tick()
        assert same(rig.row(), expected(rig))
        assert len(rig.sampler._price_floats) <= 3
        for cid in (bid, ask):
            rig.orders.cancel(cid, rig.n)
        rig.pump()
        rig.tick()  # PENDING_CANCEL (the fake does not confirm): still live, still the best
        assert rig.row()[1] == 59900.0 + i and rig.row()[2] == 60100.0 - i
        assert same(rig.row(), expected(rig))
    assert len(rig.sampler._price_floats) <= 3


def test_each_kind_of_order_event_counts_as_before() -> None:
    rig = Rig()
    sampler = rig.sampler
    first = rig.place(Side.BUY, "59990")
    rig.fake.ack(first)
    second = rig.place(Side.SELL, "60020")
    rig.fake.ack(second)
    for event in rig.fake.drain():
        rig.orders.on_event(event)
        sampler.on_order_event(event)
    assert sampler.accepted_orders == 2 and sampler.accepted_qty == D("0.02") and sampler.order_messages == 2
    assert sampler.orders[first].accepted_ns is not None and sampler.orders[second].side is Side.SELL
    sampler.on_order_event(VenueCanceled("sim", first, 5, 6))  # a subclass: a cancel all the same
    assert sampler.orders[first].state == "canceled" and sampler.orders[first].ended_ns == 6
    assert sampler.order_messages == 3
    sampler.on_order_event(OrderExpired("sim", second, 7, 8))  # ends the order, is no message of ours
    assert sampler.orders[second].state == "expired" and sampler.order_messages == 3
    before = (sampler.accepted_orders, sampler.order_messages, dict(sampler.orders))
    sampler.on_order_event(OrderCancelRejected("sim", first, RejectReason.UNKNOWN_ORDER, "gone", 9, 9))
    assert (sampler.accepted_orders, sampler.order_messages, dict(sampler.orders)) == before


def test_a_quiet_run_is_written_as_repeats_of_the_last_row() -> None:
    rig = Rig()
    cid = rig.place(Side.BUY, "59990")
    rig.fake.ack(cid)
    rig.pump()
    for _ in range(5):
        rig.tick()
    rig.place(Side.SELL, "60030")  # a change: the five quiet rows are written before the next one
    rig.fake.ack_all()
    rig.pump()
    rig.tick()
    assert len(rig.sampler) == 6 and len(rig.sampler.mid) == 6
    assert all(same(rig.row(i), rig.row(0)) for i in range(5))
    assert rig.row(5)[2] == 60030.0 and math.isnan(rig.row(0)[2])
