"""The market driver makes the local exchange move and fill our quotes; the entry point checks its env."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connectors.truex.sim.__main__ import main
from connectors.truex.sim.driver import MarketDriver, RandomWalk
from mmkit.model import BookSnapshot, Fill, OrderAccepted, OrderRequest, Side
from tests.integration.truex.harness import Collector

pytestmark = pytest.mark.integration


async def test_driver_takers_fill_our_quote(pair: tuple) -> None:
    exchange, connector, collector = pair
    assert isinstance(collector, Collector)
    driver = MarketDriver(
        exchange,
        RandomWalk(Decimal(60000), Decimal(0)),
        taker_probability=1.0,
        taker_qty=Decimal("0.01"),
        taker_reach_bps=Decimal(15),
        maker_levels=2,
        seed=3,
    )
    connector.place(
        OrderRequest("dq1", "truex", "BTC-PYUSD", Side.SELL, Decimal("0.01"), Decimal("60003"), post_only=True)
    )
    connector.place(
        OrderRequest("dq2", "truex", "BTC-PYUSD", Side.BUY, Decimal("0.01"), Decimal("59997"), post_only=True)
    )
    await collector.wait_for(lambda e: isinstance(e, OrderAccepted) and e.client_id == "dq2")
    for _ in range(20):
        driver.step()
        if any(isinstance(e, Fill) for e in collector.of_type(Fill)):
            break
    fill = await collector.wait_for(lambda e: isinstance(e, Fill))
    assert fill.client_id in {"dq1", "dq2"} and fill.qty == Decimal("0.01")
    assert exchange.reference_price == Decimal("60000.00")
    connector.subscribe_book("BTC-PYUSD")
    snapshot = await collector.wait_for(lambda e: isinstance(e, BookSnapshot))
    assert len(snapshot.bids) >= 2 and len(snapshot.asks) >= 2  # the simulated makers are on the book


def test_main_refuses_to_start_without_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRUEX_API_KEY", raising=False)
    monkeypatch.delenv("TRUEX_SECRET_KEY", raising=False)
    assert main(["--oe-port", "1", "--md-port", "2"]) == 2
