"""The shared connector conformance suite, run on CcxtConnector (Kraken) against the mock venue."""

from __future__ import annotations

import base64
from decimal import Decimal

import pytest

from connectors.ccxt.connector import CcxtConnector, build_exchange
from connectors.ccxt.profiles import profile_for
from mmkit.connector import Connector, load_venue_rules
from mmkit.model import Fill, OrderRequest, Side
from mmkit.testing.conformance import ConnectorConformance, Harness
from tests.integration.ccxt.conftest import FAST
from tests.integration.ccxt.mock_venue import MockVenueServer, kraken_markets, point_exchange

pytestmark = [pytest.mark.integration, pytest.mark.shared_data]


class TestCcxtKrakenConformance(ConnectorConformance):
    symbol = "BTC/USD"

    async def make_connector(self) -> Connector:
        self.server = MockVenueServer()
        await self.server.start()
        profile = profile_for("kraken")
        credentials = {"apiKey": "test-key", "secret": base64.b64encode(b"s" * 64).decode()}
        exchange = build_exchange(profile, credentials, markets=kraken_markets(), rateLimit=5)
        point_exchange(exchange, self.server, "kraken")
        return CcxtConnector(exchange, load_venue_rules("kraken"), profile, FAST)

    async def close_connector(self, connector: Connector) -> None:
        await super().close_connector(connector)
        await self.server.stop()

    async def venue_fill(self, connector: Connector, order: OrderRequest) -> None:
        resting = self.server.find_by_client_id(order.client_id)
        assert order.price is not None
        self.server.fill_order(resting.txid, order.qty, order.price, maker=True)

    async def venue_lose_order(self, connector: Connector, client_id: str) -> None:
        self.server.lose_order(client_id)

    async def drop_connection(self, connector: Connector) -> None:
        """The venue becomes unreachable: REST answers 503 and sockets close; the poller notices."""
        self.server.rest_down = True
        await self.server.drop_connections()
        for _ in range(200):
            if not connector.connected:
                return
            await self.pump(connector)

    async def restore_connection(self, connector: Connector) -> None:
        self.server.rest_down = False
        await connector.connect()

    def expected_fee(self, connector: Connector, fill: Fill) -> Decimal:
        """Kraken reports an order's fee rounded to 6 decimals of the quote currency."""
        return super().expected_fee(connector, fill).quantize(Decimal("0.000001"))

    async def reference_mid(self, connector: Connector) -> Decimal:
        bids, asks = self.server.books["kraken"].top(1)
        return (bids[0][0] + asks[0][0]) / 2

    async def test_rejects_under_min_notional(self, h: Harness) -> None:
        """Kraken's rules leave no on-lot order under min notional (0.0001 BTC min size is ~$6 > $0.50)."""
        instrument = h.instrument
        price = await h.resting_price(Side.BUY)
        assert price * instrument.min_qty >= instrument.min_notional
