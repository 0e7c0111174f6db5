"""What an arriving order does on the recorded book, branch by branch (ReplayBookVenue._enter).

Why these tests: ``_enter`` skips the taking step when the order crosses
nothing (most orders) and reads its time in force once; every branch it has
(post-only, market, IOC, FOK, a limit that takes then rests, one that only
rests, one off the book's grid) is pinned here by what the venue reports.
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from mmkit.connector import FeeSchedule, rules_for
from mmkit.instrument import IncrementBand, Instrument
from mmkit.model import (
    BookSnapshot,
    Fill,
    Liquidity,
    OrderAccepted,
    OrderCanceled,
    OrderRejected,
    OrderRequest,
    OrderType,
    RejectReason,
    Side,
    TimeInForce,
    VenueEvent,
    VenueOrderStatus,
)
from mmkit.sim import ConstantLatency, ReplayBookVenue
from tests.unit.sim.funded import FUNDED
from tests.unit.sim.venue_clock import Clock

MS = 1_000_000


def make(resolution: str = "0.1") -> tuple[ReplayBookVenue, Clock]:
    """A venue whose recorded book offers 2 at 100.5 and 3 at 100.6, and bids 3 at 100."""
    inst = Instrument("rec", "X", "BTC", "USD", (IncrementBand(D(0), D("0.1"), D("0.01")),))
    clock = Clock()
    venue = ReplayBookVenue(rules_for([inst], "rec", fees=FeeSchedule(D(0), D(10))), clock,
                            book_increments=(D(resolution), D("0.01")), latency=ConstantLatency(entry=MS, response=MS),
                            initial_balances=FUNDED)
    venue.simulate_reconnect()
    asks = ((D("100.5"), D(2)), (D("100.6"), D(3)))
    venue.on_market_event(BookSnapshot("rec", "X", 1, ((D(100), D(3)),), asks, 0, 0))
    venue.drain()
    return venue, clock


def send(venue: ReplayBookVenue, clock: Clock, order: OrderRequest) -> list[VenueEvent]:
    venue.place(order)
    clock.now += 5 * MS
    return [e for e in venue.drain() if getattr(e, "client_id", None) == order.client_id]


def kinds(events: list[VenueEvent]) -> list[str]:
    return [type(e).__name__ for e in events]


def buy(client_id: str, qty: str, price: str | None, **kw: object) -> OrderRequest:
    order_type = OrderType.MARKET if price is None else OrderType.LIMIT
    return OrderRequest(client_id, "rec", "X", Side.BUY, D(qty), None if price is None else D(price),
                        order_type=order_type, **kw)  # type: ignore[arg-type]


def test_a_post_only_order_that_would_cross_is_rejected_and_never_acked() -> None:
    venue, clock = make()
    events = send(venue, clock, buy("p", "1", "100.5", post_only=True))
    assert kinds(events) == ["OrderRejected"]
    assert isinstance(events[0], OrderRejected) and events[0].reason is RejectReason.POST_ONLY_WOULD_CROSS
    assert venue.order_truth("p") is None and venue.queue_front("p") is None


def test_a_post_only_order_that_crosses_nothing_rests_behind_what_is_displayed() -> None:
    venue, clock = make()
    assert kinds(send(venue, clock, buy("p", "1", "100", post_only=True))) == ["OrderAccepted"]
    assert venue.queue_front("p") == D(3)


def test_a_market_order_with_nothing_to_take_is_rejected() -> None:
    venue, clock = make()
    venue.on_market_event(BookSnapshot("rec", "X", 2, ((D(100), D(3)),), (), 1, 1))
    events = send(venue, clock, buy("m", "1", None))
    assert kinds(events) == ["OrderRejected"]
    assert isinstance(events[0], OrderRejected) and events[0].reason is RejectReason.OTHER


def test_a_market_order_takes_the_levels_and_its_remainder_is_canceled() -> None:
    venue, clock = make()
    events = send(venue, clock, buy("m", "6", None))
    assert kinds(events) == ["OrderAccepted", "Fill", "Fill", "OrderCanceled"]
    fills = [e for e in events if isinstance(e, Fill)]
    assert [(f.price, f.qty, f.liquidity) for f in fills] == [(D("100.5"), D(2), Liquidity.TAKER),
                                                             (D("100.6"), D(3), Liquidity.TAKER)]
    canceled = events[-1]
    assert isinstance(canceled, OrderCanceled) and canceled.leaves_qty == D(1)
    assert venue.queue_front("m") is None


def test_an_ioc_order_that_crosses_nothing_is_canceled_whole() -> None:
    venue, clock = make()
    events = send(venue, clock, buy("i", "1", "100.4", tif=TimeInForce.IOC))
    assert kinds(events) == ["OrderAccepted", "OrderCanceled"]
    assert isinstance(events[1], OrderCanceled) and events[1].leaves_qty == D(1)
    assert venue.queue_front("i") is None


def test_an_ioc_order_takes_what_its_limit_reaches_and_the_rest_is_canceled() -> None:
    venue, clock = make()
    events = send(venue, clock, buy("i", "3", "100.5", tif=TimeInForce.IOC))
    assert kinds(events) == ["OrderAccepted", "Fill", "OrderCanceled"]
    assert isinstance(events[2], OrderCanceled) and events[2].leaves_qty == D(1)


@pytest.mark.parametrize(("price", "qty"), [("100.4", "1"), ("100.5", "3"), ("100.6", "6")])
def test_a_fok_order_the_book_cannot_fill_whole_is_canceled_without_a_fill(price: str, qty: str) -> None:
    venue, clock = make()
    events = send(venue, clock, buy("f", qty, price, tif=TimeInForce.FOK))
    assert kinds(events) == ["OrderAccepted", "OrderCanceled"]
    assert isinstance(events[1], OrderCanceled) and events[1].leaves_qty == D(qty)
    truth = venue.order_truth("f")
    assert truth is not None and truth.filled_qty == 0 and truth.status is VenueOrderStatus.CANCELED


def test_a_fok_order_the_book_can_fill_is_filled_whole() -> None:
    venue, clock = make()
    events = send(venue, clock, buy("f", "4", "100.6", tif=TimeInForce.FOK))
    assert kinds(events) == ["OrderAccepted", "Fill", "Fill"]
    truth = venue.order_truth("f")
    assert truth is not None and truth.status is VenueOrderStatus.FILLED and venue.queue_front("f") is None


def test_a_limit_order_takes_what_it_crosses_and_rests_with_the_rest() -> None:
    venue, clock = make()
    events = send(venue, clock, buy("l", "3", "100.5"))
    assert kinds(events) == ["OrderAccepted", "Fill"]
    assert venue.queue_front("l") == 0  # nothing displayed left at 100.5 on our side
    truth = venue.order_truth("l")
    assert truth is not None and truth.status is VenueOrderStatus.PARTIALLY_FILLED and truth.filled_qty == D(2)


def test_a_limit_order_that_takes_all_it_asked_for_does_not_rest() -> None:
    venue, clock = make()
    assert kinds(send(venue, clock, buy("l", "2", "100.6"))) == ["OrderAccepted", "Fill"]
    assert venue.queue_front("l") is None


def test_an_order_off_the_books_grid_rests_with_nothing_ahead() -> None:
    venue, clock = make(resolution="1")  # the book's grid is 1: 100.3 is at no recorded level
    venue.on_market_event(BookSnapshot("rec", "X", 2, ((D(100), D(3)),), ((D(102), D(2)),), 1, 1))
    events = send(venue, clock, buy("o", "1", "100.3"))
    assert kinds(events) == ["OrderAccepted"] and isinstance(events[0], OrderAccepted)
    assert venue.queue_front("o") == 0
