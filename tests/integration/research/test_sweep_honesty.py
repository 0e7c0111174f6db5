"""A sweep never ranks a trial that `mmkit backtest` would exit non-zero for, and never trusts a damaged store.

Adversarial review of mmkit/research (the sweep) against the project rule: a result that is wrong is loud.
Each test runs real backtests on a few seconds of the shared recording, in process (the ranking and the
store are under test here, not the distribution; tests/integration/research/test_sweep_ray.py runs Ray).
"""

from __future__ import annotations

import csv
import json
import textwrap
from pathlib import Path

import pytest

from mmkit.app.outcome import EXIT_OK
from mmkit.research.command import finished_evaluations
from mmkit.research.spec import load_sweep
from mmkit.research.store import TrialStore
from tests.integration.research.sweep_run import run_sweep

pytestmark = [pytest.mark.integration, pytest.mark.shared_data]

REPO = Path(__file__).resolve().parents[3]
LAYERED = REPO / "strategies" / "layered_example.yml"

#: A strategy whose on_tick raises on one tick in ten: never ten in a row, so quoting never halts, and the run
#: has a PnL like any other. `mmkit backtest` exits 4 for it (a controller failure).
FLAKY = textwrap.dedent('''
    from strategies.layered import LayeredController

    class Flaky(LayeredController):
        ticks = 0

        def on_tick(self, ctx):
            self.ticks += 1
            if self.ticks % 10 == 0:
                raise RuntimeError("model blew up")
            return super().on_tick(ctx)
''')


def sweep_file(tmp_path: Path, data: Path, *, config: Path = LAYERED, params: str = "[0.01, 0.02]",
               extra: str = "", name: str = "sweep.yml") -> Path:
    path = tmp_path / name
    path.write_text(
        f"name: honesty\nconfig: {config}\nseed: 7\ntaker_reach_bps: 30\n"
        f"data:\n  - {{path: {data}, from: '2024-08-08T23:55:00Z', to: '2024-08-08T23:55:20Z'}}\n"
        f"parameters:\n  strategy.params.base_spread_pct: {params}\n"
        f"objective: pnl.total\nsearch: grid\n{extra}"
    )
    return path


def flaky_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "user_code"
    folder.mkdir()
    (folder / "flaky_layered.py").write_text(FLAKY)
    monkeypatch.syspath_prepend(str(folder))
    config = tmp_path / "flaky_strategy.yml"
    config.write_text(LAYERED.read_text().replace("strategies.layered:LayeredController", "flaky_layered:Flaky"))
    return config


