"""Executor internals made for speed: int slot keys and per-side snap memos must not change what it does."""

from __future__ import annotations

from decimal import Decimal

import attrs

from mmkit.connector import load_venue_rules
from mmkit.execution.executor import ExecActionKind, Executor
from mmkit.execution.rate_limiter import RateLimiter
from mmkit.model import Side, TargetQuote
from mmkit.orders.tracker import ClientOrderTracker
from mmkit.testing.fake_connector import FakeConnector

D = Decimal
SYM = "BTC-PYUSD"


def rig() -> tuple[FakeConnector, ClientOrderTracker, Executor]:
    rules = attrs.evolve(load_venue_rules("sim"), rate_limits=(), duplicate_order_window_ns=0)
    fake = FakeConnector(rules)
    tracker = ClientOrderTracker(fake)
    return fake, tracker, Executor(fake, tracker, rules.instrument(SYM), rules, RateLimiter.from_rules(rules))


def settle(fake: FakeConnector, tracker: ClientOrderTracker) -> None:
    tracker.on_events(fake.drain())


def test_same_raw_price_snaps_down_for_bids_and_up_for_asks_every_time() -> None:
    _, _, ex = rig()
    raw = [TargetQuote(Side.BUY, 0, D("60000.05"), D("0.01")), TargetQuote(Side.SELL, 0, D("60000.05"), D("0.01"))]
    for _ in range(2):  # the second pass is served from the memo
        wanted = ex.normalize(raw)
        assert wanted[(Side.BUY, 0)].price == D("60000.0")
        assert wanted[(Side.SELL, 0)].price == D("60000.1")


def test_equal_values_with_other_exponents_keep_the_callers_target() -> None:
    _, _, ex = rig()
    first = TargetQuote(Side.BUY, 0, D("60000.1"), D("0.01"))
    ex.normalize([first])
    again = TargetQuote(Side.BUY, 0, D("60000.100"), D("0.0100"))
    assert ex.normalize([again])[(Side.BUY, 0)] is again  # already on tick/lot: not rebuilt


def test_slots_of_many_levels_stay_distinct_and_duplicates_drop() -> None:
    fake, tracker, ex = rig()
    targets = []
    for level in range(6):
        targets.append(TargetQuote(Side.BUY, level, D(59990) - level, D("0.01")))
        targets.append(TargetQuote(Side.SELL, level, D(60010) + level, D("0.01")))
    targets.append(TargetQuote(Side.SELL, 2, D(61000), D("0.01")))  # second target for a taken slot
    actions = ex.reconcile(targets, 0)
    assert ex.dropped_targets == 1
    assert [a.slot for a in actions] == [(side, level) for level in range(6) for side in (Side.BUY, Side.SELL)]
    assert {a.kind for a in actions} == {ExecActionKind.PLACE}
    settle(fake, tracker)
    # Move only SELL L1 and drop BUY L3: exactly one replace and one cancel, every other slot kept.
    moved = [t for t in targets[:-1] if t.slot != (Side.BUY, 3)]
    moved = [attrs.evolve(t, price=D(60020)) if t.slot == (Side.SELL, 1) else t for t in moved]
    actions = ex.reconcile(moved, 1)
    assert sorted((a.kind.value, a.slot) for a in actions) == [
        ("CANCEL", (Side.BUY, 3)),
        ("REPLACE", (Side.SELL, 1)),
    ]
    assert fake.replaced[-1].price == D(60020)


def _reference_snap(ex: Executor, target: TargetQuote) -> TargetQuote | None:
    """What _normalize gave before the on-grid shortcut: round, then check the rounded values."""
    inst = ex.instrument
    price = inst.round_price(target.price, target.side)
    if price <= 0:
        return None
    qty = inst.round_qty(target.qty, price)
    if inst.check_order(price, qty) is not None:
        return None
    if price != target.price or qty != target.qty:
        return TargetQuote(target.side, target.level, price, qty)
    return target


def test_on_grid_shortcut_normalizes_as_rounding_does_across_bands() -> None:
    # TrueX's bands change tick and lot with the price: on-grid inputs take the shortcut, the rest round.
    rules = attrs.evolve(load_venue_rules("truex"), rate_limits=(), duplicate_order_window_ns=0)
    fake = FakeConnector(rules)
    tracker = ClientOrderTracker(fake)
    ex = Executor(fake, tracker, rules.instrument(SYM), rules, RateLimiter.from_rules(rules))
    prices = ["99999.9", "99999.95", "99999.99", "100000", "100000.0", "100000.5", "100000.3", "60000.10",
              "60000.1", "60000.15", "0.05", "0", "-1", "500000", "499999.5", "1e5", "6E+4"]
    sizes = ["0.01", "0.010", "0.0001", "0.00001", "0.000015", "0", "5", "1E-2"]
    checked = 0
    for _ in range(2):  # the second pass is served from the memo
        for side in (Side.BUY, Side.SELL):
            for p in prices:
                for q in sizes:
                    target = TargetQuote(side, 0, D(p), D(q))
                    got = ex.normalize([target]).get((side, 0))
                    want = _reference_snap(ex, target)
                    if want is None or want is target:
                        assert got is want, (side, p, q)
                    else:
                        assert got is not None and repr(got) == repr(want), (side, p, q)
                    checked += 1
    assert checked == 2 * 2 * len(prices) * len(sizes)
