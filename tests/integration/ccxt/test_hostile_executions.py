"""A hostile private stream: an execution of one of our orders that contradicts the order.

Kraken's ``executions`` carry the symbol and the fee's asset. An execution of our BTC/USD
order that says BTC/USDT would be a fill on a market we never quoted (position and PnL on
the wrong book); a fee charged in an asset that is neither the base nor the quote is taken
by the PnL as quote (mmkit/risk/pnl.py). The first is not booked (ERROR, ``malformed_trades``)
and the trade is booked from the venue's history, on the order's symbol; the second is
booked (the trade is real) and said at ERROR, counted (``foreign_fee_currency``).
Real ccxt Kraken code against the mock venue over loopback.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs
import pytest

from mmkit.model import Fill, OrderAccepted, OrderRequest, OrderStatusReport, Side
from tests.integration.ccxt.conftest import FAST
from tests.integration.ccxt.helpers import collect_until, of_type
from tests.integration.ccxt.mock_venue import MockVenueServer
from tests.integration.ccxt.test_conformance_ccxt import make_venue_connector

pytestmark = [pytest.mark.integration, pytest.mark.shared_data]
D = Decimal
STREAMING = attrs.evolve(FAST, use_private_ws=True, poll_interval_s=30)


async def test_an_execution_of_our_order_on_another_symbol_is_not_booked_there(server: MockVenueServer) -> None:
    kraken = await make_venue_connector(server, "kraken", STREAMING)
    await kraken.connect()
    try:
        kraken.place(OrderRequest("xs1", "kraken", "BTC/USD", Side.BUY, D("0.01"), D("60000.0"), post_only=True))
        events: list[Any] = await collect_until(kraken, lambda ev: bool(of_type(ev, OrderAccepted)))
        await collect_until(kraken, lambda ev: bool(server.kraken_private), timeout_s=5.0, into=events)
        server.kraken_next_trade_exec = {"symbol": "BTC/USDT"}
        server.fill("kraken", "xs1", D("0.01"), D("60000.0"))
        await collect_until(kraken, lambda ev: kraken.malformed_trades == 1, timeout_s=5.0, into=events)
        assert not of_type(events, Fill), "booked on a symbol the order is not on"
        # The venue's order and history say BTC/USD: a status read books the trade there, once.
        kraken.request_order_status("xs1", "BTC/USD")
        await collect_until(kraken, lambda ev: bool(of_type(ev, OrderStatusReport)), into=events, timeout_s=5.0)
        fills = of_type(events + kraken.drain(), Fill)
        assert [(f.symbol, f.qty, f.client_id) for f in fills] == [("BTC/USD", D("0.01"), "xs1")]
    finally:
        await kraken.disconnect()


async def test_a_fee_in_an_asset_of_neither_side_is_booked_and_said(server: MockVenueServer) -> None:
    kraken = await make_venue_connector(server, "kraken", STREAMING)
    await kraken.connect()
    try:
        kraken.place(OrderRequest("xf1", "kraken", "BTC/USD", Side.BUY, D("0.01"), D("60000.0"), post_only=True))
        events: list[Any] = await collect_until(kraken, lambda ev: bool(of_type(ev, OrderAccepted)))
        await collect_until(kraken, lambda ev: bool(server.kraken_private), timeout_s=5.0, into=events)
        server.kraken_next_trade_exec = {"fees": [{"asset": "ETH", "qty": 0.0004}]}
        server.fill("kraken", "xf1", D("0.01"), D("60000.0"))
        await collect_until(kraken, lambda ev: bool(of_type(ev, Fill)), timeout_s=5.0, into=events)
        fill = of_type(events, Fill)[0]
        assert (fill.fee, fill.fee_currency) == (D("0.0004"), "ETH")  # as the venue charged it
        assert kraken.foreign_fee_currency == 1
    finally:
        await kraken.disconnect()


# (A NaN is no JSON number: ccxt's orjson drops such a frame whole, and the order's REST read books the trade.)
@pytest.mark.parametrize("changes", [{"last_qty": 0.0}, {"last_qty": -0.01}, {"last_price": -60000.0}])
async def test_an_execution_with_an_impossible_quantity_price_or_fee_is_not_booked_the_history_books_it(
    server: MockVenueServer, changes: dict[str, Any]
) -> None:
    kraken = await make_venue_connector(server, "kraken", STREAMING)
    await kraken.connect()
    try:
        kraken.place(OrderRequest("xq1", "kraken", "BTC/USD", Side.BUY, D("0.01"), D("60000.0"), post_only=True))
        events: list[Any] = await collect_until(kraken, lambda ev: bool(of_type(ev, OrderAccepted)))
        await collect_until(kraken, lambda ev: bool(server.kraken_private), timeout_s=5.0, into=events)
        server.kraken_next_trade_exec = changes
        server.fill("kraken", "xq1", D("0.01"), D("60000.0"))
        await collect_until(kraken, lambda ev: kraken.malformed_trades == 1, timeout_s=5.0, into=events)
        assert not of_type(events, Fill)
        kraken.request_order_status("xq1", "BTC/USD")
        await collect_until(kraken, lambda ev: bool(of_type(ev, OrderStatusReport)), into=events, timeout_s=5.0)
        fills = of_type(events + kraken.drain(), Fill)
        fee = D("0.01") * 60000 * server.maker_fee
        assert [(f.qty, f.price, f.fee) for f in fills] == [(D("0.01"), D("60000.0"), fee)]
    finally:
        await kraken.disconnect()
