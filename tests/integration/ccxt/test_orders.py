"""Order entry through ccxt's Kraken REST code against the mock venue."""

from __future__ import annotations

from decimal import Decimal

import attrs
import pytest

from connectors.ccxt.errors import ErrorKind, classify
from mmkit.connector import OrderNotFoundError, TransientVenueError
from mmkit.model import (
    Fill,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderNotFound,
    OrderRejected,
    OrderRequest,
    OrderType,
    RejectReason,
    Side,
    VenueOrderStatus,
)
from tests.integration.ccxt.conftest import FAST, ConnectorFactory
from tests.integration.ccxt.helpers import collect_until, of_type
from tests.integration.ccxt.mock_venue import MockVenueServer

pytestmark = [pytest.mark.integration, pytest.mark.shared_data]
D = Decimal


def limit(client_id: str, side: Side = Side.BUY, qty: str = "0.01", price: str = "60000.0") -> OrderRequest:
    return OrderRequest(client_id, "kraken", "BTC/USD", side, D(qty), D(price))


async def test_place_accept_and_cancel(server: MockVenueServer, make_connector: ConnectorFactory) -> None:
    kraken = await make_connector("kraken", book=False)
    kraken.place(limit("c1"))
    events = await collect_until(kraken, lambda ev: bool(of_type(ev, OrderAccepted)))
    accepted = of_type(events, OrderAccepted)[0]
    sent = next(form for method, form in server.kraken_calls if method == "AddOrder")
    assert sent["pair"] == "XXBTZUSD" and sent["volume"] == "0.01" and sent["cl_ord_id"] == "c1"
    assert server.kraken_orders[accepted.venue_order_id].status == "open"
    kraken.cancel("c1", "BTC/USD")
    events = await collect_until(kraken, lambda ev: bool(of_type(ev, OrderCanceled)))
    assert of_type(events, OrderCanceled)[0].leaves_qty == D("0.01")
    assert server.kraken_orders[accepted.venue_order_id].status == "canceled"


async def test_market_order_fill_arrives_with_fee(server: MockVenueServer, make_connector: ConnectorFactory) -> None:
    kraken = await make_connector("kraken", book=False)
    server.market_fill_price = D("63000.0")
    kraken.place(OrderRequest("m1", "kraken", "BTC/USD", Side.SELL, D("0.5"), None, OrderType.MARKET))
    events = await collect_until(kraken, lambda ev: bool(of_type(ev, Fill)))
    fill = of_type(events, Fill)[0]
    assert (fill.side, fill.qty, fill.price) == (Side.SELL, D("0.5"), D("63000.0"))
    assert fill.fee == D("81.900000")  # 26 bps of 31,500
    assert fill.client_id == "m1"


async def test_partial_fills_become_deltas(server: MockVenueServer, make_connector: ConnectorFactory) -> None:
    kraken = await make_connector("kraken", book=False)
    kraken.place(limit("p1", qty="1.0"))
    events = await collect_until(kraken, lambda ev: bool(of_type(ev, OrderAccepted)))
    txid = of_type(events, OrderAccepted)[0].venue_order_id
    server.fill_order(txid, D("0.4"), D("60000.0"))
    events = await collect_until(kraken, lambda ev: bool(of_type(ev, Fill)))
    server.fill_order(txid, D("0.6"), D("59990.0"))
    events = await collect_until(kraken, lambda ev: len(of_type(ev, Fill)) >= 2, into=events)
    fills = of_type(events, Fill)
    assert [f.qty for f in fills] == [D("0.4"), D("0.6")]
    assert fills[1].price == D("59990.0")
    assert len({f.trade_id for f in fills}) == 2


async def test_insufficient_funds_is_a_definitive_reject(
    server: MockVenueServer, make_connector: ConnectorFactory
) -> None:
    kraken = await make_connector("kraken", book=False)
    server.fail_next("EOrder:Insufficient funds")
    kraken.place(limit("r1"))
    events = await collect_until(kraken, lambda ev: bool(of_type(ev, OrderRejected)))
    assert of_type(events, OrderRejected)[0].reason is RejectReason.INSUFFICIENT_FUNDS


