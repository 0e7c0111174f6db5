"""Why quoting is held by a runner gate is shown where an operator looks, not only in the log.

A gate (StrategyRunner.gates: the venue's quoting guard, the market claim, the write-ahead journal)
that returns a reason keeps quotes off. Before this, the reason reached only the log: the status
block said "quoting", the control channel "active", the dashboard a green pill, and the final
report counted anonymous halted ticks. Here the real engine (mmkit.testing.Harness) runs with a
venue whose guard the test switches (the path the ccxt dead man's switch takes) and with plain
gates added to the real runner; the status block, the control channel's status, the dashboard's
snapshot, ``mmkit status``'s live section and the final report must name the gate and its
reason while it holds, clear it after, and count exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal as D
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from loguru import logger

from mmkit.app.config import ConsoleDashboardSection, EngineSection
from mmkit.app.console.dashboard import Dashboard
from mmkit.app.console.status_view import format_live
from mmkit.app.control.channel import ControlChannel, TickWaiter
from mmkit.app.report import final_report, format_report, status_block
from mmkit.app.strategy_runner import GATE_LOG_LINES, GATE_LOG_WINDOW_NS
from mmkit.connector import load_venue_rules
from mmkit.testing.fake_connector import FakeConnector
from mmkit.testing.harness import DEFAULT_START_NS, Harness
from strategies.simple import SimpleConfig, SimpleController


class GuardedVenue(FakeConnector):
    """A FakeConnector whose venue-side protection (a dead man's switch) the test switches off and on."""

    halt: str | None = None

    def quoting_halt_reason(self) -> str | None:
        return self.halt


class Switch:
    """A gate the test opens and closes (the market claim and the journal gates have this shape)."""

    def __init__(self) -> None:
        self.reason: str | None = None

    def __call__(self, ts_ns: int) -> str | None:
        return self.reason


def rig(tmp_path: Path) -> tuple[Harness, GuardedVenue, ControlChannel, Dashboard]:
    venue = GuardedVenue(load_venue_rules("sim"), start_ns=DEFAULT_START_NS)
    h = Harness(SimpleController(SimpleConfig(half_spread_bps=D(10), order_size=D("0.01"))), venue=venue)
    ticks = TickWaiter()
    h.clock.add_iterator(ticks, name="control")
    channel = ControlChannel(h.engine, audit=None, ticks=ticks, instance="t")
    config = SimpleNamespace(engine=EngineSection(instance="t", output_dir=str(tmp_path)))
    built = SimpleNamespace(engine=h.engine, config=config, hedge=None)
    board = Dashboard(built, ConsoleDashboardSection(port=0, push_interval_ms=100), channel)
    h.set_fair("60000")
    h.tick(2)
    return h, venue, channel, board


def report(h: Harness) -> dict[str, Any]:
    built = SimpleNamespace(path="conf/t.yml", description="unit test", hedge=None)
    return final_report(h.engine, built, [])  # type: ignore[arg-type]


@pytest.fixture
def lines() -> Iterator[list[str]]:
    """The runner's own log lines about its gates (what the operator's log shows)."""
    seen: list[str] = []
    sink = logger.add(lambda m: seen.append(m.record["message"]), level="INFO",
                      filter=lambda r: "gate" in r["message"] and "quoting" in r["message"])
    try:
        yield seen
    finally:
        logger.remove(sink)


def test_a_venue_guard_is_shown_everywhere_while_it_holds_and_cleared_after(tmp_path: Path,
                                                                            lines: list[str]) -> None:
    h, venue, channel, board = rig(tmp_path)
    runner = h.engine.runner
    assert runner.gate_holds == [] and channel.status()["gates"] == []
    why = "sim: dead man's switch last refreshed 31.0 s ago"
    venue.halt = why
    h.tick()
    since = h.clock.now_ns
    h.tick(4)
    assert venue.open_orders == []
    (hold,) = runner.gate_holds
    assert (hold.gate, hold.reason, hold.since_ns, hold.ticks) == ("venue sim", why, since, 5)

    block = status_block(h.engine, h.clock.now_ns)
    assert "[HELD by gate venue sim" in block and why in block and "quoting]" not in block, block
    status = channel.status()
    assert status["quoting"].startswith("held by gate venue sim") and why in status["quoting"], status
    assert status["gates"] == [{"gate": "venue sim", "reason": why, "since_ns": since, "ticks": 5}]
    board.refresh()
    snap = board.snapshot
    assert snap["gates"] == status["gates"] and snap["quoting"] is True
    # the field as versions before "gates" had it, for a desk's monitor that still reads it: the first hold
    assert status["gate"] == snap["gate"] == status["gates"][0]
    assert "HELD by gate venue sim" in format_live(snap) and why in format_live(snap)

    venue.halt = None
    h.tick(3)
    assert runner.gate_holds == [] and len(venue.open_orders) == 2
    assert "[quoting]" in status_block(h.engine, h.clock.now_ns)
    assert channel.status()["quoting"] == "active" and channel.status()["gates"] == []
    board.refresh()
    assert board.snapshot["gates"] == [] and "HELD" not in format_live(board.snapshot)
    assert channel.status()["gate"] is None and board.snapshot["gate"] is None

    venue.halt = "sim: dead man's switch not armed yet"
    h.tick(2)
    venue.halt = None
    h.tick()
    gates = report(h)["quoting_gates"]
    assert gates == [{"gate": "venue sim", "ticks": 7, "holds": 2, "first_ns": since,
                      "last_ns": h.clock.now_ns - h.clock.tick_ns,
                      "last_reason": "sim: dead man's switch not armed yet"}]
    assert report(h)["halted_ticks"] == 7
    text = format_report(report(h))
    assert "venue sim: held 7 ticks in 2 holds" in text, text
    held = [line for line in lines if "held by gate" in line]
    again = [line for line in lines if "quoting again" in line]
    assert len(held) == 2 and len(again) == 2, lines


def test_a_run_no_gate_held_reports_none(tmp_path: Path) -> None:
    h, _venue, _channel, _board = rig(tmp_path)
    h.tick(5)
    assert report(h)["quoting_gates"] == []


def test_a_gate_holding_behind_another_is_shown_and_counted_and_keeps_its_hold(tmp_path: Path,
                                                                               lines: list[str]) -> None:
    """Before: only the first holding gate was kept; the one behind it was neither shown nor counted,
    and when the first released it looked like a new hold starting then."""
    h, _venue, channel, _board = rig(tmp_path)
    runner = h.engine.runner
    first, second = Switch(), Switch()
    runner.add_gate(first, "journal")
    runner.add_gate(second, "market claim")
    second.reason = "claim lost"
    h.tick(2)
    claim_since = h.clock.now_ns - h.clock.tick_ns
    first.reason = "journal behind"
    h.tick(3)
    assert [(g.gate, g.reason, g.ticks) for g in runner.gate_holds] == [
        ("journal", "journal behind", 3), ("market claim", "claim lost", 5)]  # in gate order
    assert runner.gate_hold is not None and runner.gate_hold.gate == "journal"  # the first, for who needs one
    assert [g["gate"] for g in channel.status()["gates"]] == ["journal", "market claim"]
    first.reason = None
    h.tick()
    (hold,) = runner.gate_holds
    assert (hold.gate, hold.since_ns, hold.ticks) == ("market claim", claim_since, 6)  # the same hold goes on
    second.reason = None
    h.tick()
    tallies = {g["gate"]: (g["ticks"], g["holds"]) for g in report(h)["quoting_gates"]}
    assert tallies == {"market claim": (6, 1), "journal": (3, 1)}
    assert report(h)["halted_ticks"] == 6
    assert len([line for line in lines if line.startswith("quoting held by gate")]) == 2, lines
    assert len([line for line in lines if "released" in line]) == 2, lines


def test_a_changing_reason_is_one_hold_and_one_log_line(tmp_path: Path, lines: list[str]) -> None:
    """The dead man's switch's reason carries its age: a new text every tick is not a new hold."""
    h, venue, channel, _board = rig(tmp_path)
    for tenth in range(50):
        venue.halt = f"sim: dead man's switch last refreshed {31 + tenth / 10:.1f} s ago"
        h.tick()
    (gate,) = channel.status()["gates"]
    assert gate["reason"] == "sim: dead man's switch last refreshed 35.9 s ago" and gate["ticks"] == 50
    assert len(lines) == 1, lines


def test_a_flapping_gate_does_not_flood_the_log_and_is_counted_exactly(tmp_path: Path, lines: list[str]) -> None:
    h, _venue, channel, _board = rig(tmp_path)
    runner = h.engine.runner
    gate = Switch()
    runner.add_gate(gate, "flappy")
    tick_ns = h.clock.tick_ns
    flaps = 3 * GATE_LOG_WINDOW_NS // tick_ns  # three windows of a gate that holds every other tick
    for n in range(flaps):
        gate.reason = "flap" if n % 2 == 0 else None
        h.tick()
    windows = flaps * tick_ns // GATE_LOG_WINDOW_NS + 1
    assert 0 < len(lines) <= windows * (GATE_LOG_LINES + 1), (len(lines), lines[:10])
    assert any("not logged" in line for line in lines), lines
    held = (flaps + 1) // 2
    (tally,) = report(h)["quoting_gates"]
    assert (tally["ticks"], tally["holds"]) == (held, held)
    # It stopped flapping (released): once the window passes the log says where it ended, once.
    gate.reason = None
    before = len(lines)
    h.tick(GATE_LOG_WINDOW_NS // tick_ns + 5)
    assert len(lines) == before + 1 and "quoting again" in lines[-1], lines[before:]
    assert channel.status()["gates"] == []


def test_metrics_have_a_series_per_gate_that_is_one_while_it_holds(tmp_path: Path) -> None:
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from mmkit.app.console.metrics import Metrics, MetricsCollector

    h, venue, _channel, _board = rig(tmp_path)
    claim = Switch()
    h.engine.runner.add_gate(claim, "market claim")
    metrics = Metrics("unit")
    MetricsCollector(metrics, SimpleNamespace(engine=h.engine, hedge=None), None, interval_ms=1).attach()

    def held() -> dict[str, float]:
        families = text_string_to_metric_families(generate_latest(metrics.registry).decode())
        return {s.labels["gate"]: s.value for f in families if f.name == "mmkit_quoting_gate_held" for s in f.samples}

    h.tick(2)
    assert held() == {"venue sim": 0, "market claim": 0}
    claim.reason = "claim lost"
    h.tick(2)
    assert held() == {"venue sim": 0, "market claim": 1}
    venue.halt = "sim: dead man's switch not armed yet"  # both hold: both series say so
    h.tick(2)
    assert held() == {"venue sim": 1, "market claim": 1}
    claim.reason = None
    h.tick(2)
    assert held() == {"venue sim": 1, "market claim": 0}
    venue.halt = claim.reason = None
    h.tick(2)
    assert held() == {"venue sim": 0, "market claim": 0}


def test_transitions_left_out_of_the_log_are_told_at_stop(tmp_path: Path, lines: list[str]) -> None:
    h, _venue, _channel, _board = rig(tmp_path)
    gate = Switch()
    h.engine.runner.add_gate(gate, "flappy")
    for n in range(3 * GATE_LOG_LINES):  # well within one window: only the first lines are written
        gate.reason = "flap" if n % 2 == 0 else None
        h.tick()
    gate.reason = "flap"
    h.tick()
    assert len(lines) == GATE_LOG_LINES, lines
    h.engine.runner.stop(h.clock)
    assert len(lines) == GATE_LOG_LINES + 1, lines
    assert lines[-1].startswith("quoting still held by gate flappy: flap [") and "not logged" in lines[-1], lines[-1]


def test_two_gates_holding_at_once_are_both_shown_everywhere(tmp_path: Path) -> None:
    """The venue's guard and the market claim hold together: every display names both, with their reasons.

    Before: only the first was shown; the operator fixed it and only then learnt of the second.
    """
    h, venue, channel, board = rig(tmp_path)
    claim = Switch()
    h.engine.runner.add_gate(claim, "market claim")
    guard = "sim: dead man's switch not armed yet"
    claim.reason = "market claim lost to instance other"
    h.tick(2)
    venue.halt = guard
    h.tick(3)
    block = status_block(h.engine, h.clock.now_ns)
    assert "[HELD by gate venue sim for 0.2 s: " + guard in block, block
    assert "by gate market claim for 0.4 s: market claim lost to instance other" in block, block
    status = channel.status()
    assert [(g["gate"], g["reason"], g["ticks"]) for g in status["gates"]] == [
        ("venue sim", guard, 3), ("market claim", "market claim lost to instance other", 5)]
    assert status["quoting"] == (f"held by gate venue sim: {guard}; by gate market claim: "
                                 "market claim lost to instance other"), status["quoting"]
    board.refresh()
    assert board.snapshot["gates"] == status["gates"]
    live = format_live(board.snapshot)
    assert "HELD by gate venue sim" in live and guard in live, live
    assert "HELD by gate market claim" in live and "lost to instance other" in live, live
    venue.halt = claim.reason = None
    h.tick()
    text = format_report(report(h))
    assert "venue sim: held 3 ticks in 1 holds" in text and "market claim: held 5 ticks in 1 holds" in text, text


def test_a_second_gate_starting_and_releasing_while_the_first_holds_is_logged(tmp_path: Path,
                                                                              lines: list[str]) -> None:
    """Before: a gate that was not the first to hold came and went without a line in the log."""
    h, venue, _channel, _board = rig(tmp_path)
    claim = Switch()
    h.engine.runner.add_gate(claim, "market claim")
    venue.halt = "sim: dead man's switch not armed yet"
    h.tick(2)
    assert len(lines) == 1 and lines[0].startswith("quoting held by gate venue sim"), lines
    claim.reason = "claim lost"
    h.tick(2)
    assert len(lines) == 2 and "held by gate market claim" in lines[1] and "claim lost" in lines[1], lines
    assert "venue sim" in lines[1], lines[1]  # says what else holds
    claim.reason = None
    h.tick(2)
    assert len(lines) == 3, lines
    assert "gate market claim released after 2 ticks" in lines[2] and "claim lost" in lines[2], lines[2]
    assert "still held by gate venue sim" in lines[2] and "quoting again" not in lines[2], lines[2]
    venue.halt = None
    h.tick()
    assert len(lines) == 4 and lines[3].startswith("quoting again: gate venue sim released"), lines


def test_a_gate_flapping_behind_a_holding_one_is_rate_limited_and_counted_exactly(tmp_path: Path,
                                                                                  lines: list[str]) -> None:
    h, venue, _channel, _board = rig(tmp_path)
    runner = h.engine.runner
    gate = Switch()
    runner.add_gate(gate, "flappy")
    venue.halt = "sim: dead man's switch not armed yet"
    tick_ns = h.clock.tick_ns
    flaps = 3 * GATE_LOG_WINDOW_NS // tick_ns
    for n in range(flaps):
        gate.reason = "flap" if n % 2 == 0 else None
        h.tick()
    windows = flaps * tick_ns // GATE_LOG_WINDOW_NS + 1
    assert 0 < len(lines) <= windows * (GATE_LOG_LINES + 1), (len(lines), lines[:10])
    assert any("not logged" in line for line in lines), lines
    assert any("released" in line and "flappy" in line for line in lines), lines
    held = (flaps + 1) // 2
    tallies = {g["gate"]: (g["ticks"], g["holds"]) for g in report(h)["quoting_gates"]}
    assert tallies == {"venue sim": (flaps, 1), "flappy": (held, held)}
    # It stopped flapping (released) behind the guard: once the window passes the log says where it ended, once.
    gate.reason = None
    before = len(lines)
    h.tick(GATE_LOG_WINDOW_NS // tick_ns + 5)
    assert len(lines) == before + 1, lines[before:]
    assert lines[-1].startswith("quoting still held by gate venue sim:") and "flappy" not in lines[-1], lines[-1]


def test_the_line_owed_at_stop_names_every_gate_still_holding(tmp_path: Path, lines: list[str]) -> None:
    h, venue, _channel, _board = rig(tmp_path)
    gate = Switch()
    h.engine.runner.add_gate(gate, "flappy")
    venue.halt = "guard"
    for n in range(3 * GATE_LOG_LINES):
        gate.reason = "flap" if n % 2 == 0 else None
        h.tick()
    gate.reason = "flap"
    h.tick()
    assert len(lines) == GATE_LOG_LINES, lines
    h.engine.runner.stop(h.clock)
    assert len(lines) == GATE_LOG_LINES + 1, lines
    assert lines[-1].startswith("quoting still held by gate venue sim: guard; by gate flappy: flap ["), lines[-1]


def test_a_second_gate_under_a_name_already_used_is_refused(tmp_path: Path) -> None:
    """Two gates under one name would share one tally and one metrics series: both holding, each tick would
    count twice and the operator could not tell which of the two holds. Refused when added, naming it."""
    h, _venue, _channel, _board = rig(tmp_path)
    runner = h.engine.runner
    runner.add_gate(Switch(), "market claim")
    before = list(runner.gates)
    with pytest.raises(ValueError, match=r"'market claim'.*already"):
        runner.add_gate(Switch(), "market claim")
    gate = Switch()
    runner.add_gate(gate, "journal")
    with pytest.raises(ValueError, match="already"):
        runner.add_gate(gate, "journal again")
    assert runner.gates == [*before, gate]
