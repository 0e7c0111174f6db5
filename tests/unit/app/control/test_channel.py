"""ControlChannel.execute, the in-process API under every transport, on the real engine.

The engine is the one ``mmkit start`` assembles (mmkit.testing.Harness: real trackers, executor,
kill switch, strategy runner) around a scripted venue; a background task ticks its clock the way
the live loop does, so actions run between ticks and wait for the ticks that carry them out.
Commands are audited into a real AuditTrail file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from mmkit.app.assembly import RiskSettings
from mmkit.app.control.channel import ControlChannel, TickWaiter
from mmkit.risk.inventory import InventoryConfig
from mmkit.risk.kill_switch import KillSwitchConfig
from mmkit.store.audit import AuditTrail
from mmkit.testing.harness import Harness
from strategies.simple import SimpleConfig, SimpleController


class Rig:
    def __init__(self, tmp_path: Path) -> None:
        risk = RiskSettings(
            inventory=InventoryConfig(max_position=D(10), hedge_threshold=D(5), emergency_position=D(12)),
            kill_switch=KillSwitchConfig(min_confidence=0.3, resume="manual"),
        )
        self.h = Harness(SimpleController(SimpleConfig(half_spread_bps=D(10), order_size=D("0.5"))), risk=risk)
        self.ticks = TickWaiter()
        self.h.clock.add_iterator(self.ticks, name="control")  # last, as open_controls does
        self.audit_path = tmp_path / "audit.jsonl"
        self.trail = AuditTrail(self.audit_path, instance="t", fsync="never")
        self.channel = ControlChannel(self.h.engine, audit=self.trail.write, ticks=self.ticks, instance="t")
        self.h.set_fair("60000")
        self.h.tick(2)

    async def run(self, action: str, **params: Any) -> Any:
        return await self.channel.execute(action, source="unit test", params=params)

    def audit_lines(self) -> list[dict[str, Any]]:
        self.trail.close()
        return [json.loads(line)["data"] for line in self.audit_path.read_text().splitlines()]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    r = Rig(tmp_path)

    async def drive() -> None:  # the live loop: a tick, then the loop runs whatever waits
        while True:
            r.h.tick()
            await asyncio.sleep(0.001)

    task = asyncio.create_task(drive())
    try:
        yield r
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_resume_after_a_real_manual_kill_switch_trip(rig: Rig) -> None:
    assert len(rig.h.venue.open_orders) == 2
    rig.h.set_fair("60000", confidence=0.1)  # a real trigger: confidence under 0.3
    await rig.ticks.next_tick()
    await rig.ticks.next_tick()
    kill = rig.h.engine.runner.kill_switch
    assert kill is not None and kill.halted and "confidence" in kill.reason
    assert rig.h.venue.open_orders == []
    # The trigger is still active: a resume cannot stick, and says so.
    result = await rig.run("resume")
    assert not result.ok and "tripped again" in result.message and "confidence" in result.message
    assert kill.halted
    # The trigger cleared, but the switch is manual: it stays halted until an operator resumes it.
    rig.h.set_fair("60000", confidence=1.0)
    for _ in range(5):
        await rig.ticks.next_tick()
    assert kill.halted and rig.h.venue.open_orders == []
    result = await rig.run("resume")
    assert result.ok, result
    assert "kill switch reset (was: confidence" in result.message
    await rig.ticks.next_tick()
    assert len(rig.h.venue.open_orders) == 2  # quoting again


async def test_pause_pulls_quotes_and_keeps_them_pulled_until_resume(rig: Rig) -> None:
    result = await rig.run("pause")
    assert result.ok and "no quote open" in result.message, result
    assert rig.h.venue.open_orders == []
    placed = len(rig.h.venue.placed)
    for _ in range(10):
        await rig.ticks.next_tick()
    assert rig.h.venue.open_orders == [] and len(rig.h.venue.placed) == placed
    assert rig.channel.status()["quoting"] == "paused by unit test"
    again = await rig.run("resume")
    assert again.ok and "pause lifted" in again.message
    await rig.ticks.next_tick()
    assert len(rig.h.venue.open_orders) == 2
    nothing = await rig.run("resume")
    assert nothing.ok and nothing.message.startswith("nothing to resume")


async def test_cancel_all_confirms_with_the_venue_including_orders_the_engine_does_not_know(rig: Rig) -> None:
    from mmkit.model import OrderRequest, Side

    stray = OrderRequest("stray1", rig.h.venue.venue, rig.h.symbol, Side.BUY, D("0.1"), D("50000.0"))
    rig.h.venue.place(stray)  # e.g. left by another process on the same account
    result = await rig.run("cancel-all")
    assert result.ok, result
    assert "confirmed by the venue" in result.message
    assert rig.h.venue.open_orders == []
    assert "stray1" in rig.h.venue.canceled or rig.h.venue.order("stray1").is_open is False  # type: ignore[union-attr]


async def test_flatten_without_a_hedge_venue_is_refused_with_the_reason(rig: Rig) -> None:
    result = await rig.run("flatten")
    assert not result.ok and "no hedge venue" in result.message


async def test_every_command_is_audited_with_its_result_and_status_is_not(rig: Rig) -> None:
    await rig.run("status")
    await rig.run("pause")
    await rig.run("bogus", x=1)
    await rig.run("trip", reason="fat finger")
    await rig.run("resume")
    lines = rig.audit_lines()
    actions = [(line["phase"], line["action"]) for line in lines]
    assert actions == [("request", "pause"), ("result", "pause"), ("request", "bogus"), ("result", "bogus"),
                       ("request", "trip"), ("result", "trip"), ("request", "resume"), ("result", "resume")]
    results = [line for line in lines if line["phase"] == "result"]
    assert [r["ok"] for r in results] == [True, False, True, True]
    assert all(r["source"] == "unit test" and r["message"] for r in results)
    assert results[1]["params"] == {"x": 1} and "unknown action" in results[1]["message"]
    assert "fat finger" in results[2]["message"]
    requests = {line["id"] for line in lines if line["phase"] == "request"}
    assert requests == {r["id"] for r in results} and len(requests) == 4


async def test_actions_are_refused_while_the_clock_is_not_running(tmp_path: Path) -> None:
    r = Rig(tmp_path)
    r.h.stop()  # the clock stopped: the instance is stopping
    result = await r.run("pause")
    assert not result.ok and "not trading" in result.message
    status = await r.run("status")
    assert status.ok and status.data["running"] is False


@pytest.mark.parametrize(
    ("action", "params"),
    [("pause", {"symbol": "ETH-USD"}), ("cancel-all", {"dry_run": True}), ("resume", {"only": "hedge"}),
     ("pause", {"value": "in 5 minutes"}), ("trip", {"reason": "x", "scope": "hedge"})],
)
async def test_a_parameter_the_action_does_not_take_is_refused_and_nothing_is_done(
    rig: Rig, action: str, params: dict[str, Any]
) -> None:
    """`pause ETH-USD` must not pause the one symbol this instance trades; `cancel-all --dry-run` must not cancel.

    An action ignoring what it was asked to do is the worst answer: the operator believes it was done as said.
    """
    before = len(rig.h.venue.open_orders)
    assert before == 2
    result = await rig.run(action, **params)
    assert not result.ok
    unknown = sorted(set(params) - {"reason"} if action == "trip" else params)
    assert f"unknown parameter(s) {', '.join(repr(p) for p in unknown)} for {action}" in result.message
    await rig.ticks.next_tick()
    assert len(rig.h.venue.open_orders) == before and rig.h.engine.runner.quoting_enabled
    kill = rig.h.engine.runner.kill_switch
    assert kill is not None and not kill.halted
    results = [line for line in rig.audit_lines() if line["phase"] == "result"]
    assert [(r["action"], r["ok"], r["params"]) for r in results] == [(action, False, params)]


@pytest.mark.parametrize("reason", [{"why": "x"}, ["a"], 5, ""])
async def test_a_trip_reason_that_is_not_text_is_refused(rig: Rig, reason: object) -> None:
    result = await rig.run("trip", reason=reason)
    assert not result.ok and "trip: reason must be a non-empty text" in result.message
    kill = rig.h.engine.runner.kill_switch
    assert kill is not None and not kill.halted


async def test_a_second_trip_says_the_switch_was_already_halted_and_keeps_the_first_reason(rig: Rig) -> None:
    first = await rig.run("trip", reason="fat finger")
    assert first.ok and "fat finger" in first.message
    second = await rig.run("trip", reason="replayed from shell history")
    assert second.ok and second.message.startswith("kill switch already halted: ")
    assert "fat finger" in second.message and "replayed" not in str(second.data["kill_switch"]["reason"])


async def test_what_a_client_claims_reaches_the_log_on_one_line(rig: Rig) -> None:
    """A newline in the claimed source, the action or a trip's reason would forge a log line of its own."""
    from loguru import logger

    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message)), level="DEBUG", format="{message}")
    try:
        forged = "\n2026-12-07 12:00:00 | ERROR | KILL SWITCH RESET by risk desk"
        await rig.channel.execute("trip", source="cli" + forged, params={"reason": "drill" + forged})
        await rig.channel.execute("pause" + forged, source="cli")
    finally:
        logger.remove(sink)
    control = [line for line in lines if line.startswith("control")]
    assert len(control) == 4, control  # asked + result, twice
    assert all(line.count("\n") == 1 and line.endswith("\n") for line in control), control  # one line each
    assert any("cli\\n2026-12-07 12:00:00 | ERROR | KILL SWITCH RESET" in line for line in control)


