"""Fixtures: the mock venue server and CcxtConnectors on real ccxt.pro instances aimed at it."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from connectors.ccxt.connector import CcxtConnector, CcxtConnectorConfig, build_exchange
from connectors.ccxt.profiles import profile_for
from mmkit.connector import load_venue_rules
from tests.integration.ccxt.mock_venue import (
    MockVenueServer,
    coinbase_markets,
    gemini_markets,
    kraken_markets,
    point_exchange,
)

MARKETS: dict[str, Callable[[], dict[str, Any]]] = {
    "kraken": kraken_markets,
    "coinbase": coinbase_markets,
    "gemini": gemini_markets,
}

#: Short timeouts so that stale/reconnect paths run in well under a second. The dead man's switch is
#: off here (its own tests turn it on): its refreshes would consume errors a test injects for an order call.
FAST = CcxtConnectorConfig(
    stale_s=0.4, backoff_initial_s=0.02, backoff_max_s=0.1, poll_interval_s=0.05, dead_man_timeout_s=0
)

ConnectorFactory = Callable[..., Awaitable[CcxtConnector]]


@pytest.fixture
async def server() -> AsyncIterator[MockVenueServer]:
    srv = MockVenueServer()
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def make_connector(server: MockVenueServer) -> AsyncIterator[ConnectorFactory]:
    made: list[CcxtConnector] = []

    async def factory(venue: str, config: CcxtConnectorConfig = FAST, book: bool = True) -> CcxtConnector:
        profile = profile_for(venue)
        credentials = {"apiKey": "test-key", "secret": base64.b64encode(b"s" * 64).decode()}
        # rateLimit (ms between calls) must be given at construction: ccxt sizes its throttle then.
        exchange = build_exchange(profile, credentials, markets=MARKETS[venue](), rateLimit=5)
        point_exchange(exchange, server, venue)
        connector = CcxtConnector(exchange, load_venue_rules(venue), profile, config)
        if book:
            connector.subscribe_book(next(iter(profile.symbols)))
        await connector.connect()
        made.append(connector)
        return connector

    yield factory
    for connector in made:
        await connector.disconnect()
