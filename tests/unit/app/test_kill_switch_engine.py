"""Each kill-switch trigger pulls every quote within one tick, through the real engine."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from mmkit.app.assembly import RiskSettings
from mmkit.model import NS_PER_S, RejectReason, Side
from mmkit.risk.inventory import InventoryConfig
from mmkit.risk.kill_switch import KillSwitchConfig
from mmkit.testing.harness import Harness
from strategies.simple import SimpleConfig, SimpleController


def harness(**kill: object) -> Harness:
    config = KillSwitchConfig(**{"max_drawdown": D(50), "max_loss": D(80), "stale_after_ns": 2 * NS_PER_S,
                                 "max_rejects": 3, "reject_window_ns": 60 * NS_PER_S, **kill})  # type: ignore[arg-type]
    risk = RiskSettings(inventory=InventoryConfig(max_position=D(10), hedge_threshold=D(5),
                                                  emergency_position=D(12)), kill_switch=config)
    h = Harness(SimpleController(SimpleConfig(half_spread_bps=D(10), order_size=D("0.5"))), risk=risk)
    h.set_fair("60000")
    h.tick(2)
    assert len(h.venue.open_orders) == 2
    return h


def assert_pulled_within_one_tick(h: Harness) -> None:
    """The tick that sees the condition sends the cancels; they are confirmed on the next drain."""
    resting = {o.client_id for o in h.venue.open_orders}
    assert resting
    canceled_before = len(h.venue.canceled)
    h.tick()
    assert set(h.venue.canceled[canceled_before:]) == resting, "cancels must go out on the tick of the trip"
    h.tick()
    assert h.venue.open_orders == []
    assert h.engine.runner.kill_switch is not None and h.engine.runner.kill_switch.halted
    placed = len(h.venue.placed)
    h.tick(5)  # and nothing comes back while halted
    assert h.venue.open_orders == [] and len(h.venue.placed) == placed


def test_max_loss_trips() -> None:
    h = harness(max_drawdown=None)
    h.venue.print_trade("59940.0", "0.5", aggressor=Side.SELL)  # we buy 0.5 at 59940
    h.tick()
    h.set_fair("59700")  # mark-to-market: -120 < -80
    assert_pulled_within_one_tick(h)
    assert "loss" in h.engine.runner.kill_switch.reason  # type: ignore[union-attr]


def test_drawdown_from_peak_trips() -> None:
    h = harness(max_loss=None)
    h.venue.print_trade("59940.0", "0.5", aggressor=Side.SELL)
    h.tick()
    h.set_fair("60100")  # +80 peak
    h.tick()
    h.set_fair("59990")  # +25: 55 below the peak
    assert_pulled_within_one_tick(h)
    assert "drawdown" in h.engine.runner.kill_switch.reason  # type: ignore[union-attr]


def test_stale_reference_trips() -> None:
    h = harness()
    h.scripted_fair.set("60000", 1.0, h.clock.now_ns - 3 * NS_PER_S)
    h.scripted_fair.fair = lambda now_ns: h.scripted_fair.value  # type: ignore[method-assign]  # keep its old stamp
    assert_pulled_within_one_tick(h)
    assert "stale" in h.engine.runner.kill_switch.reason  # type: ignore[union-attr]


def test_low_confidence_trips() -> None:
    h = harness()
    h.set_fair("60000", confidence=0.1)
    assert_pulled_within_one_tick(h)
    assert "confidence" in h.engine.runner.kill_switch.reason  # type: ignore[union-attr]


def test_too_many_rejects_trip() -> None:
    h = harness()
    for _ in range(4):
        h.venue.reject_next(RejectReason.INSUFFICIENT_FUNDS)
    h.set_fair("60500")  # forces replaces: the venue rejects them
    h.tick(3)
    h.set_fair("60600")
    h.tick()
    assert h.engine.runner.kill_switch is not None
    if not h.engine.runner.kill_switch.halted:
        pytest.fail(f"rejects did not trip the switch: {h.venue.actions}")
    h.tick(2)
    assert h.venue.open_orders == []