async def test_rate_limit_answer_rejects_and_backs_off(
    server: MockVenueServer, make_connector: ConnectorFactory
) -> None:
    kraken = await make_connector("kraken", book=False)
    server.fail_next("EAPI:Rate limit exceeded")
    kraken.place(limit("rl1"))
    events = await collect_until(kraken, lambda ev: bool(of_type(ev, OrderRejected)))
    assert of_type(events, OrderRejected)[0].reason is RejectReason.RATE_LIMIT
    calls_before = len(server.kraken_calls)
    kraken.place(limit("rl2"))  # inside the backoff window: refused locally, nothing sent
    rejected = of_type(kraken.drain(), OrderRejected)
    assert rejected and rejected[0].client_id == "rl2" and rejected[0].reason is RejectReason.RATE_LIMIT
    assert len([c for c in server.kraken_calls[calls_before:] if c[0] == "AddOrder"]) == 0


async def test_cancel_of_unknown_order_is_rejected(server: MockVenueServer, make_connector: ConnectorFactory) -> None:
    kraken = await make_connector("kraken", book=False)
    kraken.place(limit("u1"))
    events = await collect_until(kraken, lambda ev: bool(of_type(ev, OrderAccepted)))
    server.kraken_orders[of_type(events, OrderAccepted)[0].venue_order_id].status = "closed"
    server.fail_next("EOrder:Unknown order")
    kraken.cancel("u1", "BTC/USD")
    events = await collect_until(kraken, lambda ev: bool(of_type(ev, OrderCancelRejected)))
    assert of_type(events, OrderCancelRejected)[0].reason is RejectReason.UNKNOWN_ORDER


async def test_status_not_found_vs_could_not_ask(server: MockVenueServer, make_connector: ConnectorFactory) -> None:
    # slow poller: the injected error must reach our query, not the background poll
    kraken = await make_connector("kraken", book=False, config=attrs.evolve(FAST, poll_interval_s=60))
    kraken.place(limit("s1"))
    await collect_until(kraken, lambda ev: bool(of_type(ev, OrderAccepted)))
    report = await kraken.fetch_order_status("s1", "BTC/USD")
    assert report.status is VenueOrderStatus.NEW and report.qty == D("0.01")
    with pytest.raises(OrderNotFoundError):
        await kraken.fetch_order_status("nope", "BTC/USD")
    kraken.request_order_status("nope", "BTC/USD")
    await collect_until(kraken, lambda ev: bool(of_type(ev, OrderNotFound)))
    server.fail_next("EService:Unavailable")
    with pytest.raises(TransientVenueError) as info:
        await kraken.fetch_order_status("s1", "BTC/USD")
    assert not isinstance(info.value, OrderNotFoundError)


async def test_open_orders_and_balances(make_connector: ConnectorFactory) -> None:
    kraken = await make_connector("kraken", book=False)
    kraken.place(limit("o1"))
    await collect_until(kraken, lambda ev: bool(of_type(ev, OrderAccepted)))
    opens = await kraken.fetch_open_orders("BTC/USD")
    assert [o.client_id for o in opens] == ["o1"]
    balances = {b.asset: b.total for b in await kraken.fetch_balances()}
    assert balances["BTC"] == D("10")


def test_error_classification_table() -> None:
    import ccxt

    assert classify(ccxt.OrderNotFound("x")).kind is ErrorKind.DEFINITIVE
    assert classify(ccxt.InsufficientFunds("x")).reason is RejectReason.INSUFFICIENT_FUNDS
    assert classify(ccxt.InvalidOrder("x")).definitive
    assert classify(ccxt.RequestTimeout("x")).kind is ErrorKind.TRANSIENT
    assert classify(ccxt.ExchangeNotAvailable("x")).kind is ErrorKind.TRANSIENT
    assert classify(ccxt.NetworkError("x")).kind is ErrorKind.TRANSIENT
    assert classify(ccxt.DDoSProtection("x")).kind is ErrorKind.BACKOFF
    assert classify(ccxt.RateLimitExceeded("x")).reason is RejectReason.RATE_LIMIT
    assert classify(ValueError("bug")).kind is ErrorKind.TRANSIENT


