"""ReplayBookVenue: our orders at one price share a print there, in the order they arrived.

Before: each resting order's queue model saw the whole print, so two bids at
one price both filled from a print that traded once (1 printed, 2 bought).
"""

from __future__ import annotations

from decimal import Decimal as D

from loguru import logger

from mmkit.model import BookDelta, Fill, OrderRequest, Side, Trade
from mmkit.sim import ReplayBookVenue
from mmkit.sim.queue import ConservativeQueue, QueuePosition
from mmkit.sim.through_fill import ThroughFill
from tests.unit.sim.test_replay_venue import MS, make
from tests.unit.sim.venue_clock import Clock


def rest_two_bids(price: str, first: str = "1", second: str = "1",
                  through_fill: ThroughFill = "tape") -> tuple[ReplayBookVenue, Clock]:
    """Bids "a" then "b" at ``price`` (make(): bid 100 x3, ask 100.5 x2), resting from 1 ms."""
    venue, clock = make(through_fill=through_fill)
    venue.place(OrderRequest("a", "rec", "X", Side.BUY, D(first), D(price), post_only=True))
    venue.place(OrderRequest("b", "rec", "X", Side.BUY, D(second), D(price), post_only=True))
    venue.on_market_event(BookDelta("rec", "X", 2, 2, ((D(99), D(1)),), (), 2 * MS, 2 * MS))
    return venue, clock


def print_at(venue: ReplayBookVenue, clock: Clock, price: str, qty: str, at_ms: int) -> list[tuple[str, D]]:
    venue.on_market_event(Trade("rec", "X", f"t{at_ms}", D(price), D(qty), Side.SELL, at_ms * MS, at_ms * MS))
    clock.now = (at_ms + 10) * MS
    return [(e.client_id, e.qty) for e in venue.drain() if isinstance(e, Fill)]


def test_one_print_fills_the_first_order_then_what_is_left_the_second() -> None:
    venue, clock = rest_two_bids("100.1")  # nothing displayed there: both at the front, "a" first
    assert print_at(venue, clock, "100.1", "1", 3) == [("a", D(1))]
    assert print_at(venue, clock, "100.1", "1.5", 4) == [("b", D(1))]


def test_a_print_through_our_price_fills_no_more_than_it_traded_shared_in_arrival_order() -> None:
    venue, clock = rest_two_bids("100.1")
    assert print_at(venue, clock, "100.1", "0.4", 3) == [("a", D("0.4"))]
    assert print_at(venue, clock, "100", "0.01", 4) == [("a", D("0.01"))]  # through, but only 0.01 traded
    assert print_at(venue, clock, "100", "1", 5) == [("a", D("0.59")), ("b", D("0.41"))]


def test_whole_through_fills_fill_every_order_the_print_passed_whatever_it_traded() -> None:
    venue, clock = rest_two_bids("100.1", through_fill="whole")  # hftbacktest's convention, for cross-checks
    assert print_at(venue, clock, "100.1", "0.4", 3) == [("a", D("0.4"))]
    assert print_at(venue, clock, "100", "0.01", 4) == [("a", D("0.6")), ("b", D(1))]


def test_a_print_through_two_prices_gives_the_better_price_first() -> None:
    venue, clock = make()
    venue.place(OrderRequest("low", "rec", "X", Side.BUY, D(1), D("100.1"), post_only=True))  # arrived first
    venue.place(OrderRequest("high", "rec", "X", Side.BUY, D(1), D("100.3"), post_only=True))
    venue.on_market_event(BookDelta("rec", "X", 2, 2, ((D(99), D(1)),), (), 2 * MS, 2 * MS))
    # A seller sweeping down to 100 met our 100.3 bid before our 100.1 one.
    assert print_at(venue, clock, "100", "1.5", 3) == [("high", D(1)), ("low", D("0.5"))]


def test_the_displayed_size_ahead_is_eaten_once_for_both() -> None:
    venue, clock = rest_two_bids("100")  # 3 displayed ahead of both
    assert print_at(venue, clock, "100", "3.5", 3) == [("a", D("0.5"))]
    assert venue.queue_front("a") == 0 and venue.queue_front("b") == 0
    assert print_at(venue, clock, "100", "1", 4) == [("a", D("0.5")), ("b", D("0.5"))]


class Greedy(ConservativeQueue):
    """A broken queue model: fills the whole order from any print at its price."""

    def on_trade_at_price(self, pos: QueuePosition, trade_qty: D, leaves: D) -> D:
        return leaves


def test_a_queue_model_that_fills_more_than_the_print_is_capped_counted_and_logged() -> None:
    venue, clock = make(Greedy())
    venue.place(OrderRequest("a", "rec", "X", Side.BUY, D(2), D("100.1"), post_only=True))
    venue.on_market_event(BookDelta("rec", "X", 2, 2, ((D(99), D(1)),), (), 2 * MS, 2 * MS))
    errors: list[str] = []
    handle = logger.add(lambda message: errors.append(str(message)), level="ERROR")
    try:
        assert print_at(venue, clock, "100.1", "0.5", 3) == [("a", D("0.5"))]
    finally:
        logger.remove(handle)
    assert venue.queue_model_overfills == 1
    assert any("queue model Greedy filled 2 from print t3 where only 0.5 was left" in line for line in errors)
