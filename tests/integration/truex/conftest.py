"""Fixtures: a local TrueX exchange and a connected TrueX client on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from connectors.truex.connector import TrueXConnector
from connectors.truex.sim.exchange import TrueXExchange
from tests.integration.truex.harness import Collector, make_pair


@pytest.fixture
async def pair() -> AsyncIterator[tuple[TrueXExchange, TrueXConnector, Collector]]:
    exchange, connector = make_pair(cancel_on_disconnect=False)
    exchange.start()
    try:
        await connector.connect()
        yield exchange, connector, Collector(connector)
    finally:
        await connector.disconnect()
        exchange.stop()
