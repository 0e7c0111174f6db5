"""Binance futures recordings (USD-M, COIN-M) backtest as themselves: their chaining, instrument and rules.

Synthetic recordings in each market's wire format (mmkit.testing.binance_recordings), so the test
controls where the snapshot, the gaps and the ids are. Before futures chaining was declared, a USD-M
recording read with spot's rule gave a book that never became valid: 0 orders, 0 fills, exit 0.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from mmkit.app.assembly import RiskSettings
from mmkit.app.backtest_cmd import load_events, run_backtest
from mmkit.model import BookDelta, BookSnapshot, Trade
from mmkit.risk.inventory import InventoryConfig
from mmkit.testing.binance_recordings import synthetic_recording
from strategies.skewed_ladder import SkewedLadderConfig, SkewedLadderController


def _controller(size: str) -> SkewedLadderController:
    return SkewedLadderController(SkewedLadderConfig(base_spread_bps=Decimal(1), levels=1,
                                                     base_size=Decimal(size)))


def _risk(limit: str) -> RiskSettings:
    max_position = Decimal(limit)
    return RiskSettings(inventory=InventoryConfig(max_position=max_position, hedge_threshold=max_position / 2,
                                                  emergency_position=max_position * 2))


@pytest.mark.parametrize(("market", "venue", "symbol"), [("usdm", "binance_usdm", "BTCUSDT"),
                                                         ("coinm", "binance_coinm", "BTCUSD_PERP")])
def test_futures_recording_is_read_with_its_own_instrument_and_chaining(
    tmp_path: Path, market: str, venue: str, symbol: str
) -> None:
    rec = synthetic_recording(market, seconds=20)  # type: ignore[arg-type]
    events = load_events(rec.write(tmp_path)[0])
    assert {(e.venue, e.symbol) for e in events} == {(venue, symbol)}
    deltas = [e for e in events if isinstance(e, BookDelta)]
    assert len(deltas) == rec.diffs and any(isinstance(e, BookSnapshot) for e in events)
    assert sum(isinstance(e, Trade) for e in events) == rec.trades


def test_usdm_backtest_fills_at_the_futures_tick(tmp_path: Path) -> None:
    rec = synthetic_recording("usdm", seconds=60)
    events = load_events(rec.write(tmp_path)[0])
    result = run_backtest(_controller("0.01"), events, setup="replay", risk=_risk("0.2"))
    report = result.report
    assert report["venue"] == "binance_usdm" and report["symbol"] == "BTCUSDT"
    fills = result.engine.fills
    assert len(fills) > 0, "a futures recording must quote and fill against its recorded book"
    for fill in fills:
        assert fill.price % Decimal("0.1") == 0, f"fill at {fill.price}: off the 0.1 futures tick"
        assert fill.qty % Decimal("0.001") == 0
    health = report["data_health"]["binance_usdm:BTCUSDT"]
    assert health["gaps"] == 0 and health["diffs_applied"] >= rec.diffs - 5


def test_coinm_backtest_trades_whole_contracts(tmp_path: Path) -> None:
    rec = synthetic_recording("coinm", seconds=60)
    events = load_events(rec.write(tmp_path)[0])
    result = run_backtest(_controller("5"), events, setup="replay", risk=_risk("50"))
    fills = result.engine.fills
    assert len(fills) > 0
    assert all(f.qty == f.qty.to_integral_value() and f.price % Decimal("0.1") == 0 for f in fills)
    assert result.report["venue"] == "binance_coinm"
    inverse = result.report["inverse_pnl"]  # PnL in BTC, as an inverse contract settles
    assert inverse["unit"] == "BTC" and inverse["contract_size"] == "100"
    assert Decimal(inverse["volume_contracts"]) == sum(f.qty for f in fills)
    assert "inverse" in result.report["pnl"]["note"]
