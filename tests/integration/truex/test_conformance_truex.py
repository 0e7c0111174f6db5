"""The shared connector conformance suite, run against TrueXConnector and the local TrueX exchange."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from connectors.truex.connector import TrueXConnector
from connectors.truex.sim.exchange import TrueXExchange
from mmkit.connector import Connector
from mmkit.model import OrderRequest
from mmkit.testing.conformance import ConnectorConformance
from tests.integration.truex.harness import make_pair

pytestmark = pytest.mark.integration

#: Below $10,000 an on-lot order (0.0001 BTC) can be under the 1 PYUSD minimum notional,
#: so the suite's min-notional test is meaningful against TrueX's real increments.
MID = Decimal(5000)


class TestTrueXConformance(ConnectorConformance):
    symbol = "BTC-PYUSD"

    #: The exchange behind each connector (pytest makes one instance per test, so this never grows).
    exchanges: dict[int, TrueXExchange] = {}  # noqa: RUF012 - keyed by connector, emptied in close_connector

    def _exchange(self, connector: Connector) -> TrueXExchange:
        return self.exchanges[id(connector)]

    @staticmethod
    def _comp(connector: Connector) -> str:
        assert isinstance(connector, TrueXConnector)
        return connector.config.oe.sender_comp_id

    async def make_connector(self) -> Connector:
        exchange, connector = make_pair(cancel_on_disconnect=False, reference_price=MID)
        exchange.start()
        self.exchanges[id(connector)] = exchange
        return connector

    async def venue_fill(self, connector: Connector, order: OrderRequest) -> None:
        assert order.price is not None
        self._exchange(connector).submit_taker(order.side.opposite, order.qty, order.price)

    async def venue_lose_order(self, connector: Connector, client_id: str) -> None:
        assert self._exchange(connector).forget_order(self._comp(connector), client_id)

    async def drop_connection(self, connector: Connector) -> None:
        exchange = self._exchange(connector)
        exchange.set_session_enabled(self._comp(connector), False)  # stays down until restored
        exchange.drop_session(self._comp(connector))
        for _ in range(200):
            if not connector.connected:
                return
            await asyncio.sleep(0.005)

    async def restore_connection(self, connector: Connector) -> None:
        self._exchange(connector).set_session_enabled(self._comp(connector), True)
        for _ in range(600):  # QuickFIX reconnects by itself after ReconnectInterval (1 s)
            if connector.connected:
                return
            await asyncio.sleep(0.01)

    async def reference_mid(self, connector: Connector) -> Decimal:
        return MID

    async def close_connector(self, connector: Connector) -> None:
        try:
            await super().close_connector(connector)
            await connector.disconnect()
        finally:
            exchange = self.exchanges.pop(id(connector))
            exchange.stop()
