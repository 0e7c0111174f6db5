"""The simulated venue's cheaper per-order paths give what the plain ones gave.

Why these tests: issue 16 cut the venue's per-order work with a memo (the
replay venue's mid, reused while the book's best prices stay put), a probe
(an order crossing by a few ticks reads the sizes at those ticks instead of
ranking the opposite side), a narrower balance computation for a fill's
BalanceUpdate, an inlined queue rule, and an early return from ``drain``.
Each test below compares the fast path with the plain rule it replaces, or
changes what a memo depends on and checks the next answer follows; with the
invalidation or the equivalence broken, it fails.
"""

from __future__ import annotations

import copy
import random
from decimal import Decimal as D

import pytest

from mmkit.connector import FeeSchedule, load_venue_rules, rules_for
from mmkit.instrument import IncrementBand, Instrument
from mmkit.model import (
    BalanceUpdate,
    BookDelta,
    BookSnapshot,
    Fill,
    OrderAccepted,
    OrderRejected,
    OrderRequest,
    RejectReason,
    Side,
    TimeInForce,
    Trade,
    VenueOrderStatus,
)
from mmkit.sim import ConstantLatency, ProbabilisticQueue, ReplayBookVenue, book_crossing
from mmkit.sim.base_venue import VenueOrder
from mmkit.sim.queue import trade_fill_qty
from mmkit.sim.through_fill import ThroughFill
from tests.unit.sim.naive_book import naive_levels_through
from tests.unit.sim.venue_clock import Clock

MS = 1_000_000
SYMBOL = "BTCUSDT"



def test_crossing_takes_the_levels_a_sorted_walk_takes_near_and_far_from_the_best() -> None:
    rng = random.Random(11)
    venue = ReplayBookVenue(load_venue_rules("binance"), lambda: 0, book_increments=(D("0.01"), D("0.00000001")))
    book = venue.books[SYMBOL]
    naive: dict[Side, dict[D, D]] = {Side.BUY: {}, Side.SELL: {}}
    spans = {"probe": 0, "walk": 0}
    for step in range(1500):
        bids = [(D(rng.randint(9800, 10000)) / 100, D(rng.choice([0, 1, 7])) / 1000) for _ in range(6)]
        asks = [(D(rng.randint(10001, 10200)) / 100, D(rng.choice([0, 1, 7])) / 1000) for _ in range(6)]
        venue.on_market_event(BookDelta("binance", SYMBOL, step + 1, step + 1, tuple(bids), tuple(asks), step, step))
        for side, levels in ((Side.BUY, bids), (Side.SELL, asks)):
            for price, qty in levels:
                if qty > 0:
                    naive[side][price] = qty
                else:
                    naive[side].pop(price, None)
        side = rng.choice((Side.BUY, Side.SELL))
        best = book.best_ask_int() if side is Side.BUY else book.best_bid_int()
        # Limits from well short of the opposite best to far through it, on the grid and off it (a tenth of a tick).
        limit = D(rng.randint(9700, 10300)) / 100 + (D("0.001") if step % 7 == 0 else 0)
        tick = book.tick_of(limit)
        got = venue._crossing(book, side, limit, tick)
        assert got == naive_levels_through(naive, side, limit)
        assert venue._levels_through(book, side, limit) == got
        if tick is not None and best is not None and got:
            span = tick - best if side is Side.BUY else best - tick
            levels = book.ask_count if side is Side.BUY else book.bid_count
            spans["probe" if book_crossing._reads_ticks(span, levels) else "walk"] += 1
    # Both ways of reading the crossed levels ran, and found levels.
    assert spans["probe"] > 20 and spans["walk"] > 20, spans


def _band_venue() -> tuple[ReplayBookVenue, Clock]:
    inst = Instrument("rec", "X", "BTC", "USD", (IncrementBand(D(0), D("0.1"), D("0.01")),), price_band=D("0.01"))
    clock = Clock()
    rules = rules_for([inst], "rec", fees=FeeSchedule(D(0), D(0)))
    venue = ReplayBookVenue(rules, clock, book_increments=(D("0.1"), D("0.01")),
                            latency=ConstantLatency(entry=MS, response=MS),
                            initial_balances={"USD": D(10**6), "BTC": D(100)})
    venue.simulate_reconnect()
    venue.on_market_event(BookSnapshot("rec", "X", 1, ((D(100), D(3)),), ((D(101), D(2)),), 0, 0))
    venue.drain()  # the session-up notice
    return venue, clock


