"""bench/anchors_stats.py and compare_anchors' pure parts: what decides "met" / "NOT MET" in `make bench-anchors`."""

from __future__ import annotations

import math
import os
import sys
import types

import pytest

from bench.anchors_child import MARK, _anchor_figures
from bench.anchors_stats import (
    OTHER_FIGURES,
    TARGETS,
    Summary,
    Target,
    interleave,
    ratio,
    ratio_line,
    summarize,
    target_table,
    targets_from_other,
    verdict,
)
from bench.compare_anchors import (
    ROOT,
    CouldNotRun,
    Run,
    Worker,
    _result_line,
    child,
    figures_in_child,
    parse_only,
    section_others,
)

BY_KEY = {t.key: t for t in TARGETS}


def test_summarize_takes_min_and_median_of_odd_and_even_series() -> None:
    assert summarize([3.0, 1.0, 2.0]) == Summary(3, 1.0, 2.0)
    assert summarize([4.0, 1.0, 3.0, 2.0]) == Summary(4, 1.0, 2.5)


@pytest.mark.parametrize("bad", [[], [1.0, math.nan], [math.inf]])
def test_summarize_refuses_empty_or_non_finite_series(bad: list[float]) -> None:
    with pytest.raises(ValueError):
        summarize(bad)


def test_ratio_and_its_broken_denominators() -> None:
    assert ratio(3.0, 1.5) == 2.0
    for numerator, denominator in ((1.0, 0.0), (1.0, -2.0), (math.nan, 1.0), (1.0, math.inf)):
        with pytest.raises(ValueError):
            ratio(numerator, denominator)


def test_ratio_line_is_by_median_with_the_min_ratio_beside_it() -> None:
    line, by_median = ratio_line("mmkit / ref", Summary(5, 1.0, 4.0), Summary(5, 0.5, 1.0))
    assert by_median == 4.0
    assert "4.00x by median" in line and "2.00x by min" in line


def test_interleave_alternates_engines_each_the_same_number_of_times() -> None:
    assert interleave(["a", "b", "c"], 2) == ["a", "b", "c", "a", "b", "c"]
    with pytest.raises(ValueError):
        interleave(["a", "a"], 2)
    with pytest.raises(ValueError):
        interleave(["a"], 0)


def test_targets_are_the_issues_list_with_their_bounds() -> None:
    assert BY_KEY["replay"].limit == 3.0 and BY_KEY["replay"].bound == "max"
    assert BY_KEY["cli"].limit == 1.2 and BY_KEY["cli"].unit == "s"
    assert BY_KEY["cli_vs_baseline"].limit == 0.4 and BY_KEY["cli_vs_baseline"].bound == "max"
    assert BY_KEY["first_read"].limit == 1.0
    assert BY_KEY["fix_rate"].limit == 0.8 and BY_KEY["fix_rate"].bound == "min"
    assert BY_KEY["fix_median"].limit == 1.5
    assert BY_KEY["decision_max"].limit == 2.0 and BY_KEY["decision_max"].unit == "ms"
    assert BY_KEY["rss_steady"].limit == 100.0


def test_verdict_on_both_sides_of_each_bound_and_at_it() -> None:
    upper = Target("t", "t", 3.0, "max", "x")
    lower = Target("t", "t", 0.8, "min", "x")
    assert [verdict(upper, v) for v in (2.9, 3.0, 3.1)] == ["met", "met", "NOT MET"]
    assert [verdict(lower, v) for v in (0.79, 0.8, 0.9)] == ["NOT MET", "met", "met"]
    assert verdict(upper, None) == "not measured"
    with pytest.raises(ValueError):
        verdict(upper, math.nan)


def test_target_table_has_one_line_per_target_and_marks_the_unmeasured() -> None:
    lines = target_table({"replay": 10.2, "cli": 1.1})
    assert len(lines) == 1 + len(TARGETS)
    replay = next(line for line in lines if line.lstrip().startswith(BY_KEY["replay"].label))
    cli = next(line for line in lines if line.lstrip().startswith(BY_KEY["cli"].label))
    rss = next(line for line in lines if line.lstrip().startswith(BY_KEY["rss_steady"].label))
    assert "10.20x" in replay and replay.endswith("NOT MET")
    assert "1.10 s" in cli and cli.endswith("met") and not cli.endswith("NOT MET")
    assert rss.endswith("not measured")
    with pytest.raises(ValueError, match="no target"):
        target_table({"replay_typo": 1.0})


def test_fix_figures_become_the_two_fix_ratios() -> None:
    values = targets_from_other("bench.bench_fix", {"raw_median_us": 225.0, "raw_orders_per_s": 6088.0,
                                                    "mmkit_median_us": 535.0, "mmkit_orders_per_s": 1871.0})
    assert values["fix_median"] == pytest.approx(535 / 225)
    assert values["fix_rate"] == pytest.approx(1871 / 6088)
    assert verdict(BY_KEY["fix_rate"], values["fix_rate"]) == "NOT MET"


def test_decision_and_rss_figures_pick_the_targeted_key() -> None:
    assert targets_from_other("bench.bench_decision", {"p50_us": 40.0, "p99_us": 331.0, "max_ms": 1.5}) == {
        "decision_max": 1.5}
    assert targets_from_other("bench.bench_rss", {"steady_mb": 153.0, "peak_mb": 205.0}) == {"rss_steady": 153.0}


