"""The sweep file: every mistake is one SweepError naming the file and the key, before anything runs."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from mmkit.research.space import apply, check, dump_config, grid_points, grid_values
from mmkit.research.spec import SweepError, load_sweep

REPO = Path(__file__).resolve().parents[3]
CONFIG = REPO / "strategies" / "layered_example.yml"


def write(tmp_path: Path, body: str, data: Path | None = None) -> Path:
    data = data or tmp_path / "rec.gz"
    if not data.exists():
        data.write_bytes(b"")
    text = f"config: {CONFIG}\ndata: [{data}]\n" + body
    path = tmp_path / "sweep.yml"
    path.write_text(text)
    return path


GOOD = """
parameters:
  strategy.params.base_spread_pct: [0.05, 0.1]
  strategy.params.levels: {low: 1, high: 3, step: 1}
objective: pnl.total
"""


def test_a_good_sweep_file_loads_and_checks(tmp_path: Path) -> None:
    spec = load_sweep(write(tmp_path, GOOD))
    assert spec.search.method == "grid" and spec.direction == "maximize" and spec.objective == "pnl.total"
    check(spec)
    points = grid_points(spec.parameters)
    assert len(points) == 6
    assert points[0] == {"strategy.params.base_spread_pct": Decimal("0.05"), "strategy.params.levels": 1}


def test_the_latency_is_given_as_mmkit_backtest_takes_it(tmp_path: Path) -> None:
    assert load_sweep(write(tmp_path, GOOD)).latency_ms == ""  # the backtest's default
    assert load_sweep(write(tmp_path, GOOD + "latency_ms: 5\n")).latency_ms == "5"
    assert load_sweep(write(tmp_path, GOOD + "latency_ms: '0.5,20'\n")).latency_ms == "0.5,20"


def test_a_funding_file_is_read_when_the_sweep_file_is_and_a_bad_one_is_named(tmp_path: Path) -> None:
    assert load_sweep(write(tmp_path, GOOD)).funding == ""
    good = tmp_path / "funding.csv"
    good.write_text("calc_time,last_funding_rate\n1723161600000,0.0001\n")
    assert load_sweep(write(tmp_path, GOOD + f"funding: {good}\n")).funding == str(good)
    bad = tmp_path / "bad.csv"
    bad.write_text("calc_time,last_funding_rate\n1723161600000,one\n")
    for body, words in ((f"funding: {bad}\n", f"{bad}:2: funding rate 'one' is not a number"),
                        (f"funding: {tmp_path / 'none.csv'}\n", "cannot read the funding file"),
                        ("funding: 3\n", "expected the path of a funding file")):
        with pytest.raises(SweepError) as caught:
            load_sweep(write(tmp_path, GOOD + body))
        assert caught.value.key_path == "funding" and words in str(caught.value), str(caught.value)


def test_the_through_fill_rule_is_given_as_mmkit_backtest_takes_it(tmp_path: Path) -> None:
    assert load_sweep(write(tmp_path, GOOD)).through_fill == "tape"
    assert load_sweep(write(tmp_path, GOOD + "through_fill: whole\n")).through_fill == "whole"
    with pytest.raises(SweepError) as caught:
        load_sweep(write(tmp_path, GOOD + "through_fill: all\n"))
    assert caught.value.key_path == "through_fill" and "must be tape or whole" in str(caught.value)


def test_ranges_step_in_exact_decimals(tmp_path: Path) -> None:
    spec = load_sweep(write(tmp_path, GOOD.replace("[0.05, 0.1]", "{low: 0.1, high: 0.3, step: 0.1}")))
    assert grid_values(spec.parameters[0]) == [Decimal("0.1"), Decimal("0.2"), Decimal("0.3")]


@pytest.mark.parametrize(
    ("body", "key", "words"),
    [
        (GOOD.replace("base_spread_pct", "base_sprad_pct"), "parameters.strategy.params.base_sprad_pct",
         "no field 'base_sprad_pct'"),
        (GOOD.replace("strategy.params.levels", "engine.tick_mss"), "parameters.engine.tick_mss", "no field"),
        (GOOD.replace("strategy.params.levels", "risk.inventory.max_positon"),
         "parameters.risk.inventory.max_positon", "no field"),
        (GOOD.replace("strategy.params.levels", "venue.settings.api_key"), "parameters.venue.settings.api_key",
         "not a tunable"),
        (GOOD.replace("strategy.params.levels", "risk.kill_switch"), "parameters.risk.kill_switch", "section"),
        (GOOD.replace("{low: 1, high: 3, step: 1}", "[0, 1]"), "parameters.strategy.params.levels",
         "between 1 and 50"),
        (GOOD.replace("[0.05, 0.1]", "[0.05, -1]"), "parameters.strategy.params.base_spread_pct", "rejected"),
        (GOOD.replace("{low: 1, high: 3, step: 1}", "{low: 1, high: 3}"), "parameters.strategy.params.levels.step",
         "required by a grid"),
        # a step that does not land on high: the grid tried 1, 5, 9 and never the 10 the file names
        (GOOD.replace("{low: 1, high: 3, step: 1}", "{low: 1, high: 10, step: 4}"),
         "parameters.strategy.params.levels.step", "does not land on high 10 (from low 1: 1, 5, 9)"),
        (GOOD + "search: {method: anneal}\n", "search.method", "grid or optuna"),
        (GOOD.replace("objective: pnl.total", "objective: {metric: pnl.total, direction: up}"),
         "objective.direction", "maximize or minimize"),
        (GOOD + "constraints: ['inventory.max is small']\n", "constraints[0]", "metric OP number"),
        (GOOD + "mode: walk_forward\n", "data", "at least two data sets"),
        (GOOD + "setup: paper\n", "setup", "sim or replay"),
        (GOOD + "taker_reach_bps: -1\n", "taker_reach_bps", ">= 0"),
        (GOOD + "setup: sim\nqueue: probabilistic\n", "queue", "only setup replay models it, and this sweep's "
                                                              "setup is sim"),
        (GOOD + "setup: sim\nthrough_fill: whole\n", "through_fill", "only setup replay models it"),
        (GOOD + "setup: replay\ntaker_reach_bps: 5\n", "taker_reach_bps", "only setup sim models it"),
        (GOOD + "latency_ms: -5\n", "latency_ms", "from 0 to"),
        (GOOD + "latency_ms: '1,2,3'\n", "latency_ms", "entry,response"),
        (GOOD + "latency_ms: [1]\n", "latency_ms", "expected ms each way"),
        (GOOD + "colour: blue\n", "<root>", "unknown key"),
        (GOOD + "balances: 5\n", "balances", "a mapping of asset to amount"),
        (GOOD + "balances: {BTC: -1}\n", "balances.BTC", "at least 0"),
        (GOOD + "balances: {BTC: lots}\n", "balances.BTC", "not a number"),
        (GOOD + "balances: {BTC: nan}\n", "balances.BTC", "a finite amount"),
        (GOOD.replace("parameters:\n", "parameters:\n  simulation.balances.BTC: [1, -1]\n"),
         "parameters.simulation.balances.BTC", "at least 0"),
        (GOOD.replace("parameters:\n", "parameters:\n  simulation.balances: [1]\n"),
         "parameters.simulation.balances", "name one asset"),
    ],
)
def test_a_mistake_names_the_file_and_the_key(tmp_path: Path, body: str, key: str, words: str) -> None:
    path = write(tmp_path, body)
    with pytest.raises(SweepError) as caught:
        check(load_sweep(path))
    error = caught.value
    assert error.file == str(path)
    assert error.key_path == key
    assert words in error.reason
    assert "\n" not in str(error)


def test_missing_data_and_unmatched_glob_are_named(tmp_path: Path) -> None:
    path = tmp_path / "sweep.yml"
    path.write_text(f"config: {CONFIG}\ndata: ['{tmp_path}/nothing-*.gz']\n{GOOD}")
    with pytest.raises(SweepError, match=r"data\[0\]\.path: no file matches"):
        load_sweep(path)
    path.write_text(f"config: {CONFIG}\ndata: ['{tmp_path}/absent']\n{GOOD}")
    with pytest.raises(SweepError, match=r"data\[0\]\.path: no such recording"):
        load_sweep(path)


def test_globs_are_one_data_set_per_match_and_windows_cut_the_span(tmp_path: Path) -> None:
    for name in ("day1.gz", "day2.gz"):
        (tmp_path / name).write_bytes(b"")
    path = tmp_path / "sweep.yml"
    path.write_text(f"config: {CONFIG}\ndata:\n  - '{tmp_path}/day*.gz'\n"
                    f"  - {{path: {tmp_path}/day1.gz, from: 1000000000, to: 7000000000, windows: {{every: 2s}}}}\n"
                    f"  - {{path: {tmp_path}/day2.gz, label: d2, from: 0, to: 9000000000, windows: {{count: 3}}}}\n"
                    + GOOD)
    spec = load_sweep(path)
    labels = [d.label for d in spec.datasets]
    assert labels == ["day1.gz", "day2.gz", "day1.gz#w0", "day1.gz#w1", "day1.gz#w2", "d2#w0", "d2#w1", "d2#w2"]
    windows = [(d.start_ns, d.end_ns) for d in spec.datasets[2:5]]
    assert windows == [(1_000_000_000, 3_000_000_000), (3_000_000_000, 5_000_000_000),
                       (5_000_000_000, 7_000_000_000)]


def test_optuna_ranges_need_no_step_and_their_ends_are_validated(tmp_path: Path) -> None:
    body = GOOD.replace("{low: 1, high: 3, step: 1}", "{low: 1, high: 60}") + "search: {method: optuna, trials: 5}\n"
    with pytest.raises(SweepError) as caught:
        check(load_sweep(write(tmp_path, body)))
    assert caught.value.key_path == "parameters.strategy.params.levels" and "60" in caught.value.reason


def test_applied_config_round_trips_exact_decimals(tmp_path: Path) -> None:
    from mmkit.conf import read_yaml

    spec = load_sweep(write(tmp_path, GOOD))
    base = check(spec)
    config = apply(base, {"strategy.params.base_spread_pct": Decimal("0.07"), "risk.inventory.max_position": 2})
    file = tmp_path / "trial.yml"
    file.write_text(dump_config(config))
    again = read_yaml(file)
    assert again["strategy"]["params"]["base_spread_pct"] == Decimal("0.07")
    assert again["risk"]["inventory"]["max_position"] == 2
    assert base["strategy"]["params"]["base_spread_pct"] == Decimal("0.1")  # the base is not changed


@pytest.mark.parametrize("name", ["layered_spread.yml", "layered_walk_forward.yml"])
def test_the_example_sweeps_are_valid(name: str, shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                      ) -> None:
    """The examples name ../shared/data relative to the project root: run them from a root that has it."""
    (tmp_path / "shared").symlink_to(shared_data.parent)
    root = tmp_path / "project"
    root.mkdir()
    (root / "strategies").symlink_to(REPO / "strategies")
    monkeypatch.chdir(root)
    spec = load_sweep(Path("strategies/sweeps") / name)
    check(spec)
    assert len(spec.datasets) >= 3


def _walk_forward(tmp_path: Path, data: str) -> Path:
    path = tmp_path / "wf.yml"
    path.write_text(f"config: {CONFIG}\nmode: walk_forward\ndata:\n{data}{GOOD}")
    return path


@pytest.mark.parametrize(("data", "words"), [
    # listed out of time order: fold 1 would be tuned on the later hour and "tested" on the earlier one
    ("  - {path: REC, from: '2024-08-09T01:00:00Z', to: '2024-08-09T02:00:00Z', label: late}\n"
     "  - {path: REC, from: '2024-08-09T00:00:00Z', to: '2024-08-09T01:00:00Z', label: early}\n",
     "data set 'early' starts at 2024-08-09T00:00:00.000Z, before 'late', listed before it, ends "
     "(2024-08-09T02:00:00.000Z)"),
    # overlapping: the last half hour of the first is the first half hour of the second
    ("  - {path: REC, from: '2024-08-09T00:00:00Z', to: '2024-08-09T01:00:00Z', label: a}\n"
     "  - {path: REC, from: '2024-08-09T00:30:00Z', to: '2024-08-09T01:30:00Z', label: b}\n",
     "data set 'b' starts at 2024-08-09T00:30:00.000Z, before 'a'"),
])
def test_walk_forward_data_sets_out_of_time_order_are_refused(tmp_path: Path, data: str, words: str) -> None:
    recording = tmp_path / "rec.gz"
    recording.write_bytes(b"")
    with pytest.raises(SweepError) as caught:
        load_sweep(_walk_forward(tmp_path, data.replace("REC", str(recording))))
    assert caught.value.key_path == "data"
    assert words in caught.value.reason and "must be listed in time order" in caught.value.reason


def test_walk_forward_windows_that_follow_each_other_load(tmp_path: Path) -> None:
    recording = tmp_path / "rec.gz"
    recording.write_bytes(b"")
    spec = load_sweep(_walk_forward(tmp_path, f"  - {{path: {recording}, from: '2024-08-09T00:00:00Z', "
                                              "to: '2024-08-09T03:00:00Z', windows: {count: 3}}\n"))
    assert len(spec.datasets) == 3


@pytest.mark.shared_data
def test_walk_forward_on_one_whole_recording_twice_is_refused(tmp_path: Path, shared_data: Path) -> None:
    """No from/to: each data set spans its recording, read from its files (the same recording overlaps itself)."""
    recording = shared_data / "binance_spot_btcusdt"
    path = _walk_forward(tmp_path, f"  - {{path: {recording}, label: one}}\n  - {{path: {recording}, label: two}}\n")
    with pytest.raises(SweepError, match=r"data set 'two' starts at 2024-08-08T23:54:1.* before 'one'"):
        load_sweep(path)
