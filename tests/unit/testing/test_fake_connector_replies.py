"""The fake's acks are built when read (issue 16) and must come out exactly as if emitted at once."""

from __future__ import annotations

from decimal import Decimal

from mmkit.connector import load_venue_rules
from mmkit.model import (
    BookSnapshot,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderReplaced,
    OrderRequest,
    ReplaceRequest,
    Side,
    Trade,
)
from mmkit.testing.fake_connector import FakeConnector

D = Decimal
SYM = "BTC-PYUSD"


def _order(cid: str, price: str, side: Side = Side.BUY) -> OrderRequest:
    return OrderRequest(cid, "sim", SYM, side, D("0.01"), D(price))


def test_acks_interleave_with_other_events_in_call_order() -> None:
    fake = FakeConnector(load_venue_rules("sim"))
    fake.now_ns = 5
    fake.place(_order("a", "60000.0"))
    fake.set_book([("60000.5", "1")], [("60001.0", "1")])  # emitted after the ack of "a"
    fake.now_ns = 6
    fake.place(_order("b", "59990.0"))
    fake.cancel("a", SYM)
    fake.cancel("nope", SYM)  # refused: emitted at once, after the acks before it
    fake.now_ns = 7
    fake.replace(ReplaceRequest("b2", "b", "sim", SYM, Side.BUY, D("0.02"), D("59991.0"), 7))
    fake.print_trade("59991.0", "0.005", Side.SELL)  # a trade and a fill of b2, after its replace ack
    events = fake.drain()
    assert [type(e).__name__ for e in events] == [
        "OrderAccepted", "BookSnapshot", "OrderAccepted", "OrderCanceled", "OrderCancelRejected",
        "OrderReplaced", "Trade", "Fill",
    ]
    accepted_a, book, accepted_b, canceled, refused, replaced, trade, fill = events
    assert isinstance(accepted_a, OrderAccepted) and isinstance(book, BookSnapshot)
    assert (accepted_a.client_id, accepted_a.venue_order_id, accepted_a.ts_event) == ("a", "V1", 5)
    assert accepted_a.ts_recv == 5
    assert isinstance(accepted_b, OrderAccepted) and (accepted_b.client_id, accepted_b.ts_recv) == ("b", 6)
    assert canceled == OrderCanceled("sim", "a", 6, 6, leaves_qty=D("0.01"))
    assert isinstance(refused, OrderCancelRejected) and refused.client_id == "nope"
    assert replaced == OrderReplaced("sim", "b2", "b", "V2", D("59991.0"), D("0.02"), 7, 7)
    assert isinstance(trade, Trade) and fill.client_id == "b2"
    assert fake.drain() == []


def test_fields_are_those_of_call_time() -> None:
    fake = FakeConnector(load_venue_rules("sim"))
    fake.now_ns = 1
    fake.place(_order("a", "60000.0"))
    fake.fill("a", "0.004")  # a fill before the cancel: the cancel's leaves_qty is what remained then
    fake.cancel("a", SYM)
    fake.now_ns = 99  # read later: the events keep the times of their calls
    events = fake.drain()
    assert [type(e).__name__ for e in events] == ["OrderAccepted", "Fill", "OrderCanceled"]
    assert events[0].ts_recv == 1
    assert events[2] == OrderCanceled("sim", "a", 1, 1, leaves_qty=D("0.006"))
