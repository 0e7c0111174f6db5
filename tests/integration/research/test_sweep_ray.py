"""Sweeps on a real local Ray (2 CPUs) over short windows of the shared recording.

Grid and Optuna searches, determinism (the same sweep twice gives the same
table), resume (a re-run runs nothing), ``--rerun`` (a byte-identical
report), a failing trial, and the walk-forward split.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mmkit.app.outcome import EXIT_ENGINE_FAILURE, EXIT_OK, EXIT_USAGE
from tests.integration.research.sweep_run import run_sweep

pytestmark = [pytest.mark.integration, pytest.mark.shared_data, pytest.mark.usefixtures("ray_cluster")]

REPO = Path(__file__).resolve().parents[3]
CONFIG = REPO / "strategies" / "layered_example.yml"


def sweep_file(tmp_path: Path, data: Path, body: str, windows: str = "{count: 2}",
               span: tuple[str, str] = ("2024-08-08T23:55:00Z", "2024-08-08T23:55:40Z")) -> Path:
    path = tmp_path / "sweep.yml"
    path.write_text(
        f"name: t\nconfig: {CONFIG}\nseed: 7\n"
        f"data:\n  - {{path: {data}, from: '{span[0]}', to: '{span[1]}', windows: {windows}}}\n" + body
    )
    return path


def run(sweep: Path, out: Path, rerun: str | None = None) -> int:
    return run_sweep(sweep, out, in_process=False, rerun=rerun)


GRID = """
parameters:
  strategy.params.base_spread_pct: [0.05, 0.1]
  strategy.params.levels: [1, 3]
objective: pnl.total
constraints: ['abs(inventory.max) <= 0.9']
search: grid
"""


def table(out: Path) -> list[dict[str, object]]:
    rows = pq.read_table(out / "results.parquet").to_pylist()
    return [{k: v for k, v in row.items() if k != "wall_s"} for row in rows]


def mtimes(out: Path) -> dict[str, int]:
    return {p.parent.name: p.stat().st_mtime_ns for p in (out / "trials").glob("*/result.json")}


@pytest.mark.timeout(300)
def test_grid_sweep_is_deterministic_resumable_and_reruns_exactly(tmp_path: Path, shared_data: Path) -> None:
    data = shared_data / "binance_spot_btcusdt"
    sweep = sweep_file(tmp_path, data, GRID.replace("[1, 3]", "[3]"))
    first, second = tmp_path / "a", tmp_path / "b"
    assert run(sweep, first) == EXIT_OK
    rows = table(first)
    assert len(rows) == 4  # 2 points x 2 windows
    assert {r["status"] for r in rows} == {"ok"}
    assert {r["dataset"] for r in rows} == {"binance_spot_btcusdt#w0", "binance_spot_btcusdt#w1"}
    assert all(isinstance(r["pnl.total"], float) and r["objective"] == r["pnl.total"] for r in rows)
    assert {(r["param.strategy.params.base_spread_pct"], r["param.strategy.params.levels"]) for r in rows} == {
        (0.05, 3), (0.1, 3)}
    # the CSV holds the same rows; each trial links its tearsheet, which exists
    assert len((first / "results.csv").read_text().splitlines()) == 5
    page = (first / "index.html").read_text()
    plotly_js = (first / "plotly.min.js").read_text()
    assert len(plotly_js) > 1_000_000
    for row in rows:
        assert f'href="trials/{row["trial"]}/report.html"' in page
        tearsheet = (first / "trials" / str(row["trial"]) / "report.html").read_text()
        # one shared copy of plotly.js for all tearsheets, not 5 MB in each: the page refers to it
        assert '<script src="../../plotly.min.js"></script>' in tearsheet and plotly_js not in tearsheet
    assert "Plotly.newPlot" in page and "<script src=" not in page and len(page) > 1_000_000  # plotly.js inside
    summary = json.loads((first / "summary.json").read_text())
    best = summary["ranking"][0]
    assert best["feasible"] and best["score"] == max(s["score"] for s in summary["ranking"] if s["feasible"])

    # determinism: a second sweep from nothing gives the same table (wall time aside)
    assert run(sweep, second) == EXIT_OK
    assert table(second) == rows

    # resume: a re-run into the same directory runs no trial again
    before = mtimes(first)
    assert run(sweep, first) == EXIT_OK
    assert mtimes(first) == before and table(first) == rows

    # --rerun reproduces one trial's report byte for byte
    trial = str(rows[3]["trial"])
    assert run(sweep, first, rerun=trial[:10]) == EXIT_OK
    assert (first / "trials" / trial / "rerun" / "report.json").read_bytes() == (
        first / "trials" / trial / "report.json").read_bytes()


def test_the_trial_is_the_backtest_mmkit_backtest_runs(tmp_path: Path, shared_data: Path) -> None:
    """Same config, data, window and seed through `mmkit backtest`'s own functions: the same report figures."""
    from mmkit.app.backtest_cmd import load_events, parse_time, run_backtest
    from mmkit.app.build import build_controller, risk_settings, venue_rules
    from mmkit.app.config import ConfigOverrides, load_engine_config

    data = shared_data / "binance_spot_btcusdt"
    sweep = sweep_file(tmp_path, data, GRID.replace("[1, 3]", "[2]").replace("[0.05, 0.1]", "[0.05]"),
                       windows="{count: 1}")
    out = tmp_path / "out"
    assert run(sweep, out) == EXIT_OK
    [row] = table(out)
    trial_dir = out / "trials" / str(row["trial"])
    loaded = load_engine_config(trial_dir / "config.yml", ConfigOverrides(backtest=True))
    start, end = parse_time("2024-08-08T23:55:00Z"), parse_time("2024-08-08T23:55:40Z")
    result = run_backtest(build_controller(loaded), load_events(data, end), setup="sim",
                          rules=venue_rules(loaded.config.venue, loaded.path, "venue"),
                          symbol=loaded.config.venue.symbol, risk=risk_settings(loaded), tick_ms=100,
                          start_ns=start, end_ns=end, seed=7)
    stored = json.loads((trial_dir / "report.json").read_text())
    for section in ("pnl", "fills", "inventory", "quoting"):
        assert stored[section] == result.report[section], section


