"""A sweep whose best set filled nothing says so (mmkit/research/no_fill.py), on the shared recording.

Minimising the mean absolute inventory, the set that quotes too wide to be filled scores 0 and tops
the ranking; the ranking line, summary.json and the page mark it, and the
console warns that its score is not the result of trading. Trials run in
process (the ranking, not the distribution, is under test here).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmkit.app.outcome import EXIT_ENGINE_FAILURE, EXIT_OK
from tests.integration.research.sweep_run import run_sweep

pytestmark = [pytest.mark.integration, pytest.mark.shared_data]

REPO = Path(__file__).resolve().parents[3]


def sweep(tmp_path: Path, data: Path, spreads: str, extra: str = "") -> int:
    path = tmp_path / "sweep.yml"
    path.write_text(
        f"name: nofill\nconfig: {REPO / 'strategies' / 'layered_example.yml'}\nseed: 7\ntaker_reach_bps: 30\n"
        f"data:\n  - {{path: {data}, from: '2024-08-08T23:55:00Z', to: '2024-08-08T23:55:40Z', "
        f"windows: {{count: 2}}}}\n"
        f"parameters:\n  strategy.params.base_spread_pct: {spreads}\n"
        f"objective: {{metric: inventory.mean_abs, direction: minimize}}\nsearch: grid\n{extra}"
    )
    return run_sweep(path, tmp_path / "out")


def test_a_best_set_that_filled_nothing_is_marked_and_warned(
    tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sweep(tmp_path, shared_data / "binance_spot_btcusdt", "[0.01, 5]") == EXIT_OK
    printed = capsys.readouterr().out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    best, other = summary["ranking"]
    assert best["params"]["strategy.params.base_spread_pct"] == 5 and best["score"] == 0
    assert best["trials_without_fills"] == 2 and other["trials_without_fills"] == 0
    assert "filled nothing on 2 of 2 data sets" in printed.splitlines()[1]  # the best set's ranking line
    assert "filled nothing on" not in printed.splitlines()[2]
    assert "!! the best set filled nothing on 2 of its 2 data sets" in printed
    assert summary["best_set_warning"].startswith("!! the best set filled nothing")
    assert "filled nothing on 2 of 2 data sets" in (tmp_path / "out" / "index.html").read_text()


def test_a_constraint_on_fills_ranks_only_sets_that_traded_and_nothing_is_warned(
    tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sweep(tmp_path, shared_data / "binance_spot_btcusdt", "[0.01, 5]",
                 "constraints: ['fills.count >= 1']\n") == EXIT_OK
    printed = capsys.readouterr().out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    best = summary["ranking"][0]
    assert best["feasible"] and best["params"]["strategy.params.base_spread_pct"] == 0.01
    assert summary["best_set_warning"] is None and "!!" not in printed
    assert "(infeasible)  (filled nothing on 2 of 2 data sets)" in printed  # still marked, below the ranked


def test_a_trial_on_data_the_backtest_would_refuse_is_never_ranked(
    tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The window starts 4 min 15 s before the recording: 75 % of each trial's span has no book (exit 7 alone)."""
    path = tmp_path / "sweep.yml"
    path.write_text(
        f"name: early\nconfig: {REPO / 'strategies' / 'layered_example.yml'}\nseed: 7\ntaker_reach_bps: 30\n"
        f"data:\n  - {{path: {shared_data / 'binance_spot_btcusdt'}, from: '2024-08-08T23:50:00Z', "
        "to: '2024-08-08T23:55:40Z'}\n"
        "parameters:\n  strategy.params.base_spread_pct: [0.01, 0.02]\n"
        "objective: pnl.total\nsearch: grid\n"
    )
    code = run_sweep(path, tmp_path / "out")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [entry["feasible"] for entry in summary["ranking"]] == [False, False], summary["ranking"]
    rows = (tmp_path / "out" / "results.csv").read_text()
    assert rows.count("problem: data unhealthy") == 2, rows[:3000]
    printed = capsys.readouterr().out
    assert "(infeasible)" in printed and code == EXIT_OK
    assert ("!! no parameter set is feasible: all 2 broke a constraint, failed or had a problem; the ranking "
            "above is not a result. First reason: problem: data unhealthy") in printed
    assert summary["no_feasible_set"].startswith("!! no parameter set is feasible")


def test_with_setup_auto_a_key_the_chosen_setup_ignores_fails_each_trial_naming_it(
    tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """layered_example quotes the simulated venue: setup auto runs sim, which has no queue model to choose."""
    assert sweep(tmp_path, shared_data / "binance_spot_btcusdt", "[0.01, 5]",
                 "queue: probabilistic\n") == EXIT_ENGINE_FAILURE  # trials failed: the sweep says so
    printed = capsys.readouterr().out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [entry["feasible"] for entry in summary["ranking"]] == [False, False]
    assert ("First reason: failed: ValueError: queue probabilistic: only setup replay models it, and this data set "
            "runs setup sim (setup: auto chose it)") in printed
