"""A recording whose files go back in time: `mmkit backtest` exits 2 naming the files; `mmkit start` refuses its config.

Before: a copy of the first file of the shared recording, sorted after the
second, sent the replay's clock back; the run covered the first file's
span only, never delivered the second file's events, and exited 0 with a
report of a shorter run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mmkit.app import cli
from mmkit.app.build import build
from mmkit.app.config import ConfigOverrides, load_engine_config
from mmkit.app.outcome import EXIT_USAGE
from mmkit.clock import Clock, ClockMode
from mmkit.conf import ConfigError

REPO = Path(__file__).resolve().parents[3]
CONFIG = str(REPO / "strategies" / "truex_btc_pyusd.yml")


def _with_a_repeated_file(shared_data: Path, tmp_path: Path) -> Path:
    """The shared recording's two files, then the first one again (a copy made by hand, sorted last)."""
    recorded = shared_data / "binance_spot_btcusdt"
    data = tmp_path / "recording"
    data.mkdir()
    (data / "a_20240808.gz").symlink_to(recorded / "spot_btcusdt_20240808.gz")
    (data / "b_20240809.gz").symlink_to(recorded / "spot_btcusdt_20240809.gz")
    (data / "c_20240808_again.gz").symlink_to(recorded / "spot_btcusdt_20240808.gz")
    return data


@pytest.mark.shared_data
def test_a_recording_with_a_repeated_file_is_refused_before_the_run(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _with_a_repeated_file(shared_data, tmp_path)
    out = tmp_path / "out"
    code = cli.main(["backtest", CONFIG, "--data", str(data), "--no-progress", "--out", str(out)])
    assert code == EXIT_USAGE
    err = capsys.readouterr().err
    assert "c_20240808_again.gz: starts at 2024-08-08T23:54:13.937Z (local receive time), before b_20240809.gz" in err
    assert "ends (2024-08-09T00:05:04.535Z): the files overlap or are out of order" in err
    assert not out.exists(), "a refused recording must not leave a report behind"


@pytest.mark.shared_data
@pytest.mark.parametrize("config", ["sim_demo.yml", "truex_btc_pyusd.yml"])
def test_a_live_run_replaying_it_is_a_config_error_on_the_replay_path(
    config: str, shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sim_demo: the simulated venue reads the whole recording; truex: the live reference streams it as played."""
    for name in ("TRUEX_API_KEY", "TRUEX_SECRET_KEY", "KRAKEN_API_KEY", "KRAKEN_SECRET_KEY"):
        monkeypatch.setenv(name, "not-used: build opens no connection")
    data = _with_a_repeated_file(shared_data, tmp_path)
    loaded = load_engine_config(REPO / "strategies" / config,
                                ConfigOverrides(reference_replay=str(data), sim_hedge=True, output_dir=str(tmp_path)))
    with pytest.raises(ConfigError, match=r"reference\.replay\.path: .*c_20240808_again\.gz: starts at .* before "
                                          r"b_20240809\.gz.*the files overlap or are out of order"):
        build(loaded, Clock(ClockMode.REALTIME))
