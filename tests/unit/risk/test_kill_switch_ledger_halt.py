"""A ledger halt is sticky: no cooldown ends it, only a person (issue 11)."""

from __future__ import annotations

from decimal import Decimal

from mmkit.model import NS_PER_S, FairValue
from mmkit.risk.kill_switch import KillSwitch, KillSwitchConfig


def fair(now: int) -> FairValue:
    return FairValue(Decimal(60000), 1.0, now)


def test_ledger_halt_survives_auto_resume_and_adds_to_an_existing_trip() -> None:
    switch = KillSwitch(KillSwitchConfig(resume="auto", cooldown_ns=NS_PER_S, max_rejects=1))
    assert not switch.evaluate(0, fair(0), Decimal(0))
    switch.on_reject(0)
    switch.on_reject(0)
    assert switch.evaluate(1, fair(1), Decimal(0))  # tripped for rejects
    switch.halt_ledger(2, "quarantined fill (overfill): E9")
    assert switch.ledger_halted and "ledger halt: quarantined fill" in switch.reason
    for second in range(2, 120):  # rejects age out, the cooldown passes many times over
        assert switch.evaluate(second * NS_PER_S, fair(second * NS_PER_S), Decimal(0))
    switch.halt_ledger(3, "quarantined fill (overfill): E9")  # the same reason is kept once
    assert switch.ledger_reasons == ("quarantined fill (overfill): E9",)
    switch.reset_by_hand(200 * NS_PER_S, Decimal(0))
    assert not switch.halted and not switch.ledger_halted
    assert not switch.evaluate(201 * NS_PER_S, fair(201 * NS_PER_S), Decimal(0))


def test_a_run_resumed_by_hand_after_a_ledger_halt_still_exits_5() -> None:
    """The operator may resume quoting; the session's outcome keeps the halt (docs/operations.md, exit 5).

    A real engine (mmkit.testing.Harness) gets an impossible fill (a buy filled through its limit): the
    ledger halt pulls the quotes; a reset by hand (what ``mmkit resume`` does) brings them back, and the
    exit code a supervisor reads is still 5.
    """
    from mmkit.app.outcome import EXIT_LEDGER_HALT
    from mmkit.model import Side
    from mmkit.testing.harness import Harness
    from strategies.simple import SimpleConfig, SimpleController

    h = Harness(SimpleController(SimpleConfig(half_spread_bps=Decimal(10), order_size=Decimal("0.5"))))
    h.set_fair("60000")
    h.tick(3)
    bid = next(o for o in h.venue.open_orders if o.side is Side.BUY)
    h.venue.fill(bid.client_id, price=str(bid.price + 100))  # through the limit: quarantined
    h.tick(3)
    engine = h.engine
    switch = engine.runner.kill_switch
    assert switch is not None and switch.ledger_halted and not h.venue.open_orders
    assert engine.outcome.exit_code() == EXIT_LEDGER_HALT
    switch.reset_by_hand(engine.clock.now_ns, engine.pnl.total())
    h.tick(3)
    assert not switch.halted and h.venue.open_orders  # quoting again
    assert engine.outcome.exit_code() == EXIT_LEDGER_HALT
