"""ReplayBookVenue: our orders against a recorded book, filled by the queue model."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from mmkit.connector import FeeSchedule, rules_for
from mmkit.instrument import IncrementBand, Instrument
from mmkit.model import (
    BookDelta,
    BookSnapshot,
    Fill,
    Liquidity,
    OrderAccepted,
    OrderRejected,
    OrderRequest,
    RejectReason,
    Side,
    Trade,
    VenueOrderStatus,
)
from mmkit.sim import ConstantLatency, ProbabilisticQueue, QueueModel, ReplayBookVenue
from mmkit.sim.through_fill import ThroughFill
from tests.unit.sim.funded import FUNDED
from tests.unit.sim.venue_clock import Clock

MS = 1_000_000
#: The recordings' resolution in these tests (price, size).
RESOLUTION = (D("0.1"), D("0.01"))


def make(queue: QueueModel | None = None, through_fill: ThroughFill = "tape") -> tuple[ReplayBookVenue, Clock]:
    inst = Instrument("rec", "X", "BTC", "USD", (IncrementBand(D(0), D("0.1"), D("0.01")),))
    clock = Clock()
    venue = ReplayBookVenue(rules_for([inst], "rec", fees=FeeSchedule(D(0), D(10))), clock, book_increments=RESOLUTION,
                            latency=ConstantLatency(entry=MS, response=MS), queue_model=queue,
                            through_fill=through_fill, initial_balances=FUNDED)
    venue.simulate_reconnect()
    venue.on_market_event(BookSnapshot("rec", "X", 1, ((D(100), D(3)),), ((D("100.5"), D(2)),), 0, 0))
    return venue, clock


def trade(ts: int, price: str, qty: str, aggressor: Side = Side.SELL) -> Trade:
    return Trade("rec", "X", f"t{ts}", D(price), D(qty), aggressor, ts, ts)


@pytest.mark.parametrize(("through_fill", "through_qty"), [("tape", D("0.01")), ("whole", D("1.5"))])
def test_join_behind_displayed_then_partial_and_through_fill(through_fill: ThroughFill, through_qty: D) -> None:
    venue, clock = make(through_fill=through_fill)
    venue.place(OrderRequest("a", "rec", "X", Side.BUY, D(2), D(100), post_only=True))
    venue.on_market_event(trade(2 * MS, "100", "2"))  # order arrives at 1 ms; 3 ahead -> 1 ahead
    assert venue.queue_front("a") == D(1)
    venue.on_market_event(trade(3 * MS, "100", "1.5"))  # eats 1 ahead, fills 0.5 of ours
    venue.on_market_event(trade(4 * MS, "99.9", "0.01"))  # through our price: the print's 0.01 (tape) or the rest
    venue.on_market_event(trade(5 * MS, "99.8", "2"))  # through again: the rest (tape)
    clock.now = 10 * MS
    fills = [e for e in venue.drain() if isinstance(e, Fill)]
    assert [f.qty for f in fills] == [D("0.5"), through_qty] + ([D("1.49")] if through_fill == "tape" else [])
    assert all(f.liquidity is Liquidity.MAKER and f.price == D(100) for f in fills)
    truth = venue.order_truth("a")
    assert truth is not None and truth.status is VenueOrderStatus.FILLED


def test_cancels_do_not_advance_conservative_queue_but_trades_are_netted() -> None:
    venue, _ = make()
    venue.place(OrderRequest("a", "rec", "X", Side.BUY, D(1), D(100)))
    venue.on_market_event(BookDelta("rec", "X", 2, 2, ((D(100), D(1)),), (), 2 * MS, 2 * MS))
    assert venue.queue_front("a") == D(3)


def test_probabilistic_queue_advances_on_cancels() -> None:
    venue, _ = make(ProbabilisticQueue(seed=1))
    venue.place(OrderRequest("a", "rec", "X", Side.BUY, D(1), D(100)))
    for i in range(2, 12):
        venue.on_market_event(BookDelta("rec", "X", i, i, ((D(100), D(3 - D(i - 1) / 10)),), (), i * MS, i * MS))
    front = venue.queue_front("a")
    assert front is not None and front < D(3)


def test_post_only_crossing_recorded_book_is_rejected_and_taker_walks_levels() -> None:
    venue, clock = make()
    venue.place(OrderRequest("p", "rec", "X", Side.BUY, D(1), D("100.5"), post_only=True))
    venue.place(OrderRequest("t", "rec", "X", Side.BUY, D(3), D("100.5")))
    clock.now = 5 * MS
    events = venue.drain()
    rejected = [e for e in events if isinstance(e, OrderRejected)]
    assert rejected[0].client_id == "p" and rejected[0].reason is RejectReason.POST_ONLY_WOULD_CROSS
    fills = [e for e in events if isinstance(e, Fill)]
    assert [(f.qty, f.liquidity) for f in fills] == [(D(2), Liquidity.TAKER)]
    assert any(isinstance(e, OrderAccepted) and e.client_id == "t" for e in events)
    assert venue.queue_front("t") == 0  # the remainder rests at 100.5 with nothing displayed ahead


def test_book_crossing_through_our_price_fills() -> None:
    venue, clock = make()
    venue.place(OrderRequest("a", "rec", "X", Side.SELL, D(1), D("100.4")))
    venue.on_market_event(BookDelta("rec", "X", 2, 2, ((D("100.6"), D(1)),), (), 2 * MS, 2 * MS))
    clock.now = 5 * MS
    fills = [e for e in venue.drain() if isinstance(e, Fill)]
    assert len(fills) == 1 and fills[0].price == D("100.4") and fills[0].side is Side.SELL


def test_an_order_off_the_books_grid_is_still_filled_when_the_book_crosses_it() -> None:
    # The venue's tick is 0.1 but the recording's resolution is 1: an order at 100.5 is at no recorded level.
    inst = Instrument("rec", "X", "BTC", "USD", (IncrementBand(D(0), D("0.1"), D("0.01")),))
    clock = Clock()
    venue = ReplayBookVenue(rules_for([inst], "rec"), clock, latency=ConstantLatency(entry=MS, response=MS),
                            book_increments=(D(1), D("0.01")), initial_balances=FUNDED)
    venue.simulate_reconnect()
    venue.on_market_event(BookSnapshot("rec", "X", 1, ((D(100), D(3)),), ((D(102), D(2)),), 0, 0))
    venue.place(OrderRequest("a", "rec", "X", Side.BUY, D(1), D("100.5"), post_only=True))
    venue.on_market_event(BookDelta("rec", "X", 2, 2, (), ((D(101), D(1)),), 2 * MS, 2 * MS))  # no cross yet
    assert venue.queue_front("a") == D(0)  # nothing displayed at its price
    venue.on_market_event(BookDelta("rec", "X", 3, 3, (), ((D(100), D(1)),), 3 * MS, 3 * MS))  # ask 100 < 100.5
    clock.now = 10 * MS
    fills = [e for e in venue.drain() if isinstance(e, Fill)]
    assert [(f.price, f.qty, f.liquidity) for f in fills] == [(D("100.5"), D(1), Liquidity.MAKER)]
    assert venue.refused_events == 0
