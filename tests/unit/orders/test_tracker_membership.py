"""The open-order view is rebuilt when the set of not-finished orders changes, and only then.

``open_orders_view`` is memoized on a counter that every change of the
active map bumps (an order submitted, a replacement tracked, one adopted at
reconciliation or announced by the venue, one filed away as finished, one
brought back from FAILED). Each test drives one of those changes and checks
the view against the long way (every order not finished, in submission
order); dropping any one bump makes its test fail. The other half of the
bargain: events that only change an order in place reuse the tuple.

``on_event`` picks its handler per event class: the last tests check that a
subclass of an event is still handled as its parent, and that an object
which only claims an event's class is classified each time.
"""

from __future__ import annotations

from decimal import Decimal

from mmkit.model import (
    NS_PER_S,
    OrderAccepted,
    OrderCanceled,
    OrderNotFound,
    OrderReplaced,
    OrderRequest,
    OrderStatusReport,
    Side,
    VenueOrderStatus,
)
from mmkit.orders.client_order import ClientOrder
from mmkit.orders.states import OrderState
from mmkit.orders.tracker import ClientOrderTracker
from mmkit.testing.fake_connector import FakeConnector

SYM = "BTC-PYUSD"


def req(tracker: ClientOrderTracker, side: Side = Side.BUY) -> OrderRequest:
    return OrderRequest(tracker.new_client_id(), "sim", SYM, side, Decimal("0.01"), Decimal("59990"))


def long_way(tracker: ClientOrderTracker) -> tuple[ClientOrder, ...]:
    """Every order the tracker knows that is not finished, in the order it started being tracked."""
    known = [*tracker.finished_orders(), *tracker.open_orders()]
    return tuple(o for o in sorted(known, key=lambda o: o.created_ns) if not o.is_done)


def same(view: tuple[ClientOrder, ...], want: tuple[ClientOrder, ...]) -> bool:
    return len(view) == len(want) and all(a is b for a, b in zip(view, want, strict=True))


def open_ack(fake: FakeConnector, tracker: ClientOrderTracker, created: int) -> ClientOrder:
    order = tracker.submit(req(tracker), created)
    fake.ack(order.client_id)
    tracker.on_events(fake.drain())
    return order


def test_submit_adds_to_the_view(tracker: ClientOrderTracker) -> None:
    first = tracker.submit(req(tracker), 1)
    assert tracker.open_orders_view(SYM) == (first,)
    second = tracker.submit(req(tracker), 2)
    assert same(tracker.open_orders_view(SYM), (first, second))
    assert same(tracker.open_orders_view(), (first, second))


def test_an_order_filed_away_leaves_the_view(fake: FakeConnector, tracker: ClientOrderTracker) -> None:
    order = open_ack(fake, tracker, 1)
    other = open_ack(fake, tracker, 2)
    assert same(tracker.open_orders_view(SYM), (order, other))
    tracker.on_event(OrderCanceled("sim", order.client_id, 3, 3, Decimal("0.01")))
    assert order.state is OrderState.CANCELED
    assert same(tracker.open_orders_view(SYM), (other,)) and same(tracker.open_orders_view(SYM), long_way(tracker))


def test_a_replacement_joins_the_view_when_sent(fake: FakeConnector, tracker: ClientOrderTracker) -> None:
    order = open_ack(fake, tracker, 1)
    assert tracker.open_orders_view(SYM) == (order,)
    new = tracker.replace(order.client_id, Decimal("59980"), Decimal("0.01"), 2)
    assert new is not None
    assert same(tracker.open_orders_view(SYM), (order, new))


def test_a_replacement_only_the_venue_announced_joins_the_view(
    fake: FakeConnector, tracker: ClientOrderTracker
) -> None:
    order = open_ack(fake, tracker, 1)
    assert tracker.open_orders_view(SYM) == (order,)
    tracker.on_event(OrderReplaced("sim", "venue-made", order.client_id, "V9", Decimal("59980"), Decimal("0.01"), 2, 2))
    new = tracker.get("venue-made")
    assert new is not None and new.state is OrderState.OPEN and order.state is OrderState.CANCELED
    assert same(tracker.open_orders_view(SYM), (new,))


