"""`mmkit backtest` refuses a bad window or number with one line naming the option, before reading any data.

The data path given does not exist as a recording the run could read past
the option check: a refusal that came from the data instead would name it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mmkit.app import cli
from mmkit.app.outcome import EXIT_USAGE

REPO = Path(__file__).resolve().parents[3]
CONFIG = str(REPO / "strategies" / "sim_demo.yml")


@pytest.mark.parametrize(("options", "message"), [
    (["--taker-reach-bps", "-5"], "--taker-reach-bps -5: how much further the takers may trade must be 0 or more"),
    (["--taker-reach-bps", "nan"], "--taker-reach-bps nan:"),
    (["--taker-reach-bps", "inf"], "--taker-reach-bps inf:"),
    (["--max-invalid-pct", "200"], "--max-invalid-pct 200: a share of the span must be within 0 and 100"),
    (["--max-invalid-pct", "-1"], "--max-invalid-pct -1:"),
    (["--max-invalid-pct", "nan"], "--max-invalid-pct nan:"),
    (["--latency-ms", "-3"], "--latency-ms -3 ms: a latency must be a finite number of ms from 0 to 3600000"),
    (["--latency-ms", "fast"], "--latency-ms 'fast' is not a number of milliseconds"),
    (["--latency-ms", "1,2,3"], "--latency-ms '1,2,3': give one latency in ms for both legs, or two"),
    (["--latency-ms", "0.0000001"], "--latency-ms 0.0000001 ms is finer than a nanosecond"),
    (["--latency-ms", "nan"], "--latency-ms nan ms:"),
    (["--from", "2024-08-09T00:00:00Z", "--to", "2024-08-08T00:00:00Z"],
     "--to 2024-08-08T00:00:00Z is not after --from 2024-08-09T00:00:00Z: the window is empty"),
    (["--from", "2024-08-09T00:00:00Z", "--to", "2024-08-09T00:00:00Z"], "is not after --from"),
])
def test_bad_option_is_a_usage_error_naming_it(
    options: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "recording"
    data.mkdir()  # exists but holds nothing: reading it would fail with another message
    code = cli.main(["backtest", CONFIG, "--data", str(data), "--no-progress", "--out", str(tmp_path / "out"),
                     *options])
    assert code == EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # nothing written


def test_sound_edges_are_accepted_up_to_the_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "recording"
    data.mkdir()
    code = cli.main(["backtest", CONFIG, "--data", str(data), "--no-progress", "--taker-reach-bps", "0",
                     "--max-invalid-pct", "100", "--latency-ms", "0,250.5"])
    assert code == EXIT_USAGE
    assert "no *.gz recording files" in capsys.readouterr().err  # past the options, refused by the data


@pytest.mark.shared_data
def test_a_window_ending_before_the_recording_says_so(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["backtest", CONFIG, "--data", str(shared_data / "binance_spot_btcusdt"), "--no-progress",
                     "--to", "2020-01-01T00:00:00Z", "--out", str(tmp_path / "out")])
    assert code == EXIT_USAGE
    assert "no recorded events before --to 2020-01-01T00:00:00Z" in capsys.readouterr().err


@pytest.mark.shared_data
@pytest.mark.parametrize(("config", "options", "message"), [
    ("truex_btc_pyusd.yml", ["--queue", "probabilistic"],
     "--queue probabilistic: sets the queue position of our orders in the recorded book, which only --setup replay "
     "models; this run is setup sim (the default: the config's venue has no recorded book in this data)"),
    ("truex_btc_pyusd.yml", ["--setup", "sim", "--through-fill", "whole"],
     "--through-fill whole: sets what a print or the recorded book moving through our price fills, which only "
     "--setup replay models; this run is setup sim (asked with --setup)"),
    ("truex_btc_pyusd.yml", ["--setup", "replay", "--taker-reach-bps", "5"],
     "--taker-reach-bps 5.0: sets how far the synthetic takers trade from the mid, which only --setup sim models; "
     "this run is setup replay (asked with --setup)"),
])
def test_an_option_the_runs_setup_does_not_model_is_refused(
    config: str, options: list[str], message: str, shared_data: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = cli.main(["backtest", str(REPO / "strategies" / config), "--data",
                     str(shared_data / "binance_spot_btcusdt"), "--no-progress", "--out", str(tmp_path / "out"),
                     *options])
    assert code == EXIT_USAGE
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # refused before anything ran or was written
