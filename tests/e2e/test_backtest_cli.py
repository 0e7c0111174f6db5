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

from tests.usdm_config import USDM_CONFIG

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
    # Takers allowed 30 bps beyond the prints (so that a minute of 10 bps quotes fills), and the report says so.
    first = backtest(config, tmp_path / "a", "--taker-reach-bps", "30")
    assert first.returncode == 0, first.stderr[-2000:]
    assert "backtest [" in first.stderr and "100.0 %" in first.stderr  # the progress bar
    assert "══ backtest report ══" in first.stdout and "quote uptime" in first.stdout
    for name in ("report.json", "fills.csv", "orders.csv", "report.html", "backtest.log"):
        assert (tmp_path / "a" / name).is_file(), name
        assert name in first.stdout
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    assert report["strategy"] == "SkewedLadderController" and report["setup"] == "sim"
    # The sim venue has no recorded book: chosen by default, and every output says it is synthetic.
    assert report["banner"].startswith("SYNTHETIC VENUE") and first.stdout.count("!! SYNTHETIC VENUE") == 2
    assert report["data_health"]["binance:BTCUSDT"]["gaps"] == 0
    assert "data health" in first.stdout and "no valid book" in first.stdout
    assert 595 <= report["ticks"] <= 601  # 60 s of 100 ms ticks
    assert report["fills"]["count"] > 0
    assert report["taker_flow"]["reach_bps"] == "30.0" and "synthetic taker flow" in first.stdout
    assert "before_arrival_events" not in report  # a recorded-venue figure: no recorded venue here

    second = backtest(config, tmp_path / "b", "--no-progress", "--seed", "7", "--taker-reach-bps", "30")
    assert second.returncode == 0, second.stderr[-2000:]
    assert "backtest [" not in second.stderr
    assert (tmp_path / "b" / "report.json").read_text() == (tmp_path / "a" / "report.json").read_text()
    for name in ("fills.csv", "orders.csv"):
        assert (tmp_path / "b" / name).read_text() == (tmp_path / "a" / name).read_text(), name


def test_a_replay_says_how_many_late_prints_reached_our_orders_and_filled_nothing(
    tmp_path: Path, shared_data: Path
) -> None:
    """Prints the trade stream delivered after depth updates of later times traded before our orders arrived."""
    cmd = [sys.executable, "-m", "mmkit.app.cli", "backtest", str(REPO / "strategies" / "layered_example.yml"),
           "--data", str(shared_data / "binance_spot_btcusdt"), "--setup", "replay", "--no-progress",
           "--out", str(tmp_path / "out")]
    run = subprocess.run(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    late = report["before_arrival_events"]
    assert late > 0 and report["fills"]["count"] > 0
    assert f"dated before our order arrived   {late:,} recorded prints or crossings" in run.stdout


def test_the_latency_is_an_option_the_run_uses_and_the_report_states(tmp_path: Path, shared_data: Path) -> None:
    """2 ms each way unless told: 50 ms each way fills fewer of the layered quotes on the whole recording."""
    runs = {}
    for name, extra in (("default", []), ("far", ["--latency-ms", "50"]), ("split", ["--latency-ms", "0.5,20"])):
        cmd = [sys.executable, "-m", "mmkit.app.cli", "backtest", str(REPO / "strategies" / "layered_example.yml"),
               "--data", str(shared_data / "binance_spot_btcusdt"), "--setup", "replay", "--no-progress",
               "--out", str(tmp_path / name), *extra]
        run = subprocess.run(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
                             text=True, timeout=120)
        assert run.returncode == 0, run.stderr[-2000:]
        runs[name] = (json.loads((tmp_path / name / "report.json").read_text()), run.stdout)
    (default, default_out), (far, far_out), (split, _) = runs["default"], runs["far"], runs["split"]
    assert default["latency_ms"] == {"entry_ms": 2.0, "response_ms": 2.0, "jitter": False}
    assert far["latency_ms"] == {"entry_ms": 50.0, "response_ms": 50.0, "jitter": False}
    assert split["latency_ms"] == {"entry_ms": 0.5, "response_ms": 20.0, "jitter": False}
    assert "latency entry / response         2 / 2 ms" in default_out
    assert "latency entry / response         50 / 50 ms" in far_out
    assert far["fills"]["count"] < default["fills"]["count"]  # quotes arrive later, behind the moves


def test_backtest_cli_rejects_a_bad_time(tmp_path: Path, shared_data: Path) -> None:
    config = tmp_path / "ladder.yml"
    config.write_text(CONFIG)
    data = SHARED / "binance_spot_btcusdt"
    result = subprocess.run(
        [sys.executable, "-m", "mmkit.app.cli", "backtest", str(config), "--data", str(data), "--to", "yesterday",
         "--out", str(tmp_path / "x")],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2  # EXIT_USAGE: a person's mistake
    assert "not a time" in result.stderr and "Traceback" not in result.stderr


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


# ---------------------------------------------------------------- synthetic recordings (no shared data)

FUTURES_CONFIG = USDM_CONFIG


def run_cli(config: Path, data: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "mmkit.app.cli", "backtest", str(config), "--data", str(data), "--out", str(out),
           "--no-progress", *extra]
    return subprocess.run(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), "MMKIT_CACHE_DIR": "off"},
                          capture_output=True, text=True, timeout=120)


