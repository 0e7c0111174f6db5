"""The same backtest on the compiled replay core and on the pure-Python path: byte-identical report.json.

Both runs are in this process; ``MMKIT_PURE_PYTHON`` is read when a backtest builds its books and its
sequencer. Setup (a) with the probabilistic queue (its seeded draws follow every depth change the venue
sees, so any divergence in the recorded book shifts them) on the first three minutes of the shared
Binance recording, then setup (b), whose synthetic flow prices off the same reference book.
"""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest

from mmkit import _speedups
from mmkit.app.backtest_cmd import BacktestResult, run_backtest, write_outputs
from mmkit.backtest.replay import ReplayEvent
from mmkit.backtest.sequencing import BookSequencer
from mmkit.book.levels import PyLevels
from mmkit.model import NS_PER_S
from strategies.skewed_ladder import SkewedLadderConfig, SkewedLadderController
from tests.integration.backtest.conftest import LADDER_RISK as RISK

pytestmark = pytest.mark.shared_data



def run(recording: list[ReplayEvent], pure: bool, setup: str, monkeypatch: pytest.MonkeyPatch) -> BacktestResult:
    monkeypatch.setenv(_speedups.ENV_PURE, "1" if pure else "0")
    controller = SkewedLadderController(SkewedLadderConfig(base_spread_bps=D(4), levels=2, base_size=D("0.01")))
    end = recording[0].ts_recv + 180 * NS_PER_S
    result = run_backtest(controller, recording, setup=setup, queue="probabilistic", risk=RISK, end_ns=end, seed=3)
    monkeypatch.delenv(_speedups.ENV_PURE)
    return result


@pytest.mark.parametrize("setup", ["replay", "sim"])
def test_compiled_and_pure_paths_write_byte_identical_reports(
    recording: list[ReplayEvent], setup: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _speedups.compiled_available(), _speedups.import_error()
    pure = run(recording, True, setup, monkeypatch)
    compiled = run(recording, False, setup, monkeypatch)
    # each run really took its path
    assert type(pure.engine.runner.book.book._levels) is PyLevels  # type: ignore[union-attr]
    assert type(compiled.engine.runner.book.book._levels) is not PyLevels  # type: ignore[union-attr]
    if setup == "replay":
        assert pure.engine.fills, "no fills: the comparison would not exercise the queue model"
    pure_paths = write_outputs(pure, tmp_path / "pure")
    compiled_paths = write_outputs(compiled, tmp_path / "compiled")
    for name in ("report.json", "fills.csv"):
        assert compiled_paths[name].read_bytes() == pure_paths[name].read_bytes(), name


def test_the_replay_setup_uses_the_compiled_sequencer_unless_told_otherwise(
    recording: list[ReplayEvent], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mmkit.app.backtest_setups import build_replay_venue_setup
    from mmkit.clock import Clock, ClockMode
    from mmkit.connector import load_venue_rules

    kinds = []
    for pure in ("0", "1"):
        monkeypatch.setenv(_speedups.ENV_PURE, pure)
        clock = Clock(ClockMode.BACKTEST, start_ns=recording[0].ts_recv)
        setup = build_replay_venue_setup(clock, SkewedLadderController(), recording[:10],
                                         load_venue_rules("binance"), "BTCUSDT")
        kinds.append((type(setup.sequencer) is BookSequencer, type(setup.venue.books["BTCUSDT"]._levels)))
    assert kinds[0][0] is False and kinds[1] == (True, PyLevels)


def test_skipping_idle_ticks_changes_nothing_in_the_report(
    recording: list[ReplayEvent], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ladder declares it reads no book and no time, so idle ticks reuse its answer; asked every tick
    instead (the default declaration), the very same report must come out."""
    skipping = run(recording, False, "replay", monkeypatch)
    monkeypatch.setattr(SkewedLadderController, "reads", frozenset({"book", "time"}))
    asked = run(recording, False, "replay", monkeypatch)
    assert skipping.engine.runner.skipped_ticks > skipping.report["ticks"] / 4
    assert asked.engine.runner.skipped_ticks == 0
    paths = [write_outputs(result, tmp_path / name) for name, result in (("skip", skipping), ("asked", asked))]
    for name in ("report.json", "fills.csv"):
        assert paths[0][name].read_bytes() == paths[1][name].read_bytes(), name
