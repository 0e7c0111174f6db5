"""The backtest override: a production config backtests without any of its secrets in the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmkit.app.config import ConfigOverrides, load_engine_config
from mmkit.conf import ConfigError

REPO = Path(__file__).resolve().parents[3]
UNSET = "MMKIT_TEST_NEVER_SET_SECRET"
SET = "MMKIT_TEST_SET_SECRET"

CONFIG = f"""
venue:
  connector: connectors.truex:TrueXConnector
  rules: truex
  symbol: BTC-PYUSD
  settings: {{api_key: "${{{UNSET}}}", host: 10.0.0.1}}
reference:
  sources:
    - {{name: kraken, connector: connectors.ccxt:CcxtConnector, rules: kraken, symbol: BTC/USD,
       settings: {{secret_key: "${{{UNSET}}}"}}}}
hedge:
  enabled: true
  venue: {{connector: connectors.ccxt:CcxtConnector, rules: kraken, symbol: BTC/USD,
          settings: {{api_key: "${{{UNSET}}}"}}}}
strategy:
  controller: strategies.skewed_ladder:SkewedLadderController
  params: {{base_spread_bps: 20, levels: 1}}
store: {{url: "${{{UNSET}}}", redis_url: "${{{UNSET}}}", audit_fsync: never}}
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(UNSET, raising=False)
    monkeypatch.setenv(SET, "value-from-the-environment")
    path = tmp_path / "prod.yml"
    path.write_text(CONFIG)
    return path


def test_without_the_override_a_missing_secret_is_named(config: Path) -> None:
    with pytest.raises(ConfigError, match=rf"venue\.settings\.api_key.*{UNSET} is not set"):
        load_engine_config(config)


def test_the_backtest_override_drops_every_secret_and_keeps_the_rest(config: Path) -> None:
    loaded = load_engine_config(config, ConfigOverrides(backtest=True))
    assert loaded.config.venue.settings == {"host": "10.0.0.1"}
    assert loaded.config.hedge.venue is not None and loaded.config.hedge.venue.settings == {}
    assert [source.settings for source in loaded.config.reference.sources] == [{}]
    assert loaded.config.store.url is None and loaded.config.store.redis_url is None
    assert loaded.config.store.audit_fsync == "never"
    assert loaded.config.venue.rules == "truex" and loaded.config.venue.symbol == "BTC-PYUSD"
    assert loaded.config.strategy.params == {"base_spread_bps": 20, "levels": 1}


def test_each_secret_path_alone_is_dropped(config: Path) -> None:
    """One ``${SECRET}`` at a time, so no path is dropped only because another one is."""
    for secret in ("venue.settings.api_key", "reference.sources[].settings.secret_key", "store.url"):
        text = CONFIG.replace(f'"${{{UNSET}}}"', f'"${{{SET}}}"')
        key = secret.rsplit(".", 1)[1]
        text = text.replace(f'{key}: "${{{SET}}}"', f'{key}: "${{{UNSET}}}"', 1)
        config.write_text(text)
        with pytest.raises(ConfigError, match=UNSET):
            load_engine_config(config)
        load_engine_config(config, ConfigOverrides(backtest=True))


def test_the_override_still_rejects_what_is_wrong_elsewhere(config: Path) -> None:
    config.write_text(CONFIG.replace("strategy:", "strategy:\n  unknown_key: 1"))
    with pytest.raises(ConfigError, match="unknown_key"):
        load_engine_config(config, ConfigOverrides(backtest=True))


def test_the_shipped_truex_config_loads_for_a_backtest_without_any_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KRAKEN_API_KEY", "KRAKEN_SECRET_KEY", "TRUEX_API_KEY", "TRUEX_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    path = REPO / "strategies" / "truex_btc_pyusd.yml"
    with pytest.raises(ConfigError):
        load_engine_config(path)
    loaded = load_engine_config(path, ConfigOverrides(backtest=True))
    assert loaded.config.strategy.controller == "strategies.skewed_ladder:SkewedLadderController"
