"""``mmkit sweep`` as a subprocess: a bad parameter exits 2 on one line; Ctrl-C keeps finished trials and resumes."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.child_signals import ctrl_c_reaches_children

pytestmark = [pytest.mark.e2e, pytest.mark.shared_data]

REPO = Path(__file__).resolve().parents[2]
MMKIT = [sys.executable, "-m", "mmkit.app.cli"]


def env() -> dict[str, str]:
    return {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"}


def sweep_file(tmp_path: Path, data: Path, params: str, windows: int = 2, to: str = "23:55:30") -> Path:
    path = tmp_path / "sweep.yml"
    path.write_text(
        f"config: {REPO / 'strategies' / 'layered_example.yml'}\n"
        f"data:\n  - {{path: {data}, from: '2024-08-08T23:55:00Z', to: '2024-08-08T{to}Z', "
        f"windows: {{count: {windows}}}}}\n"
        f"parameters:\n{params}objective: pnl.total\n"
    )
    return path


def test_a_bad_parameter_path_exits_2_naming_the_file_and_key(tmp_path: Path, shared_data: Path) -> None:
    sweep = sweep_file(tmp_path, shared_data / "binance_spot_btcusdt", "  strategy.params.levls: [1, 2]\n")
    proc = subprocess.run([*MMKIT, "sweep", str(sweep), "--out", str(tmp_path / "out")], capture_output=True,
                          text=True, env=env(), timeout=120, cwd=REPO)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert str(sweep) in lines[0] and "parameters.strategy.params.levls" in lines[0]
    assert not (tmp_path / "out" / "trials").exists()  # nothing ran


def finished(out: Path) -> list[Path]:
    """Result files of published trials: a trial is written in ``trials/.<key>.<pid>.tmp`` and then renamed, and
    pathlib's glob matches that hidden directory too (seen between the write and the rename, it is not kept)."""
    return [p for p in (out / "trials").glob("*/result.json") if not p.parent.name.startswith(".")]


@pytest.mark.timeout(360)  # two sweeps, each starting its own Ray: minutes on a busy 2-core box
def test_ctrl_c_stops_cleanly_keeps_finished_trials_and_a_rerun_resumes(tmp_path: Path, shared_data: Path) -> None:
    sweep = sweep_file(tmp_path, shared_data / "binance_spot_btcusdt",
                       "  strategy.params.base_spread_pct: [0.02, 0.05, 0.1, 0.2]\n")
    out = tmp_path / "out"
    command = [*MMKIT, "sweep", str(sweep), "--out", str(out), "--num-cpus", "2", "--no-progress"]
    with ctrl_c_reaches_children():
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(),
                                cwd=REPO)
    deadline = time.monotonic() + 180
    while not finished(out) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)  # polling for the first result file, not a sleep standing in for one
    assert proc.poll() is None, f"the sweep ended before it could be interrupted: {proc.communicate()}"
    assert finished(out), "no trial finished in time"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "finished trial(s) kept" in stderr
    kept = finished(out)
    assert 1 <= len(kept) < 8
    for result in kept:  # every kept trial is complete
        assert (result.parent / "report.json").is_file() and (result.parent / "report.html").is_file()
    with (out / "results.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == len(kept)
    # running it again runs only what is missing
    again = subprocess.run(command, capture_output=True, text=True, env=env(), timeout=300, cwd=REPO)
    assert again.returncode == 0, again.stderr
    assert f"{len(kept)} of 8 trials already finished (skipped)" in again.stderr
    with (out / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 8 and {r["status"] for r in rows} == {"ok"}
