"""The simulated venue's per-order paths after the issue 16 venue-side cuts give what the plain rules gave.

Why these tests: to cut the calls per order action, the venue reads a
ConstantLatency's two legs once (when the model is set), carries each
action's handler on the entry leg instead of dispatching on arrival, spells
out the response leg (``_visible`` + ``_push``) where it acknowledges and
cancels, and tells an order that crosses nothing by the opposite best before
reading the crossed levels. Each test changes what one of these depends on
(a new latency model, another action's latency, an order one tick either
side of the opposite best) and checks the venue follows; with the
invalidation or the equivalence broken, it fails.
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from mmkit.connector import FeeSchedule, rules_for
from mmkit.instrument import IncrementBand, Instrument
from mmkit.model import (
    BookSnapshot,
    ConnectionStatus,
    Fill,
    Liquidity,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderRequest,
    RejectReason,
    ReplaceRequest,
    Side,
    VenueEvent,
)
from mmkit.sim import Action, ConstantLatency, PerActionLatency, ReplayBookVenue
from mmkit.sim.fees import FeeModel
from tests.unit.sim.venue_clock import Clock

MS = 1_000_000


def _venue(latency: ConstantLatency | PerActionLatency | None = None) -> tuple[ReplayBookVenue, Clock]:
    inst = Instrument("rec", "X", "BTC", "USD", (IncrementBand(D(0), D("0.1"), D("0.01")),))
    clock = Clock()
    venue = ReplayBookVenue(rules_for([inst], "rec", fees=FeeSchedule(D(0), D(0))), clock,
                            book_increments=(D("0.1"), D("0.01")),
                            latency=latency or ConstantLatency(entry=MS, response=MS),
                            initial_balances={"USD": D(10**6), "BTC": D(100)})
    venue.simulate_reconnect()
    venue.on_market_event(BookSnapshot("rec", "X", 1, ((D(100), D(3)),), ((D(101), D(2)),), 0, 0))
    venue.drain()  # the session-up notice
    return venue, clock


def _at(venue: ReplayBookVenue, clock: Clock, ns: int) -> list[VenueEvent]:
    clock.now = ns
    return venue.drain()


def test_a_latency_model_set_on_a_running_venue_times_the_next_actions() -> None:
    """The legs of a ConstantLatency are read when the model is set: a new model must replace them."""
    venue, clock = _venue()
    venue.latency = ConstantLatency(entry=3 * MS, response=5 * MS)
    venue.place(OrderRequest("a", "rec", "X", Side.BUY, D("0.01"), D(99)))
    assert _at(venue, clock, 8 * MS - 1) == []  # the old 1 + 1 ms would have shown it at 2 ms
    assert [type(e) for e in _at(venue, clock, 8 * MS)] == [OrderAccepted]
    # A model that is not a ConstantLatency is asked per action: nothing of the constant legs may stay.
    venue.latency = PerActionLatency(ConstantLatency(entry=MS, response=MS),
                                     ((Action.CANCEL, ConstantLatency(entry=2 * MS, response=7 * MS)),))
    venue.cancel("a", "X")  # at 8 ms: arrives at 10 ms, canceled visible at 17 ms
    assert _at(venue, clock, 17 * MS - 1) == []
    events = _at(venue, clock, 17 * MS)
    assert [(type(e), e.ts_recv) for e in events] == [(OrderCanceled, 17 * MS)]  # type: ignore[attr-defined]
    venue.latency = ConstantLatency()  # back to a constant one: zero each way
    venue.place(OrderRequest("b", "rec", "X", Side.BUY, D("0.01"), D(99)))
    assert [type(e) for e in _at(venue, clock, 17 * MS)] == [OrderAccepted]


def test_acks_and_cancels_keep_fifo_behind_a_slower_outcome_and_take_each_actions_latency() -> None:
    """The response leg spelled out in the ack and the cancel: per-action latency, never ahead of an earlier outcome."""
    slow_cancel = PerActionLatency(ConstantLatency(entry=MS, response=MS),
                                   ((Action.CANCEL, ConstantLatency(entry=MS, response=10 * MS)),))
    venue, clock = _venue(slow_cancel)
    venue.place(OrderRequest("a", "rec", "X", Side.BUY, D("0.01"), D(99)))
    assert [(type(e), e.ts_recv) for e in _at(venue, clock, 2 * MS)] == [  # type: ignore[attr-defined]
        (OrderAccepted, 2 * MS)
    ]
    venue.cancel("a", "X")  # arrives at 3 ms; canceled visible at 13 ms
    venue.place(OrderRequest("b", "rec", "X", Side.BUY, D("0.01"), D(99)))  # its ack (4 ms) waits behind it
    venue.cancel("nobody", "X")  # a reject takes the cancel's leg too: 13 ms
    events = _at(venue, clock, 13 * MS)
    assert [(type(e), e.client_id, e.ts_recv) for e in events] == [  # type: ignore[attr-defined]
        (OrderCanceled, "a", 13 * MS), (OrderAccepted, "b", 13 * MS), (OrderCancelRejected, "nobody", 13 * MS),
    ]
    assert isinstance(events[2], OrderCancelRejected) and events[2].reason is RejectReason.UNKNOWN_ORDER
    canceled = events[0]
    assert isinstance(canceled, OrderCanceled) and canceled.ts_event == 3 * MS and canceled.leaves_qty == D("0.01")


@pytest.mark.parametrize(("side", "at", "crosses"), [
    (Side.BUY, D(101), True), (Side.BUY, D("100.9"), False),
    (Side.SELL, D(100), True), (Side.SELL, D("100.1"), False),
])
def test_an_order_at_the_opposite_best_takes_it_and_one_tick_short_rests(side: Side, at: D, crosses: bool) -> None:
    """The arrival test of the opposite best (ticks) agrees with the crossed levels at the edge of crossing."""
    venue, clock = _venue()
    venue.place(OrderRequest("a", "rec", "X", side, D("0.5"), at))
    events = _at(venue, clock, 2 * MS)
    fills = [e for e in events if isinstance(e, Fill)]
    assert type(events[0]) is OrderAccepted
    if crosses:
        assert [(f.price, f.qty) for f in fills] == [(at, D("0.5"))]
        assert venue.queue_front("a") is None  # filled whole as taker: nothing rests
    else:
        assert fills == []
        assert venue.queue_front("a") == D(0)  # rests at a price nothing is displayed at


class _ScriptedLatency:
    """A latency model that is not a ConstantLatency: 1 ms in; out, the next of ``legs`` (ms) per outcome asked.

    It records what it is asked, in order: a venue must ask it once per outcome, at the time the outcome was
    decided (a jittery model draws in that order).
    """

    def __init__(self, *legs: int) -> None:
        self.legs = list(legs)
        self.asked: list[tuple[Action, int]] = []

    def entry_ns(self, action: Action, ts_ns: int) -> int:
        return MS

    def response_ns(self, action: Action, ts_ns: int) -> int:
        self.asked.append((action, ts_ns))
        return MS * self.legs[len(self.asked) - 1]


@pytest.mark.parametrize(("legs", "seen"), [
    ((1, 2, 3), (2, 3, 4)),  # each outcome its own leg
    ((5, 1, 2), (6, 6, 6)),  # the fill and its balance update wait behind the slow ack (FIFO)
    ((1, 4, 1), (2, 5, 5)),  # the balance update waits behind the slow fill
])
def test_a_fill_and_its_balance_update_take_the_fill_leg_in_order_asked_once_each(
    legs: tuple[int, int, int], seen: tuple[int, int, int]
) -> None:
    latency = _ScriptedLatency(*legs)
    venue, clock = _venue()
    venue.latency = latency
    venue.place(OrderRequest("t", "rec", "X", Side.BUY, D("0.5"), D(101)))  # takes the offer at 1 ms
    events = _at(venue, clock, 10 * MS)
    assert [(type(e).__name__, e.ts_recv) for e in events] == [  # type: ignore[attr-defined]
        ("OrderAccepted", seen[0] * MS), ("Fill", seen[1] * MS), ("BalanceUpdate", seen[2] * MS)
    ]
    assert latency.asked == [(Action.PLACE, MS), (Action.FILL, MS), (Action.FILL, MS)]


@pytest.mark.parametrize("quantum", [None, D("0.01"), D("0.00000001")])
def test_a_linear_fee_charged_is_the_fee_rule_to_the_last_digit(quantum: D | None) -> None:
    """``FeeModel.charge`` spells out ``fee`` for a linear instrument: the same Decimal, exponent included."""
    model = FeeModel(FeeSchedule(D("-0.25"), D("7.5")), quantum=quantum)
    inst = Instrument("rec", "X", "BTC", "USD", (IncrementBand(D(0), D("0.1"), D("0.01")),))
    for price, qty in ((D("60000.10"), D("0.01")), (D("0.1"), D("3.00")), (D("123.4"), D("0.37"))):
        for liquidity in Liquidity:
            fee, currency = model.charge(inst, price, qty, liquidity)
            assert (str(fee), currency) == (str(model.fee(price, qty, liquidity)), "USD"), (price, qty, liquidity)


@pytest.mark.parametrize("band", [None, D("0.01")])
def test_the_price_band_is_checked_around_the_mid_on_place_and_replace_only_where_there_is_one(band: D | None) -> None:
    """The mid is worked out only for an instrument with a price band: with one, a far order is refused."""
    inst = Instrument("rec", "X", "BTC", "USD", (IncrementBand(D(0), D("0.1"), D("0.01")),), price_band=band)
    clock = Clock()
    venue = ReplayBookVenue(rules_for([inst], "rec", fees=FeeSchedule(D(0), D(0)), supports_replace=True), clock,
                            book_increments=(D("0.1"), D("0.01")), latency=ConstantLatency(entry=MS, response=MS),
                            initial_balances={"USD": D(10**6), "BTC": D(100)})
    venue.simulate_reconnect()
    venue.on_market_event(BookSnapshot("rec", "X", 1, ((D(100), D(3)),), ((D(101), D(2)),), 0, 0))  # mid 100.5
    venue.place(OrderRequest("near", "rec", "X", Side.BUY, D("0.01"), D(100)))
    venue.place(OrderRequest("far", "rec", "X", Side.BUY, D("0.01"), D(90)))
    venue.replace(ReplaceRequest("near2", "near", "rec", "X", Side.BUY, D("0.01"), D(91)))
    outcomes = [(type(e).__name__, getattr(e, "reason", None)) for e in _at(venue, clock, 5 * MS)
                if not isinstance(e, ConnectionStatus)]
    if band is None:
        assert outcomes == [("OrderAccepted", None), ("OrderAccepted", None), ("OrderReplaced", None)]
    else:
        assert outcomes == [("OrderAccepted", None), ("OrderRejected", RejectReason.PRICE_BAND),
                            ("OrderCancelRejected", RejectReason.PRICE_BAND)]
