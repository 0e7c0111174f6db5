"""A quarantined fill halts the real engine: quotes pulled, sticky, exit 5, inventory untouched."""

from __future__ import annotations

from decimal import Decimal as D

from mmkit.app.assembly import RiskSettings
from mmkit.app.outcome import EXIT_LEDGER_HALT
from mmkit.model import NS_PER_S, Fill, Liquidity, Side
from mmkit.risk.inventory import InventoryConfig
from mmkit.risk.kill_switch import KillSwitchConfig
from mmkit.testing.harness import Harness
from strategies.simple import SimpleConfig, SimpleController


def harness(resume: str = "auto", kill_switch: bool = True) -> Harness:
    config = KillSwitchConfig(resume=resume, cooldown_ns=NS_PER_S)  # type: ignore[arg-type]
    risk = RiskSettings(
        inventory=InventoryConfig(max_position=D(10), hedge_threshold=D(5), emergency_position=D(12)),
        kill_switch=config if kill_switch else None,
    )
    h = Harness(SimpleController(SimpleConfig(half_spread_bps=D(10), order_size=D("0.5"))), risk=risk)
    h.set_fair("60000")
    h.tick(2)
    assert len(h.venue.open_orders) == 2
    return h


def overfill(h: Harness) -> Fill:
    bid = next(o for o in h.venue.open_orders if o.side is Side.BUY)
    assert bid.price is not None
    return Fill("sim", "EVIL1", bid.client_id, h.symbol, Side.BUY, bid.price, D(5), D(0), "PYUSD",
                Liquidity.MAKER, h.clock.now_ns, h.clock.now_ns, bid.venue_order_id)


def test_overfill_halts_quoting_sticky_even_with_auto_resume_and_exits_5() -> None:
    h = harness(resume="auto")
    h.venue.emit(overfill(h))
    h.tick()
    switch = h.engine.runner.kill_switch
    assert switch is not None and switch.halted and switch.ledger_halted
    assert "quarantined fill (overfill)" in switch.reason
    assert h.engine.position == 0 and h.engine.fills == []  # never booked, so nothing to hedge
    h.tick(2)
    assert h.venue.open_orders == []  # quotes pulled
    h.set_fair("60000")
    for _ in range(30):  # 3 s of clear data, cooldown is 1 s: an ordinary trip would resume here
        h.set_fair("60000")
        h.tick()
    assert switch.halted and h.venue.open_orders == []
    assert h.engine.outcome.exit_code() == EXIT_LEDGER_HALT
    assert "overfill" in h.engine.outcome.as_report()[0]["reason"]  # type: ignore[operator]


def test_operator_reset_clears_the_ledger_halt_but_the_run_still_exits_5() -> None:
    h = harness(resume="manual")
    h.venue.emit(overfill(h))
    h.tick()
    switch = h.engine.runner.kill_switch
    assert switch is not None and switch.ledger_halted
    switch.reset_by_hand(h.clock.now_ns)
    for _ in range(5):
        h.set_fair("60000")
        h.tick()
    assert not switch.halted and len(h.venue.open_orders) == 2
    assert h.engine.outcome.exit_code() == EXIT_LEDGER_HALT


def test_without_a_kill_switch_quoting_still_stops() -> None:
    h = harness(kill_switch=False)
    h.venue.emit(overfill(h))
    h.tick(3)
    assert h.venue.open_orders == []
    assert h.engine.outcome.exit_code() == EXIT_LEDGER_HALT


def test_quarantined_fill_goes_to_its_own_table_never_to_fills(tmp_path: object) -> None:
    from pathlib import Path

    from sqlalchemy import select

    from mmkit.app.config import StoreSection
    from mmkit.app.persistence import attach_persistence
    from mmkit.store import schema

    h = harness()
    persistence = attach_persistence(h.engine, StoreSection(), "qtest", Path(str(tmp_path)))
    persistence.recorder.start()
    h.venue.emit(overfill(h))
    h.tick()
    assert persistence.recorder.close() == 0
    with persistence.recorder.engine.connect() as conn:
        rows = conn.execute(select(schema.quarantined_fills)).mappings().all()
        booked = conn.execute(select(schema.fills)).all()
    assert [(r["trade_id"], r["kind"], r["qty"]) for r in rows] == [("EVIL1", "overfill", D(5))]
    assert "exceeds the order's" in rows[0]["reason"]
    assert booked == []
