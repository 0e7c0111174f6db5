"""The replay venue's views derived from our resting orders are rebuilt after every change of them.

Why these tests: ``ReplayBookVenue`` keeps, between changes of its resting orders, the orders in order,
the (side, tick) levels they rest at (what it asks the book about per recorded diff) and their best
bid and offer (a print between them reaches none, so the fill walk is skipped). Each test first makes
the venue build a view, then changes the resting orders one way (join, replace, cancel, fill) and
checks that the next recorded event acts on the new orders: with the invalidation of that change
removed, the stale view would skip a fill or a queue update, and the test fails.
"""

from __future__ import annotations

from decimal import Decimal as D

from mmkit.connector import FeeSchedule, rules_for
from mmkit.instrument import IncrementBand, Instrument
from mmkit.model import BookDelta, BookSnapshot, Fill, OrderRequest, ReplaceRequest, Side, Trade
from mmkit.sim import ConstantLatency, ReplayBookVenue
from mmkit.sim.queue import ConservativeQueue, QueuePosition
from tests.unit.sim.funded import FUNDED
from tests.unit.sim.venue_clock import Clock

MS = 1_000_000
RESOLUTION = (D("0.1"), D("0.01"))


class RecordingQueue(ConservativeQueue):
    """The conservative model, remembering which (front, before, after) each depth change reported."""

    def __init__(self) -> None:
        self.changes: list[tuple[D, D, D]] = []

    def on_depth_change(self, pos: QueuePosition, prev_qty: D, new_qty: D) -> None:
        self.changes.append((pos.front, prev_qty, new_qty))


def make(queue: ConservativeQueue | None = None) -> tuple[ReplayBookVenue, Clock]:
    inst = Instrument("rec", "X", "BTC", "USD", (IncrementBand(D(0), D("0.1"), D("0.01")),))
    clock = Clock()
    rules = rules_for([inst], "rec", fees=FeeSchedule(D(0), D(10)), supports_replace=True)
    venue = ReplayBookVenue(rules, clock, book_increments=RESOLUTION, latency=ConstantLatency(entry=MS, response=MS),
                            queue_model=queue, initial_balances=FUNDED)
    venue.simulate_reconnect()
    bids = ((D(100), D(3)), (D("99.5"), D(4)), (D(99), D(5)))
    venue.on_market_event(BookSnapshot("rec", "X", 1, bids, ((D(101), D(2)),), 0, 0))
    return venue, clock


def trade(ts: int, price: str, qty: str = "0.01") -> Trade:
    return Trade("rec", "X", f"t{ts}", D(price), D(qty), Side.SELL, ts, ts)


def maker_fills(venue: ReplayBookVenue, clock: Clock, until: int) -> list[Fill]:
    clock.now = until
    return [e for e in venue.drain() if isinstance(e, Fill)]


def test_a_new_order_joins_the_best_bid_that_prints_are_checked_against() -> None:
    venue, clock = make()
    venue.place(OrderRequest("low", "rec", "X", Side.BUY, D(1), D(99)))
    venue.on_market_event(trade(2 * MS, "99.8"))  # above our only bid: reaches nothing, the view is built
    clock.now = 3 * MS
    venue.place(OrderRequest("high", "rec", "X", Side.BUY, D(1), D("99.9")))
    venue.on_market_event(trade(5 * MS, "99.8"))  # through the new bid (not the old best of the view)
    fills = maker_fills(venue, clock, 20 * MS)
    assert [(f.client_id, f.price) for f in fills] == [("high", D("99.9"))]


def test_a_replace_to_a_higher_bid_moves_the_reach_of_prints() -> None:
    venue, clock = make()
    venue.place(OrderRequest("a", "rec", "X", Side.BUY, D(1), D(99)))
    venue.on_market_event(trade(2 * MS, "99.8"))
    clock.now = 3 * MS
    venue.replace(ReplaceRequest("b", "a", "rec", "X", Side.BUY, D(1), D("99.9")))
    venue.on_market_event(trade(5 * MS, "99.8"))
    fills = maker_fills(venue, clock, 20 * MS)
    assert [(f.client_id, f.price) for f in fills] == [("b", D("99.9"))]


def test_a_cancel_or_a_fill_of_the_best_order_lets_prints_pass_again() -> None:
    venue, clock = make()
    venue.place(OrderRequest("best", "rec", "X", Side.BUY, D("0.01"), D("99.9")))
    venue.place(OrderRequest("next", "rec", "X", Side.BUY, D(1), D("99.5")))
    venue.on_market_event(trade(2 * MS, "99.8"))  # fills "best" through: the view must forget it
    venue.on_market_event(trade(3 * MS, "99.8"))  # above "next": no fill, and no error on a closed order
    clock.now = 4 * MS
    venue.cancel("next", "X")
    venue.on_market_event(trade(6 * MS, "99.4"))  # through the canceled bid: nothing of ours rests
    # An ask below both old bids: a crossing the venue would fill any order it still thought resting.
    venue.on_market_event(BookDelta("rec", "X", 2, 2, (), ((D("99.4"), D(1)),), 7 * MS, 7 * MS))
    fills = maker_fills(venue, clock, 20 * MS)
    assert [(f.client_id, f.qty) for f in fills] == [("best", D("0.01"))]