def test_usdm_recording_backtests_against_its_own_book_by_default(tmp_path: Path) -> None:
    from mmkit.testing.binance_recordings import synthetic_recording

    config = tmp_path / "usdm.yml"
    config.write_text(FUTURES_CONFIG)
    data = tmp_path / "data"
    synthetic_recording("usdm", seconds=60).write(data, parts=2)  # the second file has no snapshot
    result = run_cli(config, data, tmp_path / "out")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["setup"] == "replay (conservative queue)" and report["banner"] is None
    assert report["venue"] == "binance_usdm" and report["fills"]["count"] > 0
    assert report["fees"] == {"maker_bps": "2", "taker_bps": "5", "source": "conf/venues/binance_usdm.yml"}
    health = report["data_health"]["binance_usdm:BTCUSDT"]
    assert health["gaps"] == 0 and health["invalid_pct"] < 1
    assert [f["continues"] for f in health["files"]] == [None, True]
    assert "no snapshot: continues rec_0.gz" in result.stdout


def test_a_gap_that_leaves_the_book_invalid_exits_7_naming_file_and_time(tmp_path: Path) -> None:
    from mmkit.testing.binance_recordings import synthetic_recording

    config = tmp_path / "usdm.yml"
    config.write_text(FUTURES_CONFIG)
    data = tmp_path / "data"
    synthetic_recording("usdm", seconds=60, gap_after_s=40).write(data, parts=2)  # never resynced
    result = run_cli(config, data, tmp_path / "out")
    assert result.returncode == 7, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert "data unhealthy" in line and "rec_1.gz" in line and "2024-08-08T23:55:00" in line, line
    report = json.loads((tmp_path / "out" / "report.json").read_text())  # the outputs are still written
    assert report["problems"][0]["kind"] == "data_unhealthy"
    assert report["data_health"]["binance_usdm:BTCUSDT"]["gaps"] == 1
    # The threshold is the user's to set.
    lenient = run_cli(config, data, tmp_path / "out2", "--max-invalid-pct", "50")
    assert lenient.returncode == 0, lenient.stderr[-2000:]


def _gz(path: Path, content: bytes) -> Path:
    import gzip

    with gzip.open(path, "wb") as handle:
        handle.write(content)
    return path


