"""Executor's "settled" memo: a reconcile that found nothing to do is not redone until an input changes.

Each test settles the executor (the last reconcile had nothing to do), then
changes one input the memo is keyed on — the orders (through the tracker),
the targets, the mid under a price band, the size tolerance — and checks
that the next reconcile acts on it, as an unmemoized one would.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from mmkit.connector import VenueRules, load_venue_rules
from mmkit.execution.executor import ExecActionKind, Executor
from mmkit.execution.rate_limiter import RateLimiter
from mmkit.model import OrderRequest, Side, TargetQuote
from mmkit.orders.tracker import ClientOrderTracker
from mmkit.testing.fake_connector import FakeConnector

SYM = "BTC-PYUSD"
D = Decimal


class Rig:
    def __init__(self, rules: VenueRules | None = None) -> None:
        rules = rules or attrs.evolve(load_venue_rules("sim"), rate_limits=())
        self.fake = FakeConnector(rules)
        self.fake.set_book([("60000", "1")], [("60010", "1")])
        self.tracker = ClientOrderTracker(self.fake)
        self.ex = Executor(self.fake, self.tracker, rules.instrument(SYM), rules, RateLimiter(rules.rate_limits))

    def settle(self) -> None:
        for event in self.fake.drain():
            self.tracker.on_event(event)
            self.ex.on_event(event)

    def quoting(self, targets: list[TargetQuote], mid: Decimal | None = None) -> None:
        """Place ``targets``, let them rest, and reconcile once more so that the executor is settled."""
        assert self.ex.reconcile(targets, 0, mid)
        self.settle()
        assert self.ex.reconcile(targets, 1, mid) == []


def pair(bid: str = "59990", ask: str = "60020", qty: str = "0.01") -> list[TargetQuote]:
    return [TargetQuote(Side.BUY, 0, D(bid), D(qty)), TargetQuote(Side.SELL, 0, D(ask), D(qty))]


def test_settled_executor_sends_nothing_for_the_same_or_equal_targets() -> None:
    rig = Rig()
    targets = pair()
    rig.quoting(targets)
    assert rig.ex.reconcile(targets, 2) == []
    assert rig.ex.reconcile(pair(), 3) == []  # equal values, other objects
    assert rig.ex.reconcile(tuple(targets), 4) == []
    assert len(rig.fake.placed) == 2


def test_a_fill_after_settling_is_acted_on() -> None:
    rig = Rig()
    targets = pair()
    rig.quoting(targets)
    bid = next(o for o in rig.tracker.open_orders() if o.side is Side.BUY)
    rig.fake.fill(bid.client_id)
    rig.settle()
    (action,) = rig.ex.reconcile(targets, 2)
    assert action.kind is ExecActionKind.PLACE and action.side is Side.BUY


def test_orders_closed_by_a_reconciliation_after_settling_are_placed_again() -> None:
    rig = Rig()
    targets = pair()
    rig.quoting(targets)
    rig.tracker.reconcile([], 2)  # the venue lists no open order: both are closed as not found
    actions = rig.ex.reconcile(targets, 3)
    assert sorted(a.side.value for a in actions if a.kind is ExecActionKind.PLACE) == ["BUY", "SELL"]


def test_new_targets_after_settling_are_acted_on() -> None:
    rig = Rig()
    rig.quoting(pair())
    (action,) = rig.ex.reconcile(pair(bid="59980"), 2)
    assert action.kind is ExecActionKind.REPLACE and action.price == D("59980")


def test_a_mid_move_under_a_price_band_is_judged_again() -> None:
    rig = Rig()
    targets = pair()
    rig.quoting(targets, mid=D("60005"))
    assert rig.ex.instrument.price_band is not None
    actions = rig.ex.reconcile(targets, 2, mid=D("70000"))  # both quotes now far outside the band
    assert rig.ex.dropped_targets == 2
    assert sorted(a.kind.value for a in actions) == ["CANCEL", "CANCEL"]


def test_a_dropped_target_is_counted_on_every_call() -> None:
    rig = Rig()
    targets = [*pair(), TargetQuote(Side.SELL, 1, D("60030"), D("0.00001"))]  # rounds to zero size
    rig.ex.reconcile(targets, 0)
    rig.settle()
    assert rig.ex.dropped_targets == 1
    for now in (1, 2, 3):
        assert rig.ex.reconcile(targets, now) == []
    assert rig.ex.dropped_targets == 4


def test_a_changed_size_tolerance_is_judged_again() -> None:
    rig = Rig()
    rig.ex.size_tolerance = D("0.005")
    rig.quoting(pair())
    bid = next(o for o in rig.tracker.open_orders() if o.side is Side.BUY)
    rig.fake.fill(bid.client_id, "0.004")
    rig.settle()
    assert rig.ex.reconcile(pair(), 2) == []  # 0.006 left, within 0.005 of 0.01
    rig.ex.size_tolerance = D("0")
    (action,) = rig.ex.reconcile(pair(), 3)
    assert action.kind is ExecActionKind.REPLACE and action.qty == D("0.01")


def test_turning_on_cancel_strays_after_settling_cancels_a_stray() -> None:
    rig = Rig()
    rig.ex.cancel_strays = False
    stray = OrderRequest("stray1", rig.fake.venue, SYM, Side.BUY, D("0.01"), D("59000"))
    rig.tracker.submit(stray, 0)  # an order of ours the executor did not place: no slot
    rig.settle()
    rig.quoting(pair())  # settled with the stray left alone
    assert rig.ex.reconcile(pair(), 2) == []
    rig.ex.cancel_strays = True
    actions = rig.ex.reconcile(pair(), 3)
    assert [(a.kind, a.client_id) for a in actions] == [(ExecActionKind.CANCEL, "stray1")]