def test_the_mid_is_reused_while_the_best_prices_stay_and_worked_out_again_when_they_move() -> None:
    venue, _ = _band_venue()
    book = venue.books["X"]
    first = venue._mid("X")
    assert first == D("100.5")
    assert venue._mid("X") is first  # reused: the instrument's band memo (by identity) hits too
    venue.on_market_event(BookDelta("rec", "X", 2, 2, ((D(100), D(1)),), (), 1, 1))  # a size, not a best price
    assert venue._mid("X") is first
    venue.on_market_event(BookDelta("rec", "X", 3, 3, ((D(110), D(1)),), ((D(111), D(1)), (D(101), D(0))), 2, 2))
    assert venue._mid("X") == book.mid() == D("110.5")
    venue.on_market_event(BookDelta("rec", "X", 4, 4, ((D(110), D(0)),), (), 3, 3))  # the bid falls back to 100
    assert venue._mid("X") == book.mid() == D("105.5")
    venue.on_market_event(BookDelta("rec", "X", 5, 5, ((D(100), D(0)),), (), 4, 4))  # one side empty: no mid
    assert venue._mid("X") is None
    venue.on_market_event(BookSnapshot("rec", "X", 6, ((D(100), D(1)),), ((D(101), D(1)),), 5, 5))
    assert venue._mid("X") == D("100.5")
    # Another book at the same best ticks (1000 and 1010) on a finer grid: its own mid, not the memo's.
    replacement = type(book)(D("0.01"), D("0.01"), venue="rec", symbol="X")
    replacement.apply_snapshot(BookSnapshot("rec", "X", 9, ((D(10), D(1)),), ((D("10.1"), D(1)),), 5, 5))
    assert (replacement.best_bid_int(), replacement.best_ask_int()) == (book.best_bid_int(), book.best_ask_int())
    venue.books["X"] = replacement
    assert venue._mid("X") == D("10.05")


def test_an_order_is_banded_around_the_mid_of_the_book_it_arrives_at() -> None:
    venue, clock = _band_venue()
    venue.place(OrderRequest("a", "rec", "X", Side.BUY, D("0.01"), D(100)))  # mid 100.5: inside 1 %
    clock.now = 2 * MS
    assert [type(e) for e in venue.drain()] == [OrderAccepted]
    venue.on_market_event(BookDelta("rec", "X", 2, 2, ((D(110), D(1)),), ((D(111), D(1)),), 2 * MS, 2 * MS))
    venue.on_market_event(BookDelta("rec", "X", 3, 3, ((D(100), D(0)),), ((D(101), D(0)),), 2 * MS, 2 * MS))
    venue.place(OrderRequest("b", "rec", "X", Side.BUY, D("0.01"), D("100.1")))  # mid 110.5 now: far outside
    venue.place(OrderRequest("c", "rec", "X", Side.BUY, D("0.01"), D("110")))
    clock.now = 4 * MS
    events = venue.drain()
    assert [(type(e), e.client_id) for e in events] == [(OrderRejected, "b"), (OrderAccepted, "c")]
    assert isinstance(events[0], OrderRejected) and events[0].reason is RejectReason.PRICE_BAND


def test_a_fills_balance_update_carries_what_balances_shows_for_its_assets() -> None:
    btc = Instrument("rec", "X", "BTC", "USD", (IncrementBand(D(0), D("0.1"), D("0.01")),))
    eth = Instrument("rec", "E", "ETH", "USD", (IncrementBand(D(0), D("0.1"), D("0.01")),))
    coin = Instrument("rec", "C", "BTC", "USD", (IncrementBand(D(0), D("0.1"), D(1)),),
                      contract_size=D(100), inverse=True)
    clock = Clock()
    rules = rules_for([btc, eth, coin], "rec", fees=FeeSchedule(D("0.001"), D("0.002")))
    venue = ReplayBookVenue(rules, clock, book_increments=(D("0.1"), D("0.01")),
                            initial_balances={"USD": D(10**6), "BTC": D(50), "ETH": D(70), "XRP": D(5)})
    venue.simulate_reconnect()
    for symbol in ("X", "E", "C"):
        venue.on_market_event(BookSnapshot("rec", symbol, 1, ((D(100), D(30)),), ((D(101), D(20)),), 0, 0))
    # Open orders on every instrument reserve in every asset; then crossing orders fill on each one.
    resting = [("X", Side.BUY, "99"), ("X", Side.SELL, "105"), ("E", Side.BUY, "98"), ("E", Side.SELL, "104"),
               ("C", Side.BUY, "97"), ("C", Side.SELL, "106")]
    for n, (symbol, side, price) in enumerate(resting):
        venue.place(OrderRequest(f"r{n}", "rec", symbol, side, D(2), D(price)))
    takers = [("X", Side.BUY, "101"), ("E", Side.SELL, "100"), ("C", Side.BUY, "101")]
    for n, (symbol, side, price) in enumerate(takers):
        venue.place(OrderRequest(f"t{n}", "rec", symbol, side, D(1), D(price)))
        clock.now += 1
        updates = [e for e in venue.drain() if isinstance(e, BalanceUpdate)]
        assert len(updates) == 1
        inst = rules.instrument(symbol)
        assert updates[0].balances == tuple(b for b in venue.balances() if b.asset in (inst.base, inst.quote, symbol))
        assert {b.asset for b in updates[0].balances} >= {inst.base}


