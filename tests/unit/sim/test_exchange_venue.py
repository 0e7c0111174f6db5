"""ExchangeVenue: latency legs, rules at arrival, partial fills into balances, sessions."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from mmkit.connector import FeeSchedule, NotConnectedError, RateLimit, rules_for
from mmkit.instrument import IncrementBand, Instrument
from mmkit.model import (
    BalanceUpdate,
    Fill,
    Liquidity,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderRejected,
    OrderReplaced,
    OrderRequest,
    RejectReason,
    ReplaceRequest,
    Side,
    VenueOrderStatus,
)
from mmkit.sim import ConstantLatency, ExchangeVenue
from tests.unit.sim.venue_clock import Clock

MS = 1_000_000


def make(cancel_on_disconnect: bool = False, hold: bool = True, **kw: Any) -> tuple[ExchangeVenue, Clock]:
    inst = Instrument("sim", "X", "BTC", "USD", (IncrementBand(D(0), D("0.1"), D("0.01")),),
                      min_notional=D(1), price_band=D("0.05"))
    rules = rules_for([inst], "sim", fees=FeeSchedule(D(-1), D(10)), cancel_on_disconnect=cancel_on_disconnect,
                      supports_replace=True, **kw)
    clock = Clock()
    venue = ExchangeVenue(rules, clock, latency=ConstantLatency(entry=5 * MS, response=7 * MS),
                          initial_balances={"BTC": D(10), "USD": D(10000)}, hold_events_while_disconnected=hold)
    venue.simulate_reconnect()
    venue.quote_around(D(100), D("0.5"), D(2), levels=2)
    venue.drain()
    return venue, clock


def req(cid: str, side: Side, price: str, qty: str = "1", **kw: Any) -> OrderRequest:
    return OrderRequest(cid, "sim", "X", side, D(qty), D(price), **kw)


def test_order_is_not_live_before_entry_and_ack_waits_for_response() -> None:
    venue, clock = make()
    venue.place(req("a", Side.BUY, "99.7"))
    clock.now = 4 * MS
    assert venue.drain() == [] and venue.order_truth("a") is None
    clock.now = 5 * MS
    assert venue.drain() == []
    truth = venue.order_truth("a")
    assert truth is not None and truth.status is VenueOrderStatus.NEW
    clock.now = 12 * MS
    [ack] = venue.drain()
    assert isinstance(ack, OrderAccepted) and ack.ts_event == 5 * MS and ack.ts_recv == 12 * MS


def test_partial_fills_reach_balances_with_fees_by_liquidity() -> None:
    venue, clock = make()
    venue.place(req("a", Side.BUY, "99.7", "2"))
    clock.now = 5 * MS
    venue.take(Side.SELL, D(3), price=D("99.7"))  # synthetic bids (99.5, 99.4) are below us: only we trade
    clock.now = 20 * MS
    events = venue.drain()
    fills = [e for e in events if isinstance(e, Fill)]
    assert [f.qty for f in fills] == [D(2)] and fills[0].liquidity is Liquidity.MAKER
    assert fills[0].fee == D("99.7") * 2 * D(-1) / 10000
    assert any(isinstance(e, BalanceUpdate) for e in events)
    totals = {b.asset: b.total for b in venue.balances()}
    assert totals["BTC"] == D(12) and totals["USD"] == D(10000) - D("199.4") - fills[0].fee


def test_partial_fill_then_taker_remainder() -> None:
    venue, clock = make()
    venue.place(req("a", Side.SELL, "100.4", "3"))
    clock.now = 5 * MS
    venue.take(Side.BUY, D(1), price=D("100.4"))
    clock.now = 6 * MS
    venue.place(req("b", Side.SELL, "99.5", "1"))  # crosses the synthetic bid at 99.5 -> taker
    clock.now = 30 * MS
    events = venue.drain()
    fills = {(f.client_id, f.liquidity, f.qty) for f in events if isinstance(f, Fill)}
    assert ("a", Liquidity.MAKER, D(1)) in fills
    truth = venue.order_truth("a")
    assert truth is not None and truth.status is VenueOrderStatus.PARTIALLY_FILLED and truth.filled_qty == D(1)
    taker = [f for f in events if isinstance(f, Fill) and f.client_id == "b"]
    assert taker and taker[0].liquidity is Liquidity.TAKER and taker[0].fee == taker[0].notional * 10 / 10000
    available = {b.asset: b.available for b in venue.balances()}
    assert available["BTC"] == D(10) - D(1) - D(1) - D(2)  # sold 1 + 1, 2 still reserved by "a"


@pytest.mark.parametrize(
    ("price", "qty", "reason"),
    [("106", "1", RejectReason.PRICE_BAND), ("99.75", "1", RejectReason.INVALID_PRICE),
     ("99", "0.005", RejectReason.INVALID_QTY), ("99", "0.01", RejectReason.MIN_NOTIONAL),
     ("100.5", "1", RejectReason.POST_ONLY_WOULD_CROSS)],
)
def test_rules_enforced_at_arrival(price: str, qty: str, reason: RejectReason) -> None:
    venue, clock = make()
    venue.place(req("a", Side.BUY, price, qty, post_only=True))
    clock.now = 12 * MS
    [event] = venue.drain()
    assert isinstance(event, OrderRejected) and event.reason is reason
    assert venue.order_truth("a") is None


def test_rate_limit_and_duplicate_window() -> None:
    venue, clock = make(rate_limits=(RateLimit(2, 1000),), duplicate_order_window_ns=500 * MS)
    venue.place(req("a", Side.BUY, "99"))
    venue.place(req("b", Side.BUY, "99"))
    venue.place(req("c", Side.BUY, "98"))
    clock.now = 12 * MS
    outcomes = {e.client_id: e for e in venue.drain() if isinstance(e, OrderAccepted | OrderRejected)}
    assert isinstance(outcomes["a"], OrderAccepted)
    assert isinstance(outcomes["b"], OrderRejected) and outcomes["b"].reason is RejectReason.DUPLICATE_ORDER
    assert isinstance(outcomes["c"], OrderRejected) and outcomes["c"].reason is RejectReason.RATE_LIMIT
    clock.now = 2000 * MS
    venue.place(req("a", Side.BUY, "97"))
    clock.now = 2100 * MS
    [dup] = venue.drain()
    assert isinstance(dup, OrderRejected) and dup.reason is RejectReason.DUPLICATE_CLIENT_ID


def test_cancel_racing_a_fill_is_rejected_too_late() -> None:
    venue, clock = make()
    venue.place(req("a", Side.BUY, "99.9"))
    clock.now = 5 * MS
    venue.cancel("a", "X")  # arrives at 10 ms
    clock.now = 8 * MS
    venue.take(Side.SELL, D(1))
    clock.now = 30 * MS
    kinds = [type(e).__name__ for e in venue.drain() if getattr(e, "client_id", "") == "a"]
    assert kinds == ["OrderAccepted", "Fill", "OrderCancelRejected"]


def test_replace_keeps_venue_order_id_and_priority_rules() -> None:
    venue, clock = make()
    venue.place(req("a", Side.BUY, "99.9", "2"))
    clock.now = 5 * MS
    venue.replace(ReplaceRequest("a2", "a", "sim", "X", Side.BUY, D(1), D("99.9")))
    clock.now = 30 * MS
    events = venue.drain()
    ack = next(e for e in events if isinstance(e, OrderAccepted))
    rep = next(e for e in events if isinstance(e, OrderReplaced))
    assert rep.venue_order_id == ack.venue_order_id and rep.orig_client_id == "a"
    resting = venue.engines["X"].get(ack.venue_order_id)
    assert resting is not None and resting.client_id == "a2" and resting.ts_ns == 5 * MS


async def test_disconnect_holds_events_and_cancel_on_disconnect() -> None:
    venue, clock = make(cancel_on_disconnect=True)
    venue.place(req("a", Side.BUY, "99.9"))
    clock.now = 6 * MS
    venue.simulate_disconnect()
    clock.now = 50 * MS
    events = venue.drain()
    assert [type(e).__name__ for e in events] == ["ConnectionStatus"]
    with pytest.raises(NotConnectedError):
        await venue.fetch_order_status("a", "X")
    truth = venue.order_truth("a")
    assert truth is not None and truth.status is VenueOrderStatus.CANCELED
    venue.simulate_reconnect()
    kinds = [type(e).__name__ for e in venue.drain()]
    assert kinds == ["ConnectionStatus", "OrderAccepted", "OrderCanceled"]


def test_disconnect_can_drop_events() -> None:
    venue, clock = make(hold=False)
    venue.place(req("a", Side.BUY, "99.9"))
    clock.now = 6 * MS
    venue.simulate_disconnect()
    clock.now = 50 * MS
    venue.drain()
    venue.simulate_reconnect()
    assert [type(e).__name__ for e in venue.drain()] == ["ConnectionStatus"]
    truth = venue.order_truth("a")
    assert truth is not None and truth.status.is_open


def test_cancel_all_and_canceled_leaves() -> None:
    venue, clock = make()
    venue.place(req("a", Side.BUY, "99.9"))
    venue.place(req("b", Side.SELL, "100.2"))
    clock.now = 5 * MS
    venue.cancel_all("X")
    clock.now = 30 * MS
    canceled = [e for e in venue.drain() if isinstance(e, OrderCanceled)]
    assert {(c.client_id, c.leaves_qty) for c in canceled} == {("a", D(1)), ("b", D(1))}
    assert venue.engines["X"].orders_of("us") == []


def test_cancels_count_toward_the_rate_limit_and_are_refused_past_it() -> None:
    # The cancel path skips the rate check only when the rules have no limits; with one it must still count
    # each cancel and refuse the one over the limit (two places and one cancel fill the window of 3).
    venue, clock = make(rate_limits=(RateLimit(3, 1000),))
    venue.place(req("a", Side.BUY, "99"))
    venue.place(req("b", Side.BUY, "98"))
    clock.now = 20 * MS
    venue.drain()
    venue.cancel("a", "X")
    venue.cancel("b", "X")
    clock.now = 40 * MS
    events = venue.drain()
    assert [e.client_id for e in events if isinstance(e, OrderCanceled)] == ["a"]
    [refused] = [e for e in events if isinstance(e, OrderCancelRejected)]
    assert refused.client_id == "b" and refused.reason is RejectReason.RATE_LIMIT
    clock.now = 2000 * MS  # the window has passed: the cancel goes through
    venue.cancel("b", "X")
    clock.now = 2100 * MS
    assert [e.client_id for e in venue.drain() if isinstance(e, OrderCanceled)] == ["b"]


def test_without_rate_limits_no_cancel_is_refused() -> None:
    venue, clock = make()
    for i in range(50):
        venue.place(req(f"o{i}", Side.BUY, "99"))
    clock.now = 20 * MS
    venue.drain()
    for i in range(50):
        venue.cancel(f"o{i}", "X")
    clock.now = 40 * MS
    assert len([e for e in venue.drain() if isinstance(e, OrderCanceled)]) == 50
