"""ReplayBookVenue: a recorded event of before our order arrived (delivered late by the feed) cannot fill it.

Why: the recorded venue runs on the events' exchange times (``ts_event``) but
takes them in the order the feed delivered them, and Binance's trade stream
can deliver a print tens of milliseconds after depth updates of later times.
Our order that arrived in between is already resting when such a print comes
in; the print traded before the order existed, so it must not fill it (on
the shared recording it did: about 1 % of a one-level maker's fills were
dated before their order was accepted; tests/integration/backtest/
test_fills_justified_by_tape.py audits every fill against the tape).
"""

from __future__ import annotations

from decimal import Decimal as D

from mmkit.model import BookDelta, Fill, OrderAccepted, OrderRequest, Side, Trade, VenueOrderStatus
from mmkit.sim import ProbabilisticQueue, ReplayBookVenue
from tests.unit.sim.test_replay_venue import MS, make
from tests.unit.sim.venue_clock import Clock


def late_trade(ts_event: int, delivered: int, price: str, qty: str, aggressor: Side = Side.SELL) -> Trade:
    return Trade("rec", "X", f"late{ts_event}", D(price), D(qty), aggressor, ts_event, delivered)


def fills_after(venue: ReplayBookVenue, clock: Clock) -> list[Fill]:
    clock.now = 50 * MS
    return [e for e in venue.drain() if isinstance(e, Fill)]


def resting_bid() -> tuple[ReplayBookVenue, Clock]:
    """A bid of 1 at 100 (behind 3 displayed), sent at 0, arriving at 1 ms; resting once an event of 2 ms came."""
    venue, clock = make()
    venue.place(OrderRequest("a", "rec", "X", Side.BUY, D(1), D(100), post_only=True))
    venue.on_market_event(BookDelta("rec", "X", 2, 2, (), ((D("100.6"), D(1)),), 2 * MS, 2 * MS))
    assert venue.queue_front("a") == D(3)
    return venue, clock


def test_a_late_print_through_our_price_of_before_we_arrived_does_not_fill() -> None:
    venue, clock = resting_bid()
    venue.on_market_event(late_trade(MS // 2, 3 * MS, "99.9", "5"))  # traded at 0.5 ms: we arrived at 1 ms
    assert fills_after(venue, clock) == []
    assert venue.before_arrival == 1  # counted: the report says how many such events our orders missed
    truth = venue.order_truth("a")
    assert truth is not None and truth.filled_qty == 0 and truth.status is VenueOrderStatus.NEW


def test_a_print_at_our_arrival_time_or_later_fills() -> None:
    venue, clock = resting_bid()
    venue.on_market_event(late_trade(MS // 2, 3 * MS, "99.9", "5"))
    venue.on_market_event(late_trade(MS, 4 * MS, "99.9", "3"))  # at 1 ms: the order was there
    (fill,) = fills_after(venue, clock)
    assert (fill.qty, fill.price, fill.ts_event) == (D(1), D(100), MS)


def test_a_late_print_at_our_price_does_not_fill_from_the_queue_front() -> None:
    venue, clock = make(ProbabilisticQueue(seed=1))
    venue.place(OrderRequest("a", "rec", "X", Side.BUY, D(1), D("100.1"), post_only=True))  # nothing ahead
    venue.on_market_event(BookDelta("rec", "X", 2, 2, (), ((D("100.6"), D(1)),), 2 * MS, 2 * MS))
    assert venue.queue_front("a") == D(0)
    venue.on_market_event(late_trade(MS // 2, 3 * MS, "100.1", "2"))
    assert fills_after(venue, clock) == []
    venue.on_market_event(late_trade(MS // 2, 4 * MS, "100.1", "2", aggressor=Side.BUY))  # a buyer: never ours
    assert venue.before_arrival == 1
    venue.on_market_event(late_trade(5 * MS, 6 * MS, "100.1", "2"))
    assert [f.qty for f in fills_after(venue, clock)] == [D(1)]


def test_a_late_book_crossing_our_order_fills_only_at_an_event_after_we_arrived() -> None:
    venue, clock = resting_bid()
    # An ask of 99.9 dated 0.5 ms (before we arrived) delivered now: the book crosses our bid, but then
    # our order was not there; it fills at the next recorded event of our time, if the book still crosses.
    venue.on_market_event(BookDelta("rec", "X", 3, 3, (), ((D("99.9"), D(1)),), MS // 2, 3 * MS))
    assert fills_after(venue, clock) == []
    assert venue.before_arrival == 1
    venue.on_market_event(BookDelta("rec", "X", 4, 4, ((D(99), D(1)),), (), 4 * MS, 4 * MS))
    (fill,) = fills_after(venue, clock)
    assert (fill.qty, fill.price, fill.ts_event) == (D(1), D(100), 4 * MS)


def test_acceptance_is_dated_at_arrival_the_time_the_late_events_are_judged_by() -> None:
    venue, clock = resting_bid()
    clock.now = 50 * MS
    (accepted,) = [e for e in venue.drain() if isinstance(e, OrderAccepted)]
    assert accepted.ts_event == MS