def test_an_objective_no_report_has_is_a_usage_error(tmp_path: Path, shared_data: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    data = shared_data / "binance_spot_btcusdt"
    body = GRID.replace("[1, 3]", "[2]").replace("[0.05, 0.1]", "[0.05]")
    out = tmp_path / "out"
    assert run(sweep_file(tmp_path, data, body, windows="{count: 1}"), out) == EXIT_OK
    capsys.readouterr()
    typo = sweep_file(tmp_path, data, body.replace("objective: pnl.total", "objective: pnl.totl"),
                      windows="{count: 1}")
    assert run(typo, out) == EXIT_USAGE  # the trial is cached: the objective is not part of its key
    [err] = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert "objective.metric" in err and "'pnl.totl'" in err and "pnl.total" in err


def test_a_failing_trial_is_recorded_and_the_sweep_goes_on(tmp_path: Path, shared_data: Path) -> None:
    data = shared_data / "binance_spot_btcusdt"
    # the second window lies after the end of the recording: its trials fail, the first window's do not
    sweep = sweep_file(tmp_path, data, GRID.replace("[1, 3]", "[2]"), windows="{count: 2}",
                       span=("2024-08-09T00:04:40Z", "2024-08-09T00:06:00Z"))
    out = tmp_path / "out"
    assert run(sweep, out) == EXIT_ENGINE_FAILURE
    rows = table(out)
    failed = [r for r in rows if r["status"] == "failed"]
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(failed) == 2 and len(ok) == 2
    assert all(r["dataset"].endswith("#w1") and "no recorded events" in str(r["error"]) for r in failed)
    assert all(r["feasible"] is False and r["objective"] is None for r in failed)
    assert all(isinstance(r["objective"], float) for r in ok)
    for r in failed:
        assert "Traceback" in (out / "trials" / str(r["trial"]) / "traceback.txt").read_text()
    # a re-run tries the failed trials again (and only them)
    before = mtimes(out)
    assert run(sweep, out) == EXIT_ENGINE_FAILURE
    after = mtimes(out)
    assert all(after[str(r["trial"])] == before[str(r["trial"])] for r in ok)
    assert all(after[str(r["trial"])] != before[str(r["trial"])] for r in failed)


OPTUNA = """
parameters:
  strategy.params.base_spread_pct: {low: 0.02, high: 0.2, step: 0.01}
  strategy.params.levels: {low: 1, high: 3}
objective: {metric: pnl.total, direction: maximize}
constraints: ['abs(inventory.max) <= 0.9']
search: {method: optuna, trials: 4, seed: 3, batch: 2}
"""


def test_optuna_sweep_is_reproducible_from_its_seed(tmp_path: Path, shared_data: Path) -> None:
    data = shared_data / "binance_spot_btcusdt"
    sweep = sweep_file(tmp_path, data, OPTUNA, windows="{count: 1}")
    assert run(sweep, tmp_path / "a") == EXIT_OK
    assert run(sweep, tmp_path / "b") == EXIT_OK
    rows = table(tmp_path / "a")
    assert table(tmp_path / "b") == rows
    assert 1 <= len(rows) <= 4  # TPE may ask the same point twice: one trial, one row per point evaluated
    for row in rows:
        spread = row["param.strategy.params.base_spread_pct"]
        assert 0.02 <= spread <= 0.2 and round(spread * 100, 9) == round(spread * 100)  # on the 0.01 grid
        assert row["param.strategy.params.levels"] in (1, 2, 3)


WALK = """
mode: walk_forward
parameters:
  strategy.params.base_spread_pct: [0.02, 0.1]
objective: pnl.total
search: grid
"""


def test_walk_forward_optimises_on_n_and_evaluates_on_n_plus_1(tmp_path: Path, shared_data: Path) -> None:
    data = shared_data / "binance_spot_btcusdt"
    sweep = sweep_file(tmp_path, data, WALK, windows="{count: 3}",
                       span=("2024-08-08T23:55:00Z", "2024-08-08T23:56:00Z"))
    out = tmp_path / "out"
    assert run(sweep, out) == EXIT_OK
    rows = table(out)
    folds = json.loads((out / "summary.json").read_text())["walk_forward"]
    labels = [f"binance_spot_btcusdt#w{n}" for n in range(3)]
    assert [(f["fold"], f["train"], f["test"]) for f in folds] == [(0, labels[0], labels[1]), (1, labels[1], labels[2])]
    for fold in folds:
        in_sample = [r for r in rows if r["phase"] == "in_sample" and r["fold"] == fold["fold"]]
        assert {r["dataset"] for r in in_sample} == {fold["train"]} and len(in_sample) == 2
        best = max(in_sample, key=lambda r: r["objective"])
        assert fold["params"] == {"strategy.params.base_spread_pct": best["param.strategy.params.base_spread_pct"]}
        assert fold["in_sample"] == best["objective"]
        [oos] = [r for r in rows if r["phase"] == "out_of_sample" and r["fold"] == fold["fold"]]
        assert oos["dataset"] == fold["test"]
        assert oos["param.strategy.params.base_spread_pct"] == best["param.strategy.params.base_spread_pct"]
        assert fold["out_of_sample"] == oos["objective"]
    assert (out / "walk_forward.csv").read_text().count("\n") == 3
    assert "in-sample against out-of-sample" in (out / "index.html").read_text()


@pytest.mark.timeout(240)
def test_address_joins_the_running_cluster(tmp_path: Path, shared_data: Path) -> None:
    """`mmkit sweep --address` in another process runs its trials on this session's Ray (one more job there)."""
    import os
    import subprocess
    import sys

    import ray
    from ray._private import state

    address = ray.get_runtime_context().gcs_address
    jobs_before = len(state.jobs())
    sweep = sweep_file(tmp_path, shared_data / "binance_spot_btcusdt",
                       GRID.replace("[1, 3]", "[2]").replace("[0.05, 0.1]", "[0.05]"), windows="{count: 1}")
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run([sys.executable, "-m", "mmkit.app.cli", "sweep", str(sweep), "--out", str(tmp_path / "out"),
                           "--address", address, "--no-progress"], capture_output=True, text=True, env=env,
                          timeout=180, cwd=REPO)
    assert proc.returncode == EXIT_OK, proc.stderr
    assert len(state.jobs()) == jobs_before + 1  # the sweep's driver was a job of this cluster
    [row] = table(tmp_path / "out")
    assert row["status"] == "ok"
