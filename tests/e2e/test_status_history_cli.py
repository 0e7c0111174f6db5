"""`mmkit status` and `mmkit history` as a user runs them, after a short `mmkit start`."""

from __future__ import annotations

import csv
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
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=90,
    )


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A config whose output goes to a temp dir, after a 3 s run of the layered example."""
    out = tmp_path_factory.mktemp("run")
    config = out / "layered.yml"
    text = (REPO / "strategies" / "layered_example.yml").read_text()
    config.write_text(text.replace("status_interval_s: 2", f"status_interval_s: 2\n  output_dir: {out}"))
    done = mmkit("start", "--run-for", "3", "--quiet", str(config))
    assert done.returncode == 0, done.stderr[-3000:]
    return config


def test_status_reads_the_store_after_the_run(ran: Path) -> None:
    done = mmkit("status", str(ran), "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    status = json.loads(done.stdout)["status"]
    assert status["source"] == "store" and status["instance"] == "layered-example"
    assert status["running"] is False
    assert status["open_orders"] == []  # the clean stop cancelled everything, and that was recorded
    report = json.loads(next((ran.parent / "reports").glob("layered-example-*.json")).read_text())
    position = Decimal(status["positions"].get("sim:BTC-PYUSD", "0"))
    assert position == Decimal(report["position_from_fills"])
    assert Decimal(status["pnl"]["*:*"]["position"]) == position
    assert status["kill_switch"]["active"] is False

    text = mmkit("status", str(ran))
    assert text.returncode == 0
    for label in ("instance", "heartbeat", "kill switch  ok", "position", "open orders  0"):
        assert label in text.stdout


def test_history_tables_and_csv_agree_with_the_run(ran: Path, tmp_path: Path) -> None:
    export = tmp_path / "fills.csv"
    done = mmkit("history", str(ran), "--by", "day", "--csv", str(export))
    assert done.returncode == 0, done.stderr[-2000:]
    header = next(line for line in done.stdout.splitlines() if line.startswith("day "))
    for column in ("trades", "volume", "realized", "unrealized", "fees", "capture_bps"):
        assert column in header
    assert "fees by venue" in done.stdout
    rows = list(csv.DictReader(export.open()))
    report = json.loads(next((ran.parent / "reports").glob("layered-example-*.json")).read_text())
    assert len(rows) == report["fills"]
    assert len({r["trade_id"] for r in rows}) == len(rows)
    net = sum((Decimal(r["qty"]) * (1 if r["side"] == "BUY" else -1) for r in rows), Decimal(0))
    assert net == Decimal(report["position_from_fills"])

    by_session = mmkit("history", str(ran))
    assert by_session.returncode == 0
    assert by_session.stdout.count("layered-example") == 1  # the title; rows are keyed by session id
    assert f"{len(rows)} fills" in by_session.stdout


def test_status_of_an_instance_that_never_ran_says_so(tmp_path: Path) -> None:
    config = tmp_path / "never.yml"
    text = (REPO / "strategies" / "layered_example.yml").read_text()
    config.write_text(text.replace("status_interval_s: 2", f"status_interval_s: 2\n  output_dir: {tmp_path}"))
    done = mmkit("status", str(config))
    assert done.returncode == 1
    assert "no store at" in done.stdout


def test_a_second_run_of_an_instance_on_a_simulated_venue_stores_its_own_fills(tmp_path: Path) -> None:
    """The simulated venue of a live process numbers its trades from 1 each run: tagged with the run, the
    store keeps both runs' fills (before, the second run's collided with the first's: exit 6, none stored)."""
    config = tmp_path / "layered.yml"
    text = (REPO / "strategies" / "layered_example.yml").read_text()
    config.write_text(text.replace("status_interval_s: 2", f"status_interval_s: 2\n  output_dir: {tmp_path}"))
    for _ in range(2):
        done = mmkit("start", "--run-for", "3", "--quiet", str(config))
        assert done.returncode == 0, done.stderr[-3000:]
    reports = [json.loads(p.read_text()) for p in sorted((tmp_path / "reports").glob("layered-example-*.json"))]
    assert len(reports) == 2 and all(r["fills"] > 0 for r in reports)
    export = tmp_path / "fills.csv"
    assert mmkit("history", str(config), "--csv", str(export)).returncode == 0
    rows = list(csv.DictReader(export.open()))
    assert len(rows) == sum(r["fills"] for r in reports)
    assert len({r["trade_id"] for r in rows}) == len(rows)
