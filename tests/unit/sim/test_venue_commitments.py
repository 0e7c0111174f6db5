"""The venue's running commitment totals are what summing its open orders gives, after every step.

Why these tests: a spot order's funds check takes out what the other open
orders commit (a sell its leaves, a buy ``price x leaves`` with the worst
fee). The venue used to sum that over its open orders for every order; it
now keeps a running total per asset, updated where an order opens, fills,
is canceled (by us, as an IOC/FOK remainder, by a disconnect), is replaced
(and the replace taken back), is refused after entering the book
(post-only), or is lost. The random flows compare the total with the sum
after every step on both simulated venues; the targeted tests each fail if
one of those updates is removed (an order refused, or let in, for funds it
did or did not have).
"""

from __future__ import annotations

import random
from decimal import Decimal as D

import pytest

from mmkit.connector import rules_for
from mmkit.model import (
    ZERO,
    OrderRejected,
    OrderRequest,
    OrderType,
    ReplaceRequest,
    Side,
    TimeInForce,
    Trade,
    VenueEvent,
    VenueOrderStatus,
)
from mmkit.sim import ConstantLatency, ExchangeVenue
from mmkit.sim.base_venue import SimulatedVenue
from tests.unit.sim.test_spot_balances import FEES, MS, SPOT, VENUES, Make, order, replay_venue, settle
from tests.unit.sim.venue_clock import Clock

_OPEN = (VenueOrderStatus.NEW, VenueOrderStatus.PARTIALLY_FILLED)


def summed(venue: SimulatedVenue, asset: str, skip: object = None) -> D:
    """What the open spot orders other than ``skip`` commit of ``asset``: the sum the running total replaced."""
    total = ZERO
    for rec in venue._open.values():
        if rec is skip or rec.status not in _OPEN:
            continue
        inst = venue.rules.instrument(rec.symbol)
        if not inst.spot:
            continue
        if rec.side is Side.BUY:
            if inst.quote == asset and rec.price is not None:
                total += rec.price * (rec.qty - rec.filled) * venue._buy_commit
        elif inst.base == asset:
            total += rec.qty - rec.filled
    return total


def assert_totals_are_the_sums(venue: SimulatedVenue, where: object) -> None:
    for asset in ("BTC", "USD"):
        assert venue._committed(asset, None) == summed(venue, asset), (where, asset)
        for rec in list(venue._open.values()):
            assert venue._committed(asset, rec) == summed(venue, asset, rec), (where, asset, rec.client_id)


def codes(events: list[VenueEvent]) -> list[tuple[str, str]]:
    """(event type, client id) of order outcomes, with the reject reason for a reject."""
    out = []
    for e in events:
        name = type(e).__name__
        if isinstance(e, OrderRejected):
            name = f"{name}:{e.reason.name}"
        out.append((name, getattr(e, "client_id", "")))
    return out


@pytest.mark.parametrize("make", VENUES)
@pytest.mark.parametrize("seed", range(4))
def test_the_running_totals_are_the_sums_of_the_open_orders_through_random_flows(make: Make, seed: int) -> None:
    rng = random.Random(seed)
    venue, clock = make({"BTC": D("0.8"), "USD": D(90)})
    live: list[tuple[str, Side]] = []
    kinds: dict[str, int] = {}
    for n in range(500):
        action = rng.random()
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        price = D(rng.randrange(985, 1025)) / 10
        qty = D(rng.randrange(1, 40)) / 100
        if action < 0.45 or not live:
            cid = f"o{n}"
            style = rng.random()
            if style < 0.08:
                venue.place(order(cid, side, str(qty), None))  # market: its IOC remainder is canceled
            elif style < 0.16:
                venue.place(OrderRequest(cid, "rec", "X", side, qty, price, tif=TimeInForce.IOC))
            elif style < 0.22:
                venue.place(OrderRequest(cid, "rec", "X", side, qty, price, tif=TimeInForce.FOK))
            else:  # GTC, some post-only (refused after entering the book when it would cross)
                venue.place(order(cid, side, str(qty), str(price), post_only=style > 0.8))
                live.append((cid, side))
            kinds["place"] = kinds.get("place", 0) + 1
        elif action < 0.58:
            old, old_side = live.pop(rng.randrange(len(live)))
            venue.replace(ReplaceRequest(f"r{n}", old, "rec", "X", old_side, qty, price))
            live.append((f"r{n}", old_side))
            kinds["replace"] = kinds.get("replace", 0) + 1
        elif action < 0.68:
            venue.cancel(live.pop(rng.randrange(len(live)))[0], "X")
            kinds["cancel"] = kinds.get("cancel", 0) + 1
        elif action < 0.71:
            venue.simulate_lose_order(live.pop(rng.randrange(len(live)))[0])
            kinds["lose"] = kinds.get("lose", 0) + 1
        elif action < 0.73:
            venue.cancel_all("X")
            live.clear()
        else:
            clock.now += MS
            aggressor = Side.BUY if rng.random() < 0.5 else Side.SELL
            trade = Trade("rec", "X", f"t{n}", price, qty * 3, aggressor, clock.now, clock.now)
            if hasattr(venue, "on_market_event"):
                venue.on_market_event(trade)
            else:
                venue.add_liquidity(aggressor.opposite, price, qty * 3)  # type: ignore[attr-defined]
        assert_totals_are_the_sums(venue, (n, "sent"))
        for e in settle(venue, clock):
            kind = type(e).__name__
            if isinstance(e, OrderRejected):
                kind = f"rejected:{e.reason.name}"
            kinds[kind] = kinds.get(kind, 0) + 1
        assert_totals_are_the_sums(venue, (n, "settled"))
    # The flow went through every way an order opens, fills and closes.
    for kind in ("Fill", "OrderCanceled", "OrderReplaced", "rejected:INSUFFICIENT_FUNDS", "lose"):
        assert kinds.get(kind, 0) > 3, (kind, kinds)
    assert kinds.get("rejected:POST_ONLY_WOULD_CROSS", 0) + kinds.get("OrderCancelRejected", 0) > 3, kinds