@pytest.mark.parametrize("through_fill", ["tape", "whole"])
def test_prints_fill_resting_orders_as_trade_fill_qty_says(through_fill: ThroughFill) -> None:
    rng = random.Random(3)
    inst = Instrument("rec", "X", "BTC", "USD", (IncrementBand(D(0), D("0.1"), D("0.01")),))
    clock = Clock()
    rules = rules_for([inst], "rec", fees=FeeSchedule(D(0), D(0)))
    venue = ReplayBookVenue(rules, clock, book_increments=(D("0.1"), D("0.01")), queue_model=ProbabilisticQueue(seed=1),
                            initial_balances={"USD": D(10**6), "BTC": D(100)}, through_fill=through_fill)
    venue.simulate_reconnect()
    venue.on_market_event(BookSnapshot("rec", "X", 1, ((D(100), D(3)), (D("99.5"), D(2))),
                                       ((D(101), D(2)), (D("101.5"), D(4))), 0, 0))
    prices = {Side.BUY: ["100", "99.5", "99"], Side.SELL: ["101", "101.5", "102"]}
    orders = 0
    checked = {"through": 0, "at price": 0, "none": 0}
    shared = 0  # prints at a price where two of our orders rest, one of them filled before the other was asked
    for step in range(400):
        if len(venue._resting) < 4:
            side = rng.choice((Side.BUY, Side.SELL))
            venue.place(OrderRequest(f"o{orders}", "rec", "X", side, D(rng.choice(["0.05", "0.1", "0.3"])),
                                     D(rng.choice(prices[side]))))
            orders += 1
            venue.advance(clock.now)
        price = D(rng.choice(["98.9", "99", "99.5", "99.9", "100", "100.5", "101", "101.5", "102", "102.1"]))
        trade = Trade("rec", "X", f"p{step}", price, D(rng.choice(["0.02", "0.1", "0.5", "3"])),
                      rng.choice((Side.BUY, Side.SELL, None)), step, step)
        # What the rule gives for each resting order, on copies of its queue position (the model is deterministic
        # for trades at our price: the front is eaten first). "whole": our orders at the print's price share its
        # quantity in the order they arrived, a print through an order fills all of it. "tape": every order the
        # print reaches shares its quantity, best price first (bids high to low, offers low to high), then arrival.
        expected = {}
        left = trade.qty
        order = list(venue._resting.values())
        if through_fill == "tape":
            order.sort(key=lambda q: -q.rec.price if q.rec.side is Side.BUY else q.rec.price)  # type: ignore[operator]
        for queued in order:
            rec = queued.rec
            assert rec.price is not None
            at_price = price == rec.price
            shares_print = at_price or through_fill == "tape"
            qty = trade_fill_qty(venue.queue_model, copy.copy(queued.pos), side=rec.side, price=rec.price,
                                 leaves=rec.leaves, trade_price=price, trade_qty=left if at_price else trade.qty,
                                 aggressor=trade.aggressor)
            if shares_print:
                qty = min(qty, left)
            if qty > 0:
                expected[rec.client_id] = min(qty, rec.leaves)
                checked["at price" if at_price else "through"] += 1
                if shares_print:
                    left -= expected[rec.client_id]
        if not expected:
            checked["none"] += 1
        shared += sum(1 for q in venue._resting.values() if q.rec.price == price) > 1 and left < trade.qty
        before = len(venue._fills)
        venue.on_market_event(trade)
        got = {f.client_id: f.qty for f in venue._fills[before:]}
        assert got == expected, (step, trade)
    assert all(n > 10 for n in checked.values()), checked
    assert shared >= 5, "no print reached two of our orders at its price: the shared quantity went untested"