@pytest.mark.parametrize("case", ["missing", "empty_dir", "empty_file", "truncated", "not_gzip", "garbled"])
def test_bad_recordings_end_in_one_line_naming_the_file_and_exit_2(tmp_path: Path, case: str) -> None:
    from mmkit.testing.binance_recordings import synthetic_recording

    config = tmp_path / "usdm.yml"
    config.write_text(FUTURES_CONFIG)
    good = b"\n".join(synthetic_recording("usdm", seconds=5).lines) + b"\n"
    data = tmp_path / "rec.gz"
    expect = str(data)
    if case == "missing":
        data = tmp_path / "nowhere"
        expect = str(data)
    elif case == "empty_dir":
        data = tmp_path / "empty"
        data.mkdir()
        expect = str(data)
    elif case == "empty_file":
        _gz(data, b"")
    elif case == "truncated":
        _gz(data, good)
        data.write_bytes(data.read_bytes()[: len(data.read_bytes()) // 2])
    elif case == "not_gzip":
        data.write_bytes(good)
    else:
        lines = good.split(b"\n")
        lines[7] = lines[7][:40]  # a line cut in the middle of its JSON
        _gz(data, b"\n".join(lines))
        expect = f"{data}:8"
    result = run_cli(config, data, tmp_path / "out")
    assert result.returncode == 2, (case, result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert expect in result.stderr, result.stderr


TARDIS_BOOK = """exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount
binance,BTCUSDT,1000,1500,true,ask,100.2,1
binance,BTCUSDT,1000,1500,true,bid,99.9,3
binance,BTCUSDT,2000,2600,false,bid,100.0,oops
"""


@pytest.mark.parametrize("case", ["garbled_row", "truncated_gzip", "empty"])
def test_bad_tardis_csv_ends_in_one_line_naming_the_file_and_exit_2(tmp_path: Path, case: str) -> None:
    import gzip

    config = tmp_path / "c.yml"
    config.write_text(FUTURES_CONFIG)
    if case == "garbled_row":
        data = tmp_path / "x_incremental_book_L2.csv"
        data.write_text(TARDIS_BOOK)
        expect = f"{data}:4"
    elif case == "truncated_gzip":
        data = tmp_path / "x_incremental_book_L2.csv.gz"
        with gzip.open(data, "wt", encoding="utf-8") as handle:
            handle.write(TARDIS_BOOK * 200)
        data.write_bytes(data.read_bytes()[:200])
        expect = str(data)
    else:
        data = tmp_path / "x_incremental_book_L2.csv"
        data.write_text("")
        expect = str(data)
    result = run_cli(config, data, tmp_path / "out")
    assert result.returncode == 2, (case, result.stderr[-2000:])
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert expect in result.stderr, result.stderr


def test_the_shipped_truex_config_backtests_on_a_synthetic_venue_and_says_so_everywhere(
    tmp_path: Path, shared_data: Path
) -> None:
    """TrueX has no recorded book in a Binance recording: the default is the simulated venue, with a banner
    in the terminal, report.json and the tearsheet; fees are TrueX's own (from conf/venues/truex.yml)."""
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_SECRET_KEY"))}
    result = subprocess.run(
        [sys.executable, "-m", "mmkit.app.cli", "backtest", str(REPO / "strategies" / "truex_btc_pyusd.yml"),
         "--data", str(SHARED / "binance_spot_btcusdt"), "--to", "2024-08-08T23:55:20Z", "--no-progress",
         "--out", str(tmp_path / "truex")],
        cwd=REPO, env={**env, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    banner_lines = [line for line in lines if line.startswith("!! SYNTHETIC VENUE: truex:BTC-PYUSD")]
    assert len(banner_lines) == 2 and lines[0] == banner_lines[0]
    report = json.loads((tmp_path / "truex" / "report.json").read_text())
    assert report["setup"] == "sim" and "truex has no recorded book" in report["banner"]
    assert report["fees"] == {"maker_bps": "0", "taker_bps": "10", "source": "conf/venues/truex.yml"}
    assert report["taker_flow"]["reach_bps"] == "0"
    assert "SYNTHETIC VENUE" in (tmp_path / "truex" / "report.html").read_text()
    assert "rate-limited ticks" in result.stdout and 0 <= report["rate_limited_tick_pct"] <= 100


def test_the_through_fill_rule_is_chosen_on_the_command_line_and_stated(tmp_path: Path) -> None:
    from mmkit.testing.binance_recordings import synthetic_recording

    config = tmp_path / "usdm.yml"
    config.write_text(FUTURES_CONFIG)
    data = tmp_path / "data"
    synthetic_recording("usdm", seconds=60).write(data)
    for rule in ("tape", "whole"):
        extra = () if rule == "tape" else ("--through-fill", "whole")  # tape is the default
        result = run_cli(config, data, tmp_path / rule, *extra)
        assert result.returncode == 0, result.stderr[-2000:]
        assert json.loads((tmp_path / rule / "report.json").read_text())["through_fill"] == rule
        line = next(x for x in result.stdout.splitlines() if "fills through our price" in x)
        assert line.split()[-1] != "" and f" {rule}: " in line, line
    bad = run_cli(config, data, tmp_path / "bad", "--through-fill", "all")
    assert bad.returncode == 2 and "invalid choice: 'all'" in bad.stderr
