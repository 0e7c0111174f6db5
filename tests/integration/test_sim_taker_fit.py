"""Setup sim on the shared recording: the takers are fitted per run on the run's own tape (issue 12).

Uses ../shared/data/binance_spot_btcusdt (real recorded data).
"""

from __future__ import annotations

import json
from decimal import Decimal as D
from pathlib import Path

import pytest

from mmkit.app.backtest_cmd import load_events, run_backtest
from mmkit.app.simulated import REFERENCE_SIZE, REFERENCE_TICK, fit_recorded_tape
from mmkit.backtest.replay import ReplayEvent
from mmkit.model import NS_PER_S, Side, Trade
from strategies.simple import SimpleConfig, SimpleController

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def events(shared_data: Path) -> list[ReplayEvent]:
    return load_events(shared_data / "binance_spot_btcusdt")


def backtest(events: list[ReplayEvent], start_s: int, seconds: int, *, seed: int = 7, reach: str = "0") -> dict:
    start = events[0].ts_recv + start_s * NS_PER_S
    controller = SimpleController(SimpleConfig(half_spread_bps=D("0.5"), order_size=D("0.01")))
    result = run_backtest(controller, events, setup="sim", start_ns=start, end_ns=start + seconds * NS_PER_S,
                          seed=seed, taker_reach_bps=D(reach))
    return result.report


def test_the_fit_is_the_windows_own_tape(events: list[ReplayEvent]) -> None:
    start, end = events[0].ts_recv + 60 * NS_PER_S, events[0].ts_recv + 180 * NS_PER_S
    fit = fit_recorded_tape(events, (start, end), (REFERENCE_TICK, REFERENCE_SIZE))
    in_window = [e for e in events if isinstance(e, Trade) and start <= e.ts_recv <= end]
    assert fit.trades + fit.without_mid + fit.without_side == len(in_window) > 1_000
    assert fit.rate_per_s == pytest.approx(fit.trades / 120.0)
    buys = sum(1 for e in in_window if e.aggressor is Side.BUY)
    fitted_buys = sum(b.buy_share * b.trades for b in fit.buckets)
    assert abs(fitted_buys - buys) <= fit.without_mid + 1e-6
    assert max(b.size_q[-1] for b in fit.buckets) == max(e.qty for e in in_window)


def test_different_windows_give_different_fits_and_the_report_prints_the_one_used(events: list[ReplayEvent]) -> None:
    first, second = backtest(events, 0, 90), backtest(events, 300, 90)
    a, b = first["taker_flow"], second["taker_flow"]
    assert a["bins"] != b["bins"] and a["tape_trades"] != b["tape_trades"]
    for flow in (a, b):
        assert flow["window_s"] == pytest.approx(90.0) and flow["source"] == "recorded trades of binance:BTCUSDT"
        assert flow["tape_rate_per_s"] == pytest.approx(flow["tape_trades"] / 90.0, rel=1e-3)
        assert sum(row["takers_sent"] for row in flow["bins"]) == flow["takers_sent"] > 100
        # reach 0: no taker traded further from the mid than the farthest print of this window's tape
        assert flow["reach_bps"] == "0" and flow["farthest_fill_bps"] <= flow["max_distance_bps"] + 1e-9


def test_same_seed_and_input_give_the_same_report_and_another_seed_other_takers(events: list[ReplayEvent]) -> None:
    one, two = backtest(events, 0, 120), backtest(events, 0, 120)
    assert json.dumps(one, sort_keys=True, default=str) == json.dumps(two, sort_keys=True, default=str)
    assert one["fills"]["count"] > 0
    other = backtest(events, 0, 120, seed=8)
    assert other["taker_flow"]["bins"][0]["tape_trades"] == one["taker_flow"]["bins"][0]["tape_trades"]  # same fit
    assert other["taker_flow"]["takers_sent"] != one["taker_flow"]["takers_sent"]  # other draws


def test_reach_lets_takers_trade_further_and_says_so(events: list[ReplayEvent]) -> None:
    honest, reaching = backtest(events, 0, 120), backtest(events, 0, 120, reach="10")
    assert reaching["taker_flow"]["reach_bps"] == "10"
    assert reaching["taker_flow"]["farthest_fill_bps"] <= reaching["taker_flow"]["max_distance_bps"] + 10 + 1e-9
    assert reaching["fills"]["count"] > honest["fills"]["count"]


def test_fits_are_kept_only_for_the_very_same_events_window_and_grid(events: list[ReplayEvent]) -> None:
    grid = (REFERENCE_TICK, REFERENCE_SIZE)
    first = (events[0].ts_recv, events[0].ts_recv + 60 * NS_PER_S)
    later = (events[0].ts_recv + 60 * NS_PER_S, events[0].ts_recv + 120 * NS_PER_S)
    fit = fit_recorded_tape(events, first, grid)
    assert fit_recorded_tape(events, first, grid) is fit  # the same run again: kept
    assert fit_recorded_tape(events, later, grid) != fit  # another window: fitted anew
    copy = list(events)
    again = fit_recorded_tape(copy, first, grid)
    assert again == fit and again is not fit  # another list: fitted anew (and equal, being equal)
    trades = [i for i, e in enumerate(copy) if isinstance(e, Trade) and e.ts_recv <= first[1]]
    del copy[trades[len(trades) // 2]]
    changed = fit_recorded_tape(copy, first, grid)
    assert changed.trades + changed.without_mid == fit.trades + fit.without_mid - 1  # the list changed: refitted


def test_the_tearsheet_shows_the_fitted_table(events: list[ReplayEvent]) -> None:
    from mmkit.backtest.html import render_tearsheet

    start = events[0].ts_recv
    controller = SimpleController(SimpleConfig(half_spread_bps=D("0.5"), order_size=D("0.01")))
    result = run_backtest(controller, events, setup="sim", end_ns=start + 30 * NS_PER_S)
    page = render_tearsheet(result.report, result.sampler, result.engine.fills)
    assert '<table id="taker-flow">' in page
    flow = result.report["taker_flow"]
    for row in flow["bins"]:
        assert f"<th>{row['distance']}</th>" in page and f">{row['size_q'][-1]}<" in page
