"""`--from`/`--to` asking for more than the recording holds: the uncovered time is time without a book (exit 7).

Before: ten hours asked of the ten-minute shared recording ran 360,000
ticks, reported "no valid book 0.270 s = 0.00 % of the span" and exit 0,
with every per-hour figure divided by ten hours of which ten minutes had
data.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmkit.app import cli
from mmkit.app.outcome import EXIT_DATA_UNHEALTHY, EXIT_OK

REPO = Path(__file__).resolve().parents[3]
CONFIG = str(REPO / "strategies" / "truex_btc_pyusd.yml")
#: The shared recording's first and last book events (receive time, corrected clock).
FIRST_BOOK_EVENT = "2024-08-08T23:54:15.211Z"
LAST_BOOK_EVENT = "2024-08-09T00:05:05.812Z"


def _backtest(shared_data: Path, out: Path, *window: str) -> tuple[int, dict[str, object]]:
    code = cli.main(["backtest", CONFIG, "--data", str(shared_data / "binance_spot_btcusdt"), "--no-progress",
                     "--out", str(out), *window])
    report = json.loads((out / "report.json").read_text())
    return code, report["data_health"][report["quoted_book"]]


@pytest.mark.shared_data
def test_a_window_starting_before_the_recording_is_unhealthy_for_the_time_before_it(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, health = _backtest(shared_data, tmp_path / "early", "--from", "2024-08-08T23:44:15Z")
    assert code == EXIT_DATA_UNHEALTHY
    # 600.211 s before the first book event + the 0.270 s warm-up, of 650.6 + 600.2 s.
    assert health["invalid_ns"] == pytest.approx(600.48e9, abs=0.02e9)
    assert 47 < health["invalid_pct"] < 49
    assert health["first_invalid_reason"] == (
        f"before the recording starts: its first book event is at {FIRST_BOOK_EVENT}")
    assert "book was invalid for 4" in capsys.readouterr().err


@pytest.mark.shared_data
def test_a_window_ending_after_the_recording_is_unhealthy_once_the_book_is_stale(
    shared_data: Path, tmp_path: Path
) -> None:
    code, health = _backtest(shared_data, tmp_path / "late", "--to", "2024-08-09T00:15:05.812Z")
    assert code == EXIT_DATA_UNHEALTHY
    # From 2 s (the reference's staleness) after the last book event to --to: 598 s, + the warm-up.
    assert health["invalid_ns"] == pytest.approx(598.27e9, abs=0.02e9)
    assert health["first_gap_reason"] == f"after the recording ends: its last book event is at {LAST_BOOK_EVENT}"


@pytest.mark.shared_data
def test_a_window_inside_the_recording_is_unchanged(shared_data: Path, tmp_path: Path) -> None:
    code, health = _backtest(shared_data, tmp_path / "inside", "--to", "2024-08-09T00:04:00Z")
    assert code == EXIT_OK
    assert health["invalid_ns"] == pytest.approx(0.270e9, abs=0.001e9)  # the warm-up alone, as before
    assert health["first_gap_reason"] is None
