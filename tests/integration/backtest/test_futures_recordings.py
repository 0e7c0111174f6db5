"""Binance futures recordings (USD-M, COIN-M) backtest as themselves: their chaining, instrument and rules.

Synthetic recordings in each market's wire format (mmkit.testing.binance_recordings), so the test
controls where the snapshot, the gaps and the ids are. Before futures chaining was declared, a USD-M
recording read with spot's rule gave a book that never became valid: 0 orders, 0 fills, exit 0.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import attrs
import pytest

from mmkit.app.assembly import RiskSettings
from mmkit.app.backtest_cmd import BacktestResult, load_events, run_backtest
from mmkit.model import BookDelta, BookSnapshot, Liquidity, Trade
from mmkit.risk.inventory import InventoryConfig
from mmkit.risk.kill_switch import KillSwitchConfig
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


def _coinm_run(tmp_path: Path, risk: RiskSettings | None = None) -> BacktestResult:
    rec = synthetic_recording("coinm", seconds=60)
    events = load_events(rec.write(tmp_path)[0])
    return run_backtest(_controller("5"), events, setup="replay", risk=risk or _risk("50"))


def test_coinm_backtest_trades_whole_contracts(tmp_path: Path) -> None:
    result = _coinm_run(tmp_path)
    fills = result.engine.fills
    assert len(fills) > 0
    assert all(f.qty == f.qty.to_integral_value() and f.price % Decimal("0.1") == 0 for f in fills)
    assert result.report["venue"] == "binance_coinm"
    assert result.report["instrument"] == {"inverse": True, "contract_size": "100", "size_unit": "contracts",
                                           "pnl_unit": "BTC", "quote": "USD"}
    assert Decimal(result.report["fills"]["volume_contracts"]) == sum(f.qty for f in fills)
    assert Decimal(result.report["fills"]["volume_quote"]) == 100 * sum(f.qty for f in fills)


def test_coinm_report_pnl_is_the_inverse_pnl_in_coin_where_a_linear_one_is_far_off(tmp_path: Path) -> None:
    """The report's PnL is the engine's, recomputed here by hand from the fills with the inverse formula."""
    result = _coinm_run(tmp_path)
    fills, pnl = result.engine.fills, result.report["pnl"]
    mark = Fraction(pnl["mark_price"])
    fees = sum(Fraction(f.fee) for f in fills)
    coin = sum(f.side.sign * Fraction(f.qty) * 100 * (1 / Fraction(f.price) - 1 / mark) for f in fills) - fees
    assert pnl["unit"] == "BTC"
    assert abs(Fraction(pnl["total"]) - coin) <= Fraction(1, 10**8)  # rounded to the satoshi
    assert Fraction(pnl["total"]) == Fraction(result.engine.pnl.total().quantize(Decimal("1e-8")))
    assert abs(Fraction(pnl["in_quote"]["total"]) - coin * mark) <= Fraction(1, 100)
    # The same fills read linearly (contracts as BTC, the old engine ledger): hundreds of USD off.
    linear = sum(f.side.sign * Fraction(f.qty) * (mark - Fraction(f.price)) for f in fills) - fees * mark
    assert abs(linear - coin * mark) > 100
    # Fees: in BTC, on the coin value of the contracts, at the venue's maker/taker rates.
    for f in fills:
        bps = Decimal(2) if f.liquidity is Liquidity.MAKER else Decimal(5)
        assert f.fee_currency == "BTC" and f.fee == f.qty * 100 / f.price * bps / 10000
    assert Fraction(pnl["fees"]) == Fraction(sum((f.fee for f in fills), Decimal(0)).quantize(Decimal("1e-8")))


def test_coinm_backtest_is_deterministic(tmp_path: Path) -> None:
    first, second = _coinm_run(tmp_path / "a"), _coinm_run(tmp_path / "b")
    assert first.report == second.report and first.engine.fills


@pytest.mark.parametrize(("limit", "unit"), [("0.00003", "BTC"), ("2", "USD")])
def test_coinm_kill_switch_trips_on_the_inverse_loss_in_its_unit(tmp_path: Path, limit: str, unit: str) -> None:
    """The fixture's quoting loses about 4 USD (0.00006 BTC) in a minute; a linear ledger showed +970 USD."""
    free = _coinm_run(tmp_path / "free")
    risk = attrs.evolve(_risk("50"), kill_switch=KillSwitchConfig(max_drawdown=None, max_loss=Decimal(limit),
                                                                  stale_after_ns=None, unit=unit))
    guarded = _coinm_run(tmp_path / "guarded", risk)
    reason = guarded.report["counters"]["kill_switch"]
    assert f"beyond max loss {limit} {unit}" in reason
    assert len(guarded.engine.fills) < len(free.engine.fills)  # it stopped quoting when it tripped


def test_a_kill_switch_unit_foreign_to_the_instrument_is_a_config_error(tmp_path: Path) -> None:
    risk = attrs.evolve(_risk("50"), kill_switch=KillSwitchConfig(unit="USDT"))  # written for BTCUSDT
    with pytest.raises(ValueError, match=r"risk.kill_switch.unit 'USDT' is neither the base \(BTC\)"):
        _coinm_run(tmp_path, risk)


def test_coinm_tearsheet_names_the_coin(tmp_path: Path) -> None:
    from mmkit.backtest.html import render_tearsheet

    result = _coinm_run(tmp_path)
    page = render_tearsheet(result.report, result.sampler, result.engine.fills)
    assert "PnL (BTC)" in page and "BTC / h" in page  # equity chart axis, PnL-per-hour headline
    assert "PnL (quote currency)" not in page


def test_coinm_fills_csv_notional_is_contracts_times_size(tmp_path: Path) -> None:
    import csv

    from mmkit.app.backtest_cmd import write_outputs

    result = _coinm_run(tmp_path / "run")
    paths = write_outputs(result, tmp_path / "out")
    with paths["fills.csv"].open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows and all(Decimal(r["notional"]) == Decimal(r["qty"]) * 100 and r["fee_currency"] == "BTC"
                        for r in rows)
