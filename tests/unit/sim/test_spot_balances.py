"""A simulated spot venue refuses what its balances cannot pay for, as Binance, Coinbase, Kraken and TrueX do.

Before, the venue's accounts let balances go negative: a backtest sold coins it
never held and bought with quote it did not have, and booked the fills.
Each test is a careless strategy (or a hostile sequence of orders) against
both simulated venues; a fill may never take a spot balance below zero.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from decimal import Decimal as D

import pytest

from mmkit.connector import FeeSchedule, rules_for
from mmkit.instrument import IncrementBand, Instrument
from mmkit.model import (
    BookSnapshot,
    Fill,
    Liquidity,
    OrderAccepted,
    OrderCancelRejected,
    OrderRejected,
    OrderRequest,
    OrderType,
    RejectReason,
    ReplaceRequest,
    Side,
    TimeInForce,
    Trade,
    VenueEvent,
)
from mmkit.sim import ConstantLatency, ExchangeVenue, ReplayBookVenue
from mmkit.sim.base_venue import SimulatedVenue
from tests.unit.sim.venue_clock import Clock

MS = 1_000_000
SPOT = Instrument("rec", "X", "BTC", "USD", (IncrementBand(D(0), D("0.1"), D("0.01")),))
FEES = FeeSchedule(D(0), D(10))  # maker 0, taker 10 bps: a buy must leave room for the taker fee


def replay_venue(balances: Mapping[str, D] | None, inst: Instrument = SPOT, *, replace: bool = True
                 ) -> tuple[ReplayBookVenue, Clock]:
    clock = Clock()
    venue = ReplayBookVenue(rules_for([inst], "rec", fees=FEES, supports_replace=replace), clock,
                            book_increments=(D("0.1"), D("0.01")), latency=ConstantLatency(entry=MS, response=MS),
                            initial_balances=balances)
    venue.simulate_reconnect()
    venue.on_market_event(BookSnapshot("rec", inst.symbol, 1, ((D(100), D(3)),), ((D(101), D(3)),), 0, 0))
    return venue, clock


def exchange_venue(balances: Mapping[str, D] | None) -> tuple[ExchangeVenue, Clock]:
    clock = Clock()
    venue = ExchangeVenue(rules_for([SPOT], "rec", fees=FEES, supports_replace=True), clock,
                          latency=ConstantLatency(entry=MS, response=MS), initial_balances=balances)
    venue.simulate_reconnect()
    venue.add_liquidity(Side.BUY, D(100), D(3))
    venue.add_liquidity(Side.SELL, D(101), D(3))
    return venue, clock


Make = Callable[[Mapping[str, D] | None], tuple[SimulatedVenue, Clock]]
VENUES: list[Make] = [replay_venue, exchange_venue]


def settle(venue: SimulatedVenue, clock: Clock) -> list[VenueEvent]:
    clock.now += 10 * MS
    venue.advance(clock.now)
    return [e for e in venue.drain() if not type(e).__name__.startswith(("Book", "Connection", "Trade"))]


def order(cid: str, side: Side, qty: str, price: str | None, post_only: bool = False) -> OrderRequest:
    """A GTC limit order, or a market (IOC) one without a price."""
    if price is None:
        return OrderRequest(cid, "rec", "X", side, D(qty), None, OrderType.MARKET, TimeInForce.IOC)
    return OrderRequest(cid, "rec", "X", side, D(qty), D(price), post_only=post_only)


def rejected(events: list[VenueEvent]) -> dict[str, RejectReason]:
    return {e.client_id: e.reason for e in events if isinstance(e, OrderRejected)}


def balance(venue: SimulatedVenue, asset: str) -> tuple[D, D]:
    found = {b.asset: (b.total, b.available) for b in venue.balances()}
    return found.get(asset, (D(0), D(0)))


@pytest.mark.parametrize("make", VENUES)
def test_a_sell_of_more_base_than_held_is_rejected_insufficient_funds(make: Make) -> None:
    venue, clock = make({"BTC": D("0.5"), "USD": D(0)})
    venue.place(order("s", Side.SELL, "0.6", "105"))
    events = settle(venue, clock)
    assert rejected(events) == {"s": RejectReason.INSUFFICIENT_FUNDS}
    (reject,) = [e for e in events if isinstance(e, OrderRejected)]
    assert "BTC" in reject.message and "0.5" in reject.message


@pytest.mark.parametrize("make", VENUES)
def test_an_account_given_nothing_holds_nothing_not_unlimited(make: Make) -> None:
    venue, clock = make(None)
    venue.place(order("s", Side.SELL, "0.01", "105"))
    venue.place(order("b", Side.BUY, "0.01", "99"))
    refused = RejectReason.INSUFFICIENT_FUNDS
    assert rejected(settle(venue, clock)) == {"s": refused, "b": refused}


@pytest.mark.parametrize("make", VENUES)
def test_open_orders_commit_what_they_would_sell(make: Make) -> None:
    """Two sells of 0.6 with 1.0 held: each alone could be paid, together they cannot; the second is refused."""
    venue, clock = make({"BTC": D(1), "USD": D(0)})
    venue.place(order("s1", Side.SELL, "0.6", "105"))
    venue.place(order("s2", Side.SELL, "0.6", "106"))
    events = settle(venue, clock)
    assert [e.client_id for e in events if isinstance(e, OrderAccepted)] == ["s1"]
    assert rejected(events) == {"s2": RejectReason.INSUFFICIENT_FUNDS}
    assert balance(venue, "BTC") == (D(1), D("0.4"))
    venue.cancel("s1", "X")  # what it committed is free again
    settle(venue, clock)
    venue.place(order("s3", Side.SELL, "1.0", "106"))
    assert rejected(settle(venue, clock)) == {}


@pytest.mark.parametrize("make", VENUES)
def test_a_buy_needs_its_notional_and_the_worst_fee(make: Make) -> None:
    """1 at 99 costs 99 and up to 0.099 of taker fee: 99 of quote is not enough, 99.099 is."""
    venue, clock = make({"BTC": D(0), "USD": D(99)})
    venue.place(order("b1", Side.BUY, "1", "99"))
    assert rejected(settle(venue, clock)) == {"b1": RejectReason.INSUFFICIENT_FUNDS}
    venue, clock = make({"BTC": D(0), "USD": D("99.099")})
    venue.place(order("b2", Side.BUY, "1", "99"))
    assert rejected(settle(venue, clock)) == {}


@pytest.mark.parametrize("make", VENUES)
def test_a_replace_that_commits_more_than_is_available_is_refused_and_the_order_stands(make: Make) -> None:
    venue, clock = make({"BTC": D(1), "USD": D(0)})
    venue.place(order("s1", Side.SELL, "0.6", "105"))
    venue.place(order("s2", Side.SELL, "0.3", "106"))
    settle(venue, clock)
    venue.replace(ReplaceRequest("s1b", "s1", "rec", "X", Side.SELL, D("0.8"), D("105")))  # 0.8 + 0.3 > 1
    events = settle(venue, clock)
    refused = [e for e in events if isinstance(e, OrderCancelRejected)]
    assert [(e.client_id, e.reason, e.is_replace) for e in refused] == [
        ("s1", RejectReason.INSUFFICIENT_FUNDS, True)]
    truth = venue.order_truth("s1")
    assert truth is not None and truth.status.is_open and truth.qty == D("0.6")
    # 0.7 + 0.3 = 1: what the original committed (0.6) is released by its replacement
    venue.replace(ReplaceRequest("s1c", "s1", "rec", "X", Side.SELL, D("0.7"), D("105")))
    assert [e for e in settle(venue, clock) if isinstance(e, OrderCancelRejected)] == []
    assert balance(venue, "BTC") == (D(1), D(0))


@pytest.mark.parametrize("make", VENUES)
def test_a_replace_of_a_buy_to_a_higher_price_is_held_to_the_quote(make: Make) -> None:
    venue, clock = make({"BTC": D(0), "USD": D(100)})
    venue.place(order("b1", Side.BUY, "0.5", "99"))
    settle(venue, clock)
    venue.replace(ReplaceRequest("b1b", "b1", "rec", "X", Side.BUY, D("1"), D("99")))  # 99 and its fee 0.099 fit
    assert [e for e in settle(venue, clock) if isinstance(e, OrderCancelRejected)] == []
    venue.replace(ReplaceRequest("b1c", "b1b", "rec", "X", Side.BUY, D("1.1"), D("99")))  # 109.0089 > 100
    refused = [e for e in settle(venue, clock) if isinstance(e, OrderCancelRejected)]
    assert [(e.client_id, e.reason) for e in refused] == [("b1b", RejectReason.INSUFFICIENT_FUNDS)]


@pytest.mark.parametrize("make", VENUES)
def test_a_market_buy_costs_what_it_would_take_from_the_offers(make: Make) -> None:
    """3 offered at 101 (and nothing above): 2 cost 202 plus the 10 bps taker fee, 202.202; 202.2 is short."""
    venue, clock = make({"BTC": D(0), "USD": D("202.2")})
    venue.place(order("m1", Side.BUY, "2", None))
    assert rejected(settle(venue, clock)) == {"m1": RejectReason.INSUFFICIENT_FUNDS}
    venue, clock = make({"BTC": D(0), "USD": D("202.202")})
    venue.place(order("m2", Side.BUY, "2", None))
    events = settle(venue, clock)
    assert rejected(events) == {} and sum(e.qty for e in events if isinstance(e, Fill)) == D(2)
    assert balance(venue, "USD") == (D(0), D(0)) and venue.overdrafts == 0


@pytest.mark.parametrize("make", VENUES)
def test_a_market_buy_carrying_a_price_is_costed_from_the_offers_not_from_its_price(make: Make) -> None:
    """The venue executes a market order at the offers whatever price it carries, so that price costs nothing.

    Before: a market buy of 2 carrying price 0.01 was checked as 0.02 of quote, accepted with 10 USD
    held, and its fill took USD to -192.
    """
    venue, clock = make({"BTC": D(0), "USD": D(10)})
    venue.place(OrderRequest("mp", "rec", "X", Side.BUY, D(2), D("0.01"), OrderType.MARKET, TimeInForce.IOC))
    assert rejected(settle(venue, clock)) == {"mp": RejectReason.INSUFFICIENT_FUNDS}
    assert balance(venue, "USD") == (D(10), D(10)) and venue.overdrafts == 0


@pytest.mark.parametrize("make", VENUES)
def test_a_market_sell_needs_the_base(make: Make) -> None:
    venue, clock = make({"BTC": D(1), "USD": D(0)})
    venue.place(order("m", Side.SELL, "1.5", None))
    assert rejected(settle(venue, clock)) == {"m": RejectReason.INSUFFICIENT_FUNDS}


def test_the_venue_rules_refuse_first() -> None:
    """An off-tick order is INVALID_PRICE whatever the balances: the venue checks its filters before funds."""
    venue, clock = replay_venue(None)
    venue.place(order("s", Side.SELL, "1", "105.05"))
    assert rejected(settle(venue, clock)) == {"s": RejectReason.INVALID_PRICE}


def test_what_a_fill_brings_in_can_be_sold() -> None:
    """Bought base is held: a buy filled by a print lets the sell of it through."""
    venue, clock = replay_venue({"BTC": D(0), "USD": D(1000)})
    venue.place(order("b", Side.BUY, "1", "101"))  # takes 1 of the 3 offered at 101
    events = settle(venue, clock)
    assert [e.qty for e in events if isinstance(e, Fill)] == [D(1)]
    venue.place(order("s", Side.SELL, "1", "110"))
    venue.place(order("s2", Side.SELL, "0.01", "110"))
    assert rejected(settle(venue, clock)) == {"s2": RejectReason.INSUFFICIENT_FUNDS}


def test_a_contract_is_margined_and_not_checked() -> None:
    """Perpetuals and futures are out of scope (margin is not modelled): orders with nothing held are accepted."""
    perp = Instrument("rec", "X", "BTC", "USDT", (IncrementBand(D(0), D("0.1"), D("0.01")),), derivative=True)
    assert not perp.spot and SPOT.spot
    venue, clock = replay_venue(None, perp)
    venue.place(order("s", Side.SELL, "1", "105"))
    venue.place(order("b", Side.BUY, "1", "99"))
    assert rejected(settle(venue, clock)) == {}


def test_a_negative_starting_balance_is_refused() -> None:
    with pytest.raises(ValueError, match="BTC"):
        replay_venue({"BTC": D(-1), "USD": D(0)})


@pytest.mark.parametrize("seed", range(6))
def test_no_fill_takes_a_spot_balance_below_zero(seed: int) -> None:
    """A careless strategy: random buys, sells (some at market), replaces and cancels, against random prints."""
    rng = random.Random(seed)
    venue, clock = replay_venue({"BTC": D("0.5"), "USD": D(60)})
    live: list[tuple[str, Side]] = []
    refused = 0
    for n in range(400):
        action = rng.random()
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        price = D(rng.randrange(980, 1030)) / 10
        qty = D(rng.randrange(1, 40)) / 100
        if action < 0.5 or not live:
            cid = f"o{n}"
            market = rng.random() < 0.1  # market orders take what is offered: their cost is known only then
            venue.place(order(cid, side, str(qty), None if market else str(price)))
            if not market:
                live.append((cid, side))
        elif action < 0.65:
            old, old_side = live.pop(rng.randrange(len(live)))
            venue.replace(ReplaceRequest(f"r{n}", old, "rec", "X", old_side, qty, price))
            live.append((f"r{n}", old_side))
        elif action < 0.75:
            venue.cancel(live.pop(rng.randrange(len(live)))[0], "X")
        elif action < 0.8:  # the recording lists its book again: what our orders took is offered again
            clock.now += MS
            mid = D(rng.randrange(990, 1020)) / 10
            venue.on_market_event(BookSnapshot("rec", "X", n + 2, ((mid - D("0.5"), D(3)),),
                                               ((mid + D("0.5"), D(3)),), clock.now, clock.now))
        else:
            clock.now += MS
            aggressor = Side.BUY if rng.random() < 0.5 else Side.SELL
            venue.on_market_event(Trade("rec", "X", f"t{n}", price, qty * 3, aggressor, clock.now, clock.now))
        events = settle(venue, clock)
        refused += sum(1 for e in events if getattr(e, "reason", None) is RejectReason.INSUFFICIENT_FUNDS)
        for b in venue.balances():
            assert b.total >= 0 and b.available >= 0, (n, b)
    assert venue.overdrafts == 0
    assert refused > 0  # the sequence did ask for more than the account held
    assert {f.liquidity for f in venue.fills} == {Liquidity.MAKER, Liquidity.TAKER}  # it traded, both ways