def test_diffs_at_the_new_price_of_a_replaced_order_reach_its_queue() -> None:
    queue = RecordingQueue()
    venue, clock = make(queue)
    venue.place(OrderRequest("a", "rec", "X", Side.BUY, D(1), D(100)))
    venue.on_market_event(BookDelta("rec", "X", 2, 2, ((D(100), D(2)),), (), 2 * MS, 2 * MS))
    assert queue.changes == [(D(3), D(3), D(2))]  # the watched level is (bid, 100 ticks-worth)
    clock.now = 3 * MS
    venue.replace(ReplaceRequest("b", "a", "rec", "X", Side.BUY, D(1), D("99.5")))
    venue.on_market_event(BookDelta("rec", "X", 3, 3, ((D("99.5"), D(1)),), (), 5 * MS, 5 * MS))
    assert queue.changes[1:] == [(D(4), D(4), D(1))]
    venue.on_market_event(BookDelta("rec", "X", 4, 4, ((D(100), D(1)),), (), 6 * MS, 6 * MS))
    assert len(queue.changes) == 2  # the old price is no longer watched


def test_a_second_order_at_another_level_is_watched_from_its_join() -> None:
    queue = RecordingQueue()
    venue, clock = make(queue)
    venue.place(OrderRequest("a", "rec", "X", Side.BUY, D(1), D(100)))
    venue.on_market_event(BookDelta("rec", "X", 2, 2, ((D(100), D("2.5")),), (), 2 * MS, 2 * MS))
    clock.now = 3 * MS
    venue.place(OrderRequest("b", "rec", "X", Side.BUY, D(1), D(99)))
    # One diff lists both levels, 99 twice: the size before its last change (6) is what the model hears.
    levels = ((D(99), D(6)), (D(100), D(2)), (D(99), D(2)))
    venue.on_market_event(BookDelta("rec", "X", 3, 3, levels, (), 5 * MS, 5 * MS))
    assert queue.changes == [(D(3), D(3), D("2.5")), (D(3), D("2.5"), D(2)), (D(5), D(6), D(2))]


def test_a_filled_order_is_gone_from_the_orders_a_crossing_book_is_checked_against() -> None:
    venue, clock = make()
    venue.place(OrderRequest("best", "rec", "X", Side.BUY, D("0.01"), D("99.9")))
    venue.place(OrderRequest("next", "rec", "X", Side.BUY, D(1), D("99.5")))
    venue.on_market_event(trade(2 * MS, "99.8"))  # fills "best" through
    venue.on_market_event(BookDelta("rec", "X", 2, 2, (), ((D("99.7"), D(1)),), 3 * MS, 3 * MS))  # crosses 99.9 only
    fills = maker_fills(venue, clock, 20 * MS)
    assert [(f.client_id, f.qty) for f in fills] == [("best", D("0.01"))]


def test_a_canceled_order_is_gone_from_the_orders_a_crossing_book_is_checked_against() -> None:
    venue, clock = make()
    venue.place(OrderRequest("keep", "rec", "X", Side.BUY, D(1), D(99)))
    venue.place(OrderRequest("gone", "rec", "X", Side.BUY, D(1), D("99.5")))
    venue.on_market_event(trade(2 * MS, "99.8"))  # reaches neither: the views are built
    clock.now = 3 * MS
    venue.cancel("gone", "X")
    venue.on_market_event(BookDelta("rec", "X", 2, 2, (), ((D("99.4"), D(1)),), 5 * MS, 5 * MS))  # crosses 99.5 only
    assert maker_fills(venue, clock, 20 * MS) == []


def test_a_replace_at_the_same_price_is_the_order_prints_fill() -> None:
    venue, clock = make()
    venue.place(OrderRequest("a", "rec", "X", Side.BUY, D(1), D("99.9")))
    venue.on_market_event(trade(2 * MS, "100"))  # reaches nothing: the views are built
    clock.now = 3 * MS
    venue.replace(ReplaceRequest("b", "a", "rec", "X", Side.BUY, D("0.5"), D("99.9")))
    venue.on_market_event(trade(5 * MS, "99.8", "2"))  # through the replacement (more than it: fills it all)
    fills = maker_fills(venue, clock, 20 * MS)
    assert [(f.client_id, f.qty) for f in fills] == [("b", D("0.5"))]
