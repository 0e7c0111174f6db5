"""Acceptance: three ccxt reference venues on the mock server, a fake quoting venue, hedging on Kraken.

The lead's engine is not wired yet, so the test assembles the tick order of
DESIGN.md §2 itself: pump the connectors' inboxes -> PriceAggregator ->
a minimal quoter (quotes only while confidence > 0) -> HedgeExecutor.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from connectors.ccxt.connector import CcxtConnector
from mmkit.clock import Clock, ClockMode
from mmkit.connector import rules_for
from mmkit.model import (
    BookSnapshot,
    ConnectionStatus,
    Fill,
    IncrementBand,
    Instrument,
    Liquidity,
    OrderRequest,
    OrderType,
    Side,
)
from mmkit.pricing.aggregator import AggregatorConfig, PriceAggregator
from mmkit.risk.hedge import HedgeConfig, HedgeExecutor
from mmkit.risk.inventory import InventoryConfig, InventoryManager
from mmkit.risk.pnl import PnLTracker
from mmkit.testing.fake_connector import FakeConnector
from tests.integration.ccxt.conftest import ConnectorFactory
from tests.integration.ccxt.mock_venue import MockVenueServer

pytestmark = [pytest.mark.integration, pytest.mark.shared_data]
D = Decimal
STALE_MS = 300
TICK_S = 0.02


class Engine:
    """The smallest engine that exercises the real parts in the DESIGN.md tick order."""

    def __init__(self, refs: list[CcxtConnector], hedge_venue: CcxtConnector) -> None:
        self.refs = refs
        self.clock = Clock(ClockMode.REALTIME, tick_ns=int(TICK_S * 1e9))
        self.aggregator = PriceAggregator(AggregatorConfig(stale_ms=STALE_MS), wake=self.clock.wake)
        instrument = Instrument("truex", "BTC-PYUSD", "BTC", "PYUSD", (IncrementBand(D(0), D("0.1"), D("0.0001")),))
        self.quoting = FakeConnector(rules_for([instrument], "truex"), validate=False)
        self.inventory = InventoryManager(InventoryConfig(hedge_threshold=D(2), hedge_target=D("1.5")))
        self.pnl = PnLTracker()
        self.kraken_touch: dict[Side, Decimal] = {}
        self.hedger = HedgeExecutor(
            hedge_venue,
            self.inventory,
            touch=self.kraken_touch.get,
            config=HedgeConfig(symbol="BTC/USD", limit_timeout_ms=200),
            listeners=[self.inventory.on_fill, self.pnl.on_fill],
        )
        self.confidences: list[float] = []
        self.hedger.start(self.clock, self.clock.now_ns)

    def tick(self) -> None:
        now = self.clock.now_ns
        for connector in self.refs:
            for event in connector.drain():
                if isinstance(event, BookSnapshot) and event.bids and event.asks:
                    self.aggregator.on_book(event.venue, event.bids[0][0], event.asks[0][0], event.ts_recv)
                    if event.venue == "kraken":
                        self.kraken_touch.update({Side.SELL: event.bids[0][0], Side.BUY: event.asks[0][0]})
                elif isinstance(event, ConnectionStatus) and not event.connected and event.session.startswith("book"):
                    self.aggregator.mark_down(event.venue)
                elif event.venue == "kraken":
                    self.hedger.on_event(event)
        fair = self.aggregator.fair(now)
        self.confidences.append(fair.confidence)
        live = self.quoting.open_orders
        if fair.price is None or fair.confidence <= 0:
            for order in live:
                self.quoting.cancel(order.client_id, order.symbol)
        elif not live:
            for side, offset in ((Side.BUY, D(-5)), (Side.SELL, D(5))):
                cid = f"q{side.value[0]}{len(self.quoting.placed)}"
                self.quoting.place(
                    OrderRequest(cid, "truex", "BTC-PYUSD", side, D("0.1"), (fair.price + offset).quantize(D("0.1")))
                )
        self.quoting.drain()
        self.hedger.tick(now)

    @property
    def quoting_live(self) -> bool:
        return bool(self.quoting.open_orders)


async def run_for(engine: Engine, seconds: float) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        engine.tick()
        await asyncio.sleep(TICK_S)


@pytest.fixture
async def market(server: MockVenueServer) -> AsyncIterator[None]:
    """Keep every venue's book moving (a live venue updates many times a second)."""

    async def wiggle() -> None:
        step = 0
        while True:
            step += 1
            for venue, base in (("kraken", D("63300.0")), ("coinbase", D("63301.00")), ("gemini", D("63299.00"))):
                await server.set_mid(venue, base + D(step % 3))
            await asyncio.sleep(0.03)

    task = asyncio.get_running_loop().create_task(wiggle())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def three_venues(make_connector: ConnectorFactory) -> list[CcxtConnector]:
    return [await make_connector(v) for v in ("kraken", "coinbase", "gemini")]


