"""Objective, constraints and trial keys: any report key by dotted path, wildcards, missing metrics, the hash."""

from __future__ import annotations

import importlib
import json

import pytest

from mmkit.research.metrics import MetricMissing, constraint_margins, flatten, lookup, metric, violations
from mmkit.research.spec import Constraint
from mmkit.research.trial import TrialSpec

REPORT = {
    "pnl": {"total": "12.50", "fees": "-0.25", "sharpe": None},
    "fills": {"count": 40},
    "inventory": {"min": -0.7, "max": 0.3},
    "data_health": {"book": {"invalid_pct": 0.5}, "trades": {"invalid_pct": 2.0}},
    "counters": {"kill_switch": "not tripped"},
    "series": [1, 2, 3],
}


def c(path: str, op: str, value: float, absolute: bool = False) -> Constraint:
    return Constraint(f"{'abs(' + path + ')' if absolute else path} {op} {value}", path, op, value, absolute)


def test_any_report_key_by_dotted_path_decimal_strings_are_numbers() -> None:
    assert metric(REPORT, "pnl.total") == 12.5
    assert metric(REPORT, "fills.count") == 40.0
    with pytest.raises(MetricMissing):
        metric(REPORT, "pnl.totl")
    with pytest.raises(MetricMissing):
        metric(REPORT, "counters.kill_switch")  # not a number
    with pytest.raises(MetricMissing):
        metric(REPORT, "pnl.sharpe")  # None


def test_an_infinite_value_is_not_a_number_to_rank_or_to_pass_a_constraint() -> None:
    """json.loads reads `Infinity` (what json.dumps writes for a float inf) as inf: it ranked first in a maximising
    sweep and passed every `>=` constraint, while the Decimal text "Infinity" was refused (not a number)."""
    report = json.loads(json.dumps({"pnl": {"per_volume": float("inf"), "ratio": float("-inf")}, "fills": 5}))
    for path in ("pnl.per_volume", "pnl.ratio"):
        with pytest.raises(MetricMissing, match="not a number"):
            metric(report, path)
    assert violations(report, [c("pnl.per_volume", ">=", 0)]) != []
    assert constraint_margins(report, [c("pnl.per_volume", ">=", 0)]) == [1.0]


def test_wildcard_constraints_must_hold_for_every_match() -> None:
    assert [p for p, _ in lookup(REPORT, "data_health.*.invalid_pct")] == [
        "data_health.book.invalid_pct", "data_health.trades.invalid_pct"]
    broken = violations(REPORT, [c("data_health.*.invalid_pct", "<=", 1)])
    assert broken == ["data_health.*.invalid_pct <= 1: data_health.trades.invalid_pct = 2"]
    assert violations(REPORT, [c("data_health.*.invalid_pct", "<=", 5)]) == []


def test_abs_and_missing_metrics_break_a_constraint() -> None:
    assert violations(REPORT, [c("inventory.min", "<=", 0.5, absolute=True)]) != []
    assert violations(REPORT, [c("inventory.max", "<=", 0.5, absolute=True)]) == []
    assert violations(REPORT, [c("markout.5s", ">=", 0)]) == ["markout.5s >= 0: no markout.5s in the report"]


def test_margins_are_optunas_form_worst_match_wins() -> None:
    margins = constraint_margins(REPORT, [c("data_health.*.invalid_pct", "<=", 1), c("fills.count", ">=", 10),
                                          c("missing.key", "<=", 1)])
    assert margins == [1.0, -30.0, 1.0]


def test_flatten_keeps_scalars_by_path() -> None:
    flat = flatten(REPORT)
    assert flat["pnl.total"] == "12.50" and flat["data_health.book.invalid_pct"] == 0.5 and "series" not in flat


def spec(**changes: object) -> TrialSpec:
    base = dict(config_yaml="a: 1\n", params={"strategy.params.levels": 2, "strategy.params.x": 0.1},
                dataset="d#w0", data_path="/data/rec", data_checksum="abc", start_ns=1, end_ns=2, seed=7,
                setup="sim", queue="conservative", version="0.1.0", config_name="strategies/x.yml")
    base.update(changes)
    return TrialSpec(**base)  # type: ignore[arg-type]


