"""Issue 13 "Tried as a new user would", item by item, as a user meets it: the ``mmkit`` command in a subprocess.

Each case asserts the documented exit code (mmkit.app.outcome, docs/operations.md), that stderr holds no
traceback, and that the one line that explains it names the file, the key or the venue.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.truex.harness import free_ports

REPO = Path(__file__).resolve().parents[2]
LAYERED = (REPO / "strategies" / "layered_example.yml").read_text()

pytestmark = pytest.mark.e2e

BROKEN_CONTROLLERS = '''
from decimal import Decimal

from mmkit.model import Side, TargetQuote
from mmkit.strategy import Controller


class NoTick(Controller):
    """Forgot on_tick."""


class Raises(Controller):
    def on_tick(self, ctx):
        api_secret = "hunter2-never-logged"  # diagnose=False: a local's value never reaches a log
        raise RuntimeError("model blew up " + str(len(api_secret)))


class Tuples(Controller):
    def on_tick(self, ctx):
        return [(Side.BUY, 0, ctx.fair.price - 10, Decimal("0.01"))]


class ReturnsNone(Controller):
    def on_tick(self, ctx):
        return None


class TuplesLater(Controller):
    """Right on its first tick (what `mmkit start` checks before it builds anything), tuples after."""

    def __init__(self):
        super().__init__()
        self.ticks = 0

    def on_tick(self, ctx):
        self.ticks += 1
        if self.ticks == 1:
            return [TargetQuote(Side.BUY, 0, ctx.fair.price - 10, Decimal("0.01"))]
        return [(Side.BUY, 0, ctx.fair.price - 10, Decimal("0.01"))]
'''


def mmkit(*args: str, cwd: Path, extra_env: dict[str, str] | None = None, timeout: float = 180,
          pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join(str(p) for p in (REPO, pythonpath) if p is not None)
    env = {**os.environ, "PYTHONPATH": path, **(extra_env or {})}
    env.pop("MMKIT_HOME", None)
    return subprocess.run([sys.executable, "-m", "mmkit.app.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def one_line_error(result: subprocess.CompletedProcess[str], code: int, *names: str) -> str:
    """The run exited ``code``, with no traceback on stderr, and its last line names every one of ``names``."""
    assert result.returncode == code, f"exit {result.returncode}\nstdout:\n{result.stdout[-2000:]}\n" \
                                      f"stderr:\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "never retrieved" not in result.stderr, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, "nothing on stderr"
    last = lines[-1]
    for name in names:
        assert name in last, f"{name!r} not in the line: {last!r}"
    return last


@pytest.fixture
def strategies(tmp_path: Path) -> Path:
    """A user's own module of controllers, in a folder of its own on PYTHONPATH."""
    folder = tmp_path / "user_code"
    folder.mkdir()
    (folder / "broken_controllers.py").write_text(BROKEN_CONTROLLERS)
    return folder


def layered_with(tmp_path: Path, controller: str, name: str = "cfg.yml", extra: str = "") -> Path:
    text = LAYERED.replace("strategies.layered:LayeredController", controller)
    start, end = text.index("  params:"), text.index("risk:")
    path = tmp_path / name
    path.write_text(text[:start] + text[end:] + extra)
    return path


def replay_config(tmp_path: Path, controller: str, data: Path) -> Path:
    path = tmp_path / "bt.yml"
    path.write_text(
        "engine: {instance: broken-bt, controller_max_failures: 20}\n"
        "venue: {connector: sim, symbol: BTC-PYUSD}\n"
        f"reference:\n  replay: {{path: {data}}}\n"
        f"strategy: {{controller: '{controller}'}}\n"
    )
    return path


# -- 1. a broken controller is not a successful run ------------------------------------------------------