def test_a_venue_announced_replacement_joins_the_view_when_nothing_else_moves(tracker: ClientOrderTracker) -> None:
    # The original is still PENDING_CREATE, where REPLACED is not a transition: it stays (and is counted as
    # an illegal transition), so the replacement's arrival is the only change of the active orders.
    order = tracker.submit(req(tracker), 1)
    assert tracker.open_orders_view(SYM) == (order,)
    tracker.on_event(OrderReplaced("sim", "venue-made", order.client_id, "V9", Decimal("59980"), Decimal("0.01"), 2, 2))
    new = tracker.get("venue-made")
    assert new is not None and order.state is OrderState.PENDING_CREATE and tracker.illegal_transitions == 1
    assert same(tracker.open_orders_view(SYM), (order, new))


def test_an_order_adopted_at_reconciliation_joins_the_view(fake: FakeConnector, tracker: ClientOrderTracker) -> None:
    assert tracker.open_orders_view(SYM) == ()
    report = OrderStatusReport("sim", "stray", "V1", SYM, Side.SELL, Decimal("60010"), Decimal("0.01"), Decimal(0),
                               VenueOrderStatus.NEW, 1, 1)
    result = tracker.reconcile([report], 5 * NS_PER_S, symbol=SYM)
    assert len(result.adopted) == 1
    assert same(tracker.open_orders_view(SYM), result.adopted)


def test_an_order_brought_back_from_failed_rejoins_the_view(fake: FakeConnector, tracker: ClientOrderTracker) -> None:
    order = tracker.submit(req(tracker), 1)
    tracker.on_event(OrderNotFound("sim", order.client_id, 2))
    assert order.state is OrderState.FAILED and tracker.open_orders_view(SYM) == ()
    tracker.on_event(OrderAccepted("sim", order.client_id, "V1", 3, 3))  # the venue had it after all
    assert order.state is OrderState.OPEN
    assert same(tracker.open_orders_view(SYM), (order,))


def test_changes_in_place_reuse_the_view(fake: FakeConnector, tracker: ClientOrderTracker) -> None:
    order = tracker.submit(req(tracker), 1)
    view = tracker.open_orders_view(SYM)
    version = tracker.version
    fake.ack(order.client_id)
    tracker.on_events(fake.drain())
    assert order.state is OrderState.OPEN and tracker.version > version
    assert tracker.open_orders_view(SYM) is view  # the same orders: the tuple shows the new state
    fake.fill(order.client_id, "0.004")
    tracker.on_events(fake.drain())
    assert tracker.cancel(order.client_id, 2)
    assert order.state is OrderState.PENDING_CANCEL
    assert tracker.open_orders_view(SYM) is view


class _LateAck(OrderAccepted):
    """A connector's own subclass of an event: handled as its parent."""


def test_a_subclass_of_an_event_is_handled_as_its_parent(tracker: ClientOrderTracker) -> None:
    order = tracker.submit(req(tracker), 1)
    assert tracker.on_event(_LateAck("sim", order.client_id, "V1", 2, 2)) is order
    assert order.state is OrderState.OPEN and order.venue_order_id == "V1"


class _Claims:
    """An object that claims, through ``__class__``, to be the event class it was last told."""

    def __init__(self, event: object) -> None:
        self._event = event

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        return type(self._event)

    def __getattr__(self, name: str) -> object:
        return getattr(self._event, name)


def test_an_object_claiming_an_event_class_is_classified_each_time(tracker: ClientOrderTracker) -> None:
    first = tracker.submit(req(tracker), 1)
    second = tracker.submit(req(tracker), 1)
    assert tracker.on_event(_Claims(OrderAccepted("sim", first.client_id, "V1", 2, 2))) is first  # type: ignore[arg-type]
    # The same wrapper class now carries a cancel: the handler was not kept for the wrapper's class.
    assert tracker.on_event(_Claims(OrderCanceled("sim", first.client_id, 3, 3, Decimal(0)))) is first  # type: ignore[arg-type]
    assert first.state is OrderState.CANCELED and second.state is OrderState.PENDING_CREATE