@pytest.mark.parametrize("make", VENUES)
def test_a_canceled_sell_frees_what_it_committed(make: Make) -> None:
    venue, clock = make({"BTC": D(1), "USD": D(0)})
    venue.place(order("a", Side.SELL, "0.6", "105"))
    settle(venue, clock)
    venue.cancel("a", "X")
    venue.place(order("b", Side.SELL, "0.6", "105"))  # arrives after the cancel: the 0.6 is free again
    assert codes(settle(venue, clock)) == [("OrderCanceled", "a"), ("OrderAccepted", "b")]


@pytest.mark.parametrize("make", VENUES)
def test_a_canceled_buy_frees_its_quote_and_fee(make: Make) -> None:
    venue, clock = make({"BTC": D(0), "USD": D(70)})
    venue.place(order("a", Side.BUY, "0.6", "99"))  # 59.4 and the 10 bps taker fee
    settle(venue, clock)
    venue.cancel("a", "X")
    venue.place(order("b", Side.BUY, "0.6", "99"))
    assert codes(settle(venue, clock)) == [("OrderCanceled", "a"), ("OrderAccepted", "b")]


def test_a_partly_filled_sell_commits_only_what_is_left() -> None:
    venue, clock = replay_venue({"BTC": D(1), "USD": D(0)})
    venue.place(order("a", Side.SELL, "0.6", "105"))
    settle(venue, clock)
    clock.now += MS
    venue.on_market_event(Trade("rec", "X", "t1", D(106), D("0.4"), Side.BUY, clock.now, clock.now))  # through it
    settle(venue, clock)
    truth = venue.order_truth("a")
    assert truth is not None and truth.filled_qty == D("0.4")
    # 0.6 BTC held, 0.2 still committed to "a": 0.4 more can be sold, not 0.41.
    venue.place(order("b", Side.SELL, "0.41", "105"))
    venue.place(order("c", Side.SELL, "0.4", "105"))
    assert codes(settle(venue, clock)) == [("OrderRejected:INSUFFICIENT_FUNDS", "b"), ("OrderAccepted", "c")]


@pytest.mark.parametrize("make", VENUES)
def test_a_filled_order_commits_nothing_more(make: Make) -> None:
    venue, clock = make({"BTC": D(1), "USD": D(0)})
    venue.place(order("a", Side.SELL, "0.5", "100"))  # crosses the bid at 100: filled at once
    settle(venue, clock)
    venue.place(order("b", Side.SELL, "0.5", "105"))  # the 0.5 left is free
    assert codes(settle(venue, clock)) == [("OrderAccepted", "b")]


@pytest.mark.parametrize("tif", [TimeInForce.IOC, TimeInForce.FOK])
@pytest.mark.parametrize("make", VENUES)
def test_an_ioc_or_fok_remainder_commits_nothing(make: Make, tif: TimeInForce) -> None:
    venue, clock = make({"BTC": D(1), "USD": D(0)})
    venue.place(OrderRequest("a", "rec", "X", Side.SELL, D("0.8"), D(105), tif=tif))  # nothing to take: canceled
    settle(venue, clock)
    venue.place(order("b", Side.SELL, "1", "105"))
    assert codes(settle(venue, clock)) == [("OrderAccepted", "b")]


