"""Funding of a perpetual is settled during the backtest: the PnL, the equity curve and the kill switch see it.

Before: ``--funding`` was booked after the run from its fills, so a USD-M maker whose loss limit only funding
could cross reported a clean run that would have halted live. Synthetic USD-M and COIN-M recordings
(mmkit.testing.binance_recordings) straddle the 2024-08-09T00:00Z settlement; every expected figure is
recomputed here from the run's own fills and samples, not read back from the module under test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import attrs

from mmkit.app.assembly import RiskSettings
from mmkit.app.backtest_cmd import BacktestResult, load_events, run_backtest
from mmkit.app.outcome import ProblemKind
from mmkit.backtest.funding import FundingInput
from mmkit.model import Fill, Side
from mmkit.risk.kill_switch import KillSwitchConfig
from mmkit.sim.latency import parse_latency_ms
from mmkit.testing.binance_recordings import synthetic_recording
from tests.integration.backtest.test_futures_recordings import _controller, _risk
from tests.usdm_config import USDM_CONFIG

REPO = Path(__file__).resolve().parents[3]

MIDNIGHT = 1_723_161_600 * 10**9  # 2024-08-09T00:00:00Z
MS = 10**6
HOUR_MS = 3_600_000
Q = Decimal("0.00000001")


def _events(tmp_path: Path, market: str) -> list:  # type: ignore[type-arg]
    rec = synthetic_recording(market, seconds=60, start_ns=MIDNIGHT - 30 * 10**9)  # type: ignore[arg-type]
    return load_events(rec.write(tmp_path / market)[0])


def _limited(max_loss: str, max_position: str = "0.2") -> RiskSettings:
    """Risk with a loss limit only (no drawdown limit): what trading over a minute cannot reach."""
    return attrs.evolve(_risk(max_position), kill_switch=KillSwitchConfig(max_loss=Decimal(max_loss),
                                                                          max_drawdown=None))


def _position_at(fills: list[Fill], ts: int) -> Decimal:
    return sum((f.qty if f.side is Side.BUY else -f.qty for f in fills if f.ts_event <= ts and not f.is_hedge),
               Decimal(0))


def _csv(path: Path, rows: list[tuple[int, str]]) -> Path:
    """A Binance fundingRate CSV with hourly settlements (the file states the interval; none may be missing)."""
    path.write_text("calc_time,funding_interval_hours,last_funding_rate\n"
                    + "".join(f"{ms},1,{rate}\n" for ms, rate in rows))
    return path


def _around(at_ms: int, rate: str, *more: tuple[int, str]) -> list[tuple[int, str]]:
    """Settlements an hour before and after the run, with ``at_ms`` (and ``more``) inside it."""
    inside = sorted([(at_ms, rate), *more])
    return [(inside[0][0] - HOUR_MS, "0.0001"), *inside, (inside[-1][0] + HOUR_MS, "0.0001")]


def _usdm(tmp_path: Path, events: list, funding: FundingInput | None, risk: RiskSettings,  # type: ignore[type-arg]
          **kw: object) -> BacktestResult:
    return run_backtest(_controller("0.01"), events, setup="replay", risk=risk, funding=funding, **kw)  # type: ignore[arg-type]


def test_hostile_funding_crosses_the_loss_limit_the_run_halts_at_the_settlement_and_says_funding(
    tmp_path: Path,
) -> None:
    events = _events(tmp_path, "usdm")
    risk = _limited("50")
    plain = _usdm(tmp_path, events, None, risk)
    assert plain.report["counters"]["kill_switch"] == "not tripped", "trading alone must not reach the limit"
    assert abs(Decimal(plain.report["pnl"]["total"])) < 50
    held = _position_at(plain.engine.fills, MIDNIGHT)
    assert held != 0, "the scenario must hold a position over the settlement"
    adverse = "0.9" if held > 0 else "-0.9"  # longs pay a positive rate, shorts a negative one
    path = _csv(tmp_path / "hostile.csv", _around(MIDNIGHT // MS, adverse))
    result = _usdm(tmp_path, events, FundingInput.load(path, "BTCUSDT"), risk)
    reason = result.report["counters"]["kill_switch"]
    assert reason != "not tripped" and "loss" in reason and "funding" in reason, reason
    section = result.report["funding"]
    row = section["rows"][0]
    assert row["ts_ns"] == MIDNIGHT and Decimal(row["position"]) == held
    paid = Decimal(row["payment"])
    assert paid < -50, "the hostile rate must cost more than the limit"
    # Halted at the settlement: quoting stopped on the tick that booked it, not at the end of the run.
    ticks = list(result.sampler.ts)
    booked = row["booked_ns"]
    assert MIDNIGHT <= booked < MIDNIGHT + 100 * MS
    assert result.engine.runner.stats.halted_ticks == sum(1 for t in ticks if t >= booked)
    assert plain.engine.runner.stats.halted_ticks == 0
    # PnL total includes it, and the cross-check (computed after the run from the fills) agrees.
    pnl = result.report["pnl"]
    assert Decimal(pnl["funding"]) == Decimal(section["total"])
    assert Decimal(pnl["total"]) == result.engine.pnl.total()
    assert section["cross_check"]["agrees"] is True
    assert Decimal(section["cross_check"]["post_run_total"]) == Decimal(section["total"])
    # Like any other loss past the limit: quoting halts and the report says why; the backtest itself is sound.
    assert result.engine.outcome.exit_code() == 0


def test_the_equity_curve_steps_at_the_settlement_by_the_payment(tmp_path: Path) -> None:
    events = _events(tmp_path, "usdm")
    risk = _limited("100000")
    plain = _usdm(tmp_path, events, None, risk)
    held = _position_at(plain.engine.fills, MIDNIGHT)
    path = _csv(tmp_path / "f.csv", _around(MIDNIGHT // MS, "0.01"))
    result = _usdm(tmp_path, events, FundingInput.load(path, "BTCUSDT"), risk)
    s = result.sampler
    booked = result.report["funding"]["rows"][0]["booked_ns"]
    paid = float(result.report["funding"]["rows"][0]["payment"])
    assert abs(paid) > 1 and Decimal(result.report["funding"]["rows"][0]["position"]) == held
    # total − (realized − fees + unrealized) is the funding booked so far: 0 before, the payment from then on.
    for i, ts in enumerate(s.ts):
        gap = s.total[i] - (s.realized[i] - s.fees[i] + s.unrealized[i])
        assert abs(gap - (paid if ts >= booked else 0.0)) < 1e-6, (ts, gap)
    # The same fills: funding changes no order (the limit is far away).
    assert result.engine.fills == plain.engine.fills


def test_a_settlement_on_a_tick_and_one_between_ticks_are_priced_at_the_mid_at_or_before_them(
    tmp_path: Path,
) -> None:
    events = _events(tmp_path, "usdm")
    risk = _limited("100000")
    plain = _usdm(tmp_path, events, None, risk)
    ticks = list(plain.sampler.ts)
    on_tick = min(t for t in ticks if t >= MIDNIGHT and t % MS == 0)
    between = on_tick + 1_000 * MS + 37 * MS  # 37 ms past a tick: booked on the next one
    assert between not in ticks
    path = _csv(tmp_path / "f.csv", _around(on_tick // MS, "0.001", (between // MS, "-0.002")))
    result = _usdm(tmp_path, events, FundingInput.load(path, "BTCUSDT"), risk)
    mids = dict(zip(result.sampler.ts, result.sampler.mid, strict=True))
    rows = {r["ts_ns"]: r for r in result.report["funding"]["rows"]}
    first, second = rows[on_tick], rows[between]
    assert first["booked_ns"] == on_tick, "a settlement on a tick is booked on that tick"
    assert second["booked_ns"] == min(t for t in ticks if t > between), "between ticks: on the next one"
    assert first["price_source"] == second["price_source"] == "recorded mid"
    assert Decimal(first["price"]) == Decimal(repr(mids[on_tick])), "on a tick: that tick's mid"
    before = max(t for t in ticks if t <= between)
    assert Decimal(second["price"]) == Decimal(repr(mids[before])), "between ticks: the last mid before it"
    for row, rate in ((first, Decimal("0.001")), (second, Decimal("-0.002"))):
        held = _position_at(result.engine.fills, row["ts_ns"])
        assert Decimal(row["position"]) == held
        assert Decimal(row["payment"]) == (-held * Decimal(row["price"]) * rate).quantize(Q)
    assert result.report["funding"]["cross_check"]["agrees"] is True


def test_a_fill_executed_before_the_settlement_but_learned_after_it_is_in_the_position(tmp_path: Path) -> None:
    events = _events(tmp_path, "usdm")
    risk = _limited("100000")
    slow = parse_latency_ms("2,700")  # the engine hears of a fill 700 ms after the venue executed it
    plain = _usdm(tmp_path, events, None, risk, latency=slow)
    fill = next(f for f in sorted(plain.engine.fills, key=lambda f: f.ts_event) if f.ts_event > MIDNIGHT - 20 * 10**9)
    assert fill.ts_recv - fill.ts_event >= 700 * MS
    settle = (fill.ts_event // MS + 1) * MS  # just after the venue executed it, long before the engine knows
    path = _csv(tmp_path / "f.csv", _around(settle // MS, "0.001"))
    result = _usdm(tmp_path, events, FundingInput.load(path, "BTCUSDT"), risk, latency=slow)
    row = result.report["funding"]["rows"][0]
    assert row["booked_ns"] < fill.ts_recv, "booked before the engine learned of the fill"
    venue_held = _position_at(result.engine.fills, settle)
    engine_knew = sum((f.qty if f.side is Side.BUY else -f.qty for f in result.engine.fills
                       if f.ts_recv <= row["booked_ns"]), Decimal(0))
    assert venue_held != engine_knew, "the scenario must have the fill in flight at the settlement"
    assert Decimal(row["position"]) == venue_held
    assert result.report["funding"]["cross_check"]["agrees"] is True


def test_coinm_funding_is_booked_in_the_coin_during_the_run(tmp_path: Path) -> None:
    events = _events(tmp_path, "coinm")
    plain = run_backtest(_controller("5"), events, setup="replay", risk=_risk("50"))
    fills = sorted(plain.engine.fills, key=lambda f: f.ts_event)
    settle_ms = fills[0].ts_event // MS + 1
    path = _csv(tmp_path / "BTCUSD_PERP.csv", _around(settle_ms, "-0.00025"))
    result = run_backtest(_controller("5"), events, setup="replay", risk=_risk("50"),
                          funding=FundingInput.load(path, "BTCUSD_PERP"))
    settled = settle_ms * MS
    held = _position_at(result.engine.fills, settled)
    assert held != 0
    row = result.report["funding"]["rows"][0]
    expected = -held * Decimal(100) / Decimal(row["price"]) * Decimal("-0.00025")
    assert result.report["funding"]["unit"] == "BTC"
    assert Decimal(row["payment"]) == expected.quantize(Q)
    figures = result.engine.pnl.figures()
    assert figures.total == figures.realized - figures.fees + figures.unrealized + figures.cash_flows
    assert Decimal(result.report["pnl"]["funding"]) == Decimal(result.report["funding"]["total"])
    assert result.report["pnl"]["unit"] == "BTC"


def test_same_inputs_give_a_byte_identical_report(tmp_path: Path) -> None:
    events = _events(tmp_path, "usdm")
    path = _csv(tmp_path / "f.csv", _around(MIDNIGHT // MS, "0.3"))
    reports = [json.dumps(_usdm(tmp_path, events, FundingInput.load(path, "BTCUSDT"), _limited("50")).report,
                          default=str) for _ in range(2)]
    assert reports[0] == reports[1]
    assert '"funding"' in reports[0]


def test_a_fill_the_venue_executed_but_the_engine_never_heard_of_fails_the_cross_check_loudly(
    tmp_path: Path,
) -> None:
    """40 s of response latency: a fill before a settlement near the end never reaches the engine before the
    run ends. The venue's account paid funding on it; the engine's fills (the post-run view) do not hold it.
    The two disagree, and the run must say so with both figures and exit non-zero, not print either one."""
    events = _events(tmp_path, "usdm")
    settle = events[-1].ts_recv - 1_000 * MS
    path = _csv(tmp_path / "f.csv", _around(settle // MS, "0.01"))
    result = _usdm(tmp_path, events, FundingInput.load(path, "BTCUSDT"), _limited("100000"),
                   latency=parse_latency_ms("2,40000"))
    venue_fills = result.engine.venue.fills  # type: ignore[attr-defined]
    assert _position_at(venue_fills, settle) != _position_at(result.engine.fills, settle), "scenario"
    check = result.report["funding"]["cross_check"]
    assert check["agrees"] is False and "position" in check["problem"]
    assert Decimal(result.report["funding"]["rows"][0]["position"]) == _position_at(venue_fills, settle)
    problems = [p["reason"] for p in result.report["problems"]]
    assert any("funding booked during the run" in p and check["post_run_total"] in p for p in problems), problems
    assert result.engine.outcome.has(ProblemKind.ENGINE_FAILURE)
    # 40 s of latency also leaves 2 orders open at the end: run_backtest records that too (as mmkit backtest
    # always did for its exit code), and orders left open outrank an engine failure (mmkit.app.outcome)
    assert result.left_open and result.engine.outcome.exit_code() == 1


def test_the_cli_prints_the_funding_halt_and_writes_it_in_the_report(tmp_path: Path) -> None:
    config = tmp_path / "usdm.yml"
    config.write_text(USDM_CONFIG + "  kill_switch: {max_loss: 50, max_drawdown: null}\n")
    data = tmp_path / "data"
    synthetic_recording("usdm", seconds=60, start_ns=MIDNIGHT - 30 * 10**9).write(data)
    plain = _usdm(tmp_path, _events(tmp_path, "usdm"), None, _limited("50"))
    held = _position_at(plain.engine.fills, MIDNIGHT)
    path = _csv(tmp_path / "hostile.csv", _around(MIDNIGHT // MS, "0.9" if held > 0 else "-0.9"))
    cmd = [sys.executable, "-m", "mmkit.app.cli", "backtest", str(config), "--data", str(data), "--out",
           str(tmp_path / "out"), "--no-progress", "--funding", str(path)]
    done = subprocess.run(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), "MMKIT_CACHE_DIR": "off"},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert "funding" in report["counters"]["kill_switch"] and "max loss 50" in report["counters"]["kill_switch"]
    assert "!! the kill switch halted quoting after funding was paid: loss" in done.stdout
    assert Decimal(report["pnl"]["funding"]) == Decimal(report["funding"]["total"]) < -50
    assert "paid into the PnL during the run" in done.stdout
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    top = page[page.index('id="headline"'):page.index("<h2>Equity and drawdown</h2>")]
    assert "of which funding" in top and report["funding"]["total"] in top
    assert "The kill switch halted quoting after funding was paid" in top


def test_setup_sim_pays_funding_from_its_simulated_venue_too(tmp_path: Path) -> None:
    from mmkit.connector import load_venue_rules

    events = _events(tmp_path, "usdm")
    path = _csv(tmp_path / "f.csv", _around(MIDNIGHT // MS, "0.01"))
    result = run_backtest(_controller("0.01"), events, setup="sim", rules=load_venue_rules("binance_usdm"),
                          symbol="BTCUSDT", risk=_limited("100000"), funding=FundingInput.load(path, "BTCUSDT"))
    row = result.report["funding"]["rows"][0]
    held = _position_at(result.engine.fills, MIDNIGHT)
    assert held != 0 and Decimal(row["position"]) == held
    assert Decimal(row["payment"]) == (-held * Decimal(row["price"]) * Decimal("0.01")).quantize(Q)
    assert result.engine.pnl.cash_flows() == {"funding": -held * Decimal(row["price"]) * Decimal("0.01")}
    assert result.report["funding"]["cross_check"]["agrees"] is True
