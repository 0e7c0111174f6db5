"""The connector conformance suite run against the simulated exchange (ExchangeVenue)."""

from __future__ import annotations

from decimal import Decimal as D

from mmkit.connector import Connector, FeeSchedule, RateLimit, VenueRules, rules_for
from mmkit.instrument import IncrementBand, Instrument
from mmkit.model import OrderRequest, Side
from mmkit.sim import ConstantLatency, ExchangeVenue
from mmkit.testing.conformance import ConnectorConformance

MID = D(60000)


def sim_rules() -> VenueRules:
    inst = Instrument(
        "sim", "BTC-PYUSD", "BTC", "PYUSD",
        (IncrementBand(D(0), D("0.10"), D("0.0001")), IncrementBand(D(100000), D("0.50"), D("0.00001"))),
        min_notional=D(10), price_band=D("0.025"),
    )
    return rules_for(
        [inst], "sim", fees=FeeSchedule(D(-1), D(10)), rate_limits=(RateLimit(10, 1000),),
        duplicate_order_window_ns=500_000_000, supports_replace=True,
    )


class _Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000_000_000_000

    def __call__(self) -> int:
        return self.now


class TestExchangeVenueConformance(ConnectorConformance):
    max_pumps = 100

    async def make_connector(self) -> Connector:
        clock = _Clock()
        venue = ExchangeVenue(
            sim_rules(), clock, latency=ConstantLatency(entry=2_000_000, response=3_000_000),
            initial_balances={"BTC": D(1), "PYUSD": D(100000)},
        )
        venue.clock = clock  # type: ignore[attr-defined]
        venue.quote_around(MID, D(5), D(1))
        return venue

    async def pump(self, connector: Connector) -> None:
        connector.clock.now += 1_000_000  # type: ignore[attr-defined]

    async def reference_mid(self, connector: Connector) -> D:
        return MID

    async def venue_fill(self, connector: Connector, order: OrderRequest) -> None:
        assert isinstance(connector, ExchangeVenue) and order.price is not None
        engine = connector.engines[order.symbol]
        buy = order.side is Side.BUY
        levels = engine.depth(order.side)
        ahead = sum((q for p, q in levels if (p >= order.price if buy else p <= order.price)), D(0))
        connector.take(order.side.opposite, ahead, price=order.price)

    async def venue_lose_order(self, connector: Connector, client_id: str) -> None:
        assert isinstance(connector, ExchangeVenue)
        connector.simulate_lose_order(client_id)

    async def drop_connection(self, connector: Connector) -> None:
        assert isinstance(connector, ExchangeVenue)
        connector.simulate_disconnect("test drop")
