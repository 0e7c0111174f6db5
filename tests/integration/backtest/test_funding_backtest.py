"""Backtests of a perpetual book its funding, or say loudly that the PnL lacks it (mmkit.backtest.funding).

Synthetic USD-M and COIN-M recordings (mmkit.testing.binance_recordings) that straddle the
2024-08-09T00:00Z standard settlement. Before: the same runs reported a PnL with no funding and no word of it.
Every expected figure is recomputed here from the run's own fills, not read back from the module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from mmkit.app.backtest_cmd import BacktestResult, load_events, run_backtest
from mmkit.backtest.funding import FundingInput
from mmkit.model import Side
from mmkit.testing.binance_recordings import synthetic_recording
from tests.integration.backtest.test_futures_recordings import _controller, _risk
from tests.usdm_config import USDM_CONFIG

REPO = Path(__file__).resolve().parents[3]
MIDNIGHT = 1_723_161_600 * 10**9  # 2024-08-09T00:00:00Z
MS = 10**6


def _events(tmp_path: Path, market: str) -> list:  # type: ignore[type-arg]
    rec = synthetic_recording(market, seconds=60, start_ns=MIDNIGHT - 30 * 10**9)  # type: ignore[arg-type]
    return load_events(rec.write(tmp_path / market)[0])


def _usdm(tmp_path: Path, funding: FundingInput | None = None) -> BacktestResult:
    return run_backtest(_controller("0.01"), _events(tmp_path, "usdm"), setup="replay", risk=_risk("0.2"),
                        funding=funding)


def _position_at(result: BacktestResult, ts: int) -> Decimal:
    return sum((f.qty if f.side is Side.BUY else -f.qty for f in result.engine.fills if f.ts_event <= ts),
               Decimal(0))


def test_a_perpetual_run_without_funding_says_the_pnl_lacks_it(tmp_path: Path) -> None:
    result = _usdm(tmp_path)
    held = _position_at(result, MIDNIGHT)
    assert held != 0, "the scenario must hold a position over the settlement"
    funding = result.report["funding"]
    assert funding["modelled"] is False and funding["missing_from_pnl"] is True
    assert funding["settlements_crossed"] == 1 and funding["with_position"] == 1
    assert funding["max_abs_position_at_settlement"] == str(abs(held))
    assert "NOT in this PnL" in funding["note"] and "--funding" in funding["note"]


def test_funding_from_the_rest_history_is_booked_on_the_position_at_the_settlement(tmp_path: Path) -> None:
    plain = _usdm(tmp_path / "plain")
    at = MIDNIGHT + 12_345 * MS  # a settlement at a moment of our choosing, inside the run
    rows = [{"symbol": "BTCUSDT", "fundingTime": (MIDNIGHT - 60_000 * MS) // MS, "fundingRate": "0.0003",
             "markPrice": "61000"},
            {"symbol": "BTCUSDT", "fundingTime": at // MS, "fundingRate": "0.00010000", "markPrice": "61001.50"},
            {"symbol": "BTCUSDT", "fundingTime": (MIDNIGHT + 3_600_000 * MS) // MS, "fundingRate": "0.0002",
             "markPrice": "61002"}]
    path = tmp_path / "funding.json"
    path.write_text(json.dumps(rows))
    booked = _usdm(tmp_path / "booked", FundingInput.load(path, "BTCUSDT"))
    # Funding paid during the run moves no order while no limit is near: the same run, fill for fill.
    assert booked.engine.fills == plain.engine.fills
    held = _position_at(booked, at)
    assert held != 0
    expected = -held * Decimal("61001.50") * Decimal("0.0001")
    funding = booked.report["funding"]
    assert funding["modelled"] is True and funding["settlements"] == 1 and funding["with_position"] == 1
    assert Decimal(funding["total"]) == expected.quantize(Decimal("0.00000001"))
    assert funding["rows"][0]["position"] == str(held) and funding["rows"][0]["price_source"] == "mark"
    # Paid into the PnL during the run: the total holds it (pnl_total_with_funding, deprecated, is that total).
    assert booked.engine.pnl.total() - expected == plain.engine.pnl.total()
    assert Decimal(booked.report["pnl"]["funding"]) == expected.quantize(Decimal("0.00000001"))
    assert Decimal(funding["pnl_total_with_funding"]) == booked.engine.pnl.total().quantize(Decimal("0.00000001"))
    assert funding["unit"] == "USDT"


def test_coinm_funding_is_paid_in_the_coin_at_the_recorded_mid_when_the_file_has_no_mark(tmp_path: Path) -> None:
    events = _events(tmp_path, "coinm")
    plain = run_backtest(_controller("5"), events, setup="replay", risk=_risk("50"))
    fills = sorted(plain.engine.fills, key=lambda f: f.ts_event)
    at = fills[0].ts_event + 1  # just after our first fill: a position is held
    csv_file = tmp_path / "BTCUSD_PERP-fundingRate.csv"
    settle_ms = at // MS + 1  # hourly settlements around it (the file states the interval; none may be missing)
    csv_file.write_text("calc_time,funding_interval_hours,last_funding_rate\n"
                        f"{settle_ms - 3_600_000},1,0.0001\n{settle_ms},1,-0.00025\n{settle_ms + 3_600_000},1,0.0001\n")
    result = run_backtest(_controller("5"), events, setup="replay", risk=_risk("50"),
                          funding=FundingInput.load(csv_file, "BTCUSD_PERP"))
    settled = settle_ms * MS
    held = _position_at(result, settled)
    assert held != 0
    ticks, mids = list(result.sampler.ts), list(result.sampler.mid)
    mid = Decimal(repr(mids[max(i for i, t in enumerate(ticks) if t <= settled)]))
    expected = -held * Decimal(100) / mid * Decimal("-0.00025")  # a short pays a negative rate, in BTC
    funding = result.report["funding"]
    assert funding["unit"] == "BTC" and funding["rows"][0]["price_source"] == "recorded mid"
    assert Decimal(funding["total"]) == expected.quantize(Decimal("0.00000001"))


# ----------------------------------------------------------------------------------- the command line

CONFIG = USDM_CONFIG


def _cli(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "usdm.yml"
    config.write_text(CONFIG)
    data = tmp_path / "data"
    if not data.exists():
        synthetic_recording("usdm", seconds=60, start_ns=MIDNIGHT - 30 * 10**9).write(data)
    cmd = [sys.executable, "-m", "mmkit.app.cli", "backtest", str(config), "--data", str(data), "--out",
           str(tmp_path / "out"), "--no-progress", *extra]
    return subprocess.run(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), "MMKIT_CACHE_DIR": "off"},
                          capture_output=True, text=True, timeout=120)


def test_the_cli_prints_the_missing_funding_with_bangs_and_books_a_file(tmp_path: Path) -> None:
    bare = _cli(tmp_path)
    assert bare.returncode == 0, bare.stderr[-2000:]
    assert "!! funding payments are NOT in this PnL" in bare.stdout
    funding = tmp_path / "BTCUSDT-fundingRate-2024-08.csv"
    funding.write_text("calc_time,funding_interval_hours,last_funding_rate\n"
                       f"{(MIDNIGHT - 8 * 3_600_000 * MS) // MS},8,0.0001\n{MIDNIGHT // MS},8,0.0001\n"
                       f"{(MIDNIGHT + 8 * 3_600_000 * MS) // MS},8,0.0001\n")
    booked = _cli(tmp_path, "--funding", str(funding))
    assert booked.returncode == 0, booked.stderr[-2000:]
    assert "NOT in this PnL" not in booked.stdout
    line = next(x for x in booked.stdout.splitlines() if x.strip().startswith("funding "))
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["funding"]["source"] == str(funding) and report["funding"]["total"] in line


def test_the_cli_refuses_a_funding_file_that_does_not_fit_the_run_before_running(tmp_path: Path) -> None:
    short = tmp_path / "short.csv"
    short.write_text(f"calc_time,last_funding_rate\n{(MIDNIGHT + 8 * 3_600_000 * MS) // MS},0.0001\n")
    result = _cli(tmp_path, "--funding", str(short))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--funding:" in result.stderr and "the run spans" in result.stderr, result.stderr
    assert not (tmp_path / "out" / "report.json").exists()
    broken = tmp_path / "broken.csv"
    broken.write_text(f"calc_time,last_funding_rate\n{MIDNIGHT // MS},0.01%\n")
    result = _cli(tmp_path, "--funding", str(broken))
    assert result.returncode == 2 and f"{broken}:2: funding rate '0.01%' is not a number" in result.stderr
