"""A hostile or broken path between us and the venue: answers that are not what the venue would say.

A proxy that forwards an order and answers 200 with its own HTML page, an empty or cut
body, or an answer of the wrong shape: the order may rest at the venue. The connector
must never take such an answer for an accepted order with a made-up id (``"None"``), nor
for a refusal: the outcome is unknown, the engine is told so, and the poller finds the
order by its client id. Real ccxt Kraken code against the mock venue over loopback.
"""

from __future__ import annotations

import json
from collections import deque
from decimal import Decimal
from typing import Any

import pytest

from connectors.ccxt.connector import CcxtConnector
from mmkit.connector import TransientVenueError
from mmkit.model import (
    Fill,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderQueryFailed,
    OrderRejected,
    OrderRequest,
    OrderStatusReport,
    Side,
    VenueOrderStatus,
)
from tests.integration.ccxt.conftest import FAST, ConnectorFactory
from tests.integration.ccxt.helpers import collect_until, of_type
from tests.integration.ccxt.mock_venue import MockVenueServer
from tests.integration.ccxt.test_conformance_ccxt import make_venue_connector

pytestmark = [pytest.mark.integration, pytest.mark.shared_data]
D = Decimal

MANGLED = {
    "html": ("text/html", "<html><body><h1>502 Bad Gateway</h1>cloudflare</body></html>"),
    "empty": ("application/json", ""),
    "truncated": ("application/json", '{"error":[],"result":{"txid":["O0'),
    "no-txid": ("application/json", '{"error":[],"result":{"descr":{"order":"buy 0.01 XBTUSD @ limit"}}}'),
    "txid-null": ("application/json", '{"error":[],"result":{"txid":null,"descr":{}}}'),
}


@pytest.mark.parametrize("body", sorted(MANGLED))
async def test_an_add_order_answered_with_a_body_that_is_not_an_answer_is_unknown_then_found(
    server: MockVenueServer, make_connector: ConnectorFactory, body: str
) -> None:
    kraken = await make_connector("kraken", book=False)
    server.kraken_mangled["AddOrder"] = deque([MANGLED[body]])
    kraken.place(OrderRequest("h1", "kraken", "BTC/USD", Side.BUY, D("0.01"), D("60000.0")))
    events = await collect_until(kraken, lambda ev: bool(of_type(ev, OrderAccepted)), timeout_s=5.0)
    txid = server.find_by_client_id("h1").txid
    # Told first that the outcome is unknown, then accepted under the venue's real id, never a made-up one.
    assert [e.venue_order_id for e in of_type(events, OrderAccepted)] == [txid]
    assert of_type(events, OrderQueryFailed), events
    assert "create outcome unknown" in of_type(events, OrderQueryFailed)[0].reason
    assert not of_type(events, OrderRejected)
    assert kraken.malformed_answers == 1
    kraken.cancel("h1", "BTC/USD")
    await collect_until(kraken, lambda ev: bool(of_type(ev, OrderCanceled)), into=events)
    assert server.kraken_orders[txid].status == "canceled"


HTML = ("text/html", "<html><body><h1>502 Bad Gateway</h1></body></html>")


async def _resting(server: MockVenueServer, kraken: CcxtConnector, client_id: str, events: list[Any]) -> str:
    kraken.place(OrderRequest(client_id, "kraken", "BTC/USD", Side.BUY, D("0.01"), D("60000.0")))
    await collect_until(kraken, lambda ev: bool(of_type(ev, OrderAccepted)), into=events)
    return server.find_by_client_id(client_id).txid


