"""A kill switch with every loss limit null: refused at load unless written down as ``unlimited_loss: true``.

Before: ``kill_switch: {max_loss: null, max_drawdown: null}`` loaded without a word and ``mmkit start`` ran a
live engine with no loss protection at all. Now ``check``, ``start`` and ``backtest`` (one loader) refuse it
naming both keys and the opt-in; with the opt-in the start logs a WARNING and every status says so. One
limit null is protection (the other still trips) and loads as before.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from loguru import logger

from mmkit.app.build import build, risk_settings
from mmkit.app.cli import EXIT_CONFIG
from mmkit.app.config import load_engine_config
from mmkit.app.console.runtime import start_console, unlimited_loss_text
from mmkit.app.console.status_view import format_live
from mmkit.clock import Clock, ClockMode
from mmkit.conf import ConfigError
from mmkit.model import FairValue
from mmkit.risk.kill_switch import KillSwitch, KillSwitchConfig

REPO = Path(__file__).resolve().parents[3]
LAYERED = (REPO / "strategies" / "layered_example.yml").read_text()
LIMITS = "kill_switch: {max_drawdown: 500, max_loss: 1000, resume: manual}"
BOTH_NULL = "max_loss: null, max_drawdown: null"


def write(tmp_path: Path, kill_switch: str) -> Path:
    assert LIMITS in LAYERED
    path = tmp_path / "c.yml"
    path.write_text(LAYERED.replace(LIMITS, f"kill_switch: {{{kill_switch}}}"))
    return path


@pytest.mark.parametrize("extra", ["", ", enabled: false", ", unlimited_loss: false"])
def test_every_loss_limit_null_is_refused_at_load_naming_both_keys_and_the_opt_in(tmp_path: Path, extra: str) -> None:
    """Disabled too: a switch turned back on in a hurry would run with no loss limit."""
    with pytest.raises(ConfigError) as caught:
        load_engine_config(write(tmp_path, BOTH_NULL + extra))
    text = str(caught.value)
    assert "risk.kill_switch.max_loss: " in text and "max_drawdown" in text, text
    assert "no loss limit" in text and "risk.kill_switch.unlimited_loss: true" in text, text


def test_check_start_and_backtest_refuse_it_with_one_line_and_exit_config_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mmkit.app.cli import main

    path = write(tmp_path, BOTH_NULL)
    home = tmp_path / "home"
    data = tmp_path / "no-recording-read"  # refused before the recording is looked at
    for command in (["check", str(path)], ["start", str(path), "--output-dir", str(home)],
                    ["backtest", str(path), "--data", str(data), "--out", str(home / "bt"), "--no-progress"]):
        assert main(command) == EXIT_CONFIG, command
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("config error: ") and "unlimited_loss" in err[0], err
    assert not home.exists(), "nothing (store, journal, audit, socket) may be created by a refused start"


def test_unlimited_loss_loads_only_with_both_limits_null_and_the_switch_knows_it(tmp_path: Path) -> None:
    loaded = load_engine_config(write(tmp_path, BOTH_NULL + ", unlimited_loss: true"))
    config = risk_settings(loaded).kill_switch
    assert config is not None and config.unlimited_loss and config.max_loss is None and config.max_drawdown is None
    kill = KillSwitch(config)
    assert kill.loss_unlimited
    assert "NO LOSS LIMIT" in unlimited_loss_text(kill)
    assert not kill.evaluate(10**9, FairValue(Decimal(60000), 10**9, 1.0, 1), Decimal("-1e12"))


@pytest.mark.parametrize(
    ("setting", "named"),
    [("unlimited_loss: true", "max_loss 2000, max_drawdown 1000"),  # the defaults apply to what is left out
     ("unlimited_loss: true, max_drawdown: null", "max_loss 2000"),
     ("unlimited_loss: true, max_loss: null, max_drawdown: 300", "max_drawdown 300")],
)
def test_unlimited_loss_with_a_limit_still_set_is_refused(tmp_path: Path, setting: str, named: str) -> None:
    """The opt-in must mean what it says: with a limit in force it would be stale the day that limit is nulled."""
    with pytest.raises(ConfigError, match=r"risk\.kill_switch\.unlimited_loss: is true but a loss limit is set") as c:
        load_engine_config(write(tmp_path, setting))
    assert named in str(c.value)


@pytest.mark.parametrize(
    ("setting", "pnl", "trips"),
    [("max_loss: null, max_drawdown: 500", "-499", False), ("max_loss: null, max_drawdown: 500", "-500", True),
     ("max_drawdown: null, max_loss: 1000", "-999", False), ("max_drawdown: null, max_loss: 1000", "-1000", True)],
)
def test_one_limit_null_is_protection_it_loads_and_the_other_trips(
    tmp_path: Path, setting: str, pnl: str, trips: bool
) -> None:
    config = risk_settings(load_engine_config(write(tmp_path, setting))).kill_switch
    assert config is not None and not config.unlimited_loss
    kill = KillSwitch(config)
    assert not kill.loss_unlimited and unlimited_loss_text(kill) == ""
    fair = FairValue(Decimal(60000), 10**9, 1.0, 1)
    assert not kill.evaluate(10**9, fair, Decimal(0))
    assert kill.evaluate(10**9, fair, Decimal(pnl)) is trips, kill.reason


def test_the_class_refuses_both_limits_none_unless_unlimited_loss() -> None:
    """Programmatic users (mmkit.testing, sweeps) get the same rule as a config file."""
    with pytest.raises(ValueError, match="both None"):
        KillSwitchConfig(max_loss=None, max_drawdown=None)
    with pytest.raises(ValueError, match="unlimited_loss is set but a loss limit is too"):
        KillSwitchConfig(max_drawdown=None, unlimited_loss=True)
    assert KillSwitch(KillSwitchConfig(max_loss=None, max_drawdown=None, unlimited_loss=True)).loss_unlimited


async def test_start_logs_a_warning_and_the_live_status_shows_it(tmp_path: Path) -> None:
    loaded = load_engine_config(write(tmp_path, BOTH_NULL + ", unlimited_loss: true"))
    built = build(loaded, Clock(ClockMode.REALTIME))
    records: list[tuple[str, str]] = []
    sink = logger.add(lambda m: records.append((m.record["level"].name, m.record["message"])), level="WARNING")
    try:
        console = await start_console(built)
    finally:
        logger.remove(sink)
    await console.close()
    assert [(level, text) for level, text in records if "NO LOSS LIMIT" in text] == [
        ("WARNING", f"instance layered-example runs with {unlimited_loss_text(built.engine.runner.kill_switch)}")]
    shown = format_live({"ticks": 1, "kill_switch": {"unlimited_loss": unlimited_loss_text(
        built.engine.runner.kill_switch)}})
    assert "kill switch  NO LOSS LIMIT (risk.kill_switch.unlimited_loss: true" in shown


async def test_a_start_with_a_limit_logs_no_such_warning(tmp_path: Path) -> None:
    built = build(load_engine_config(write(tmp_path, "max_loss: null, max_drawdown: 500")),
                  Clock(ClockMode.REALTIME))
    records: list[str] = []
    sink = logger.add(lambda m: records.append(m.record["message"]), level="WARNING")
    try:
        console = await start_console(built)
    finally:
        logger.remove(sink)
    await console.close()
    assert not [r for r in records if "LOSS LIMIT" in r]
    assert "kill switch" not in format_live({"ticks": 1, "kill_switch": {"unlimited_loss": ""}})


@pytest.mark.parametrize(("kill_switch", "shown"), [
    (KillSwitchConfig(max_loss=None, max_drawdown=None, unlimited_loss=True), True),
    (None, True),  # enabled: false, no kill switch at all: the page used to say "kill switch ok"
    (KillSwitchConfig(max_loss=None), False),
])
def test_the_control_status_and_the_dashboard_snapshot_say_it(
    tmp_path: Path, kill_switch: KillSwitchConfig | None, shown: bool
) -> None:
    """``mmkit ctl status`` reads ControlChannel.status; the page and ``mmkit status`` read the snapshot."""
    from types import SimpleNamespace

    from mmkit.app.assembly import RiskSettings
    from mmkit.app.config import ConsoleDashboardSection, EngineSection
    from mmkit.app.console.dashboard import Dashboard
    from mmkit.app.control.channel import ControlChannel
    from mmkit.testing.harness import Harness
    from strategies.simple import SimpleConfig, SimpleController

    h = Harness(SimpleController(SimpleConfig(half_spread_bps=Decimal(10), order_size=Decimal("0.5"))),
                risk=RiskSettings(kill_switch=kill_switch))
    h.set_fair("60000")
    h.tick(2)
    assert ControlChannel(h.engine, instance="t").status()["kill_switch"]["unlimited_loss"] is shown
    config = SimpleNamespace(engine=EngineSection(instance="t", output_dir=str(tmp_path)))
    dashboard = Dashboard(SimpleNamespace(engine=h.engine, config=config, hedge=None),
                          ConsoleDashboardSection(port=0), None)
    dashboard.refresh()
    text = dashboard.snapshot["kill_switch"]["unlimited_loss"]
    assert text.startswith("NO LOSS LIMIT") if shown else text == ""
    if kill_switch is None:
        assert "risk.kill_switch.enabled: false" in text
    assert ("NO LOSS LIMIT" in format_live(dashboard.snapshot)) is shown


def test_check_passes_the_opt_in_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mmkit.app.cli import main

    path = write(tmp_path, BOTH_NULL + ", unlimited_loss: true")
    assert main(["check", str(path), "--output-dir", str(tmp_path / "home")]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "WARNING: no loss limit: risk.kill_switch.unlimited_loss is true" in out, out
    assert main(["check", str(write(tmp_path, "max_loss: null")), "--output-dir", str(tmp_path / "home")]) == 0
    assert "no loss limit" not in capsys.readouterr().out


async def test_a_start_with_the_kill_switch_disabled_logs_a_warning_too(tmp_path: Path) -> None:
    built = build(load_engine_config(write(tmp_path, "enabled: false")), Clock(ClockMode.REALTIME))
    assert built.engine.runner.kill_switch is None
    records: list[str] = []
    sink = logger.add(lambda m: records.append(m.record["message"]), level="WARNING")
    try:
        console = await start_console(built)
    finally:
        logger.remove(sink)
    await console.close()
    assert [r for r in records if "NO LOSS LIMIT" in r] == [
        "instance layered-example runs with NO LOSS LIMIT (risk.kill_switch.enabled: false: no kill switch at all)"]
