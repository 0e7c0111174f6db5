"""`mmkit start` as a user runs it: a subprocess, stopped with SIGINT."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e


def mmkit(*args: str, cwd: Path = REPO) -> list[str]:
    return [sys.executable, "-m", "mmkit.app.cli", *args]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def test_start_layered_example_then_sigint_leaves_nothing_open(tmp_path: Path) -> None:
    config = tmp_path / "layered.yml"
    text = (REPO / "strategies" / "layered_example.yml").read_text()
    config.write_text(text.replace("status_interval_s: 2", f"status_interval_s: 1\n  output_dir: {tmp_path}"))
    stderr_file = (tmp_path / "stderr.log").open("w+")
    proc = subprocess.Popen(
        mmkit("start", str(config)), cwd=REPO, env=env(), stdout=subprocess.PIPE, stderr=stderr_file, text=True
    )
    try:
        # Wait until it is quoting: the live status table shows our quotes.
        deadline = time.monotonic() + 30
        seen = ""
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            seen += line
            if "our quotes  bid" in line and "(3+3 orders)" in line:
                break
        assert "(3+3 orders)" in seen, seen
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    stderr_file.seek(0)
    err = stderr_file.read()
    assert proc.returncode == 0, err[-3000:]
    assert "final report" in out
    assert re.search(r"open_orders_at_venue +\[\]", out)
    reports = list((tmp_path / "reports").glob("layered-example-*.json"))
    assert len(reports) == 1
    report = json.loads(reports[0].read_text())
    assert report["open_orders_at_venue"] == []
    assert report["position"] == report["position_from_fills"]
    assert "SIGINT received" in err


def test_bad_configs_name_the_key_and_send_nothing(tmp_path: Path) -> None:
    base = (REPO / "strategies" / "layered_example.yml").read_text()
    cases = {
        "unknown key": (base.replace("levels: 3", "levels: 3\n    levles: 4"), "strategy.params", "'levles'"),
        "wrong type": (base.replace("order_size: 0.01", "order_size: lots"), "strategy.params.order_size", "number"),
        "negative spread": (base.replace("base_spread_pct: 0.1", "base_spread_pct: -0.1"), "strategy.params",
                            "base_spread_pct"),
        "bad section": (base.replace("tick_ms: 100", "tick_ms: 100\n  colour: red"), "engine", "'colour'"),
    }
    for name, (text, key, reason) in cases.items():
        path = tmp_path / f"{name.replace(' ', '_')}.yml"
        path.write_text(text)
        result = subprocess.run(mmkit("start", str(path)), cwd=REPO, env=env(), capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 2, (name, result.stderr[-2000:])
        assert f"{path}: {key}" in result.stderr, (name, result.stderr[-2000:])
        assert reason in result.stderr, (name, result.stderr[-2000:])
        assert "starting:" not in result.stderr  # nothing was assembled or connected


def test_check_validates_without_trading() -> None:
    result = subprocess.run(mmkit("check", "strategies/layered_example.yml"), cwd=REPO, env=env(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout and "LayeredController" in result.stdout


def test_help_works() -> None:
    result = subprocess.run(mmkit("--help"), cwd=REPO, env=env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for command in ("start", "check", "demo", "backtest", "sim"):
        assert command in result.stdout


def test_missing_secrets_are_named_before_anything_connects() -> None:
    base_env = {k: v for k, v in env().items() if not k.startswith(("TRUEX_", "KRAKEN_"))}
    config = "strategies/truex_btc_pyusd.yml"
    result = subprocess.run(mmkit("start", config), cwd=REPO, env=base_env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"{config}: venue.settings.api_key: secret environment variable TRUEX_API_KEY is not set" in (
        result.stderr
    )
    # With TrueX's keys set, the next missing secret is the hedge venue's, named by its key.
    truex = {**base_env, "TRUEX_API_KEY": "k", "TRUEX_SECRET_KEY": "s"}
    result = subprocess.run(mmkit("start", config), cwd=REPO, env=truex, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "hedge.venue.settings.api_key: secret environment variable KRAKEN_API_KEY is not set" in result.stderr
    assert "logon" not in result.stderr.lower()  # nothing was sent


@pytest.mark.shared_data
def test_paper_mode_trades_the_truex_config_on_a_simulated_venue(tmp_path: Path, shared_data: Path) -> None:
    """--paper: the configured venue's rules on a simulated exchange that follows the reference data;
    no TrueX session is opened (no TrueX keys needed), fills come from the reference's trades."""
    base_env = {k: v for k, v in env().items() if not k.startswith(("TRUEX_", "KRAKEN_"))}
    result = subprocess.run(
        mmkit("start", "strategies/truex_btc_pyusd.yml", "--paper", "--quiet", "--run-for", "6",
              "--reference-replay", str(shared_data / "binance_spot_btcusdt"), "--replay-speed", "10",
              "--sim-hedge", "--output-dir", str(tmp_path)),
        cwd=REPO, env=base_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(next((tmp_path / "reports").glob("*.json")).read_text())
    assert report["venue"] == "truex" and "PAPER" in report["setup"]
    assert report["fills"] > 0
    assert report["open_orders_at_venue"] == []
    assert report["position"] == report["position_from_fills"]