async def test_polling_lists_open_orders_instead_of_querying_each(
    server: MockVenueServer, make_connector: ConnectorFactory
) -> None:
    """Kraken charges every REST call to a slowly decaying counter: polling N orders costs one call a cycle."""
    kraken = await make_connector("kraken", book=False)
    for i in range(5):
        kraken.place(limit(f"pl{i}", price=str(60000 - i)))
    events = await collect_until(kraken, lambda ev: len(of_type(ev, OrderAccepted)) == 5)
    server.kraken_calls.clear()
    await collect_until(kraken, lambda ev: len([c for c in server.kraken_calls if c[0] == "OpenOrders"]) >= 5,
                        timeout_s=10.0, into=events)
    assert not [c for c in server.kraken_calls if c[0] == "QueryOrders"]
    # A finished order drops out of the listing and is read on its own, once.
    server.fill("kraken", "pl0", D("0.01"), D("60000.0"))
    await collect_until(kraken, lambda ev: bool(of_type(ev, Fill)), timeout_s=5.0, into=events)
    assert len(of_type(events, Fill)) == 1


async def test_a_fill_racing_a_cancel_is_booked_before_the_cancel_with_true_leaves(server: MockVenueServer) -> None:
    """Gemini's cancel answer carries the order's executed amount: a fill that beat the cancel comes first."""
    from tests.integration.ccxt.test_conformance_ccxt import make_venue_connector

    gemini = await make_venue_connector(server, "gemini", attrs.evolve(FAST, poll_interval_s=60))
    await gemini.connect()
    try:
        gemini.place(OrderRequest("gr1", "gemini", "BTCUSD", Side.BUY, D("0.01"), D("60000.00"), post_only=True))
        events = await collect_until(gemini, lambda ev: bool(of_type(ev, OrderAccepted)))
        server.fill("gemini", "gr1", D("0.004"), D("60000.00"))  # the poller is asleep: only the cancel tells
        gemini.cancel("gr1", "BTCUSD")
        await collect_until(gemini, lambda ev: bool(of_type(ev, OrderCanceled)), timeout_s=5.0, into=events)
        about = [e for e in events if isinstance(e, Fill | OrderCanceled)]
        assert [type(e) for e in about] == [Fill, OrderCanceled]
        assert about[0].qty == D("0.004")
        assert about[1].leaves_qty == D("0.006")
    finally:
        await gemini.disconnect()


async def test_fill_history_after_a_restart_names_our_client_id(
    server: MockVenueServer, make_connector: ConnectorFactory
) -> None:
    """Kraken's trade history has no client id: a fresh process reads it from the order (QueryOrders)."""
    first = await make_connector("kraken", book=False)
    first.place(limit("rf1"))
    await collect_until(first, lambda ev: bool(of_type(ev, OrderAccepted)))
    await first.disconnect()
    server.fill("kraken", "rf1", D("0.01"), D("60000.0"))
    restarted = await make_connector("kraken", book=False)
    fills = await restarted.fetch_fills("BTC/USD", 0)
    trade_id = server.trades["kraken"][0].trade_id
    assert [(f.client_id, f.qty, f.trade_id) for f in fills] == [("rf1", D("0.01"), trade_id)]


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
async def test_coinbase_market_orders_are_sized_in_base(server: MockVenueServer, side: Side) -> None:
    """A hedge of 0.5 BTC is 0.5 BTC on Coinbase both ways (ccxt alone would send a buy as $0.5 of quote)."""
    from tests.integration.ccxt.test_conformance_ccxt import make_venue_connector

    coinbase = await make_venue_connector(server, "coinbase")
    await coinbase.connect()
    try:
        coinbase.place(OrderRequest("mk1", "coinbase", "BTC-USD", side, D("0.5"), None, OrderType.MARKET))
        events = await collect_until(coinbase, lambda ev: bool(of_type(ev, Fill)), timeout_s=5.0)
        sent = next(body for call, body in server.calls["coinbase"] if call == "POST orders")
        assert sent["order_configuration"] == {"market_market_ioc": {"base_size": "0.5"}}
        assert of_type(events, Fill)[0].qty == D("0.5")
    finally:
        await coinbase.disconnect()
