"""TrueX's published order-entry set alone (D, F, G answered by 8 and 9): strict simulator, real FIX on loopback.

Issue 11, case 8: reconciliation relied on 35=H / 35=AF, which TrueX may not
offer, and fills without Commission(12) were booked with a fee of 0. Case 3:
the simulator's ExecIDs started over with the process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import attrs
import pytest

from connectors.truex.connector import TrueXConnector
from connectors.truex.sim.exchange import TrueXExchange
from mmkit.connector import OrderNotFoundError, status_capabilities
from mmkit.model import (
    Fill,
    Liquidity,
    OrderAccepted,
    OrderNotFound,
    OrderQueryFailed,
    OrderRequest,
    OrderStatusReport,
    Side,
    VenueOrderStatus,
)
from tests.integration.truex.harness import Collector, make_pair

SYMBOL = "BTC-PYUSD"
Pair = tuple[TrueXExchange, TrueXConnector, Collector]


def order(cid: str, side: Side, price: str, qty: str = "0.01") -> OrderRequest:
    return OrderRequest(cid, "truex", SYMBOL, side, Decimal(qty), Decimal(price), post_only=True)


@pytest.fixture
async def strict_pair() -> AsyncIterator[Pair]:
    exchange, connector = make_pair(cancel_on_disconnect=False, strict=True, omit_commission=True)
    exchange.start()
    try:
        await connector.connect()
        yield exchange, connector, Collector(connector)
    finally:
        await connector.disconnect()
        exchange.stop()


async def test_strict_simulator_refuses_h_and_af_with_a_business_reject(strict_pair: Pair) -> None:
    _, connector, collector = strict_pair
    connector._config = attrs.evolve(connector._config, status_requests=True)  # a client that believes in 35=H
    connector.request_order_status("h1", SYMBOL)
    failed = await collector.wait_for(lambda e: isinstance(e, OrderQueryFailed))
    assert failed.client_id == "h1" and "Unsupported message type" in failed.reason
    with pytest.raises(Exception, match="no mass status answer"):
        await connector.fetch_open_orders(SYMBOL)  # 35=AF refused: never an empty "nothing open"


async def test_capabilities_declare_the_published_set(strict_pair: Pair) -> None:
    _, connector, _ = strict_pair
    caps = status_capabilities(connector)
    assert caps.status_by_cancel and not caps.open_orders and not caps.passive_status
    assert status_capabilities(object()).passive_status  # a connector that declares nothing: full queries


async def test_status_by_cancel_reports_filled_quantity_and_avg_px(strict_pair: Pair) -> None:
    exchange, connector, collector = strict_pair
    connector.place(order("s1", Side.SELL, "60005", qty="0.03"))
    await collector.wait_for(lambda e: isinstance(e, OrderAccepted))
    exchange.submit_taker(Side.BUY, Decimal("0.01"), Decimal("60010"))
    await collector.wait_for(lambda e: isinstance(e, Fill))
    report = await connector.fetch_order_status("s1", SYMBOL)  # the probe cancels the rest
    assert report.status is VenueOrderStatus.CANCELED
    assert report.filled_qty == Decimal("0.01") and report.avg_px == Decimal("60005")
    assert exchange.open_orders() == []
    again = await connector.fetch_order_status("s1", SYMBOL)  # now a 35=9 carries OrdStatus and CumQty
    assert again.status is VenueOrderStatus.CANCELED and again.filled_qty == Decimal("0.01")
    with pytest.raises(OrderNotFoundError):
        await connector.fetch_order_status("never", SYMBOL)
    assert await connector.fetch_open_orders(SYMBOL) == []


async def test_request_order_status_answers_into_the_inbox(strict_pair: Pair) -> None:
    _, connector, collector = strict_pair
    connector.place(order("q1", Side.BUY, "59990"))
    await collector.wait_for(lambda e: isinstance(e, OrderAccepted))
    assert [r.client_id for r in await connector.fetch_open_orders(SYMBOL)] == ["q1"]
    connector.request_order_status("q1", SYMBOL)
    report = await collector.wait_for(lambda e: isinstance(e, OrderStatusReport))
    assert report.client_id == "q1" and report.status is VenueOrderStatus.CANCELED
    connector.request_order_status("ghost", SYMBOL)
    missing = await collector.wait_for(lambda e: isinstance(e, OrderNotFound))
    assert missing.client_id == "ghost"


async def test_fee_from_the_venue_schedule_when_tag_12_is_absent(strict_pair: Pair) -> None:
    _, connector, collector = strict_pair
    connector.place(order("m1", Side.SELL, "60000"))
    await collector.wait_for(lambda e: isinstance(e, OrderAccepted))
    connector.place(OrderRequest("t1", "truex", SYMBOL, Side.BUY, Decimal("0.01"), Decimal("60000")))
    taker = await collector.wait_for(lambda e: isinstance(e, Fill) and e.client_id == "t1")
    maker = await collector.wait_for(lambda e: isinstance(e, Fill) and e.client_id == "m1")
    assert taker.liquidity is Liquidity.TAKER and taker.fee == Decimal("0.6")  # 10 bps of 600 (truex.yml)
    assert maker.fee == 0 and taker.fee_currency == "PYUSD"


async def test_lost_fill_reports_surface_as_cum_qty_status(strict_pair: Pair) -> None:
    """Bytes lost: the venue's CumQty on the next report runs ahead of the fills passed on."""
    exchange, connector, collector = strict_pair
    connector.place(order("l1", Side.SELL, "60005", qty="0.03"))
    await collector.wait_for(lambda e: isinstance(e, OrderAccepted))
    exchange.submit_taker(Side.BUY, Decimal("0.01"), Decimal("60010"))
    first = await collector.wait_for(lambda e: isinstance(e, Fill))
    connector._passed_fills.clear()  # as if that fill's ExecutionReport never arrived
    collector.events.remove(first)
    exchange.submit_taker(Side.BUY, Decimal("0.005"), Decimal("60010"))
    report = await collector.wait_for(lambda e: isinstance(e, OrderStatusReport))
    assert report.client_id == "l1" and report.filled_qty == Decimal("0.015")
    assert report.avg_px == Decimal("60005") and connector.cum_qty_mismatches == 1


async def test_exec_ids_never_repeat_across_exchange_restarts() -> None:
    seen: list[str] = []
    for _ in range(2):
        exchange, connector = make_pair(cancel_on_disconnect=False, strict=True)
        exchange.start()
        try:
            await connector.connect()
            collector = Collector(connector)
            connector.place(order("r1", Side.SELL, "60005"))
            await collector.wait_for(lambda e: isinstance(e, OrderAccepted))
            exchange.submit_taker(Side.BUY, Decimal("0.01"), Decimal("60010"))
            fill = await collector.wait_for(lambda e: isinstance(e, Fill))
            seen.append(fill.trade_id)
        finally:
            await connector.disconnect()
            exchange.stop()
    assert len(set(seen)) == 2, seen
