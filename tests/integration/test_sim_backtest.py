"""The simple controller on the simulated venue, priced off the shared recording, in BACKTEST.

Uses ../shared/data/binance_spot_btcusdt (real recorded data).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal as D
from pathlib import Path

import pytest

from mmkit.app.simulated import build_sim_setup
from mmkit.backtest.binance import read_recording, recording_files
from mmkit.clock import Clock, ClockMode
from mmkit.connector import load_venue_rules
from mmkit.model import NS_PER_MS, NS_PER_S, Fill
from strategies.simple import SimpleConfig, SimpleController

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def recording(shared_data: Path) -> list:
    return list(read_recording(recording_files(shared_data / "binance_spot_btcusdt")))


def run(recording: list, seconds: int = 120) -> tuple[list[Fill], D, int, object]:
    start = recording[0].ts_recv
    clock = Clock(ClockMode.BACKTEST, tick_ns=100 * NS_PER_MS, start_ns=start)
    controller = SimpleController(SimpleConfig(half_spread_bps=D(5), order_size=D("0.01")))
    # A funded account (a simulated spot venue refuses what its balances cannot pay for; none given: nothing held).
    setup = build_sim_setup(clock, controller, recording, load_venue_rules("sim"), "BTC-PYUSD",
                            initial_balances={"BTC": D(5), "PYUSD": D(1_000_000)})
    left_open = asyncio.run(setup.engine.run_backtest(start + seconds * NS_PER_S))
    return setup.engine.fills, setup.engine.position, left_open, setup


def test_backtest_quotes_fills_and_ends_flat_on_orders(recording: list) -> None:
    fills, position, left_open, setup = run(recording)
    assert left_open == 0
    assert setup.venue.order_truth  # the venue is the source of truth below
    assert not [o for o in setup.venue.engines["BTC-PYUSD"].orders_of("us") if o]  # no resting orders of ours
    assert len(fills) > 5, "the taker flow should fill our quotes over two minutes of real data"
    assert position == sum((f.qty * f.side.sign for f in fills), D(0))
    assert position == setup.engine.pnl.position()
    # quotes were really around the replayed Binance price
    assert all(D(61500) < f.price < D(62000) for f in fills)


def test_backtest_is_deterministic(recording: list) -> None:
    first = run(recording, seconds=60)[0]
    second = run(recording, seconds=60)[0]
    assert [(f.trade_id, f.side, f.price, f.qty, f.ts_event) for f in first] == [
        (f.trade_id, f.side, f.price, f.qty, f.ts_event) for f in second
    ]
    assert first


@pytest.mark.parametrize("config", ["strategies/sim_demo.yml", "strategies/layered_example.yml"])
def test_shipped_configs_never_pass_max_position(shared_data: Path, config: str) -> None:
    """Issue 12 case 6: the worst case of the resting orders is bounded, so the position never passes the limit.

    Before the executor bounded it, both ended beyond max_position by about one resting order.
    """
    from mmkit.app.backtest_cmd import load_events, run_backtest
    from mmkit.app.build import build_controller, risk_settings, venue_rules
    from mmkit.app.config import ConfigOverrides, load_engine_config

    loaded = load_engine_config(config, ConfigOverrides(backtest=True))
    rules = venue_rules(loaded.config.venue, loaded.path, "venue")
    risk = risk_settings(loaded)
    events = load_events(shared_data / "binance_spot_btcusdt")
    # Takers that reach 30 bps beyond the prints (the old default): enough flow to push the position to the limit.
    result = run_backtest(build_controller(loaded), events, setup="sim", rules=rules,
                          symbol=loaded.config.venue.symbol, risk=risk, tick_ms=loaded.config.engine.tick_ms,
                          taker_reach_bps=D(30))
    limit = risk.inventory.max_position
    position, worst = D(0), D(0)
    for fill in result.engine.fills:
        position += fill.qty if fill.side.value == "BUY" else -fill.qty
        worst = max(worst, abs(position))
    assert result.report["fills"]["count"] > 100
    assert worst <= limit, f"position reached {worst} with max_position {limit}"
    assert 0 <= result.report["rate_limited_tick_pct"] <= 100


def test_sim_takers_follow_the_tape_and_the_report_shows_it(shared_data: Path) -> None:
    """Issue 12 case 3: by default the synthetic takers, fitted on the tape, trade no further from the mid than the
    tape's farthest print; the report shows the fit and the takers by distance from the mid, and the flow only
    reaches further when asked to."""
    from mmkit.app.backtest_cmd import load_events, run_backtest
    from mmkit.model import Trade

    events = load_events(shared_data / "binance_spot_btcusdt")
    end = events[0].ts_recv + 180 * NS_PER_S

    def backtest(reach: str) -> dict:
        controller = SimpleController(SimpleConfig(half_spread_bps=D(5), order_size=D("0.01")))
        return run_backtest(controller, events, setup="sim", end_ns=end, taker_reach_bps=D(reach)).report

    honest, reaching = backtest("0"), backtest("30")
    flow = honest["taker_flow"]
    assert flow["reach_bps"] == "0" and reaching["taker_flow"]["reach_bps"] == "30"
    tape = sum(1 for e in events if isinstance(e, Trade) and e.aggressor is not None and e.ts_recv <= end)
    # Every aggressor print once the reference has a mid (the run ends on the first tick at or after `end`).
    assert tape - 5 <= flow["tape_trades"] <= tape + 10
    assert sum(row["tape_trades"] for row in flow["bins"]) == flow["tape_trades"]
    assert flow["farthest_fill_bps"] <= flow["max_distance_bps"] + 1e-9  # fitted takers stay within the tape
    assert honest["fills"]["count"] < reaching["fills"]["count"]
    assert honest["banner"].startswith("SYNTHETIC VENUE") and honest["fees"]["source"] == "conf/venues/sim.yml"
