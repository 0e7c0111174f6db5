"""The strategy file's ``simulation.balances`` is the backtest's starting account; ``--balance`` overrides it.

A desk backtesting a strategy for a small account writes the account once, in the file that is checked,
backtested, swept and started. The run must start from it (and say so in ``report["balances"]``), refuse
the orders it cannot pay for, let ``--balance`` win when given, and refuse a file whose balances do not
fit the quoted instrument before anything runs. Synthetic Binance spot recording: no shared data needed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from mmkit.app.outcome import EXIT_USAGE
from mmkit.testing.binance_recordings import synthetic_recording

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[3]
CLI = "import sys; from mmkit.app.cli import main; sys.exit(main())"

CONFIG = """
engine: {instance: bt, tick_ms: 100}
venue: {connector: sim, rules: binance, symbol: BTCUSDT}
strategy:
  controller: strategies.skewed_ladder:SkewedLadderController
  params: {base_spread_bps: 1, levels: 2, base_size: 0.01}
risk:
  inventory: {max_position: 1, hedge_threshold: 0.5, emergency_position: 2}
"""
SMALL = "simulation:\n  balances: {BTC: 0.01, USDT: 100}\n"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rec") / "data"
    synthetic_recording("spot", seconds=60).write(path)
    return path


def backtest(tmp_path: Path, data: Path, config_text: str, *options: str) -> tuple[subprocess.CompletedProcess[str],
                                                                                   dict[str, Any] | None]:
    config = tmp_path / "small.yml"
    config.write_text(config_text, encoding="utf-8")
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-c", CLI, "backtest", str(config), "--data", str(data), "--setup", "replay",
         "--no-progress", "--out", str(out), *options],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=300,
    )
    report = json.loads((out / "report.json").read_text(encoding="utf-8")) if (out / "report.json").exists() else None
    return done, report


def test_a_small_account_in_the_file_is_the_backtests_and_orders_beyond_it_are_refused(
    tmp_path: Path, data: Path
) -> None:
    done, report = backtest(tmp_path, data, CONFIG + SMALL)
    assert done.returncode == 0, done.stderr[-2000:]
    assert report is not None
    balances = report["balances"]
    assert balances["start"] == {"BTC": "0.01", "USDT": "100"}
    assert balances["source"] == "simulation.balances (small.yml)"
    assert report["rejections"]["orders_by_reason"]["INSUFFICIENT_FUNDS"] > 0
    assert all(D(v) >= 0 for v in balances["end"].values()) and balances["overdrafts"] == 0
    assert "start BTC 0.01, USDT 100 (simulation.balances (small.yml))" in done.stdout


def test_balance_on_the_command_line_wins_over_the_file(tmp_path: Path, data: Path) -> None:
    """All of the file's account is replaced: an asset the command line leaves out starts at 0, as documented."""
    done, report = backtest(tmp_path, data, CONFIG + SMALL, "--balance", "BTC=5")
    assert done.returncode == 0, done.stderr[-2000:]
    assert report is not None
    assert report["balances"]["start"] == {"BTC": "5", "USDT": "0"}
    assert report["balances"]["source"] == "--balance"


def test_a_file_balance_of_another_asset_is_refused_in_one_line_before_the_run(tmp_path: Path, data: Path) -> None:
    """A file written for BTC-PYUSD, backtested on BTCUSDT: PYUSD would be dropped and USDT start at 0."""
    done, report = backtest(tmp_path, data, CONFIG + "simulation:\n  balances: {BTC: 1, PYUSD: 1000}\n")
    assert done.returncode == EXIT_USAGE, done.stdout[-2000:]
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith(f"config error: {tmp_path / 'small.yml'}: "), line
    assert "simulation.balances.PYUSD: PYUSD is not an asset of BTCUSDT (BTC or USDT)" in line, line
    assert report is None and not (tmp_path / "out").exists()


def test_a_negative_file_balance_is_refused_naming_the_key(tmp_path: Path, data: Path) -> None:
    done, report = backtest(tmp_path, data, CONFIG + "simulation:\n  balances: {BTC: -0.5, USDT: 100}\n")
    assert done.returncode == EXIT_USAGE
    assert "small.yml: simulation.balances.BTC: a starting balance is a finite amount of at least 0" in done.stderr
    assert report is None