@pytest.mark.shared_data
def test_1_backtest_of_a_raising_controller_exits_4_and_the_table_shows_the_errors(
    tmp_path: Path, strategies: Path, shared_data: Path
) -> None:
    config = replay_config(tmp_path, "broken_controllers:Raises", shared_data / "binance_spot_btcusdt")
    out = tmp_path / "out"
    result = mmkit("backtest", str(config), "--data", str(shared_data / "binance_spot_btcusdt"),
                   "--to", "2024-08-08T23:55:30Z", "--out", str(out), cwd=tmp_path, pythonpath=strategies)
    assert result.returncode == 4, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert any("quoting halted: controller Raises failed 20 ticks in a row (RuntimeError: model blew up" in line
               for line in result.stderr.splitlines())
    assert "controller errors                20" in result.stdout
    assert "PROBLEM" in result.stdout and "quoting halted: controller Raises failed 20 ticks" in result.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["counters"]["controller_errors"] == 20
    assert [p["exit_code"] for p in report["counters"]["problems"]] == [4, 4]
    # item 2: the log holds the traceback once, the repeats as counts, simulated time, no local values
    log = (out / "backtest.log").read_text()
    assert log.count("Traceback") == 1
    assert "(repeated 10 times; traceback shown once)" in log
    assert "hunter2-never-logged" not in log and "hunter2-never-logged" not in result.stderr
    errors = [line for line in log.splitlines() if " ERROR " in line and "in all;" not in line]  # not the summary
    assert errors and all(line.startswith("2024-08-08T23:5") and "(sim)" in line for line in errors)
    assert len(log.splitlines()) < 60  # 20 failures, not 20 tracebacks
    assert "\r" not in result.stderr  # item 6: the progress display is plain lines when redirected


def test_1_a_controller_without_on_tick_is_refused_by_check_and_backtest(tmp_path: Path, strategies: Path) -> None:
    config = layered_with(tmp_path, "broken_controllers:NoTick")
    result = mmkit("check", str(config), cwd=tmp_path, pythonpath=strategies)
    one_line_error(result, 2, str(config), "strategy.controller", "NoTick does not implement on_tick")
    result = mmkit("backtest", str(config), "--data", str(tmp_path), cwd=tmp_path, pythonpath=strategies)
    one_line_error(result, 2, str(config), "strategy.controller", "NoTick does not implement on_tick")


@pytest.mark.parametrize(("controller", "got"), [("Tuples", "got tuple"), ("ReturnsNone", "got NoneType")])
def test_1_check_runs_the_controller_once_and_names_what_it_returned(
    tmp_path: Path, strategies: Path, controller: str, got: str
) -> None:
    config = layered_with(tmp_path, f"broken_controllers:{controller}")
    result = mmkit("check", str(config), cwd=tmp_path, pythonpath=strategies)
    one_line_error(result, 2, str(config), "strategy.controller",
                   f"{controller}.on_tick must return a list of TargetQuote, {got}")


def test_1_start_refuses_a_controller_that_fails_its_first_tick_before_anything_is_built(
    tmp_path: Path, strategies: Path
) -> None:
    config = layered_with(tmp_path, "broken_controllers:Tuples")
    result = mmkit("start", str(config), "--run-for", "3", cwd=tmp_path, pythonpath=strategies)
    one_line_error(result, 2, str(config), "strategy.controller",
                   "Tuples.on_tick must return a list of TargetQuote, got tuple")
    assert not (tmp_path / "var" / "layered-example").exists()  # no log file, store or control socket


def test_1_start_of_a_controller_returning_tuples_in_the_run_halts_shows_it_and_exits_4(
    tmp_path: Path, strategies: Path
) -> None:
    config = layered_with(tmp_path, "broken_controllers:TuplesLater",
                          extra="").read_text().replace("status_interval_s: 2", "status_interval_s: 1\n"
                                                        "  controller_max_failures: 5")
    path = tmp_path / "live.yml"
    path.write_text(config)
    result = mmkit("start", str(path), "--run-for", "3", "--log-json", cwd=tmp_path, pythonpath=strategies)
    assert result.returncode == 4, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert "[HALTED: controller TuplesLater failed 5 ticks in a row" in result.stdout  # the status block
    assert "[quoting]" not in result.stdout
    # item 2 / 6: --log-json after the sub-command: every stderr line is one JSON object
    records = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    messages = [r["record"]["message"] for r in records]
    assert any("quoting halted: controller TuplesLater failed 5 ticks in a row" in m for m in messages)
    folded = [m for m in messages if "on_tick failed" in m]
    assert len(folded) == 2 and "repeated 5 times in all; traceback shown once" in folded[1]  # first + total
    report = json.loads(next((tmp_path / "var" / "layered-example" / "reports").glob("*.json")).read_text())
    assert report["controller_errors"] == 5
    assert {p["kind"] for p in report["problems"]} == {"engine_failure"}
    # The run log in the instance home has the first traceback, once.
    run_log = (tmp_path / "var" / "layered-example" / "logs" / "layered-example.log").read_text()
    assert run_log.count("ControllerResultError") >= 1


# -- 2. a clean TrueX stop logs no warnings -------------------------------------------------------------


