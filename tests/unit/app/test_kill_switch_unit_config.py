"""risk.kill_switch.unit: the currency of the loss limits, checked against the quoted instrument at build time."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmkit.app.build import build
from mmkit.app.config import load_engine_config
from mmkit.clock import Clock, ClockMode
from mmkit.conf import ConfigError

REPO = Path(__file__).resolve().parents[3]
LAYERED = (REPO / "strategies" / "layered_example.yml").read_text()
KILL = "  kill_switch: {max_drawdown: 500, max_loss: 1000, resume: manual}"


def coinm_config(tmp_path: Path, unit: str | None) -> Path:
    assert KILL in LAYERED and "  rules: sim " in LAYERED
    text = LAYERED.replace("  rules: sim ", "  rules: binance_coinm ")
    text = text.replace("symbol: BTC-PYUSD", "symbol: BTCUSD_PERP")
    if unit is not None:
        text = text.replace(KILL, KILL[:-1] + f", unit: {unit}}}")
    path = tmp_path / "coinm.yml"
    path.write_text(text)
    return path


def test_a_unit_of_another_instrument_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    path = coinm_config(tmp_path, "USDT")  # a BTCUSDT config's habit, on an inverse BTC/USD contract
    with pytest.raises(ConfigError) as info:
        build(load_engine_config(path), Clock(ClockMode.BACKTEST, start_ns=0))
    assert info.value.key_path == "risk.kill_switch.unit" and info.value.file == str(path)
    assert "neither the base (BTC) nor the quote (USD)" in str(info.value)


@pytest.mark.parametrize("unit", [None, "BTC", "usd", "base"])
def test_the_instruments_own_currencies_build(tmp_path: Path, unit: str | None) -> None:
    built = build(load_engine_config(coinm_config(tmp_path, unit)), Clock(ClockMode.BACKTEST, start_ns=0))
    kill = built.engine.runner.kill_switch
    assert kill is not None and kill.unit == ("USD" if unit in (None, "usd") else "BTC")
    assert built.engine.pnl.unit == "BTC"  # the ledger of an inverse contract is in its coin


def test_hedging_an_inverse_contract_is_refused_not_mixed_into_its_coin_ledger(tmp_path: Path) -> None:
    path = coinm_config(tmp_path, None)
    hedge = "hedge: {enabled: true, venue: {connector: sim, rules: sim, symbol: BTC-PYUSD}}\n"
    path.write_text(path.read_text() + hedge)
    with pytest.raises(ConfigError) as info:
        build(load_engine_config(path), Clock(ClockMode.BACKTEST, start_ns=0))
    assert info.value.key_path == "hedge.enabled" and "inverse contract" in str(info.value)