async def test_a_cancel_answered_by_a_proxy_page_that_never_reached_the_venue_is_not_a_cancel(
    server: MockVenueServer, make_connector: ConnectorFactory
) -> None:
    kraken = await make_connector("kraken", book=False)
    events: list[Any] = []
    txid = await _resting(server, kraken, "pc1", events)
    server.kraken_proxy_pages["CancelOrder"] = deque([HTML])
    kraken.cancel("pc1", "BTC/USD")
    await collect_until(kraken, lambda ev: bool(of_type(ev, OrderCancelRejected)), into=events)
    assert not of_type(events, OrderCanceled), "an HTML page was taken for a cancel; the order rests"
    assert server.kraken_orders[txid].status == "open"
    assert "MalformedAnswer" in of_type(events, OrderCancelRejected)[0].message
    assert kraken.malformed_answers == 1
    kraken.cancel("pc1", "BTC/USD")  # the venue answers this one
    await collect_until(kraken, lambda ev: bool(of_type(ev, OrderCanceled)), into=events)
    assert server.kraken_orders[txid].status == "canceled"


@pytest.mark.parametrize("body", ["html", "empty", "truncated"])
async def test_a_status_query_answered_by_a_proxy_page_is_could_not_ask_not_order_not_found(
    server: MockVenueServer, make_connector: ConnectorFactory, body: str
) -> None:
    kraken = await make_connector("kraken", book=False)
    events: list[Any] = []
    txid = await _resting(server, kraken, "pq1", events)
    server.kraken_proxy_pages["QueryOrders"] = deque([MANGLED[body]])
    with pytest.raises(TransientVenueError, match="MalformedAnswer"):
        await kraken.fetch_order_status("pq1", "BTC/USD")  # before: OrderNotFoundError, which closes the order
    assert server.kraken_orders[txid].status == "open"
    assert kraken.malformed_answers == 1
    report = await kraken.fetch_order_status("pq1", "BTC/USD")
    assert report.venue_order_id == txid and report.status is VenueOrderStatus.NEW


@pytest.mark.parametrize("field,value", [("vol_exec", "NaN"), ("vol_exec", "-0.004"), ("status", "exploded")])
async def test_an_order_answer_with_figures_that_are_not_quantities_is_no_answer_and_polling_goes_on(
    server: MockVenueServer, make_connector: ConnectorFactory, field: str, value: str
) -> None:
    kraken = await make_connector("kraken", book=False)
    events: list[Any] = []
    txid = await _resting(server, kraken, "pn1", events)
    server.kraken_order_overrides[txid] = {field: value}
    with pytest.raises(TransientVenueError, match="MalformedAnswer"):
        await kraken.fetch_order_status("pn1", "BTC/USD")
    polls = sum(1 for method, _ in server.kraken_calls if method in ("OpenOrders", "QueryOrders"))
    # The poller meets the same answer and lives on (before: a NaN comparison killed its task for good).
    await collect_until(kraken, lambda ev: sum(
        1 for method, _ in server.kraken_calls if method in ("OpenOrders", "QueryOrders")) > polls + 6)
    assert not kraken._tasks["poll"].done()
    del server.kraken_order_overrides[txid]
    server.fill_order(txid, D("0.01"), D("60000.0"))
    await collect_until(kraken, lambda ev: bool(of_type(ev, Fill)), into=events)
    assert of_type(events, Fill)[0].qty == D("0.01")
    assert not of_type(events, OrderCanceled)
    assert kraken.malformed_answers >= 2


async def test_a_cancel_answered_unknown_order_for_an_order_that_filled_books_the_fill_not_a_cancel(
    server: MockVenueServer, make_connector: ConnectorFactory
) -> None:
    kraken = await make_connector("kraken", book=False)
    events: list[Any] = []
    txid = await _resting(server, kraken, "cf1", events)
    server.fill_order(txid, D("0.01"), D("60000.0"))
    kraken.cancel("cf1", "BTC/USD")
    await collect_until(kraken, lambda ev: (bool(of_type(ev, Fill)) and bool(of_type(ev, OrderCancelRejected)))
                        or bool(of_type(ev, OrderCanceled)), into=events)
    assert not of_type(events, OrderCanceled)
    assert [f.qty for f in of_type(events, Fill)] == [D("0.01")]


