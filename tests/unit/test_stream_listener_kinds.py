"""Order listeners that take only some event classes (``kinds``), and the per-class handlers that carry them.

The stream keeps, per event class, the route bound to that class's listeners
(issue 16: a reject counter is not called for the thousands of acks). What
must hold: a listener hears exactly the events of its classes (subclasses
and proxies included, as ``isinstance`` says), every listener in the order
it was added, and one added after events of a class were already routed
hears the next one of that class (the per-class handlers are made again).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs
import pytest

from mmkit.connector import load_venue_rules
from mmkit.model import (
    Fill,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderRejected,
    OrderRequest,
    OrderStatusReport,
    RejectReason,
    Side,
    VenueEvent,
    VenueOrderStatus,
)
from mmkit.orders.tracker import ClientOrderTracker
from mmkit.stream import UserStreamTracker
from mmkit.testing.fake_connector import FakeConnector

SYM = "BTC-PYUSD"


@attrs.frozen(slots=True)
class LateRejected(OrderRejected):
    """A connector's own subclass of a reject."""


class Claims:
    """Stands for ``inner``: ``isinstance`` sees ``inner``'s class, ``type()`` sees Claims (a proxy)."""

    def __init__(self, inner: object) -> None:
        self._inner = inner

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        return type(self._inner)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def accepted(cid: str = "c1") -> OrderAccepted:
    return OrderAccepted("sim", cid, "V1", 0, 0)


def rejected(cid: str = "c1") -> OrderRejected:
    return OrderRejected("sim", cid, RejectReason.OTHER, "no", 0, 0)


def canceled(cid: str = "c1") -> OrderCanceled:
    return OrderCanceled("sim", cid, 0, 0)


def test_a_listener_hears_only_its_kinds_and_the_others_hear_everything_in_order() -> None:
    stream = UserStreamTracker()
    heard: list[tuple[str, VenueEvent]] = []
    stream.add_order_listener(lambda e: heard.append(("all", e)))
    stream.add_order_listener(lambda e: heard.append(("rejects", e)), (OrderRejected, OrderCancelRejected))
    stream.add_order_listener(lambda e: heard.append(("acks", e)), (OrderAccepted,))
    ack, reject, cancel = accepted(), rejected(), canceled()
    late = LateRejected("sim", "c2", RejectReason.OTHER, "late", 0, 0)
    stream.process([ack, reject, cancel, late, ack])
    assert heard == [
        ("all", ack), ("acks", ack),
        ("all", reject), ("rejects", reject),
        ("all", cancel),
        ("all", late), ("rejects", late),  # a subclass is heard as its base
        ("all", ack), ("acks", ack),
    ]


def test_a_listener_added_after_a_class_was_routed_hears_the_next_event_of_it() -> None:
    stream = UserStreamTracker()
    first: list[VenueEvent] = []
    stream.add_order_listener(first.append)
    assert stream.push(accepted("c1"))  # the handler of OrderAccepted is made here, with one listener
    stream.process([rejected("c1")])
    later: list[VenueEvent] = []
    stream.add_order_listener(later.append)
    counted: list[VenueEvent] = []
    stream.add_order_listener(counted.append, (OrderRejected,))
    ack, reject = accepted("c2"), rejected("c2")
    stream.process([ack, reject])
    assert stream.push(ack)
    assert later == [ack, reject, ack] and counted == [reject]
    assert len(first) == 5


def test_a_listener_added_by_a_listener_hears_the_next_event_of_the_batch() -> None:
    stream = UserStreamTracker()
    later: list[VenueEvent] = []

    def adds_one(event: VenueEvent) -> None:
        if not later and event.client_id == "c1":  # type: ignore[attr-defined]
            stream.add_order_listener(later.append)

    stream.add_order_listener(adds_one)
    second = accepted("c2")
    stream.process([accepted("c1"), second])
    assert later == [second]


def test_a_proxy_is_heard_by_the_listeners_of_the_class_it_claims_each_time() -> None:
    stream = UserStreamTracker()
    rejects: list[object] = []
    stream.add_order_listener(rejects.append, (OrderRejected,))
    as_ack, as_reject = Claims(accepted()), Claims(rejected())
    assert type(as_ack) is type(as_reject)  # one type, two claimed classes
    stream.process([as_ack, as_reject, as_ack, as_reject])  # type: ignore[list-item]
    assert rejects == [as_reject, as_reject]


def test_status_reports_are_checked_against_the_ledger_whoever_listens() -> None:
    """A report reaches only the listeners that take it, and is checked for missing fills in any case."""
    fake = FakeConnector(load_venue_rules("sim"), auto_ack=False)
    tracker = ClientOrderTracker(fake)
    stream = UserStreamTracker(tracker)
    acks: list[VenueEvent] = []
    everything: list[VenueEvent] = []
    stream.add_order_listener(acks.append, (OrderAccepted,))
    stream.add_order_listener(everything.append)
    tracker.submit(OrderRequest("c1", "sim", SYM, Side.BUY, Decimal("0.01"), Decimal("59990")))
    report = OrderStatusReport("sim", "c1", "V1", SYM, Side.BUY, Decimal("59990"), Decimal("0.01"),
                               Decimal("0.004"), VenueOrderStatus.PARTIALLY_FILLED, 5, 5)
    stream.process([report])
    assert acks == [] and everything == [report]
    assert stream.synthetic_fills == 1  # the venue's 0.004 the ledger did not hold: booked, flagged
    assert tracker.get("c1").filled_qty == Decimal("0.004")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("kinds", "why"),
    [
        ([OrderRejected], "non-empty tuple"),  # a list: isinstance would raise on the first event, outside the guard
        ((), "non-empty tuple"),  # nothing: the listener would never be called
        ((Fill,), "not an order event class"),  # fills go to fill listeners: never called
        ((OrderRejected, "OrderRejected"), "not an order event class"),
    ],
)
def test_kinds_that_would_fail_later_or_never_call_the_listener_are_refused_at_registration(
    kinds: Any, why: str
) -> None:
    stream = UserStreamTracker()
    heard: list[VenueEvent] = []
    with pytest.raises(TypeError, match=why):
        stream.add_order_listener(heard.append, kinds=kinds)
    # Nothing was registered: the stream goes on delivering to the others.
    others: list[VenueEvent] = []
    stream.add_order_listener(others.append)
    stream.push(accepted())
    assert heard == [] and len(others) == 1