def test_other_figures_with_a_missing_or_bad_key_are_errors_not_zeros() -> None:
    with pytest.raises(ValueError, match="lacks"):
        targets_from_other("bench.bench_rss", {"peak_mb": 205.0})
    with pytest.raises(ValueError, match="finite"):
        targets_from_other("bench.bench_decision", {"p50_us": 1.0, "p99_us": 1.0, "max_ms": math.nan})
    with pytest.raises(ValueError, match="no anchor figures"):
        targets_from_other("bench.bench_other", {})
    assert set(OTHER_FIGURES) == {"bench.bench_fix", "bench.bench_decision", "bench.bench_rss"}


def test_only_keeps_run_order_and_refuses_unknown_sections() -> None:
    assert parse_only(None) == ["book", "replay", "first_read", "cli", "others"]
    assert parse_only("cli, book") == ["book", "cli"]
    with pytest.raises(ValueError, match="replya"):
        parse_only("book,replya")
    with pytest.raises(ValueError):
        parse_only(",")


def test_child_result_is_the_last_marked_line_among_library_chatter() -> None:
    out = f"Correcting the latency\n{MARK}{{\"run_s\": 1.0}}\nSaving\n{MARK}{{\"run_s\": 2.5}}\nbye\n"
    assert _result_line(out, "job") == {"run_s": 2.5}
    with pytest.raises(CouldNotRun, match="no result line"):
        _result_line("Correcting the latency\n", "job")


def _run(tmp_path) -> Run:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return Run(repetitions=1, quick=True, scratch=tmp_path, env=env)


def test_a_failing_child_is_reported_with_its_reason_not_read_as_a_figure(tmp_path) -> None:
    with pytest.raises(CouldNotRun, match="unknown job 'no_such_job'"):
        child(_run(tmp_path), "no_such_job")


def test_a_worker_that_dies_before_answering_is_reported_with_its_stderr(tmp_path) -> None:
    worker = Worker(_run(tmp_path), "hbt_worker_typo")
    try:
        with pytest.raises(CouldNotRun, match="unknown job 'hbt_worker_typo'"):
            worker.first()
    finally:
        worker.close()


def test_other_benches_figures_are_called_when_present_and_reported_when_broken(tmp_path, monkeypatch, capsys) -> None:
    calls: list[bool] = []

    def decision_figures(quick: bool = False) -> dict[str, float]:
        calls.append(quick)
        return {"p50_us": 40.0, "p99_us": 300.0, "max_ms": 1.7}

    monkeypatch.setitem(sys.modules, "bench.bench_fix", types.SimpleNamespace())  # no anchor_figures yet
    monkeypatch.setitem(sys.modules, "bench.bench_decision", types.SimpleNamespace(anchor_figures=decision_figures))
    monkeypatch.setitem(sys.modules, "bench.bench_rss",
                        types.SimpleNamespace(anchor_figures=lambda: {"steady_mb": 90.0}))  # peak_mb missing
    run = _run(tmp_path)
    with pytest.raises(CouldNotRun, match=r"bench\.bench_rss"):  # the child's logic, in this process's modules
        section_others(run, figures_of=lambda r, name: _anchor_figures(name, r.quick)["figures"])
    out = capsys.readouterr().out
    assert "bench.bench_fix.anchor_figures: not available" in out
    assert "bench.bench_rss.anchor_figures FAILED" in out and "peak_mb" in out
    assert calls == [True]  # --quick reaches a bench that takes it
    assert run.measured == {"decision_max": 1.7}


def test_other_benches_figures_come_from_a_fresh_child_process(tmp_path) -> None:
    """The default source runs each bench in a child: it sees its own pid, and the quick flag reaches it."""
    (tmp_path / "fake_bench.py").write_text(
        "import os\n"
        "def anchor_figures(quick=False):\n"
        "    return {'pid': float(os.getpid()), 'quick': float(quick)}\n"
    )
    (tmp_path / "no_figures.py").write_text("X = 1\n")
    run = _run(tmp_path)
    run.env["PYTHONPATH"] = f"{tmp_path}{os.pathsep}{ROOT}"
    figures = figures_in_child(run, "fake_bench")
    assert figures is not None and figures["pid"] != os.getpid() and figures["quick"] == 1.0
    assert figures_in_child(run, "no_figures") is None
    with pytest.raises(CouldNotRun, match="ModuleNotFoundError"):
        figures_in_child(run, "no_such_bench_module")


@pytest.mark.shared_data
def test_the_silent_maker_replays_the_whole_recording_without_an_order(tmp_path, shared_data) -> None:
    """The floor contender of the replay section: the same run, every event delivered, no order sent."""
    run = _run(tmp_path)
    run.env["MMKIT_SHARED_DATA"] = str(shared_data)
    silent = child(run, "mmkit_replay_silent")
    assert silent["orders"] == 0 and silent["fills"] == 0 and silent["run_s"] > 0


@pytest.mark.shared_data
def test_a_maker_run_whose_venue_raises_is_refused_not_timed(shared_data, monkeypatch) -> None:
    """An exception in the venue's order handling is counted by the clock, not raised: the bench must
    refuse the run rather than print its (short) time as mmkit's figure."""
    from bench.anchors_mmkit import run_maker
    from bench.anchors_settings import MakerSpec
    from mmkit.app.backtest_cmd import load_events
    from mmkit.sim.replay_venue import ReplayBookVenue

    events = load_events(shared_data / "binance_spot_btcusdt")[:3000]

    def broken_place(self: ReplayBookVenue, *args: object, **kwargs: object) -> None:
        raise RuntimeError("venue bug")

    monkeypatch.setattr(ReplayBookVenue, "_venue_place", broken_place)
    with pytest.raises(RuntimeError, match="iterators failed"):
        run_maker(events, MakerSpec())