async def test_an_add_order_answered_with_the_id_of_another_of_our_orders_is_unknown_then_found(
    server: MockVenueServer, make_connector: ConnectorFactory
) -> None:
    kraken = await make_connector("kraken", book=False)
    events: list[Any] = []
    first = await _resting(server, kraken, "d1", events)
    answer = json.dumps({"error": [], "result": {"txid": [first]}})  # the id of our first order, for the second
    server.kraken_mangled["AddOrder"] = deque([("application/json", answer)])
    kraken.place(OrderRequest("d2", "kraken", "BTC/USD", Side.SELL, D("0.01"), D("61000.0")))
    await collect_until(kraken, lambda ev: any(e.client_id == "d2" for e in of_type(ev, OrderAccepted)),
                        into=events, timeout_s=5.0)
    second = server.find_by_client_id("d2").txid
    assert second != first
    assert [(e.client_id, e.venue_order_id) for e in of_type(events, OrderAccepted)] == [("d1", first), ("d2", second)]
    assert "already another of ours" in of_type(events, OrderQueryFailed)[0].reason
    # Each order's fill lands on its own order.
    server.fill_order(second, D("0.01"), D("61000.0"))
    await collect_until(kraken, lambda ev: bool(of_type(ev, Fill)), into=events, timeout_s=5.0)
    assert [(f.client_id, f.venue_order_id) for f in of_type(events, Fill)] == [("d2", second)]


async def test_a_reconciliation_listing_holding_an_entry_that_is_no_order_is_could_not_ask(
    server: MockVenueServer, make_connector: ConnectorFactory
) -> None:
    kraken = await make_connector("kraken", book=False)
    events: list[Any] = []
    txid = await _resting(server, kraken, "r1", events)
    server.kraken_order_overrides[txid] = {"vol_exec": "-0.5"}
    with pytest.raises(TransientVenueError, match="MalformedAnswer"):
        await kraken.fetch_open_orders("BTC/USD")  # before: a report of -0.5 filled, taken as the venue's word
    del server.kraken_order_overrides[txid]
    assert [r.venue_order_id for r in await kraken.fetch_open_orders("BTC/USD")] == [txid]


@pytest.mark.parametrize("field,value", [("executed_amount", "-0.001"), ("original_amount", "NaN"),
                                         ("order_id", "99999999")])
async def test_a_cancel_answered_with_an_order_that_is_no_answer_is_no_report_and_the_order_is_read(
    server: MockVenueServer, field: str, value: str
) -> None:
    """Gemini answers a cancel with the order: one with a negative filled, a NaN size or another id is not it."""
    gemini = await make_venue_connector(server, "gemini", FAST)
    await gemini.connect()
    try:
        gemini.place(OrderRequest("gc1", "gemini", "BTCUSD", Side.BUY, D("0.01"), D("60000.00")))
        events: list[Any] = await collect_until(gemini, lambda ev: bool(of_type(ev, OrderAccepted)), 5.0)
        server.gemini_next_cancel_answer = {field: value}
        gemini.cancel("gc1", "BTCUSD")
        # The venue did cancel it: the poller's read says so, and no figure of the bad answer reached the engine.
        await collect_until(gemini, lambda ev: bool(of_type(ev, OrderCanceled)), into=events, timeout_s=5.0)
        assert not of_type(events, OrderStatusReport), "a figure of the bad answer went to the engine"
        assert "MalformedAnswer" in of_type(events, OrderCancelRejected)[0].message
        assert of_type(events, OrderCanceled)[0].leaves_qty == D("0.01")
        assert gemini.malformed_answers >= 1
    finally:
        await gemini.disconnect()


@pytest.mark.parametrize("body", ["html", "empty", "truncated"])
async def test_a_balance_read_answered_by_a_proxy_page_is_could_not_ask_not_an_empty_account(
    server: MockVenueServer, make_connector: ConnectorFactory, body: str
) -> None:
    """Before: ``[]``, which the hedge venue's balance view takes for an account holding nothing."""
    kraken = await make_connector("kraken", book=False)
    server.kraken_proxy_pages["BalanceEx"] = deque([MANGLED[body]])
    with pytest.raises(TransientVenueError, match="MalformedAnswer"):
        await kraken.fetch_balances()
    assert kraken.malformed_answers == 1
    assert {b.asset for b in await kraken.fetch_balances()} == {"BTC", "USD"}