def test_the_key_depends_on_every_input_and_survives_a_json_round_trip() -> None:
    key = spec().key()
    assert TrialSpec.from_dict(json.loads(json.dumps(spec().as_dict()))).key() == key
    for change in ({"config_yaml": "a: 2\n"}, {"params": {"strategy.params.levels": 3, "strategy.params.x": 0.1}},
                   {"data_checksum": "abd"}, {"seed": 8}, {"version": "0.1.1"}, {"start_ns": 0}, {"end_ns": 3},
                   {"setup": "replay"}, {"taker_reach_bps": "5"}, {"latency_ms": "50"},
                   {"funding_path": "/f.csv", "funding_checksum": "c1"}, {"through_fill": "whole"}):
        assert spec(**change).key() != key, change
    assert spec(dataset="renamed", data_path="/elsewhere/rec").key() == key  # a label and a place are not inputs
    funded = spec(funding_path="/f.csv", funding_checksum="c1").key()
    assert spec(funding_path="/f.csv", funding_checksum="c2").key() != funded  # the file changed: another trial
    assert spec(funding_path="/moved.csv", funding_checksum="c1").key() == funded  # its place is not an input
    # A trial stored before latency_ms and funding existed (no such fields in its trial.json) keeps its key.
    old = spec().as_dict()
    del old["latency_ms"], old["funding_path"], old["funding_checksum"], old["through_fill"]
    assert TrialSpec.from_dict(old).key() == key


@pytest.mark.parametrize("module", ["ray", "optuna", "pyarrow", "pyarrow.parquet", "plotly", "jinja2", "rich"])
def test_the_sweep_dependencies_are_installed(module: str) -> None:
    """They are project dependencies (pyproject): missing in CI is a failure, never a skip."""
    importlib.import_module(module)


class _Terminal:
    """A stderr that says it is a terminal and keeps what is written."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        return None

    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_shows_done_running_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from mmkit.research.executor import Progress

    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    bar = Progress(True)
    bar.start(total=4, cached=1)
    bar.update(2, {"key": "k1", "status": "ok", "wall_s": 1.0, "error": ""})
    bar.update(1, {"key": "k2", "status": "failed", "wall_s": 1.0, "error": "boom"})
    bar.stop()
    assert "done 3  running 1  failed 1" in terminal.text and "3/4" in terminal.text


def test_progress_off_a_terminal_is_one_line_per_trial(capsys: pytest.CaptureFixture[str]) -> None:
    from mmkit.research.executor import Progress

    bar = Progress(True)  # stderr is captured: not a terminal
    bar.start(total=2, cached=0)
    bar.update(0, {"key": "k2", "status": "failed", "wall_s": 0.5, "error": "ValueError: no events"})
    bar.stop()
    assert capsys.readouterr().err == "[1/2] trial k2 failed (0.50 s): ValueError: no events\n"


def test_a_finished_trial_with_a_problem_says_so_on_its_progress_line(capsys: pytest.CaptureFixture[str]) -> None:
    """Its backtest ran (status ok) but recorded what `mmkit backtest` exits non-zero for: the line said only ok."""
    from mmkit.research.executor import Progress

    report = {"counters": {"problems": [{"kind": "engine_failure", "reason": "controller X.on_tick failed: E"}]}}
    bar = Progress(False)
    bar.start(total=2, cached=0)
    bar.update(1, {"key": "k1", "status": "ok", "wall_s": 0.5, "error": "", "report": report})
    bar.update(0, {"key": "k2", "status": "ok", "wall_s": 0.5, "error": "", "report": {"counters": {"problems": []}}})
    bar.stop()
    assert capsys.readouterr().err.splitlines() == [
        "[1/2] trial k1 ok (0.50 s), not ranked: problem: controller X.on_tick failed: E",
        "[2/2] trial k2 ok (0.50 s)"]
