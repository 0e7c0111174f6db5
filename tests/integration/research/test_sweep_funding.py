"""A sweep on a perpetual books each trial's funding from the sweep file's `funding` and can rank by it.

Synthetic USD-M recording straddling the 2024-08-09T00:00Z settlement (no shared data needed); trials
run in process. Each trial's report must hold the funding booked on its own fills, and a sweep without
the file must leave every trial saying the PnL lacks it.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from mmkit.app.outcome import EXIT_OK
from mmkit.testing.binance_recordings import synthetic_recording
from tests.integration.research.sweep_run import run_sweep
from tests.usdm_config import USDM_CONFIG

pytestmark = [pytest.mark.integration]

MIDNIGHT_MS = 1_723_161_600_000
CONFIG = USDM_CONFIG


def _sweep(tmp_path: Path, extra: str, config_text: str = CONFIG) -> dict:  # type: ignore[type-arg]
    config = tmp_path / "usdm.yml"
    config.write_text(config_text)
    data = tmp_path / "data"
    if not data.exists():
        synthetic_recording("usdm", seconds=60, start_ns=MIDNIGHT_MS * 10**6 - 30 * 10**9).write(data)
    path = tmp_path / "sweep.yml"
    path.write_text(f"name: funded\nconfig: {config}\ndata: [{data}]\n"
                    "parameters:\n  strategy.params.base_spread_bps: [1, 3]\n"
                    f"search: grid\n{extra}")
    out = tmp_path / "out"
    assert run_sweep(path, out) == EXIT_OK
    return json.loads((out / "summary.json").read_text())


def _reports(out: Path) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(p.read_text()) for p in sorted((out / "trials").glob("*/report.json"))]


def test_each_trial_books_funding_on_its_own_fills_and_the_ranking_reads_it(tmp_path: Path) -> None:
    funding = tmp_path / "BTCUSDT-fundingRate-2024-08.csv"
    eight_h = 8 * 3_600_000
    funding.write_text("calc_time,funding_interval_hours,last_funding_rate\n"
                       f"{MIDNIGHT_MS - eight_h},8,0.0001\n{MIDNIGHT_MS},8,0.0005\n{MIDNIGHT_MS + eight_h},8,0.0001\n")
    summary = _sweep(tmp_path, f"funding: {funding}\n"
                               "objective: {metric: funding.pnl_total_with_funding, direction: maximize}\n")
    reports = _reports(tmp_path / "out")
    assert len(reports) == 2
    scores = set()
    for report in reports:
        section = report["funding"]
        assert section["modelled"] is True and section["source"] == str(funding) and section["settlements"] == 1
        row = section["rows"][0]
        expected = -Decimal(row["position"]) * Decimal(row["price"]) * Decimal("0.0005")
        assert Decimal(section["total"]) == expected.quantize(Decimal("0.00000001"))
        # The trial's PnL total holds the funding paid during its run (the deprecated key is that total).
        assert Decimal(report["pnl"]["funding"]) == expected.quantize(Decimal("0.00000001"))
        assert Decimal(section["pnl_total_with_funding"]) == Decimal(report["pnl"]["total"]).quantize(
            Decimal("0.00000001"))
        assert section["cross_check"]["agrees"] is True
        scores.add(float(section["pnl_total_with_funding"]))
    assert {entry["score"] for entry in summary["ranking"]} == scores
    assert summary["funding_warning"] is None


def test_without_the_file_every_trial_says_its_pnl_lacks_funding_and_so_does_the_sweep(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = _sweep(tmp_path, "objective: pnl.total\n")
    reports = _reports(tmp_path / "out")
    assert reports and all(r["funding"]["modelled"] is False for r in reports)
    missing = sum(1 for r in reports if r["funding"]["missing_from_pnl"])
    assert missing >= 1
    expected = f"!! {missing} of {len(reports)} trials trade a perpetual and held a position over a funding settlement"
    assert summary["funding_warning"].startswith(expected)
    assert expected in capsys.readouterr().out


def test_a_trial_whose_loss_limit_only_funding_crosses_halts_at_the_settlement_like_the_backtest(
    tmp_path: Path,
) -> None:
    """The sweep runs the command's own backtest: funding is paid during each trial, its kill switch sees it."""
    funding = tmp_path / "hostile.csv"
    eight_h = 8 * 3_600_000
    rows = "".join(f"{ms},8,{rate}\n" for ms, rate in ((MIDNIGHT_MS - eight_h, "0.0001"), (MIDNIGHT_MS, "-0.9"),
                                                         (MIDNIGHT_MS + eight_h, "0.0001")))
    funding.write_text("calc_time,funding_interval_hours,last_funding_rate\n" + rows)
    limited = CONFIG + "  kill_switch: {max_loss: 50, max_drawdown: null}\n"
    _sweep(tmp_path, f"funding: {funding}\nobjective: pnl.total\n", limited)
    reports = _reports(tmp_path / "out")
    assert len(reports) == 2
    halted = 0
    for report in reports:
        section = report["funding"]
        paid = Decimal(section["total"])
        assert Decimal(report["pnl"]["funding"]) == paid and section["cross_check"]["agrees"] is True
        if paid < -50:  # a short over the settlement pays a -90 % rate: far past the limit
            assert "funding" in report["counters"]["kill_switch"], report["counters"]["kill_switch"]
            assert section["kill_switch"] == report["counters"]["kill_switch"]
            halted += 1
        else:
            assert report["counters"]["kill_switch"] == "not tripped"
    assert halted >= 1, "the scenario must have a trial holding a short over the settlement"


def test_a_trial_whose_in_run_funding_disagrees_with_the_post_run_cross_check_fails_and_is_not_ranked(
    tmp_path: Path,
) -> None:
    """40 s of response latency: a fill before a settlement a second before the end never reaches the engine.
    The venue paid funding on it, the engine's fills do not hold it: the trial fails with both figures."""
    from mmkit.app.backtest_cmd import load_events
    from mmkit.app.outcome import EXIT_ENGINE_FAILURE

    config = tmp_path / "usdm.yml"
    config.write_text(CONFIG)
    data = tmp_path / "data"
    synthetic_recording("usdm", seconds=60, start_ns=MIDNIGHT_MS * 10**6 - 30 * 10**9).write(data)
    settle_ms = load_events(data)[-1].ts_recv // 10**6 - 1_000
    funding = tmp_path / "f.csv"
    funding.write_text("calc_time,funding_interval_hours,last_funding_rate\n"
                       f"{settle_ms - 3_600_000},1,0.0001\n{settle_ms},1,0.01\n{settle_ms + 3_600_000},1,0.0001\n")
    path = tmp_path / "sweep.yml"
    path.write_text(f"name: lost\nconfig: {config}\ndata: [{data}]\n"
                    "parameters:\n  strategy.params.base_spread_bps: [1]\n"
                    f"search: grid\nlatency_ms: \"2,40000\"\nfunding: {funding}\nobjective: pnl.total\n")
    out = tmp_path / "out"
    assert run_sweep(path, out) == EXIT_ENGINE_FAILURE
    summary = json.loads((out / "summary.json").read_text())
    assert all(entry["score"] is None and entry["feasible"] is False for entry in summary["ranking"])
    table = (out / "results.csv").read_text()
    assert "funding cross-check failed: in-run" in table and "post-run" in table, table[:2000]
