"""Kraken's private WebSocket stream (v2 ``executions``): fills arrive without waiting for a poll.

The mock plays Kraken's token handshake (GetWebSocketsToken) and the executions channel
(new / trade / filled / canceled / amended updates, in the venue's order). The poller is
slowed to 30 s here, so a fill that arrives within a second came through the stream; its
trade id is Kraken's exec_id, the same id the trade history gives, so the poller's later
read books nothing twice.
"""

from __future__ import annotations

from decimal import Decimal

import attrs
import pytest

from mmkit.model import ConnectionStatus, Fill, OrderAccepted, OrderCanceled, OrderRequest, OrderStatusReport, Side
from tests.integration.ccxt.conftest import FAST
from tests.integration.ccxt.helpers import collect_until, of_type
from tests.integration.ccxt.mock_venue import MockVenueServer
from tests.integration.ccxt.test_conformance_ccxt import make_venue_connector

pytestmark = [pytest.mark.integration, pytest.mark.shared_data]
D = Decimal
STREAMING = attrs.evolve(FAST, use_private_ws=True, poll_interval_s=30)


async def test_fills_come_through_the_executions_stream_once(server: MockVenueServer) -> None:
    kraken = await make_venue_connector(server, "kraken", STREAMING)
    await kraken.connect()
    try:
        order = OrderRequest("ws1", "kraken", "BTC/USD", Side.BUY, D("0.01"), D("60000.0"), post_only=True)
        kraken.place(order)
        events = await collect_until(kraken, lambda ev: bool(of_type(ev, OrderAccepted)))
        await collect_until(kraken, lambda ev: bool(server.kraken_private), timeout_s=5.0, into=events)

        server.fill("kraken", "ws1", D("0.004"), D("60000.0"))
        await collect_until(kraken, lambda ev: len(of_type(ev, Fill)) == 1, timeout_s=5.0, into=events)
        server.fill("kraken", "ws1", D("0.006"), D("60000.0"))
        await collect_until(kraken, lambda ev: len(of_type(ev, Fill)) == 2, timeout_s=5.0, into=events)

        fills = of_type(events, Fill)
        assert [f.qty for f in fills] == [D("0.004"), D("0.006")]
        streamed = {m["data"][0]["exec_id"] for m in server.kraken_executions if m["data"][0]["exec_type"] == "trade"}
        assert {f.trade_id for f in fills} == streamed
        history_reads = [m for m, _ in server.kraken_calls if m == "TradesHistory"]
        assert history_reads == [], "the fills came from the stream, not from a trade-history read"
        assert {f.trade_id for f in await kraken.fetch_fills("BTC/USD", 0)} == streamed
        assert all(f.fee == f.notional * server.maker_fee for f in fills)

        # A REST read of the same (filled) order books nothing more.
        kraken.request_order_status("ws1", "BTC/USD")
        await collect_until(kraken, lambda ev: bool(of_type(ev, OrderStatusReport)), into=events)
        assert len(of_type(events + kraken.drain(), Fill)) == 2
    finally:
        await kraken.disconnect()


async def test_a_venue_side_cancel_is_seen_from_the_stream(server: MockVenueServer) -> None:
    kraken = await make_venue_connector(server, "kraken", STREAMING)
    await kraken.connect()
    try:
        kraken.place(OrderRequest("ws2", "kraken", "BTC/USD", Side.SELL, D("0.01"), D("70000.0"), post_only=True))
        events = await collect_until(kraken, lambda ev: bool(of_type(ev, OrderAccepted)))
        await collect_until(kraken, lambda ev: bool(server.kraken_private), timeout_s=5.0, into=events)
        server.kraken_deadline = 0.0  # Kraken's cancel-after timer runs out (orders cancelled at the venue)
        await collect_until(kraken, lambda ev: bool(of_type(ev, OrderCanceled)), timeout_s=5.0, into=events)
    finally:
        await kraken.disconnect()


async def test_gemini_order_events_unsigned_by_ccxt_fall_back_to_polling(server: MockVenueServer) -> None:
    """Gemini's order-events socket must be signed at connect (X-GEMINI-APIKEY / -PAYLOAD / -SIGNATURE).

    ccxt 4.5.90's Python ``watch_orders`` for Gemini opens it without those headers (its
    authenticate() builds them, but they never reach the handshake), so Gemini, and the mock,
    refuse it. The connector gives the stream up after ``private_ws_max_failures``, says so
    (ConnectionStatus ``private-ws`` down), and fills keep coming from REST polling.
    """
    gemini = await make_venue_connector(server, "gemini", attrs.evolve(STREAMING, poll_interval_s=0.1))
    await gemini.connect()
    try:
        events = await collect_until(
            gemini,
            lambda ev: any(isinstance(e, ConnectionStatus) and e.session == "private-ws" and not e.connected
                           for e in ev),
            timeout_s=5.0,
        )
        assert not server.gemini_event_sockets
        order = OrderRequest("ge1", "gemini", "BTCUSD", Side.BUY, D("0.01"), D("60000.00"), post_only=True)
        gemini.place(order)
        await collect_until(gemini, lambda ev: bool(of_type(ev, OrderAccepted)), into=events)
        server.fill("gemini", "ge1", D("0.004"), D("60000.00"))
        await collect_until(gemini, lambda ev: len(of_type(ev, Fill)) == 1, timeout_s=5.0, into=events)
        assert of_type(events, Fill)[0].trade_id == server.trades["gemini"][-1].trade_id
        assert "ge1" in server.open_client_ids("gemini") and not of_type(events, OrderCanceled)
    finally:
        await gemini.disconnect()


async def test_coinbase_user_channel_triggers_fills_without_waiting_for_a_poll(server: MockVenueServer) -> None:
    """Coinbase's ``user`` channel (signed subscribe) announces the fill; its trades are read at once."""
    coinbase = await make_venue_connector(server, "coinbase", STREAMING)
    coinbase.subscribe_book("BTC-USD")  # the user channel shares the socket (and its sequence) with level2
    await coinbase.connect()
    try:
        order = OrderRequest("cb1", "coinbase", "BTC-USD", Side.BUY, D("0.01"), D("60000.00"), post_only=True)
        coinbase.place(order)
        events = await collect_until(coinbase, lambda ev: bool(of_type(ev, OrderAccepted)))
        await collect_until(coinbase, lambda ev: bool(server.coinbase_user_sockets), timeout_s=5.0, into=events)
        server.fill("coinbase", "cb1", D("0.004"), D("60000.00"))
        await collect_until(coinbase, lambda ev: len(of_type(ev, Fill)) == 1, timeout_s=5.0, into=events)
        server.fill("coinbase", "cb1", D("0.006"), D("60000.00"))
        await collect_until(coinbase, lambda ev: len(of_type(ev, Fill)) == 2, timeout_s=5.0, into=events)
        assert [f.trade_id for f in of_type(events, Fill)] == [t.trade_id for t in server.trades["coinbase"]]
        assert coinbase.sequence_gaps == 0
        assert server.coinbase_user_updates, "the fills were announced on the user channel"
    finally:
        await coinbase.disconnect()
