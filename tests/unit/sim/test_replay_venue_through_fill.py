"""ReplayBookVenue, through_fill "tape": a book crossing our price fills no more than it offered through it.

Before (and still with "whole", hftbacktest's convention): the recorded best offer moving below our bid
filled the whole bid, whatever size was offered. Prints through our price: test_replay_venue_shared_print.
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from mmkit.model import BookDelta, Fill, OrderRequest, Side, Trade
from mmkit.sim import ReplayBookVenue
from mmkit.sim.through_fill import ThroughFill
from tests.unit.sim.test_replay_venue import MS, make
from tests.unit.sim.venue_clock import Clock


def two_bids(through_fill: ThroughFill) -> tuple[ReplayBookVenue, Clock]:
    """make(): bid 100 x3, ask 100.5 x2; our bids 100.1 (arrived first) and 100.2, 1 each, resting from 1 ms."""
    venue, clock = make(through_fill=through_fill)
    venue.place(OrderRequest("low", "rec", "X", Side.BUY, D(1), D("100.1"), post_only=True))
    venue.place(OrderRequest("high", "rec", "X", Side.BUY, D(1), D("100.2"), post_only=True))
    venue.on_market_event(BookDelta("rec", "X", 2, 2, ((D(99), D(1)),), (), 2 * MS, 2 * MS))
    return venue, clock


def diff(seq: int, at_ms: int, bids: tuple[tuple[D, D], ...], asks: tuple[tuple[D, D], ...]) -> BookDelta:
    return BookDelta("rec", "X", seq, seq, bids, asks, at_ms * MS, at_ms * MS)


def fills(venue: ReplayBookVenue, clock: Clock) -> list[tuple[str, D, D]]:
    clock.now += 50 * MS
    return [(e.client_id, e.price, e.qty) for e in venue.drain() if isinstance(e, Fill)]


def test_a_crossing_book_fills_the_better_bid_first_and_only_what_it_offers() -> None:
    venue, clock = two_bids("tape")
    venue.on_market_event(diff(3, 3, ((D(100), D(0)),), ((D(100), D("1.5")),)))  # 1.5 offered at 100
    assert fills(venue, clock) == [("high", D("100.2"), D(1)), ("low", D("100.1"), D("0.5"))]
    # The recording still shows the 1.5 (it never shows our trades): until it lists that level again, it is ours.
    venue.on_market_event(diff(4, 4, ((D("99.5"), D(1)),), ()))
    assert fills(venue, clock) == []
    # Listed again, with 0.2 (its own news): the rest of "low" crosses it and takes that.
    venue.on_market_event(diff(5, 5, (), ((D(100), D("0.2")),)))
    assert fills(venue, clock) == [("low", D("100.1"), D("0.2"))]


def test_whole_fills_every_crossed_order_whatever_was_offered() -> None:
    venue, clock = two_bids("whole")
    venue.on_market_event(diff(3, 3, ((D(100), D(0)),), ((D(100), D("0.01")),)))
    assert sorted(fills(venue, clock)) == [("high", D("100.2"), D(1)), ("low", D("100.1"), D(1))]


def test_an_unknown_fill_rule_is_refused() -> None:
    with pytest.raises(ValueError, match="through_fill must be one of tape, whole, got 'all'"):
        make(through_fill="all")  # type: ignore[arg-type]


def test_a_capped_fill_is_whole_lots_of_the_instrument() -> None:
    venue, clock = two_bids("tape")  # the instrument's lot is 0.01
    venue.on_market_event(Trade("rec", "X", "t3", D(100), D("0.015"), Side.SELL, 3 * MS, 3 * MS))  # through both
    assert fills(venue, clock) == [("high", D("100.2"), D("0.01"))]  # 0.005 is no lot: nobody fills it