@pytest.mark.parametrize("make", VENUES)
def test_a_post_only_order_refused_in_the_book_commits_nothing(make: Make) -> None:
    venue, clock = make({"BTC": D(1), "USD": D(0)})
    venue.place(order("a", Side.SELL, "0.8", "100", post_only=True))  # would cross the bid: refused after entry
    venue.place(order("b", Side.SELL, "1", "105"))
    assert codes(settle(venue, clock)) == [("OrderRejected:POST_ONLY_WOULD_CROSS", "a"), ("OrderAccepted", "b")]


@pytest.mark.parametrize("make", VENUES)
def test_a_lost_order_commits_nothing(make: Make) -> None:
    venue, clock = make({"BTC": D(1), "USD": D(0)})
    venue.place(order("a", Side.SELL, "0.8", "105"))
    settle(venue, clock)
    venue.simulate_lose_order("a")
    venue.place(order("b", Side.SELL, "1", "105"))
    assert codes(settle(venue, clock)) == [("OrderAccepted", "b")]


@pytest.mark.parametrize("make", VENUES)
def test_a_replace_moves_the_commitment_to_the_replacement(make: Make) -> None:
    venue, clock = make({"BTC": D(1), "USD": D(0)})
    venue.place(order("a", Side.SELL, "0.6", "105"))
    settle(venue, clock)
    venue.replace(ReplaceRequest("a2", "a", "rec", "X", Side.SELL, D("0.3"), D(106)))
    venue.place(order("b", Side.SELL, "0.71", "105"))  # 0.3 committed to a2: 0.7 free
    venue.place(order("c", Side.SELL, "0.7", "105"))
    assert codes(settle(venue, clock)) == [
        ("OrderReplaced", "a2"), ("OrderRejected:INSUFFICIENT_FUNDS", "b"), ("OrderAccepted", "c")
    ]


def test_a_replace_taken_back_leaves_the_original_committed() -> None:
    venue, clock = replay_venue({"BTC": D(1), "USD": D(0)})
    venue.place(order("a", Side.SELL, "0.6", "105", post_only=True))
    settle(venue, clock)
    venue.replace(ReplaceRequest("a2", "a", "rec", "X", Side.SELL, D("0.2"), D(100)))  # would cross: refused
    venue.place(order("b", Side.SELL, "0.41", "105"))  # "a" still commits 0.6
    venue.place(order("c", Side.SELL, "0.4", "105"))
    events = settle(venue, clock)
    assert codes(events) == [
        ("OrderCancelRejected", "a"), ("OrderRejected:INSUFFICIENT_FUNDS", "b"), ("OrderAccepted", "c")
    ]
    assert_totals_are_the_sums(venue, "after")


def test_a_disconnect_that_cancels_frees_what_the_orders_committed() -> None:
    clock = Clock()
    venue = ExchangeVenue(rules_for([SPOT], "rec", fees=FEES, cancel_on_disconnect=True), clock,
                          latency=ConstantLatency(entry=MS, response=MS), initial_balances={"BTC": D(1), "USD": D(0)})
    venue.simulate_reconnect()
    venue.add_liquidity(Side.BUY, D(100), D(3))
    venue.place(order("a", Side.SELL, "0.8", "105"))
    settle(venue, clock)
    venue.simulate_disconnect()
    venue.simulate_reconnect()
    venue.place(order("b", Side.SELL, "1", "105"))
    assert ("OrderAccepted", "b") in codes(settle(venue, clock))
    assert venue._committed("BTC", None) == D(1)


def test_a_market_buy_commits_nothing_while_it_takes() -> None:
    venue, clock = replay_venue({"BTC": D(0), "USD": D(1000)})
    venue.place(OrderRequest("m", "rec", "X", Side.BUY, D("0.5"), None, OrderType.MARKET, TimeInForce.IOC))
    venue.place(order("b", Side.BUY, "9.4", "100"))  # 940 and the fee: fits beside what the market buy paid (50.55)
    outcomes = [c for c in codes(settle(venue, clock)) if c[0] != "BalanceUpdate"]
    assert outcomes == [("OrderAccepted", "m"), ("Fill", "m"), ("OrderAccepted", "b")]
    assert venue._committed("USD", None) == summed(venue, "USD") == D("940.94")