async def test_losing_reference_venues_lowers_confidence_then_pulls_quotes(
    server: MockVenueServer, make_connector: ConnectorFactory, market: None
) -> None:
    refs = await three_venues(make_connector)
    engine = Engine(refs, refs[0])
    await run_for(engine, 0.4)
    full = engine.aggregator.fair()
    assert full.sources == 3 and full.confidence > 0.9
    assert engine.quoting_live

    server.hang("gemini")
    await run_for(engine, STALE_MS / 1000 + 0.15)
    degraded = engine.aggregator.fair()
    assert degraded.sources == 2
    assert 0 < degraded.confidence < full.confidence
    assert engine.quoting_live  # the others carry on

    server.hang("kraken")
    server.hang("coinbase")
    loop = asyncio.get_running_loop()
    killed_at = loop.time()
    while engine.quoting_live:
        engine.tick()
        await asyncio.sleep(TICK_S)
        assert loop.time() - killed_at < 2.0, "quotes were never pulled"
    pulled_after = loop.time() - killed_at
    assert engine.aggregator.fair().confidence == 0.0
    # gone within one tick of the staleness limit (plus scheduling slack on a shared 2-core machine)
    assert pulled_after <= STALE_MS / 1000 + TICK_S + 0.15


async def test_position_past_threshold_hedges_once_falls_back_to_market(
    server: MockVenueServer, make_connector: ConnectorFactory, market: None
) -> None:
    refs = await three_venues(make_connector)
    engine = Engine(refs, refs[0])
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 2.0
    while not engine.kraken_touch and loop.time() < deadline:  # wait for Kraken's first book
        await run_for(engine, TICK_S)
    assert engine.kraken_touch
    # quotes on the quoting venue get lifted: long 2.4 BTC, past the 2 BTC threshold
    engine.inventory.on_fill(
        Fill("truex", "t1", "qB0", "BTC-PYUSD", Side.BUY, D("63290"), D("2.4"), D(0), "PYUSD", Liquidity.MAKER, 0, 0)
    )
    server.market_fill_price = D("63280.0")
    end = loop.time() + 3.0
    while engine.inventory.position > D(2) and loop.time() < end:
        engine.tick()
        await asyncio.sleep(TICK_S)
    await run_for(engine, 0.3)  # nothing more must go out once hedged

    sent = engine.hedger.orders_sent
    assert [o.order_type for o in sent] == [OrderType.LIMIT, OrderType.MARKET]  # one hedge, then its fallback
    assert sent[0].qty == D("0.9") and sent[0].side is Side.SELL
    assert sent[1].qty == D("0.9")
    kraken_orders = list(server.kraken_orders.values())
    assert [o.ordertype for o in kraken_orders] == ["limit", "market"]
    assert kraken_orders[0].status == "canceled"
    assert engine.inventory.position == D("1.5") < D(2)
    assert engine.pnl.position(hedge=True) == D("-0.9")
    assert engine.pnl.fees(hedge=True) == D("0.9") * D("63280.0") * D("0.0026")
    assert all(f.is_hedge for f in engine.hedger.hedge_fills)
