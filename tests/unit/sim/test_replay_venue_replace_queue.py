"""A replace at the same price that does not grow keeps the order's place in the replay venue's queue.

Why: the venue marks the original canceled before it hands the replace to the book model, so the
original's ``leaves`` already reads 0 there. The replay venue once compared the new quantity with
that 0, so the keep-your-place branch never ran and every amend went to the back of the queue:
fewer maker fills than the venue's own rule gives. These tests fail if the comparison reads the
canceled order's ``leaves`` again, or if a replace that grows or moves keeps its place.
"""

from __future__ import annotations

from decimal import Decimal as D

from mmkit.connector import FeeSchedule, rules_for
from mmkit.instrument import IncrementBand, Instrument
from mmkit.model import BookSnapshot, Fill, OrderRequest, ReplaceRequest, Side, Trade
from mmkit.sim import ConstantLatency, ReplayBookVenue
from mmkit.sim.queue import ConservativeQueue
from tests.unit.sim.funded import FUNDED
from tests.unit.sim.venue_clock import Clock

MS = 1_000_000


def make() -> tuple[ReplayBookVenue, Clock]:
    inst = Instrument("rec", "X", "BTC", "USD", (IncrementBand(D(0), D("0.1"), D("0.01")),))
    clock = Clock()
    rules = rules_for([inst], "rec", fees=FeeSchedule(D(0), D(10)), supports_replace=True)
    venue = ReplayBookVenue(rules, clock, book_increments=(D("0.1"), D("0.01")),
                            latency=ConstantLatency(entry=MS, response=MS), queue_model=ConservativeQueue(),
                            initial_balances=FUNDED)
    venue.simulate_reconnect()
    venue.on_market_event(BookSnapshot("rec", "X", 1, ((D(100), D(3)),), ((D(101), D(2)),), 0, 0))
    return venue, clock


def sell_print(ts: int, qty: str) -> Trade:
    return Trade("rec", "X", f"t{ts}", D(100), D(qty), Side.SELL, ts, ts)


def fills_after(venue: ReplayBookVenue, clock: Clock, until: int) -> list[tuple[str, D]]:
    clock.now = until
    venue.on_market_event(Trade("rec", "X", "late", D(101), D("0.01"), Side.BUY, until, until))  # moves time only
    return [(e.client_id, e.qty) for e in venue.drain() if isinstance(e, Fill)]


def queued_then_replaced(new_qty: str, new_price: str = "100") -> tuple[ReplayBookVenue, Clock]:
    """Our bid of 1 joins behind 3; a print of 2 leaves 1 ahead of it; then it is replaced."""
    venue, clock = make()
    venue.place(OrderRequest("a", "rec", "X", Side.BUY, D(1), D(100)))
    venue.on_market_event(sell_print(2 * MS, "2"))  # 3 ahead -> 1 ahead, no fill
    clock.now = 3 * MS
    venue.replace(ReplaceRequest("b", "a", "rec", "X", Side.BUY, D(new_qty), D(new_price)))
    venue.on_market_event(Trade("rec", "X", "tick", D(101), D("0.01"), Side.BUY, 5 * MS, 5 * MS))
    return venue, clock


def test_a_smaller_replace_at_the_same_price_keeps_its_place() -> None:
    venue, clock = queued_then_replaced("0.5")
    venue.on_market_event(sell_print(6 * MS, "1.2"))  # 1 ahead, then 0.2 reaches us
    assert fills_after(venue, clock, 20 * MS) == [("b", D("0.2"))]


def test_a_same_size_replace_at_the_same_price_keeps_its_place() -> None:
    venue, clock = queued_then_replaced("1")
    venue.on_market_event(sell_print(6 * MS, "1.5"))
    assert fills_after(venue, clock, 20 * MS) == [("b", D("0.5"))]


def test_a_larger_replace_goes_to_the_back() -> None:
    venue, clock = queued_then_replaced("2")
    venue.on_market_event(sell_print(6 * MS, "1.2"))  # the level still shows 3 ahead of the rejoined order
    assert fills_after(venue, clock, 20 * MS) == []


def test_a_replace_after_a_partial_fill_compares_with_what_was_left_open() -> None:
    venue, clock = make()
    venue.place(OrderRequest("a", "rec", "X", Side.BUY, D(1), D(100)))
    venue.on_market_event(sell_print(2 * MS, "3.4"))  # 3 ahead, 0.4 fills us: 0.6 left open, front 0
    clock.now = 3 * MS
    venue.replace(ReplaceRequest("b", "a", "rec", "X", Side.BUY, D("0.6"), D(100)))  # not growing: keeps front 0
    venue.on_market_event(sell_print(6 * MS, "0.25"))
    assert fills_after(venue, clock, 20 * MS) == [("a", D("0.4")), ("b", D("0.25"))]


def test_a_replace_that_grows_past_what_was_left_open_goes_to_the_back() -> None:
    venue, clock = make()
    venue.place(OrderRequest("a", "rec", "X", Side.BUY, D(1), D(100)))
    venue.on_market_event(sell_print(2 * MS, "3.4"))
    clock.now = 3 * MS
    venue.replace(ReplaceRequest("b", "a", "rec", "X", Side.BUY, D("0.7"), D(100)))  # 0.7 > 0.6 open: rejoins
    venue.on_market_event(sell_print(6 * MS, "0.25"))
    assert fills_after(venue, clock, 20 * MS) == [("a", D("0.4"))]