async def test_resume_and_status_name_every_gate_that_holds_quoting(rig: Rig) -> None:
    """Two gates hold: the reply names both, so the operator does not fix one and only then meet the other."""
    journal: list[str | None] = ["journal: disk full"]
    claim: list[str | None] = ["market claim lost to instance b"]
    rig.h.engine.runner.add_gate(lambda _ts: journal[0], "journal")
    rig.h.engine.runner.add_gate(lambda _ts: claim[0], "market claim")
    await rig.ticks.next_tick()
    await rig.ticks.next_tick()
    result = await rig.run("resume")
    assert not result.ok, result.message
    assert "held by gate journal: journal: disk full" in result.message, result.message
    assert "by gate market claim: market claim lost to instance b" in result.message, result.message
    assert [g["gate"] for g in result.data["gates"]] == ["journal", "market claim"]
    status = await rig.run("status")
    assert "journal: disk full" in status.data["quoting"] and "lost to instance b" in status.data["quoting"]
    journal[0] = None
    await rig.ticks.next_tick()
    await rig.ticks.next_tick()
    result = await rig.run("resume")
    assert not result.ok and "journal" not in result.message and "market claim" in result.message, result.message


async def test_resume_says_a_runner_gate_still_holds_quoting(rig: Rig) -> None:
    """A gate is not lifted by hand (it clears when its cause does): resume must not answer "quoting"."""
    held: list[str | None] = ["journal: disk full"]
    rig.h.engine.runner.add_gate(lambda _ts: held[0], "journal")
    await rig.ticks.next_tick()
    await rig.ticks.next_tick()
    result = await rig.run("pause")
    assert result.ok
    result = await rig.run("resume")
    assert not result.ok and "held by gate journal: journal: disk full" in result.message, result.message
    assert [g["gate"] for g in result.data["gates"]] == ["journal"]
    held[0] = None
    await rig.ticks.next_tick()
    await rig.ticks.next_tick()
    result = await rig.run("resume")
    assert result.ok and result.message == "nothing to resume: quoting was active", result.message
