"""CcxtConnector.from_config: the settings the engine's config can give a ccxt venue.

No network: building a connector opens nothing; these check what the exchange instance is
configured with and that bad settings fail with a located ConfigError before anything connects.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from connectors.ccxt.connector import CcxtConnector
from mmkit.conf import ConfigError
from mmkit.connector import ConnectorContext, load_venue_rules
from tests.integration.ccxt.mock_venue import CCXT_STATIC

CONTEXT = ConnectorContext(file="engine.yml", key_path="reference.sources[0].settings", now_ns=time.time_ns)
Build = Callable[[dict[str, Any]], CcxtConnector]


@pytest.fixture
async def build_kraken() -> AsyncIterator[Build]:
    made: list[CcxtConnector] = []

    def factory(settings: dict[str, Any]) -> CcxtConnector:
        connector = CcxtConnector.from_config(
            settings, rules=load_venue_rules("kraken"), symbol="BTC/USD", context=CONTEXT
        )
        made.append(connector)
        return connector

    yield factory
    for connector in made:
        await connector.exchange.close()


async def test_url_overrides_merge_into_ccxt_urls_key_by_key(build_kraken: Build) -> None:
    connector = build_kraken({"urls": {"api": {"ws": {"publicV2": "ws://127.0.0.1:1/kraken/v2"}}}})
    api = connector.exchange.urls["api"]
    assert api["ws"]["publicV2"] == "ws://127.0.0.1:1/kraken/v2"
    # Overriding one websocket endpoint keeps the others and the REST endpoints.
    assert api["ws"]["privateV2"] == "wss://ws-auth.kraken.com/v2"
    assert api["public"] == "https://api.kraken.com" and api["private"] == "https://api.kraken.com"


async def test_ccxt_options_reach_the_exchange_as_json_numbers(build_kraken: Build) -> None:
    # The engine's YAML loader reads every number as a Decimal.
    connector = build_kraken({"ccxt_options": {"rateLimit": Decimal(5), "timeout": Decimal("2500.5")}})
    assert connector.exchange.rateLimit == 5 and isinstance(connector.exchange.rateLimit, int)
    assert connector.exchange.timeout == 2500.5
    assert connector.exchange.enableRateLimit is True


@pytest.mark.shared_data
async def test_markets_file_skips_market_loading(build_kraken: Build) -> None:
    connector = build_kraken({"markets_file": str(CCXT_STATIC / "markets" / "kraken.json")})
    assert "BTC/USD" in connector.exchange.markets
    assert connector.exchange.markets["BTC/USD"]["id"] == "XXBTZUSD"


@pytest.mark.parametrize(
    ("settings", "key", "reason"),
    [
        ({"ccxt_options": {"secret": "x"}}, "ccxt_options.secret", "credentials go in"),
        ({"ccxt_options": {"enableRateLimit": False}}, "ccxt_options.enableRateLimit", "always on"),
        ({"ccxt_options": {"urls": {}}}, "ccxt_options.urls", "settings.urls"),
        ({"ccxt_options": ["rateLimit"]}, "ccxt_options", "mapping"),
        ({"urls": "ws://127.0.0.1"}, "urls", "mapping"),
        ({"markets_file": "/nonexistent/markets.json"}, "markets_file", "cannot read"),
    ],
)
async def test_bad_settings_fail_located(build_kraken: Build, settings: dict[str, Any], key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_kraken(settings)
    assert info.value.file == "engine.yml"
    assert info.value.key_path == f"reference.sources[0].settings.{key}"
    assert reason in info.value.reason


@pytest.mark.parametrize(("content", "reason"), [("not json", "is not JSON"), ("{}", "must map ccxt symbols")])
async def test_markets_file_must_hold_market_definitions(
    build_kraken: Build, tmp_path: Path, content: str, reason: str
) -> None:
    path = tmp_path / "markets.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=reason):
        build_kraken({"markets_file": str(path)})


async def test_replace_capability_must_match_the_venue() -> None:
    """Gemini cannot replace in place: rules that claim it would make the executor send what fails."""
    import attrs

    rules = attrs.evolve(load_venue_rules("gemini"), supports_replace=True)
    with pytest.raises(ConfigError, match="cannot replace in place"):
        CcxtConnector.from_config({}, rules=rules, symbol="BTCUSD", context=CONTEXT)


async def test_gemini_requests_are_spaced_to_its_five_per_second() -> None:
    connector = CcxtConnector.from_config({}, rules=load_venue_rules("gemini"), symbol="BTCUSD", context=CONTEXT)
    try:
        assert connector.exchange.rateLimit == 200
    finally:
        await connector.exchange.close()


@pytest.mark.parametrize("account", ["", "   ", 7, ["desk"]])
async def test_an_account_that_is_not_a_name_is_refused_naming_the_key(build_kraken: Build, account: object) -> None:
    """``account`` names the exchange account for the market claim; a blank or non-text one would claim nothing."""
    with pytest.raises(ConfigError, match=r"reference\.sources\[0\]\.settings\.account"):
        build_kraken({"account": account})


async def test_an_account_name_is_taken_and_not_handed_to_ccxt(build_kraken: Build) -> None:
    connector = build_kraken({"account": "desk-main"})
    assert "account" not in connector.exchange.options
