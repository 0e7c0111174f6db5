"""The executor never rests more than the position limit allows: every resting order on a side filled
(the worst case) must not take the position past max_position.

Before this rule the layered and demo strategies ended beyond max_position by about one resting order:
orders placed while the position was below the limit filled after it reached it.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from mmkit.connector import load_venue_rules
from mmkit.execution.executor import Executor
from mmkit.execution.rate_limiter import RateLimiter
from mmkit.model import Side, TargetQuote
from mmkit.orders.tracker import ClientOrderTracker
from mmkit.testing.fake_connector import FakeConnector

SYM = "BTC-PYUSD"
D = Decimal


@attrs.define
class Inventory:
    position: Decimal = Decimal(0)
    max_position: Decimal = Decimal("0.05")


def rig(inventory: Inventory) -> tuple[Executor, FakeConnector, ClientOrderTracker]:
    rules = attrs.evolve(load_venue_rules("sim"), rate_limits=())
    fake = FakeConnector(rules, auto_ack=True)
    fake.set_book([("60000", "1")], [("60010", "1")])
    tracker = ClientOrderTracker(fake)
    executor = Executor(fake, tracker, rules.instrument(SYM), rules, RateLimiter(()), position_limit=inventory)
    return executor, fake, tracker


def settle(executor: Executor, fake: FakeConnector, tracker: ClientOrderTracker) -> None:
    for event in fake.drain():
        tracker.on_event(event)
        executor.on_event(event)


def ladder(qty: str, levels: int) -> list[TargetQuote]:
    out = []
    for i in range(levels):
        out.append(TargetQuote(Side.BUY, i, D(59990) - i, D(qty)))
        out.append(TargetQuote(Side.SELL, i, D(60020) + i, D(qty)))
    return out


def resting(tracker: ClientOrderTracker, side: Side) -> Decimal:
    return sum((o.request.qty - o.filled_qty for o in tracker.open_orders(SYM) if o.side is side), D(0))


def test_a_ladder_is_cut_to_what_the_limit_allows_innermost_first() -> None:
    inventory = Inventory(position=D("0.02"))
    executor, fake, tracker = rig(inventory)
    executor.reconcile(ladder("0.01", 5), 0)
    settle(executor, fake, tracker)
    # Long 0.02 of 0.05: at most 0.03 more may be bought; selling may reach -0.05, i.e. 0.07 of sells.
    assert resting(tracker, Side.BUY) == D("0.03")
    assert resting(tracker, Side.SELL) == D("0.05")  # the 5 levels asked for, all within the limit
    assert inventory.position + resting(tracker, Side.BUY) <= inventory.max_position
    levels = sorted(o.slot[1] for o in tracker.open_orders(SYM) if o.side is Side.BUY and o.slot)
    assert levels == [0, 1, 2]  # the innermost levels are kept
    assert executor.limited_targets > 0


def test_a_target_is_shrunk_to_the_room_left_when_a_lot_fits() -> None:
    inventory = Inventory(position=D("0.035"))
    executor, fake, tracker = rig(inventory)
    executor.reconcile([TargetQuote(Side.BUY, 0, D(59990), D("0.03"))], 0)
    settle(executor, fake, tracker)
    assert resting(tracker, Side.BUY) == D("0.015")


def test_when_the_position_moves_towards_the_limit_the_outer_orders_are_pulled() -> None:
    inventory = Inventory()
    executor, fake, tracker = rig(inventory)
    executor.reconcile(ladder("0.01", 4), 0)
    settle(executor, fake, tracker)
    assert resting(tracker, Side.BUY) == D("0.04")
    inventory.position = D("0.03")  # e.g. a fill elsewhere (a hedge, another slot) moved it
    executor.reconcile(ladder("0.01", 4), 1)
    settle(executor, fake, tracker)
    assert inventory.position + resting(tracker, Side.BUY) <= inventory.max_position
    assert resting(tracker, Side.BUY) == D("0.02")


def test_without_a_limit_nothing_changes() -> None:
    rules = attrs.evolve(load_venue_rules("sim"), rate_limits=())
    fake = FakeConnector(rules, auto_ack=True)
    tracker = ClientOrderTracker(fake)
    executor = Executor(fake, tracker, rules.instrument(SYM), rules, RateLimiter(()))
    executor.reconcile(ladder("0.01", 5), 0)
    settle(executor, fake, tracker)
    assert resting(tracker, Side.BUY) == D("0.05")


def test_a_replace_that_no_longer_fits_is_pulled_and_still_counts_until_it_is_gone() -> None:
    """Found in the sim backtest: the pulled order's size was forgotten, and a new level took its room."""
    inventory = Inventory(max_position=D("0.05"))
    executor, fake, tracker = rig(inventory)
    executor.reconcile([TargetQuote(Side.BUY, 0, D(59990), D("0.01"))], 0)
    settle(executor, fake, tracker)
    inventory.position = D("0.04")  # room 0.01: exactly the resting order
    # Level 0 moves (a replace to 0.01 more would need 0.02 of room) and level 1 appears.
    targets = [TargetQuote(Side.BUY, 0, D(59991), D("0.01")), TargetQuote(Side.BUY, 1, D(59990), D("0.01"))]
    executor.reconcile(targets, 1)
    open_buys = [o for o in tracker.open_orders(SYM) if o.side is Side.BUY]
    assert sum((o.request.qty - o.filled_qty for o in open_buys), D(0)) <= D("0.01")