def test_2_a_clean_truex_stop_logs_no_warnings(tmp_path: Path, truex_sim: tuple[int, int]) -> None:
    oe, md = truex_sim
    config = truex_config(tmp_path, oe, md, "  random_walk: {start_price: 60000}")
    result = mmkit("start", str(config), "--run-for", "3", "--quiet", cwd=tmp_path, timeout=120,
                   extra_env={"TRUEX_API_KEY": "right-key", "TRUEX_SECRET_KEY": "right-secret"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OE session logged on" in result.stderr
    assert "logout from venue" in result.stderr  # the sessions did log out...
    assert " WARNING " not in result.stderr, result.stderr[-3000:]  # ...as expected, without a warning


# -- 3. one line instead of a traceback ---------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def truex_config(tmp_path: Path, oe_port: int, md_port: int, reference: str) -> Path:
    path = tmp_path / "truex.yml"
    path.write_text(f"""
engine: {{instance: truex-err}}
venue:
  connector: connectors.truex:TrueXConnector
  rules: truex
  symbol: BTC-PYUSD
  settings:
    oe: {{host: 127.0.0.1, port: {oe_port}, sender_comp_id: MMKIT_OE, target_comp_id: TRUEX_UAT_OE}}
    md: {{host: 127.0.0.1, port: {md_port}, sender_comp_id: MMKIT_MD, target_comp_id: TRUEX_UAT_MD}}
    party_id: MMKIT_CLIENT
    api_key: "${{TRUEX_API_KEY}}"
    secret_key: "${{TRUEX_SECRET_KEY}}"
    connect_timeout_s: 3
reference:
{reference}
strategy: {{controller: "strategies.simple:SimpleController"}}
""")
    return path


DEAD_KRAKEN = """  sources:
    - {{name: kraken, connector: "connectors.ccxt:CcxtConnector", rules: kraken, symbol: BTC/USD,
       settings: {{urls: {{api: {{public: "http://127.0.0.1:{port}/0/public", ws: {{public: "ws://127.0.0.1:{port}/ws"}}}}}}}}}}
"""


def test_3_a_dead_reference_source_at_start_degrades_with_one_warning(tmp_path: Path) -> None:
    port = closed_port()
    config = truex_config(tmp_path, 1, 1, DEAD_KRAKEN.format(port=port))
    result = mmkit("start", str(config), "--paper", "--run-for", "2", "--quiet", cwd=tmp_path, timeout=120,
                   extra_env={"TRUEX_API_KEY": "k", "TRUEX_SECRET_KEY": "s"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    [warning] = [line for line in result.stderr.splitlines() if " WARNING " in line]
    assert "kraken unreachable at start" in warning and "starting without it" in warning
    assert "final report" in result.stdout


def test_3_an_unreachable_hedge_venue_refuses_to_start_in_one_line(tmp_path: Path) -> None:
    """Hedging is a risk control: unlike a reference source, its venue is required."""
    port = closed_port()
    config = truex_config(tmp_path, 1, 1, "  random_walk: {start_price: 60000}")
    config.write_text(config.read_text() + f"""hedge:
  enabled: true
  venue:
    connector: "connectors.ccxt:CcxtConnector"
    rules: kraken
    symbol: BTC/USD
    settings: {{urls: {{api: {{public: "http://127.0.0.1:{port}/0/public", private: "http://127.0.0.1:{port}/0/private",
                                ws: {{public: "ws://127.0.0.1:{port}/ws"}}}}}}}}
""")
    result = mmkit("start", str(config), "--paper", "--run-for", "2", "--quiet", cwd=tmp_path, timeout=120,
                   extra_env={"TRUEX_API_KEY": "k", "TRUEX_SECRET_KEY": "s"})
    one_line_error(result, 3, "refusing to quote", "cannot connect to kraken")


def test_3_an_unreachable_quoting_venue_refuses_to_start_in_one_line(tmp_path: Path) -> None:
    config = truex_config(tmp_path, closed_port(), closed_port(), "  random_walk: {start_price: 60000}")
    result = mmkit("start", str(config), "--run-for", "2", "--quiet", cwd=tmp_path, timeout=120,
                   extra_env={"TRUEX_API_KEY": "k", "TRUEX_SECRET_KEY": "s"})
    one_line_error(result, 3, "refusing to quote", "cannot connect to the quoting venue truex")


@pytest.fixture
def truex_sim(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """The local TrueX FIX exchange, knowing the key pair (right-key, right-secret)."""
    oe, md = free_ports(2)  # both bound by the simulator: they must differ
    env = {**os.environ, "PYTHONPATH": str(REPO), "TRUEX_API_KEY": "right-key", "TRUEX_SECRET_KEY": "right-secret"}
    log = (tmp_path / "sim.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "connectors.truex.sim", "--oe-port", str(oe), "--md-port", str(md)],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "sim.log").read_text()
            with socket.socket() as a, socket.socket() as b:
                if a.connect_ex(("127.0.0.1", oe)) == 0 and b.connect_ex(("127.0.0.1", md)) == 0:
                    break
            time.sleep(0.2)
        else:  # not listening yet: say so here, not as a puzzling logon error in the test
            pytest.fail(f"the TrueX simulator did not listen on {oe} and {md} within 60 s")
        yield oe, md
    finally:
        proc.kill()
        proc.wait(timeout=10)
        log.close()


def test_3_a_wrong_secret_is_refused_at_logon_in_one_line(tmp_path: Path, truex_sim: tuple[int, int]) -> None:
    oe, md = truex_sim
    config = truex_config(tmp_path, oe, md, "  random_walk: {start_price: 60000}")
    result = mmkit("start", str(config), "--run-for", "2", "--quiet", cwd=tmp_path, timeout=120,
                   extra_env={"TRUEX_API_KEY": "right-key", "TRUEX_SECRET_KEY": "wrong-secret"})
    one_line_error(result, 3, "refusing to quote", "cannot connect to the quoting venue truex", "logon failed")


def ran_layered(tmp_path: Path) -> Path:
    """A short clean run of the layered example whose config lives in its own folder; returns the config."""
    folder = tmp_path / "configs"
    folder.mkdir(exist_ok=True)
    config = folder / "layered.yml"
    config.write_text(LAYERED)
    result = mmkit("start", str(config), "--run-for", "1.5", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    return config


def test_3_status_and_history_on_a_corrupt_store_say_so_in_one_line(tmp_path: Path) -> None:
    config = ran_layered(tmp_path)
    store = config.parent / "var" / "layered-example" / "store" / "layered-example.sqlite"
    assert store.exists()
    store.write_bytes(b"this is not a database" * 100)
    for command in ("status", "history"):
        result = mmkit(command, str(config), cwd=tmp_path)
        one_line_error(result, 3, f"mmkit {command}: cannot read the store", str(store))


def test_3_status_and_history_with_postgresql_down_say_so_in_one_line(tmp_path: Path) -> None:
    port = closed_port()
    config = tmp_path / "pg.yml"
    config.write_text(LAYERED + f"store: {{url: 'postgresql+psycopg://mmkit@127.0.0.1:{port}/mmkit'}}\n")
    for command in ("status", "history"):
        result = mmkit(command, str(config), cwd=tmp_path)
        one_line_error(result, 3, f"mmkit {command}: cannot read the store", f"127.0.0.1:{port}")


def test_3_check_fails_on_a_store_it_cannot_use(tmp_path: Path) -> None:
    port = closed_port()
    config = tmp_path / "pg.yml"
    config.write_text(LAYERED + f"store: {{url: 'postgresql+psycopg://mmkit@127.0.0.1:{port}/mmkit'}}\n")
    result = mmkit("check", str(config), cwd=tmp_path)
    one_line_error(result, 2, str(config), "store.url", f"127.0.0.1:{port}")
    assert "OK" not in result.stdout
    redis_config = tmp_path / "redis.yml"
    redis_config.write_text(LAYERED + f"store: {{redis_url: 'redis://127.0.0.1:{port}/0'}}\n")
    result = mmkit("check", str(redis_config), cwd=tmp_path)
    one_line_error(result, 2, str(redis_config), "store.redis_url", f"127.0.0.1:{port}")


# -- 4. config gaps ------------------------------------------------------------------------------------------


def test_4_a_duplicate_key_fails_with_both_lines(tmp_path: Path) -> None:
    config = tmp_path / "dup.yml"
    config.write_text(LAYERED.replace("  tick_ms: 100\n", "  tick_ms: 100\n  instance: other\n"))
    lines = config.read_text().splitlines()
    first, second = lines.index("  instance: layered-example") + 1, lines.index("  instance: other") + 1
    result = mmkit("check", str(config), cwd=tmp_path)
    one_line_error(result, 2, f"{config}:{second}", "instance", f"lines {first} and {second}")


def test_4_a_literal_secret_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "secret.yml"
    config.write_text(LAYERED + "hedge:\n  venue: {connector: 'connectors.ccxt:CcxtConnector', rules: kraken, "
                                "symbol: BTC/USD, settings: {api_key: AKIA-pasted-by-mistake}}\n")
    result = mmkit("check", str(config), cwd=tmp_path)
    line = one_line_error(result, 2, str(config), "hedge.venue.settings.api_key", "${NAME}")
    assert "AKIA-pasted-by-mistake" not in line


def test_4_yaml_errors_bad_values_and_typos_name_file_line_value_and_suggestion(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(LAYERED.replace("symbol: BTC-PYUSD", "symbol: [BTC-PYUSD"))
    one_line_error(mmkit("check", str(broken), cwd=tmp_path), 2, f"{broken}:", "invalid YAML")
    value = tmp_path / "value.yml"
    value.write_text(LAYERED.replace("    levels: 3", "    levels: two"))
    one_line_error(mmkit("check", str(value), cwd=tmp_path), 2, "strategy.params.levels", "'two'")
    typo = tmp_path / "typo.yml"
    typo.write_text(LAYERED.replace("    order_size: 0.01", "    order_sise: 0.01"))
    one_line_error(mmkit("check", str(typo), cwd=tmp_path), 2, "strategy.params", "did you mean 'order_size'?")


def test_4_limits_that_contradict_each_other_fail_check(tmp_path: Path) -> None:
    ladder = tmp_path / "ladder.yml"
    ladder.write_text(LAYERED.replace("order_size: 0.01", "order_size: 0.4"))
    one_line_error(mmkit("check", str(ladder), cwd=tmp_path), 2, "strategy.params", "risk.inventory.max_position")
    hedge = tmp_path / "hedge.yml"
    hedge.write_text(LAYERED.replace("hedge_threshold: 0.5", "hedge_threshold: 1.1")
                     .replace("emergency_position: 1.2", "emergency_position: 2"))
    one_line_error(mmkit("check", str(hedge), cwd=tmp_path), 2, "risk.inventory.hedge_threshold", "max_position")


# -- 5. paths do not depend on the current directory --------------------------------------------------------


@pytest.mark.shared_data
def test_5_one_home_beside_the_config_whatever_the_current_directory(tmp_path: Path, shared_data: Path) -> None:
    config = ran_layered(tmp_path)  # started from tmp_path, the config lives in tmp_path/configs
    home = config.parent / "var" / "layered-example"
    assert len(list((home / "reports").glob("layered-example-*.json"))) == 1
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    status = mmkit("status", str(config), cwd=elsewhere)
    assert status.returncode == 0, status.stdout + status.stderr
    assert "layered-example" in status.stdout and str(home) in status.stdout
    history = mmkit("history", str(config), cwd=elsewhere)
    assert history.returncode == 0, history.stdout + history.stderr
    # A backtest of the same config writes under the same home, and a recording path in the config is
    # read against the config's folder.
    (config.parent / "data").symlink_to(shared_data)
    replayed = config.parent / "replayed.yml"
    replayed.write_text(LAYERED.replace("  random_walk: {start_price: 60000, volatility_bps: 5, seed: 7}",
                                        "  replay: {path: data/binance_spot_btcusdt}"))
    assert mmkit("check", str(replayed), cwd=elsewhere).returncode == 0
    result = mmkit("backtest", str(replayed), "--data", str(shared_data / "binance_spot_btcusdt"),
                   "--to", "2024-08-08T23:55:00Z", "--no-progress", cwd=elsewhere)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(list((home / "reports").glob("backtest-replayed-sim-*/report.json"))) == 1
    assert not (elsewhere / "reports").exists() and not (elsewhere / "var").exists()


# -- 6. CLI habits ----------------------------------------------------------------------------------------------


def test_6_version_and_global_options_anywhere(tmp_path: Path) -> None:
    from mmkit import __version__

    result = mmkit("--version", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == f"mmkit {__version__}"
    config = REPO / "strategies" / "layered_example.yml"
    for args in (("-v", "check", str(config)), ("check", str(config), "-v"), ("check", "--log-json", str(config))):
        result = mmkit(*args, cwd=tmp_path)
        assert result.returncode == 0, (args, result.stderr[-2000:])
        assert "OK" in result.stdout


def test_6_every_option_has_help() -> None:
    import argparse

    from mmkit.app.cli import build_parser

    parser = build_parser()
    missing = []
    stack = [("mmkit", parser)]
    while stack:
        name, current = stack.pop()
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                stack += [(f"{name} {sub}", p) for sub, p in action.choices.items()]
            elif not action.help and not isinstance(action, argparse._HelpAction):
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []
