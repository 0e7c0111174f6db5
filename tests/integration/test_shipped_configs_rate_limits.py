"""Issue 12: the shipped configs do not go dark under their own venue's rate limits.

Each shipped strategy config is backtested the way ``mmkit backtest CONFIG`` runs it by
default (its own venue's rules and rate limits, the default setup) over the whole shared
recording. The share of ticks on which the venue's limits denied an action must stay
small, and both sides must be quoted nearly all the time. The TrueX config repriced on a
2-tick move until this test was written: 65 % of its ticks were rate-limited.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.shared_data]

SHIPPED = [
    "strategies/truex_btc_pyusd.yml",
    "strategies/kraken_btc_usd.yml",
    "strategies/coinbase_btc_usd.yml",
    "strategies/sim_demo.yml",
    "strategies/layered_example.yml",
    "strategies/avellaneda_example.yml",
]
#: Share of ticks with an action denied by the venue's limits that still counts as "not dark".
MAX_RATE_LIMITED_PCT = 15.0


@pytest.fixture(scope="module")
def events(shared_data: Path) -> list[object]:
    from mmkit.app.backtest_cmd import load_events

    return load_events(shared_data / "binance_spot_btcusdt")


@pytest.mark.parametrize("config", SHIPPED)
def test_shipped_config_quotes_within_its_venues_limits(config: str, events: list) -> None:
    from mmkit.app.backtest_cmd import run_backtest
    from mmkit.app.backtest_setup_choice import default_setup
    from mmkit.app.build import build_controller, risk_settings, venue_rules
    from mmkit.app.config import ConfigOverrides, load_engine_config

    loaded = load_engine_config(config, ConfigOverrides(backtest=True))
    quoted = venue_rules(loaded.config.venue, loaded.path, "venue") if loaded.config.venue.rules else None
    setup = default_setup(quoted, events)
    result = run_backtest(
        build_controller(loaded), events, setup=setup, rules=quoted if setup == "sim" else None,
        symbol=loaded.config.venue.symbol if setup == "sim" else None, risk=risk_settings(loaded),
        tick_ms=loaded.config.engine.tick_ms,
    )
    report = result.report
    assert report["rate_limited_tick_pct"] <= MAX_RATE_LIMITED_PCT, (config, report["rate_limited_tick_pct"])
    assert report["quoting"]["two_sided_uptime_pct"] >= 95, (config, report["quoting"])
