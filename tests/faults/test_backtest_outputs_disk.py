"""`mmkit backtest` on a failing disk: all four outputs or none, one line saying so, exit 6; a bad --out is exit 2.

The disk fills up in the child through RLIMIT_FSIZE (every write past the
limit fails with EFBIG). Before: a traceback (exit 1) after the run, a
report.html cut off at the limit beside complete report.json and CSVs, and,
in a directory that held an earlier run, a mix of the two runs.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from mmkit.app.outcome import EXIT_NOT_PERSISTED, EXIT_OK, EXIT_USAGE
from tests.faults.truex_run import REPO

CONFIG = REPO / "strategies" / "truex_btc_pyusd.yml"
OUTPUTS = ("report.json", "fills.csv", "orders.csv", "report.html")
#: Room for the log, the JSON report and the CSVs, not for the 5 MB tearsheet.
DISK_BYTES = 400_000


def backtest(shared_data: Path, out: Path, fsize: int | None = None) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run(
        [sys.executable, "-m", "mmkit.app.cli", "backtest", str(CONFIG), "--data",
         str(shared_data / "binance_spot_btcusdt"), "--no-progress", "--to", "2024-08-09T00:00:00Z",
         "--out", str(out)],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), "MMKIT_CACHE_DIR": "off"}, capture_output=True,
        text=True, timeout=300, preexec_fn=limit,
    )  # fmt: skip


@pytest.mark.shared_data
def test_a_full_disk_leaves_no_partial_outputs_and_exits_not_persisted(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = backtest(shared_data, out, fsize=DISK_BYTES)
    assert done.returncode == EXIT_NOT_PERSISTED, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert f"the run's outputs could not be written in {out} ([Errno 27] File too large)" in done.stderr
    assert "PnL total" in done.stdout  # the figures still reach the terminal
    assert sorted(p.name for p in out.iterdir()) == ["backtest.log"]  # no output, no temporary file


@pytest.mark.shared_data
def test_a_full_disk_leaves_an_earlier_run_whole(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = backtest(shared_data, out)
    assert first.returncode == EXIT_OK, first.stderr[-3000:]
    before = {name: (out / name).read_bytes() for name in OUTPUTS}
    again = backtest(shared_data, out, fsize=DISK_BYTES)
    assert again.returncode == EXIT_NOT_PERSISTED, again.stderr[-3000:]
    assert {name: (out / name).read_bytes() for name in OUTPUTS} == before  # one run's set, not a mix
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.shared_data
def test_an_out_directory_that_cannot_be_made_is_a_usage_error_before_the_run(
    shared_data: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    done = backtest(shared_data, blocker / "out")
    assert done.returncode == EXIT_USAGE, done.stderr[-3000:]
    assert f"--out {blocker / 'out'}: cannot create the report directory (Not a directory)" in done.stderr
    assert "Traceback" not in done.stderr and "PnL total" not in done.stdout  # nothing ran
