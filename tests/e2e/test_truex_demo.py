"""Issue 4's acceptance, as `make demo` runs it: strategies/truex_btc_pyusd.yml against the local
TrueX FIX exchange (a separate process) over real FIX on loopback, priced off the shared recording.

It must quote, get filled, replace on price moves without a single rate-limit reject, and stop with
zero open orders on the exchange side, as the exchange itself reports it (not the client's belief).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.e2e, pytest.mark.shared_data]


def test_demo_quotes_fills_replaces_and_leaves_the_exchange_flat(shared_data: Path) -> None:
    demo_dir = REPO / "var" / "demo"
    before = set(demo_dir.glob("*/reports/*.json")) if demo_dir.exists() else set()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("TRUEX_API_KEY", None)
    env.pop("TRUEX_SECRET_KEY", None)
    result = subprocess.run(
        [sys.executable, "-m", "mmkit.app.cli", "demo", "--duration", "20",
         "--data", str(shared_data / "binance_spot_btcusdt")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "exchange's own view: client orders still open on the exchange: 0" in result.stdout, result.stdout[-2000:]
    new = sorted(set(demo_dir.glob("*/reports/*.json")) - before)
    assert len(new) == 1
    report = json.loads(new[0].read_text())
    assert report["venue"] == "truex"
    assert report["open_orders_at_venue"] == []
    assert report["fills"] > 0, report
    assert report["orders_replaced"] > 0, report
    assert report["order_rejects"] == 0 and report["cancel_or_replace_rejects"] == 0, report
    assert report["position"] == report["position_from_fills"]
    assert report["malformed_messages"] == 0
