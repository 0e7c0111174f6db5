"""The whole tick path with the simple controller on the FakeConnector, through the testing harness."""

from __future__ import annotations

from decimal import Decimal as D

from mmkit.app.assembly import RiskSettings
from mmkit.model import Side
from mmkit.risk.inventory import InventoryConfig
from mmkit.testing.harness import Harness
from strategies.simple import SimpleConfig, SimpleController


def make(**risk: object) -> Harness:
    settings = RiskSettings(inventory=InventoryConfig(**risk)) if risk else None  # type: ignore[arg-type]
    return Harness(SimpleController(SimpleConfig(half_spread_bps=D(10), order_size=D("0.01"))), risk=settings)


def test_quotes_appear_around_fair_snapped_to_tick() -> None:
    h = make()
    h.set_fair("60000")
    h.tick()
    assert h.quotes() == [(Side.BUY, D("59940.0"), D("0.0100")), (Side.SELL, D("60060.0"), D("0.0100"))]


def test_unchanged_target_keeps_the_order_and_a_move_replaces_it() -> None:
    h = make()
    h.set_fair("60000")
    h.tick(3)
    first_ids = {o.client_id for o in h.venue.open_orders}
    assert len(h.venue.placed) == 2 and not h.venue.replaced
    h.set_fair("60100")
    h.tick(2)
    assert len(h.venue.replaced) == 2  # the venue supports cancel/replace
    assert {o.client_id for o in h.venue.open_orders}.isdisjoint(first_ids)
    assert h.quotes()[0][1] == D("60039.9")


def test_fill_moves_position_and_pnl_and_no_confidence_pulls_quotes() -> None:
    h = make()
    h.set_fair("60000")
    h.tick()
    h.venue.print_trade("59940.0", "0.01", aggressor=Side.SELL)
    h.tick()
    assert h.position == D("0.0100")
    assert h.engine.pnl.trade_count() == 1
    h.set_fair("60000", confidence=0.1)
    h.tick(2)
    assert h.quotes() == []


def test_inventory_stop_removes_the_accumulating_side() -> None:
    h = make(max_position=D("0.01"), hedge_threshold=D("0.005"), emergency_position=D("0.05"))
    h.set_fair("60000")
    h.tick()
    h.venue.print_trade("59940.0", "0.01", aggressor=Side.SELL)
    h.tick(3)
    sides = [q[0] for q in h.quotes()]
    assert sides == [Side.SELL]


def test_stop_leaves_nothing_open_at_the_venue() -> None:
    h = make()
    h.set_fair("60000")
    h.tick(2)
    assert len(h.venue.open_orders) == 2
    assert h.stop() == 0
    assert h.venue.open_orders == []