def test_drain_with_nothing_due_still_moves_venue_time_and_delivers_at_the_exact_time() -> None:
    venue, clock = _band_venue()
    venue.place(OrderRequest("a", "rec", "X", Side.BUY, D("0.01"), D(100)))
    clock.now = 2 * MS - 1
    assert venue.drain() == []  # arrived at 1 ms, ack visible at 2 ms
    clock.now = 2 * MS
    assert [type(e) for e in venue.drain()] == [OrderAccepted]
    clock.now = 7 * MS
    assert venue.drain() == []  # nothing in flight: the early return
    truth = venue.order_truth("a")
    assert truth is not None and truth.ts_recv == 7 * MS


def test_no_duplicate_order_table_is_kept_without_a_window_and_one_is_with_it() -> None:
    venue, clock = _band_venue()
    for n in range(3):
        venue.place(OrderRequest(f"a{n}", "rec", "X", Side.BUY, D("0.01"), D(100)))
    clock.now = 3 * MS
    assert [type(e) for e in venue.drain()] == [OrderAccepted] * 3
    assert venue._recent_places == {}
    inst = Instrument("rec", "X", "BTC", "USD", (IncrementBand(D(0), D("0.1"), D("0.01")),))
    windowed = ReplayBookVenue(rules_for([inst], "rec", duplicate_order_window_ns=5 * MS), clock,
                               book_increments=(D("0.1"), D("0.01")), initial_balances={"USD": D(10**6)})
    windowed.simulate_reconnect()
    windowed.on_market_event(BookSnapshot("rec", "X", 1, ((D(100), D(3)),), ((D(101), D(2)),), 0, 0))
    windowed.drain()
    windowed.place(OrderRequest("b0", "rec", "X", Side.BUY, D("0.01"), D(100)))
    windowed.place(OrderRequest("b1", "rec", "X", Side.BUY, D("0.01"), D(100)))
    events = windowed.drain()
    assert [type(e) for e in events] == [OrderAccepted, OrderRejected]
    assert isinstance(events[1], OrderRejected) and events[1].reason is RejectReason.DUPLICATE_ORDER


def test_a_fill_event_and_the_venues_record_differ_only_in_receive_time() -> None:
    venue, clock = _band_venue()
    venue.place(OrderRequest("t", "rec", "X", Side.BUY, D("0.5"), D(101)))
    clock.now = 2 * MS
    fills = [e for e in venue.drain() if isinstance(e, Fill)]
    assert len(fills) == 1 and len(venue.fills) == 1
    assert fills[0].ts_recv == 2 * MS and venue.fills[0].ts_recv == MS
    assert fills[0] == venue.fills[0].__class__(**{**_fields(venue.fills[0]), "ts_recv": 2 * MS})


def _fields(fill: Fill) -> dict[str, object]:
    return {name: getattr(fill, name) for name in fill.__slots__ if not name.startswith("__")}


def test_an_orders_leaves_follow_the_models_open_statuses() -> None:
    """VenueOrder.leaves spells out VenueOrderStatus.is_open: a status added to the model must not slip by."""
    for status in VenueOrderStatus:
        rec = VenueOrder("c", "O1", "X", Side.BUY, D(100), D(3), False, TimeInForce.GTC, 0, D(1), status)
        assert rec.leaves == (D(2) if status.is_open else D(0)), status


def test_balances_leave_out_what_closed_orders_reserved_to_the_last_digit() -> None:
    """The one-pass walk over open orders skips closed ones: a closed order adds no asset and no Decimal zero."""
    inst = Instrument("rec", "X", "BTC", "USD", (IncrementBand(D(0), D("0.1"), D("0.01")),))
    clock = Clock()
    venue = ReplayBookVenue(rules_for([inst], "rec", fees=FeeSchedule(D(0), D(0))), clock,
                            book_increments=(D("0.1"), D("0.01")), initial_balances={"USD": D(1000), "BTC": D(1)})
    venue.simulate_reconnect()
    venue.on_market_event(BookSnapshot("rec", "X", 1, ((D(100), D(3)),), ((D(101), D(2)),), 0, 0))
    venue.place(OrderRequest("sell", "rec", "X", Side.SELL, D("0.30"), D("105.5")))
    venue.place(OrderRequest("buy", "rec", "X", Side.BUY, D("0.30"), D("99.5")))
    venue.advance(0)
    assert [(b.asset, str(b.total), str(b.available)) for b in venue.balances()] == [
        ("BTC", "1", "0.70"), ("USD", "1000", "970.150")
    ]
    venue.cancel("sell", "X")
    venue.cancel("buy", "X")
    venue.advance(0)
    assert [(b.asset, str(b.total), str(b.available)) for b in venue.balances()] == [
        ("BTC", "1", "1"), ("USD", "1000", "1000")
    ]
