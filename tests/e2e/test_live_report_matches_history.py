"""The live final report and `mmkit history` give the same figures for the same session.

A real `mmkit start` of the layered example (in-process simulated venue, SQLite
store) for a few seconds, then `mmkit history` on the same config, both as
subprocesses. The session's realized and unrealized PnL, fees and spread
capture must agree: both come from mmkit.analytics.ledger over the stored rows.
The run also leaves the same files as a backtest beside its report.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e


def mmkit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mmkit.app.cli", *args],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120,
    )


def history_row(text: str, session_id: str) -> dict[str, str]:
    """The row of ``session_id`` in `mmkit history --by session`, by column (fees may span several tokens)."""
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("session ")).split()
    tokens = next(line for line in lines if line.startswith(session_id)).split()
    fixed = header.index("fees")
    row = dict(zip(header[:fixed], tokens[:fixed], strict=True))
    row["fees"] = " ".join(tokens[fixed:-2])
    row["maker%"], row["capture_bps"] = tokens[-2], tokens[-1]
    return row


def test_live_report_and_history_agree_for_the_session(tmp_path: Path) -> None:
    config = tmp_path / "layered.yml"
    text = (REPO / "strategies" / "layered_example.yml").read_text()
    config.write_text(text.replace("status_interval_s: 2", f"status_interval_s: 2\n  output_dir: {tmp_path}"))
    done = mmkit("start", "--run-for", "5", "--quiet", str(config))
    assert done.returncode == 0, done.stderr[-3000:]
    report_file = next((tmp_path / "reports").glob("layered-example-*.json"))
    report = json.loads(report_file.read_text())
    assert report["fills"] > 0, "the comparison means nothing without fills"
    assert report["figures_source"].startswith("store")

    history = mmkit("history", str(config), "--by", "session")
    assert history.returncode == 0, history.stderr[-2000:]
    session_id = next(line.split()[0] for line in history.stdout.splitlines() if "BTC-PYUSD" in line)
    row = history_row(history.stdout, session_id)
    assert int(row["trades"]) == report["fills"]
    assert Decimal(row["realized"]) == Decimal(report["realized_pnl"])
    assert Decimal(row["unrealized"]) == Decimal(report["unrealized_pnl"])
    fees = dict(zip(row["fees"].split()[1::2], row["fees"].split()[0::2], strict=True))
    assert {c: Decimal(v) for c, v in fees.items()} == {
        c: Decimal(v) for c, v in report["fees_by_currency"].items()
    }
    capture = report["avg_spread_capture_bps"]
    if capture is None:
        assert row["capture_bps"] == "-"
    else:
        assert Decimal(row["capture_bps"]) == Decimal(capture).quantize(Decimal("0.01"))

    # quoting_ticks now counts two-sided ticks, never more than the ticks with quoting enabled
    assert report["quoting_ticks"] <= report["quoting_enabled_ticks"] <= report["ticks"]
    assert report["sharpe"] is None and "under 20 days" in report["sharpe_note"]

    run_dir = report_file.with_suffix("")
    for name in ("report.json", "fills.csv", "orders.csv", "report.html"):
        assert (run_dir / name).is_file(), name
    files = json.loads((run_dir / "report.json").read_text())
    assert files["run"]["total_pnl"] == report["total_pnl"]
    # the tearsheet's figures (engine ledger, per-tick samples) agree with the store's for the same session
    assert Decimal(files["pnl"]["total"]) == Decimal(report["total_pnl"])
    assert Decimal(files["pnl"]["unrealized"]) == Decimal(report["unrealized_pnl"])
    assert len((run_dir / "fills.csv").read_text().splitlines()) == 1 + report["fills"]
