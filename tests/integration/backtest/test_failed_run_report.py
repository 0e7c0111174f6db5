"""A backtest whose controller failed says so in report.json's ``problems`` and in the tearsheet's red box.

Why: ``mmkit backtest`` exits 4 for such a run, but its own problems (a
controller or an iterator failure, a halted ledger) were kept only under
``counters.problems``. The page's "Problems in this run" box reads the top
level, so the tearsheet a user opens looked like a clean run; so did any
reader of report.json that looked where the other verdicts are (data health,
orders left open).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from mmkit.app.backtest_cmd import BacktestResult, run_backtest, write_outputs
from mmkit.backtest.html import render_tearsheet
from mmkit.backtest.replay import ReplayEvent
from mmkit.model import NS_PER_S, TargetQuote
from mmkit.strategy import StrategyContext
from strategies.simple import SimpleConfig, SimpleController

pytestmark = pytest.mark.shared_data


class FailsEveryFiftiethTick(SimpleController):
    """The simple maker, raising on every 50th tick it is asked (a strategy bug that only shows sometimes)."""

    asked = 0

    def on_tick(self, ctx: StrategyContext) -> Sequence[TargetQuote]:
        self.asked += 1
        if self.asked % 50 == 0:
            raise RuntimeError("strategy bug")
        return super().on_tick(ctx)


def _run(recording: list[ReplayEvent], controller: SimpleController) -> BacktestResult:
    return run_backtest(controller, recording, setup="replay", end_ns=recording[0].ts_recv + 120 * NS_PER_S)


def _outputs(result: BacktestResult, out: Path) -> tuple[dict[str, Any], str]:
    paths = write_outputs(result, out)
    return json.loads(paths["report.json"].read_text()), paths["report.html"].read_text(encoding="utf-8")


def test_a_run_whose_controller_failed_says_so_in_report_json_and_on_the_page(
    recording: list[ReplayEvent], tmp_path: Path
) -> None:
    config = SimpleConfig(half_spread_bps=Decimal(5), order_size=Decimal("0.01"))
    result = _run(recording, FailsEveryFiftiethTick(config))
    assert result.engine.runner.stats.controller_errors > 0
    assert result.engine.outcome.exit_code() == 4
    report, page = _outputs(result, tmp_path / "failed")
    kinds = [problem["kind"] for problem in report.get("problems") or []]
    assert kinds == ["engine_failure"], report.get("problems")
    assert report["problems"] == report["counters"]["problems"]
    assert 'id="problems"' in page and "FailsEveryFiftiethTick.on_tick failed: RuntimeError" in page

    clean = _run(recording, SimpleController(config))
    assert clean.engine.outcome.exit_code() == 0
    clean_report, clean_page = _outputs(clean, tmp_path / "clean")
    assert "problems" not in clean_report  # a clean run's report.json is as it was
    assert 'id="problems"' not in clean_page


def test_a_report_json_written_before_the_fix_still_shows_its_problems_on_the_page(
    recording: list[ReplayEvent]
) -> None:
    """``mmkit report`` may render a report.json an earlier version wrote: problems under counters only."""
    config = SimpleConfig(half_spread_bps=Decimal(5), order_size=Decimal("0.01"))
    result = _run(recording, FailsEveryFiftiethTick(config))
    earlier = {key: value for key, value in result.report.items() if key != "problems"}
    assert earlier["counters"]["problems"]
    page = render_tearsheet(earlier, result.sampler, result.engine.fills)
    assert 'id="problems"' in page and "engine_failure" in page
