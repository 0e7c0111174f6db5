"""Zero fills on the shared recording say why, in the report, the page and the terminal; a filled run says nothing."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal as D
from pathlib import Path

import pytest

from mmkit.app.backtest_cmd import run_backtest
from mmkit.backtest.binance import read_recording, recording_files
from mmkit.model import NS_PER_S
from strategies.simple import SimpleConfig, SimpleController

pytestmark = pytest.mark.shared_data

ROOT = Path(__file__).resolve().parents[3]
CLI = "import sys; from mmkit.app.cli import main; sys.exit(main())"


@pytest.fixture(scope="module")
def recording(shared_data: Path) -> list:
    return list(read_recording(recording_files(shared_data / "binance_spot_btcusdt")))


def backtest(recording: list, half_spread_bps: str) -> dict:
    controller = SimpleController(SimpleConfig(half_spread_bps=D(half_spread_bps), order_size=D("0.01")))
    start = recording[0].ts_recv
    return run_backtest(controller, recording, end_ns=start + 120 * NS_PER_S).report


def test_quotes_wider_than_every_print_fill_nothing_and_say_so(recording: list) -> None:
    report = backtest(recording, "40")
    assert report["fills"]["count"] == 0 and report["fills"]["accepted_orders"] > 0
    touch = report["quoting"]["touch_distance_bps"]
    # SimpleController quotes fair ∓ 40 bps, rounded to the venue's tick: about 40 bps on each side.
    assert 39 < touch["bid"]["median"] < 41 and 39 < touch["ask"]["median"] < 41
    reach = report["taker_flow"]["max_distance_bps"]
    assert reach < 39  # the shared tape never prints 39 bps from the mid
    reason = report["no_fill"]
    assert reason.startswith("no fill: our nearest quotes sat a median of ")
    assert f"reached at most {reach} bps" in reason and "--taker-reach-bps" in reason


def test_a_run_that_fills_has_no_reason(recording: list) -> None:
    report = backtest(recording, "1")
    assert report["fills"]["count"] > 0
    assert report["no_fill"] is None
    assert report["quoting"]["touch_distance_bps"]["bid"]["median"] < 2


def test_the_cli_prints_it_and_the_page_shows_it(shared_data: Path, tmp_path: Path) -> None:
    """The shipped TrueX config quotes 25 bps a side: on the shared tape it fills nothing, loudly, and exits 0."""
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-c", CLI, "backtest", "strategies/truex_btc_pyusd.yml", "--data",
         str(shared_data / "binance_spot_btcusdt"), "--no-progress", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("!! no fill: ")]
    assert len(lines) == 1 and "synthetic takers could reach a resting order" in lines[0]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert 'id="no-fill"' in page and "no fill: our nearest quotes sat" in page
