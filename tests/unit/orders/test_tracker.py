"""ClientOrderTracker against the FakeConnector: races, timeouts, dedupe, reconciliation."""

from __future__ import annotations

from decimal import Decimal

import attrs

from mmkit.model import (
    NS_PER_S,
    Fill,
    Liquidity,
    OrderAccepted,
    OrderCanceled,
    OrderNotFound,
    OrderQueryFailed,
    OrderRequest,
    OrderStatusReport,
    RejectReason,
    Side,
    VenueOrderStatus,
)
from mmkit.orders.states import OrderState
from mmkit.orders.tracker import ClientOrderTracker
from mmkit.testing.fake_connector import ActionKind, FakeConnector

SYM = "BTC-PYUSD"
TIMEOUT = 2 * NS_PER_S  # conf/venues/sim.yml pending_timeout_s


def req(tracker: ClientOrderTracker, side: Side = Side.BUY, price: str = "59990", qty: str = "0.01") -> OrderRequest:
    return OrderRequest(tracker.new_client_id(), "sim", SYM, side, Decimal(qty), Decimal(price), post_only=True)


def pump(fake: FakeConnector, tracker: ClientOrderTracker) -> None:
    tracker.on_events(fake.drain())


def fill(cid: str, trade_id: str, qty: str, price: str = "59990", side: Side = Side.BUY) -> Fill:
    return Fill(
        "sim", trade_id, cid, SYM, side, Decimal(price), Decimal(qty), Decimal(0), "PYUSD", Liquidity.MAKER, 0, 0
    )


def test_submit_ack_cancel(fake: FakeConnector, tracker: ClientOrderTracker) -> None:
    order = tracker.submit(req(tracker), now_ns=1, slot=(Side.BUY, 0))
    assert order.state is OrderState.PENDING_CREATE and fake.placed[0].client_id == order.client_id
    fake.ack(order.client_id)
    pump(fake, tracker)
    assert order.state is OrderState.OPEN and order.venue_order_id
    assert tracker.cancel(order.client_id, 2)
    assert order.state is OrderState.PENDING_CANCEL
    fake.confirm_cancel(order.client_id)
    pump(fake, tracker)
    assert order.state is OrderState.CANCELED
    assert tracker.open_orders() == [] and tracker.get(order.client_id) is order
    assert not tracker.cancel(order.client_id)


def test_fill_before_ack_then_ack(fake: FakeConnector, tracker: ClientOrderTracker) -> None:
    order = tracker.submit(req(tracker))
    fake.fill(order.client_id, "0.004")
    fake.ack(order.client_id)
    pump(fake, tracker)
    assert order.state is OrderState.PARTIALLY_FILLED
    assert order.filled_qty == Decimal("0.004") and order.avg_price == Decimal("59990")
    assert tracker.illegal_transitions == 0


def test_fill_while_pending_cancel_then_late_fill_after_cancel(
    fake: FakeConnector, tracker: ClientOrderTracker
) -> None:
    order = tracker.submit(req(tracker))
    fake.ack(order.client_id)
    pump(fake, tracker)
    tracker.cancel(order.client_id)
    tracker.on_event(fill(order.client_id, "T1", "0.003"))
    assert order.state is OrderState.PENDING_CANCEL
    tracker.on_event(OrderCanceled("sim", order.client_id, 5, 5, Decimal("0.007")))
    assert order.state is OrderState.CANCELED
    tracker.on_event(fill(order.client_id, "T2", "0.002", price="59991"))
    assert order.state is OrderState.CANCELED
    assert order.filled_qty == Decimal("0.005") and tracker.late_fills == 1
    assert order.avg_price == (Decimal("59990") * 3 + Decimal("59991") * 2) / 5
    tracker.on_event(fill(order.client_id, "T3", "0.005"))  # late fills that complete it: it really filled
    assert order.state is OrderState.FILLED


def test_duplicate_fills_counted_once(fake: FakeConnector, tracker: ClientOrderTracker) -> None:
    order = tracker.submit(req(tracker))
    f = fill(order.client_id, "T1", "0.004")
    tracker.on_event(f)
    tracker.on_event(f)
    assert order.filled_qty == Decimal("0.004") and tracker.duplicate_fills == 1


def test_overfill_flagged(fake: FakeConnector, tracker: ClientOrderTracker) -> None:
    order = tracker.submit(req(tracker))
    tracker.on_event(fill(order.client_id, "T1", "0.01"))
    tracker.on_event(fill(order.client_id, "T2", "0.01"))
    assert order.state is OrderState.FILLED and tracker.overfills == 1


