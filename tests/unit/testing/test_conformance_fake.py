"""The connector conformance suite run against FakeConnector (mmkit.testing.fake_connector)."""

from __future__ import annotations

from decimal import Decimal as D

from mmkit.connector import Connector, FeeSchedule, RateLimit, VenueRules, rules_for
from mmkit.instrument import IncrementBand, Instrument
from mmkit.model import OrderRequest
from mmkit.testing.conformance import ConnectorConformance
from mmkit.testing.fake_connector import FakeConnector

MID = D(60000)


def sim_rules() -> VenueRules:
    inst = Instrument(
        "sim", "BTC-PYUSD", "BTC", "PYUSD", (IncrementBand(D(0), D("0.10"), D("0.0001")),),
        min_notional=D(10), price_band=D("0.025"),
    )
    return rules_for(
        [inst], "sim", fees=FeeSchedule(D(-1), D(10)), rate_limits=(RateLimit(10, 1000),), supports_replace=True
    )


class TestFakeConnectorConformance(ConnectorConformance):
    max_pumps = 20

    async def make_connector(self) -> Connector:
        fake = FakeConnector(sim_rules(), connected=False, start_ns=1_700_000_000_000_000_000)
        fake.set_book([(MID - 5, D(1))], [(MID + 5, D(1))])
        return fake

    async def pump(self, connector: Connector) -> None:
        assert isinstance(connector, FakeConnector)
        connector.advance(1_000_000)

    async def reference_mid(self, connector: Connector) -> D:
        return MID

    async def venue_fill(self, connector: Connector, order: OrderRequest) -> None:
        assert isinstance(connector, FakeConnector)
        connector.fill(order.client_id)

    async def venue_lose_order(self, connector: Connector, client_id: str) -> None:
        assert isinstance(connector, FakeConnector)
        connector.lose_order(client_id)

    async def drop_connection(self, connector: Connector) -> None:
        assert isinstance(connector, FakeConnector)
        await connector.disconnect()
