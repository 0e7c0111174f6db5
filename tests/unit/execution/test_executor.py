"""Executor: keep / replace / cancel / place per slot, one action in flight, limits respected."""

from __future__ import annotations

from decimal import Decimal

from mmkit.connector import RateLimit, VenueRules, load_venue_rules
from mmkit.execution.circuit_breaker import CircuitBreaker
from mmkit.execution.executor import ExecActionKind, Executor
from mmkit.execution.rate_limiter import RateLimiter
from mmkit.model import OrderRejected, OrderStatusReport, RejectReason, Side, TargetQuote, VenueOrderStatus
from mmkit.orders.states import OrderState
from mmkit.orders.tracker import ClientOrderTracker
from mmkit.testing.fake_connector import FakeConnector

SYM = "BTC-PYUSD"
D = Decimal


class Rig:
    def __init__(
        self,
        rules: VenueRules,
        *,
        limits: tuple[RateLimit, ...] | None = None,
        auto_ack: bool = True,
        tolerance: str = "0",
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.fake = FakeConnector(rules, auto_ack=auto_ack)
        self.fake.set_book([("60000", "1")], [("60010", "1")])
        self.tracker = ClientOrderTracker(self.fake)
        limiter = RateLimiter(
            rules.rate_limits if limits is None else limits, duplicate_window_ns=rules.duplicate_order_window_ns
        )
        self.ex = Executor(
            self.fake, self.tracker, rules.instrument(SYM), rules, limiter, D(tolerance), breaker=breaker
        )

    def settle(self) -> None:
        for event in self.fake.drain():
            self.tracker.on_event(event)
            self.ex.on_event(event)


def sim(**kw: object) -> VenueRules:
    import attrs

    return attrs.evolve(load_venue_rules("sim"), **kw)  # type: ignore[arg-type]


def quotes(bid: str, ask: str, qty: str = "0.01", levels: int = 1) -> list[TargetQuote]:
    out = []
    for i in range(levels):
        out.append(TargetQuote(Side.BUY, i, D(bid) - i * D(1), D(qty)))
        out.append(TargetQuote(Side.SELL, i, D(ask) + i * D(1), D(qty)))
    return out


def test_places_then_keeps_unchanged_quotes() -> None:
    rig = Rig(sim(rate_limits=()))
    actions = rig.ex.reconcile(quotes("59990", "60020", levels=2), 0)
    assert [a.kind for a in actions] == [ExecActionKind.PLACE] * 4
    assert [a.slot for a in actions][:2] == [(Side.BUY, 0), (Side.SELL, 0)]  # inner level first
    assert all(r.post_only for r in rig.fake.placed)
    rig.settle()
    assert rig.ex.reconcile(quotes("59990", "60020", levels=2), 1) == []
    assert set(rig.ex.live_slots().values()) == {OrderState.OPEN}


def test_price_change_replaces_and_keeps_queue_elsewhere() -> None:
    rig = Rig(sim(rate_limits=()))
    rig.ex.reconcile(quotes("59990", "60020"), 0)
    rig.settle()
    actions = rig.ex.reconcile(
        [TargetQuote(Side.BUY, 0, D("59980"), D("0.01")), TargetQuote(Side.SELL, 0, D("60020"), D("0.01"))], 1
    )
    assert [(a.kind, a.slot) for a in actions] == [(ExecActionKind.REPLACE, (Side.BUY, 0))]
    assert rig.fake.replaced[0].price == D("59980")
    # in flight: a newer target for the same slot waits for the replace's outcome
    newer = [TargetQuote(Side.BUY, 0, D("59970"), D("0.01")), TargetQuote(Side.SELL, 0, D("60020"), D("0.01"))]
    assert rig.ex.reconcile(newer, 2) == []
    rig.settle()
    assert {o.price for o in rig.tracker.open_orders()} == {D("59980"), D("60020")}


def test_one_action_in_flight_per_slot() -> None:
    rig = Rig(sim(rate_limits=()), auto_ack=False)
    rig.ex.reconcile(quotes("59990", "60020"), 0)
    assert rig.ex.reconcile(quotes("59980", "60030"), 1) == []  # both slots PENDING_CREATE
    assert rig.ex.reconcile([], 2) == []  # not even a cancel while pending
    rig.fake.ack_all()
    rig.settle()
    actions = rig.ex.reconcile([], 3)
    assert sorted(a.kind.value for a in actions) == ["CANCEL", "CANCEL"]
    assert rig.ex.reconcile([], 4) == []  # PENDING_CANCEL: no re-send


def test_without_replace_cancel_first_then_place() -> None:
    rig = Rig(sim(rate_limits=(), supports_replace=False))
    rig.ex.reconcile(quotes("59990", "60020"), 0)
    rig.settle()
    new = [TargetQuote(Side.BUY, 0, D("59980"), D("0.01")), TargetQuote(Side.SELL, 0, D("60020"), D("0.01"))]
    first = rig.ex.reconcile(new, 1)
    assert [(a.kind, a.slot) for a in first] == [(ExecActionKind.CANCEL, (Side.BUY, 0))]
    rig.settle()
    second = rig.ex.reconcile(new, 2)
    assert [(a.kind, a.price) for a in second] == [(ExecActionKind.PLACE, D("59980"))]


def test_size_tolerance_keeps_partially_filled_order() -> None:
    rig = Rig(sim(rate_limits=()), tolerance="0.003")
    rig.ex.reconcile(quotes("59990", "60020"), 0)
    rig.settle()
    bid = next(o for o in rig.tracker.open_orders() if o.side is Side.BUY)
    rig.fake.fill(bid.client_id, "0.002")
    rig.settle()
    assert rig.ex.reconcile(quotes("59990", "60020"), 1) == []  # remaining 0.008 within 0.003 of 0.01
    rig.fake.fill(bid.client_id, "0.002")
    rig.settle()
    (action,) = rig.ex.reconcile(quotes("59990", "60020"), 2)
    assert action.kind is ExecActionKind.REPLACE and action.qty == D("0.01")


def test_targets_snapped_and_invalid_dropped() -> None:
    rig = Rig(sim(rate_limits=()))
    targets = [
        TargetQuote(Side.BUY, 0, D("59990.07"), D("0.01234")),  # snapped down to 59990.0 / 0.0123
        TargetQuote(Side.SELL, 0, D("60020.01"), D("0.01")),  # snapped up to 60020.1
        TargetQuote(Side.BUY, 1, D("40000"), D("0.01")),  # outside the 2.5 % band
        TargetQuote(Side.SELL, 1, D("60030"), D("0.00001")),  # rounds to zero size
        TargetQuote(Side.BUY, 0, D("59000"), D("0.01")),  # duplicate slot
    ]
    actions = rig.ex.reconcile(targets, 0, mid=D("60005"))
    assert [(a.side, a.price, a.qty) for a in actions] == [
        (Side.BUY, D("59990.0"), D("0.0123")),
        (Side.SELL, D("60020.1"), D("0.01")),
    ]
    assert rig.ex.dropped_targets == 3


def test_cancels_have_priority_when_limiter_is_tight() -> None:
    rig = Rig(sim(), limits=(RateLimit(10, 1000),))
    rig.ex.reconcile(quotes("59990", "60020", levels=4), 0)  # 8 places use the non-reserved 8
    rig.settle()
    actions = rig.ex.reconcile([], 1)  # all 8 to cancel: only the 2 reserved slots are left
    assert [a.kind for a in actions] == [ExecActionKind.CANCEL, ExecActionKind.CANCEL]
    rig.settle()
    later = rig.ex.reconcile([], 1_100_000_001)  # one window + the limiter's 100 ms guard later
    assert len(later) == 6 and all(a.kind is ExecActionKind.CANCEL for a in later)


def test_duplicate_guard_blocks_immediate_re_place() -> None:
    rig = Rig(sim(rate_limits=(), supports_replace=False))
    rig.ex.reconcile(quotes("59990", "60020"), 0)
    rig.settle()
    rig.ex.reconcile([], 1)
    rig.settle()
    assert rig.ex.reconcile(quotes("59990", "60020"), 2) == []  # same side/price/qty within 500 ms
    assert len(rig.ex.reconcile(quotes("59990", "60020"), 600_000_000)) == 2


def test_strays_and_orphans_canceled() -> None:
    rig = Rig(sim(rate_limits=()))
    report = OrderStatusReport(
        "sim", "stray1", "V77", SYM, Side.SELL, D("60100"), D("0.01"), D(0), VenueOrderStatus.NEW, 0, 0
    )
    rig.tracker.reconcile([report], 0)
    actions = rig.ex.reconcile([], 1)
    assert [(a.kind, a.client_id) for a in actions] == [(ExecActionKind.CANCEL, "stray1")]


def test_rate_limit_reject_backs_off_and_breaker_trips() -> None:
    breaker = CircuitBreaker(2, window_ns=10**9, cooldown_ns=5 * 10**9)
    rig = Rig(sim(rate_limits=()), breaker=breaker)
    rig.ex.on_event(OrderRejected("sim", "x", RejectReason.RATE_LIMIT, "slow down", 0, 0))
    assert rig.ex.reconcile(quotes("59990", "60020"), 1) == []  # backoff: no places
    rig.ex.on_event(OrderRejected("sim", "y", RejectReason.INSUFFICIENT_FUNDS, "", 2, 2))
    assert rig.ex.reconcile(quotes("59990", "60020"), 2_000_000_000) == []  # backoff over, breaker open
    actions = rig.ex.reconcile(quotes("59990", "60020"), 5_000_000_002)  # half-open: one trial
    assert len(actions) == 1


def test_cancel_all_pulls_everything() -> None:
    rig = Rig(sim(rate_limits=()))
    rig.ex.reconcile(quotes("59990", "60020", levels=3), 0)
    rig.settle()
    actions = rig.ex.cancel_all(1)
    assert len(actions) == 6 and all(a.kind is ExecActionKind.CANCEL_ALL for a in actions)
    rig.settle()
    assert rig.tracker.open_orders() == [] and rig.fake.open_orders == []


def _bid(qty: str) -> list[TargetQuote]:
    return [TargetQuote(Side.BUY, 0, D("59990"), D(qty))]


def test_without_tolerance_a_partly_filled_order_is_kept_only_at_its_remaining_size() -> None:
    """With no size tolerance reconcile compares with ``==`` (not ``|a - b| <= 0``): on the remaining size."""
    rig = Rig(sim(rate_limits=()))
    rig.ex.reconcile(_bid("0.0100"), 0)
    rig.settle()
    (bid,) = rig.tracker.open_orders()
    rig.fake.fill(bid.client_id, "0.004")
    rig.settle()
    assert rig.ex.reconcile(_bid("0.006"), 1) == []  # remaining 0.0060 == 0.006: kept, whatever the exponent
    (action,) = rig.ex.reconcile(_bid("0.01"), 2)  # the original size is not the remaining one
    assert action.kind is ExecActionKind.REPLACE and action.qty == D("0.01")


def test_an_order_with_an_action_in_flight_is_left_alone() -> None:
    rig = Rig(sim(rate_limits=()), auto_ack=False)
    (placed, _) = rig.ex.reconcile(quotes("59990", "60020"), 0)
    assert placed.kind is ExecActionKind.PLACE
    assert rig.ex.reconcile(quotes("59980", "60030"), 1) == []  # both still PENDING_CREATE
    rig.settle()
