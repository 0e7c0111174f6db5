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
    setup = build_sim_setup(clock, controller, recording, load_venue_rules("sim"), "BTC-PYUSD")
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
