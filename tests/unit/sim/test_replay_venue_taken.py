"""ReplayBookVenue: a displayed lot our order took is not there for us again until the recording lists it again.

The recorded book never shows our trades. Before TakenLiquidity the venue
read what we had just taken as still offered: a second order took the same
lot, and the rest of a crossing order, resting at its limit, was filled in
full as a maker at the next recorded diff "because the book crossed it"
(buying 5 where 2 were offered).
"""

from __future__ import annotations

from decimal import Decimal as D

from mmkit.model import (
    BookDelta,
    BookSnapshot,
    Fill,
    Liquidity,
    OrderRejected,
    OrderRequest,
    RejectReason,
    Side,
    TimeInForce,
)
from mmkit.sim import ReplayBookVenue
from tests.unit.sim.test_replay_venue import MS, make
from tests.unit.sim.venue_clock import Clock

# make(): bid 100 x3, ask 100.5 x2, price increment 0.1, size 0.01, 1 ms each way.


def fills(venue: ReplayBookVenue, clock: Clock) -> list[tuple[str, Liquidity, D, D]]:
    clock.now += 50 * MS
    return [(e.client_id, e.liquidity, e.price, e.qty) for e in venue.drain() if isinstance(e, Fill)]


def unrelated_diff(seq: int, at_ms: int) -> BookDelta:
    return BookDelta("rec", "X", seq, seq, ((D(99), D(1)),), (), at_ms * MS, at_ms * MS)


def test_the_rest_of_a_crossing_order_is_not_filled_by_the_level_it_emptied() -> None:
    venue, clock = make()
    venue.place(OrderRequest("t", "rec", "X", Side.BUY, D(5), D("100.7")))  # takes 2 @ 100.5, rests 3 @ 100.7
    venue.on_market_event(unrelated_diff(2, 2))
    venue.on_market_event(unrelated_diff(3, 3))
    assert fills(venue, clock) == [("t", Liquidity.TAKER, D("100.5"), D(2))]
    truth = venue.order_truth("t")
    assert truth is not None and truth.filled_qty == D(2)


def test_when_the_recording_lists_the_level_again_its_size_is_offered_again() -> None:
    venue, clock = make()
    venue.place(OrderRequest("t", "rec", "X", Side.BUY, D(5), D("100.7")))
    venue.on_market_event(unrelated_diff(2, 2))
    assert [f[1] for f in fills(venue, clock)] == [Liquidity.TAKER]
    # The recording now shows 1 at 100.5 (its own news: our take is not in it): the resting bid crosses it and
    # fills from what it offers there (through_fill "tape"), which the ledger then keeps.
    venue.on_market_event(BookDelta("rec", "X", 3, 3, (), ((D("100.5"), D(1)),), 3 * MS, 3 * MS))
    assert fills(venue, clock) == [("t", Liquidity.MAKER, D("100.7"), D(1))]
    venue.on_market_event(unrelated_diff(4, 4))
    assert fills(venue, clock) == []


def test_a_second_order_cannot_take_the_lot_the_first_took() -> None:
    venue, clock = make()
    venue.place(OrderRequest("a", "rec", "X", Side.BUY, D(2), D("100.5"), tif=TimeInForce.IOC))
    venue.place(OrderRequest("b", "rec", "X", Side.BUY, D(1), D("100.5"), tif=TimeInForce.IOC))
    venue.on_market_event(unrelated_diff(2, 2))
    assert fills(venue, clock) == [("a", Liquidity.TAKER, D("100.5"), D(2))]


def test_a_partly_taken_level_offers_the_rest_and_fok_counts_only_that() -> None:
    venue, clock = make()
    venue.place(OrderRequest("a", "rec", "X", Side.BUY, D("1.5"), D("100.5"), tif=TimeInForce.IOC))
    venue.place(OrderRequest("f", "rec", "X", Side.BUY, D(1), D("100.5"), tif=TimeInForce.FOK))  # 0.5 left
    venue.place(OrderRequest("b", "rec", "X", Side.BUY, D(1), D("100.5"), tif=TimeInForce.IOC))
    venue.on_market_event(unrelated_diff(2, 2))
    assert fills(venue, clock) == [("a", Liquidity.TAKER, D("100.5"), D("1.5")),
                                   ("b", Liquidity.TAKER, D("100.5"), D("0.5"))]


def test_post_only_at_a_level_we_emptied_rests_instead_of_being_rejected() -> None:
    venue, clock = make()
    venue.place(OrderRequest("a", "rec", "X", Side.BUY, D(2), D("100.5"), tif=TimeInForce.IOC))
    venue.place(OrderRequest("p", "rec", "X", Side.BUY, D(1), D("100.5"), post_only=True))
    venue.on_market_event(unrelated_diff(2, 2))
    clock.now += 50 * MS
    events = venue.drain()
    assert not [e for e in events if isinstance(e, OrderRejected)]
    assert [e.client_id for e in events if isinstance(e, Fill)] == ["a"]
    assert venue.queue_front("p") == D(0)
    # A level the ledger has not emptied still rejects a post-only order that would cross it.
    venue.place(OrderRequest("q", "rec", "X", Side.SELL, D(1), D(100), post_only=True))
    venue.on_market_event(unrelated_diff(3, 60))
    clock.now += 50 * MS
    (rejected,) = [e for e in venue.drain() if isinstance(e, OrderRejected)]
    assert rejected.client_id == "q" and rejected.reason is RejectReason.POST_ONLY_WOULD_CROSS


def test_a_snapshot_forgets_what_we_took() -> None:
    venue, clock = make()
    venue.place(OrderRequest("a", "rec", "X", Side.BUY, D(2), D("100.5"), tif=TimeInForce.IOC))
    venue.on_market_event(unrelated_diff(2, 2))
    assert fills(venue, clock)
    venue.on_market_event(BookSnapshot("rec", "X", 9, ((D(100), D(3)),), ((D("100.5"), D(2)),), 3 * MS, 3 * MS))
    assert not venue._taken
    venue.place(OrderRequest("b", "rec", "X", Side.BUY, D(1), D("100.5"), tif=TimeInForce.IOC))
    venue.on_market_event(unrelated_diff(10, 60))
    assert fills(venue, clock) == [("b", Liquidity.TAKER, D("100.5"), D(1))]
