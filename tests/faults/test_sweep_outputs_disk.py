"""`mmkit sweep` on a failing disk: the sweep's tables are written whole or not at all, one line says so, exit 6.

The disk fills up in the child through RLIMIT_FSIZE (every write past the limit fails with EFBIG): room for
the tables and the trials' files, not for index.html (it embeds plotly.js, about 5 MB). Before: a traceback
(exit 1), results.csv of this run beside an index.html cut off at the limit and the summary.json of the run
before: a reader could not tell the mix from a good set.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from mmkit.app.outcome import EXIT_NOT_PERSISTED, EXIT_OK

REPO = Path(__file__).resolve().parents[2]
TABLES = ("results.parquet", "results.csv", "index.html", "summary.json")
DISK_BYTES = 1_000_000

pytestmark = [pytest.mark.shared_data]


def sweep(tmp_path: Path, data: Path, out: Path, fsize: int | None = None) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "sweep.yml"
    path.write_text(
        f"name: disk\nconfig: {REPO / 'strategies' / 'layered_example.yml'}\nseed: 7\ntaker_reach_bps: 30\n"
        f"data:\n  - {{path: {data}, from: '2024-08-08T23:55:00Z', to: '2024-08-08T23:55:20Z'}}\n"
        "parameters:\n  strategy.params.base_spread_pct: [0.01, 0.02]\nobjective: pnl.total\nsearch: grid\n"
    )

    def limit() -> None:
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run(
        [sys.executable, "-m", "mmkit.app.cli", "sweep", str(path), "--out", str(out), "--in-process",
         "--no-progress"],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=300,
        preexec_fn=limit,
    )  # fmt: skip


def test_a_full_disk_keeps_the_previous_tables_whole_and_exits_not_persisted(tmp_path: Path, shared_data: Path
                                                                            ) -> None:
    out = tmp_path / "out"
    data = shared_data / "binance_spot_btcusdt"
    first = sweep(tmp_path, data, out)
    assert first.returncode == EXIT_OK, first.stderr[-3000:]
    before = {name: (out / name).read_bytes() for name in TABLES}
    again = sweep(tmp_path, data, out, fsize=DISK_BYTES)  # the trials are on disk: only the tables are written
    assert again.returncode == EXIT_NOT_PERSISTED, again.stderr[-3000:]
    assert "Traceback" not in again.stderr
    last = again.stderr.strip().splitlines()[-1]
    assert f"the sweep's results could not be written in {out}" in last and "File too large" in last, last
    assert {name: (out / name).read_bytes() for name in TABLES} == before  # the earlier set, whole
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_a_disk_too_full_for_the_sweeps_directory_is_one_line_and_exit_6(tmp_path: Path, shared_data: Path) -> None:
    """plotly.js (about 5 MB, the trials' tearsheets share one copy) is the first file a new sweep writes."""
    out = tmp_path / "out"
    done = sweep(tmp_path, shared_data / "binance_spot_btcusdt", out, fsize=DISK_BYTES)
    assert done.returncode == EXIT_NOT_PERSISTED, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert f"mmkit sweep: the sweep's directory {out} cannot be written" in line and "File too large" in line, line
    assert not [p for p in (out / "trials").iterdir()]  # nothing ran