def results(out: Path) -> list[dict[str, str]]:
    with (out / "results.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_a_trial_whose_controller_failed_is_never_ranked(
    tmp_path: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The controller failure is in report.json's counters.problems (not its top-level problems): it was missed."""
    sweep = sweep_file(tmp_path, shared_data / "binance_spot_btcusdt", config=flaky_config(tmp_path, monkeypatch))
    run_sweep(sweep, tmp_path / "out")
    printed = capsys.readouterr().out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [entry["feasible"] for entry in summary["ranking"]] == [False, False], summary["ranking"]
    assert summary["no_feasible_set"] and "!! no parameter set is feasible" in printed
    for row in results(tmp_path / "out"):
        assert row["feasible"] == "False"
        assert "problem: controller Flaky.on_tick failed: RuntimeError" in row["violations"], row["violations"]
        assert "controller Flaky.on_tick failed" in row["problems"], row["problems"]


def test_a_trial_that_left_orders_open_is_never_ranked_and_its_report_says_so(
    tmp_path: Path, shared_data: Path
) -> None:
    """20 s of latency each way: the final cancels are not confirmed by the end (mmkit backtest exits 1 for it)."""
    sweep = sweep_file(tmp_path, shared_data / "binance_spot_btcusdt", extra="latency_ms: 20000\n")
    run_sweep(sweep, tmp_path / "out")
    rows = results(tmp_path / "out")
    assert len(rows) == 2
    for row in rows:
        report = json.loads((tmp_path / "out" / "trials" / row["trial"] / "report.json").read_text())
        left = report["counters"]["orders_left_open"]
        assert left > 0
        problems = report["counters"]["problems"]  # the run's own problems, recorded when it ended
        assert [(p["kind"], p["exit_code"]) for p in problems] == [("not_flat", 1)], problems
        assert report["problems"] == problems  # and at the top level, where the page and every reader look
        assert row["feasible"] == "False"
        assert f"problem: {left} orders left open after the run" in row["violations"], row["violations"]


def test_after_ctrl_c_the_partial_table_judges_trials_as_the_full_one_and_holds_only_this_sweeps(
    tmp_path: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What an interrupted sweep writes comes from finished_evaluations: it ignored problems, and it listed
    every trial in the directory, an older sweep's with other parameters included (now: the keys the
    interrupted sweep had asked for, Runner.planned)."""
    data = shared_data / "binance_spot_btcusdt"
    out = tmp_path / "out"
    flaky = sweep_file(tmp_path, data, config=flaky_config(tmp_path, monkeypatch), name="flaky.yml")
    run_sweep(flaky, out)
    planned = {row["trial"] for row in results(out)}  # the keys the sweep asks for (again on every run)
    older = sweep_file(tmp_path, data, params="[0.05]", name="older.yml")  # another sweep, same --out
    run_sweep(older, out)
    spec = load_sweep(flaky)
    partial = finished_evaluations(TrialStore(out), spec, planned)
    assert len(partial) == 2, [ev.params for ev in partial]
    assert sorted(ev.params["strategy.params.base_spread_pct"] for ev in partial) == [0.01, 0.02]
    for ev in partial:
        assert not ev.feasible
        assert any(reason.startswith("problem: controller Flaky.on_tick failed") for reason in ev.broken), ev.broken


def test_a_damaged_finished_trial_is_run_again_not_trusted_nor_fatal(
    tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A disk that lost a write (or a person) leaves result.json saying ok with report.json cut short or gone."""
    sweep = sweep_file(tmp_path, shared_data / "binance_spot_btcusdt")
    out = tmp_path / "out"
    assert run_sweep(sweep, out) == EXIT_OK
    keys = sorted(p.name for p in (out / "trials").iterdir() if not p.name.startswith("."))
    originals = {key: (out / "trials" / key / "report.json").read_bytes() for key in keys}
    cut, gone = keys
    (out / "trials" / cut / "report.json").write_bytes(originals[cut][: len(originals[cut]) // 2])
    (out / "trials" / gone / "report.json").unlink()
    capsys.readouterr()
    assert run_sweep(sweep, out) == EXIT_OK
    captured = capsys.readouterr()
    for key in keys:  # run again, and the same backtest again
        assert (out / "trials" / key / "report.json").read_bytes() == originals[key]
        assert f"trial {key}" in captured.err and "damaged" in captured.err, captured.err
    assert all(row["feasible"] == "True" for row in results(out))


def test_an_out_of_sample_result_with_a_problem_is_marked_not_passed_off_as_a_score(
    tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The out-of-sample window runs past the recording's end (00:05:04.5): most of it has no book, exit 7.

    Its PnL was printed, put in walk_forward.csv and on the page as the fold's out-of-sample score, and
    averaged into the out-of-sample mean, with nothing to tell it from a result."""
    data = shared_data / "binance_spot_btcusdt"
    path = tmp_path / "walk.yml"
    path.write_text(
        f"name: walk\nconfig: {LAYERED}\nseed: 7\ntaker_reach_bps: 30\nmode: walk_forward\n"
        f"data:\n  - {{path: {data}, from: '2024-08-08T23:55:00Z', to: '2024-08-08T23:55:20Z', label: a}}\n"
        f"  - {{path: {data}, from: '2024-08-09T00:04:50Z', to: '2024-08-09T00:06:00Z', label: b}}\n"
        "parameters:\n  strategy.params.base_spread_pct: [0.01, 0.02]\n"
        "objective: pnl.total\nsearch: grid\n"
    )
    out = tmp_path / "out"
    run_sweep(path, out)
    printed = capsys.readouterr().out
    [fold] = json.loads((out / "summary.json").read_text())["walk_forward"]
    assert fold["out_of_sample"] is not None and fold["out_of_sample_feasible"] is False
    assert fold["out_of_sample_why"].startswith("problem: "), fold
    [line] = [line for line in printed.splitlines() if "a -> b" in line]
    assert "(infeasible: problem: " in line, line
    with (out / "walk_forward.csv").open(encoding="utf-8") as handle:
        [row] = list(csv.DictReader(handle))
    assert row["out_of_sample_feasible"] == "False" and row["out_of_sample_why"].startswith("problem: "), row
    page = (out / "index.html").read_text()
    assert "infeasible: problem: " in page
    assert "mean of 0 feasible folds" in page  # the mean out-of-sample leaves it out, and says so
    # The same directory, a plain sweep on window a (its trials are cached): the old folds' table goes.
    path.write_text(path.read_text().replace("mode: walk_forward\n", "").replace(
        f"  - {{path: {data}, from: '2024-08-09T00:04:50Z', to: '2024-08-09T00:06:00Z', label: b}}\n", ""))
    assert run_sweep(path, out) == EXIT_OK
    assert not (out / "walk_forward.csv").exists()


def test_optuna_is_not_told_the_score_of_a_trial_with_a_problem(
    tmp_path: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TPE learns from what it is told: a score whose backtest had a problem is no evidence for a region, and
    without a constraint to break it was told as a good one (the sweep would search where the controller fails)."""
    from mmkit.research.executor import InProcessRunner
    from mmkit.research.search import Search
    from mmkit.research.space import check

    sweep = sweep_file(tmp_path, shared_data / "binance_spot_btcusdt", config=flaky_config(tmp_path, monkeypatch),
                       params="{low: 0.01, high: 0.05, step: 0.01}")
    sweep.write_text(sweep.read_text().replace("search: grid", "search: {method: optuna, trials: 2, seed: 1}"))
    spec = load_sweep(sweep)
    search = Search(spec, check(spec), InProcessRunner(TrialStore(tmp_path / "out")))
    search.run()
    [study] = search.studies
    assert [t.state.name for t in study.trials] == ["FAIL", "FAIL"], [(t.state, t.values) for t in study.trials]