def test_pending_create_timeout_queries_with_backoff(fake: FakeConnector, tracker: ClientOrderTracker) -> None:
    order = tracker.submit(req(tracker), now_ns=0)
    tracker.tick(TIMEOUT - 1)
    assert fake.status_requests == []
    tracker.tick(TIMEOUT)
    assert fake.status_requests == [order.client_id]
    for t in range(TIMEOUT, 2 * TIMEOUT, TIMEOUT // 10):  # no spamming before the backoff runs out
        tracker.tick(t)
    assert len(fake.status_requests) == 1
    asked_at = []
    for k in range(2, 9):  # backoff doubles: asks at 2T, 4T, 8T
        tracker.tick(k * TIMEOUT)
        if len(fake.status_requests) > len(asked_at) + 1:
            asked_at.append(k)
    assert asked_at == [2, 4, 8]


def test_not_found_for_pending_create_is_failed(fake: FakeConnector, tracker: ClientOrderTracker) -> None:
    order = tracker.submit(req(tracker))
    fake.lose_order(order.client_id)
    tracker.tick(TIMEOUT)
    pump(fake, tracker)
    assert order.state is OrderState.FAILED and tracker.open_orders() == []
    # the venue's word wins: an accept after our give-up brings it back
    tracker.on_event(OrderAccepted("sim", order.client_id, "V9", 9, 9))
    assert order.state is OrderState.OPEN and tracker.open_orders() == [order]


def test_query_failed_never_marks_an_order_lost(fake: FakeConnector, tracker: ClientOrderTracker) -> None:
    """Hummingbot #8457: a network error is not 'order not found'."""
    order = tracker.submit(req(tracker))
    fake.ack(order.client_id)
    pump(fake, tracker)
    tracker.cancel(order.client_id, now_ns=0)
    fake.fail_next_queries(5)
    t = TIMEOUT
    for _ in range(5):
        tracker.tick(t)
        pump(fake, tracker)
        t += 100 * NS_PER_S
    assert tracker.transient_query_failures == 5
    assert order.state is OrderState.PENDING_CANCEL and tracker.open_orders() == [order]
    # while disconnected nothing is asked at all
    fake.disconnect()
    asked = len(fake.status_requests)
    tracker.tick(t + 1000 * NS_PER_S)
    assert len(fake.status_requests) == asked
    assert tracker.get(order.client_id) is order and order.state is OrderState.PENDING_CANCEL
    tracker.on_event(OrderQueryFailed("sim", order.client_id, "timeout", 0))
    assert order.state is OrderState.PENDING_CANCEL


def test_pending_cancel_still_open_resends_cancel(fake: FakeConnector, tracker: ClientOrderTracker) -> None:
    order = tracker.submit(req(tracker))
    fake.ack(order.client_id)
    pump(fake, tracker)
    tracker.cancel(order.client_id, 0)
    tracker.tick(TIMEOUT)
    pump(fake, tracker)  # status report says NEW
    assert fake.canceled == [order.client_id, order.client_id]
    assert order.state is OrderState.PENDING_CANCEL


def test_not_found_for_live_order_closes_it(fake: FakeConnector, tracker: ClientOrderTracker) -> None:
    order = tracker.submit(req(tracker))
    fake.ack(order.client_id)
    pump(fake, tracker)
    tracker.on_event(OrderNotFound("sim", order.client_id, 1))
    assert order.state is OrderState.CANCELED


def test_replace_happy_path_and_slot_carried(fake: FakeConnector, tracker: ClientOrderTracker) -> None:
    order = tracker.submit(req(tracker), slot=(Side.BUY, 2))
    fake.ack(order.client_id)
    pump(fake, tracker)
    new = tracker.replace(order.client_id, Decimal("59980"), Decimal("0.02"), now_ns=1)
    assert new is not None and new.slot == (Side.BUY, 2) and new.replaces == order.client_id
    assert order.state is OrderState.PENDING_REPLACE
    assert tracker.replace(order.client_id, Decimal("1"), Decimal("1")) is None  # one in flight
    fake.confirm_replace(new.client_id)
    pump(fake, tracker)
    assert order.state is OrderState.CANCELED and order.replaced_by == new.client_id
    assert new.state is OrderState.OPEN and new.venue_order_id == order.venue_order_id
    assert tracker.open_orders() == [new]


def test_replace_rejected_restores_original(fake: FakeConnector, tracker: ClientOrderTracker) -> None:
    order = tracker.submit(req(tracker))
    fake.ack(order.client_id)
    fake.fill(order.client_id, "0.002")
    pump(fake, tracker)
    new = tracker.replace(order.client_id, Decimal("59980.05"), Decimal("0.01"))  # off tick
    assert new is not None  # the fake validates at once: OrderCancelRejected(is_replace)
    pump(fake, tracker)
    assert order.state is OrderState.PARTIALLY_FILLED and order.replaced_by is None
    assert new.state is OrderState.REJECTED


def test_lost_replace_settled_by_querying_the_new_leg(fake: FakeConnector, tracker: ClientOrderTracker) -> None:
    order = tracker.submit(req(tracker))
    fake.ack(order.client_id)
    pump(fake, tracker)
    new = tracker.replace(order.client_id, Decimal("59980"), Decimal("0.01"), now_ns=0)
    assert new is not None
    tracker.tick(TIMEOUT)
    assert fake.status_requests == [new.client_id]  # only the new leg is asked about
    pump(fake, tracker)  # the venue never saw the replace: NotFound for the new id
    assert new.state is OrderState.FAILED
    assert order.state is OrderState.OPEN


def test_cancel_rejected_unknown_order_asks_for_status(fake: FakeConnector, tracker: ClientOrderTracker) -> None:
    order = tracker.submit(req(tracker))
    fake.ack(order.client_id)
    pump(fake, tracker)
    fake.lose_order(order.client_id)
    tracker.cancel(order.client_id)  # the fake refuses it at once: UNKNOWN_ORDER
    pump(fake, tracker)  # cancel rejected UNKNOWN_ORDER -> status query sent
    assert fake.status_requests == [order.client_id]
    pump(fake, tracker)  # OrderNotFound -> closed
    assert order.state is OrderState.CANCELED


def test_illegal_transition_counted_not_raised(fake: FakeConnector, tracker: ClientOrderTracker) -> None:
    order = tracker.submit(req(tracker))
    fake.reject(order.client_id, RejectReason.INSUFFICIENT_FUNDS)
    pump(fake, tracker)
    assert order.state is OrderState.REJECTED
    tracker.on_event(OrderAccepted("sim", order.client_id, "V1", 1, 1))
    assert tracker.illegal_transitions == 1 and order.state is OrderState.REJECTED


def test_events_for_unknown_orders_counted(tracker: ClientOrderTracker) -> None:
    assert tracker.on_event(OrderCanceled("sim", "nobody", 1, 1)) is None
    assert tracker.on_event(fill("nobody", "T1", "1")) is None
    assert tracker.unknown_events == 2


def test_finished_cache_is_bounded_but_matches_late_events(fake: FakeConnector) -> None:
    tracker = ClientOrderTracker(fake, finished_cache_size=3)
    orders = [tracker.submit(req(tracker)) for _ in range(5)]
    for o in orders:
        fake.reject(o.client_id)
    pump(fake, tracker)
    assert [o.client_id for o in tracker.finished_orders()] == [o.client_id for o in orders[2:]]
    assert tracker.get(orders[0].client_id) is None
    tracker.on_event(OrderCanceled("sim", orders[4].client_id, 1, 1))
    assert tracker.unknown_events == 0


def report(cid: str, status: VenueOrderStatus = VenueOrderStatus.NEW, filled: str = "0") -> OrderStatusReport:
    return OrderStatusReport(
        "sim", cid, "V" + cid, SYM, Side.SELL, Decimal("60100"), Decimal("0.01"), Decimal(filled), status, 0, 0
    )


def test_reconcile_adopts_closes_and_updates(fake: FakeConnector, tracker: ClientOrderTracker) -> None:
    kept = tracker.submit(req(tracker), now_ns=10)
    gone = tracker.submit(req(tracker), now_ns=10)
    young = tracker.submit(req(tracker), now_ns=500)
    result = tracker.reconcile(
        [report(kept.client_id, VenueOrderStatus.PARTIALLY_FILLED, "0.001"), report("old1")], now_ns=1000, as_of_ns=100
    )
    assert [o.client_id for o in result.adopted] == ["old1"]
    adopted = tracker.get("old1")
    assert adopted is not None and adopted.adopted and adopted.slot is None and adopted.state is OrderState.OPEN
    assert result.closed == (gone,) and gone.state is OrderState.FAILED
    assert result.updated == (kept,) and kept.state is OrderState.OPEN and kept.venue_filled_qty == Decimal("0.001")
    assert young.state is OrderState.PENDING_CREATE  # submitted after the listing was taken
    assert tracker.reconcile([report("x9", VenueOrderStatus.FILLED)], 1000, as_of_ns=0).flagged[0].client_id == "x9"


def test_an_adopted_order_keeps_the_venues_age(tracker: ClientOrderTracker) -> None:
    """A venue that charges cancels of young orders (Kraken) must not see an adopted order as brand new."""
    aged = attrs.evolve(report("old2"), ts_event=400)
    undated = report("old3")  # ts_event 0: the venue gave no time
    tracker.reconcile([aged, undated], now_ns=1000)
    assert tracker.get("old2").created_ns == 400  # type: ignore[union-attr]
    assert tracker.get("old3").created_ns == 1000  # type: ignore[union-attr]


def test_cancel_all_marks_everything(fake: FakeConnector, tracker: ClientOrderTracker) -> None:
    a = tracker.submit(req(tracker))
    b = tracker.submit(req(tracker, Side.SELL, "60100"))
    fake.ack(a.client_id)
    pump(fake, tracker)
    marked = tracker.cancel_all(5, SYM)
    assert set(marked) == {a, b} and fake.actions[-1].kind is ActionKind.CANCEL_ALL
    assert a.state is OrderState.PENDING_CANCEL and b.state is OrderState.PENDING_CANCEL
