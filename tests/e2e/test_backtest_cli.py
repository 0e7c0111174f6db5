"""`mmkit backtest` as a user runs it: a subprocess on the shared recording, twice → identical report.

Uses ../shared/data/binance_spot_btcusdt (real recorded data), a 60-second window to stay quick.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("MMKIT_SHARED_DATA", REPO.parent / "shared" / "data"))

pytestmark = [pytest.mark.e2e, pytest.mark.shared_data]

CONFIG = """
engine: {instance: bt, tick_ms: 100}
venue: {connector: sim, rules: sim, symbol: BTC-PYUSD}
strategy:
  controller: strategies.skewed_ladder:SkewedLadderController
  params: {base_spread_bps: 10, levels: 1, base_size: 0.01}
risk:
  inventory: {max_position: 0.5, hedge_threshold: 0.2, emergency_position: 0.6}
"""


def backtest(config: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    data = SHARED / "binance_spot_btcusdt"
    cmd = [sys.executable, "-m", "mmkit.app.cli", "backtest", str(config), "--data", str(data),
           "--from", "2024-08-08T23:54:20Z", "--to", "2024-08-08T23:55:20Z", "--out", str(out), *extra]
    return subprocess.run(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
                          text=True, timeout=120)


def test_backtest_cli_writes_report_and_plots_and_is_deterministic(tmp_path: Path, shared_data: Path) -> None:
    config = tmp_path / "ladder.yml"
    config.write_text(CONFIG)
    first = backtest(config, tmp_path / "a")
    assert first.returncode == 0, first.stderr[-2000:]
    assert "backtest [" in first.stderr and "100.0 %" in first.stderr  # the progress bar
    assert "══ backtest report ══" in first.stdout and "quote uptime" in first.stdout
    for name in ("report.json", "fills.csv", "orders.csv", "report.html", "backtest.log"):
        assert (tmp_path / "a" / name).is_file(), name
        assert name in first.stdout
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    assert report["strategy"] == "SkewedLadderController" and report["setup"] == "sim"
    assert 595 <= report["ticks"] <= 601  # 60 s of 100 ms ticks
    assert report["fills"]["count"] > 0

    second = backtest(config, tmp_path / "b", "--no-progress", "--seed", "7")
    assert second.returncode == 0, second.stderr[-2000:]
    assert "backtest [" not in second.stderr
    assert (tmp_path / "b" / "report.json").read_text() == (tmp_path / "a" / "report.json").read_text()
    for name in ("fills.csv", "orders.csv"):
        assert (tmp_path / "b" / name).read_text() == (tmp_path / "a" / name).read_text(), name


def test_backtest_cli_rejects_a_bad_time(tmp_path: Path, shared_data: Path) -> None:
    config = tmp_path / "ladder.yml"
    config.write_text(CONFIG)
    data = SHARED / "binance_spot_btcusdt"
    result = subprocess.run(
        [sys.executable, "-m", "mmkit.app.cli", "backtest", str(config), "--data", str(data), "--to", "yesterday",
         "--out", str(tmp_path / "x")],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert "not a time" in result.stderr


def test_backtest_of_the_shipped_truex_config_needs_no_live_keys(tmp_path: Path, shared_data: Path) -> None:
    """A desk backtests its production file as it is: nothing connects, so no secret may be demanded."""
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_SECRET_KEY"))}
    data = SHARED / "binance_spot_btcusdt"
    result = subprocess.run(
        [sys.executable, "-m", "mmkit.app.cli", "backtest", str(REPO / "strategies" / "truex_btc_pyusd.yml"),
         "--data", str(data), "--setup", "replay", "--to", "2024-08-08T23:55:20Z", "--no-progress",
         "--out", str(tmp_path / "truex")],
        cwd=REPO, env={**env, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "truex" / "report.json").read_text())
    assert report["strategy"] == "SkewedLadderController" and report["setup"] == "replay (conservative queue)"
    assert report["counters"]["orders_left_open"] == 0
