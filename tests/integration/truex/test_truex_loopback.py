"""TrueX client against the local TrueX exchange over loopback FIX."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
import quickfix as fix

import connectors.truex.client_app as client_app_module
from connectors.truex import builders, fix_tags, order_entry
from connectors.truex.connector import OE, TrueXConnector
from connectors.truex.sim.exchange import TrueXExchange
from mmkit.connector import NotConnectedError, OrderNotFoundError
from mmkit.model import (
    BookDelta,
    BookSnapshot,
    ConnectionStatus,
    Fill,
    Liquidity,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderRejected,
    OrderReplaced,
    OrderRequest,
    OrderStatusReport,
    RejectReason,
    ReplaceRequest,
    Side,
    Trade,
    VenueOrderStatus,
)
from tests.integration.truex.harness import Collector, make_pair

pytestmark = pytest.mark.integration

SYMBOL = "BTC-PYUSD"
Pair = tuple[TrueXExchange, TrueXConnector, Collector]


def order(client_id: str, side: Side, price: str, qty: str = "0.01") -> OrderRequest:
    return OrderRequest(client_id, "truex", SYMBOL, side, Decimal(qty), Decimal(price), post_only=True)


def comp_of(connector: TrueXConnector) -> str:
    return connector.config.oe.sender_comp_id


async def test_logon_ok(pair: Pair) -> None:
    exchange, connector, collector = pair
    assert connector.connected and connector.md_connected
    ups = [e for e in collector.of_type(ConnectionStatus) if e.connected]
    assert {e.session for e in ups} == {"OE", "MD"}
    # QuickFIX sends the Logon reply before it runs the acceptor's onLogon: wait for this side to record it.
    assert await asyncio.to_thread(exchange.wait_logged_on, comp_of(connector), 10.0)
    assert exchange.is_logged_on(comp_of(connector))


async def test_bad_signature_is_refused_with_reason() -> None:
    exchange, connector = make_pair(secret="not-the-secret")
    exchange.start()
    try:
        with pytest.raises(NotConnectedError, match="Invalid signature"):
            await connector.connect()
        assert exchange.stats.bad_logons >= 1
        assert not exchange.is_logged_on(comp_of(connector))
    finally:
        await connector.disconnect()
        exchange.stop()


async def test_place_replace_cancel_round_trip(pair: Pair) -> None:
    exchange, connector, collector = pair
    connector.place(order("b1", Side.BUY, "59990.1"))
    accepted = await collector.wait_for(lambda e: isinstance(e, OrderAccepted))
    assert accepted.client_id == "b1"
    [resting] = exchange.open_orders(comp_of(connector))
    assert (resting.client_id, resting.price, resting.qty) == ("b1", Decimal("59990.1"), Decimal("0.01"))

    connector.replace(ReplaceRequest("b2", "b1", "truex", SYMBOL, Side.BUY, Decimal("0.02"), Decimal("59995.5")))
    replaced = await collector.wait_for(lambda e: isinstance(e, OrderReplaced))
    assert (replaced.client_id, replaced.orig_client_id) == ("b2", "b1")
    assert (replaced.price, replaced.qty) == (Decimal("59995.5"), Decimal("0.02"))
    [resting] = exchange.open_orders(comp_of(connector))
    assert (resting.client_id, resting.price) == ("b2", Decimal("59995.5"))

    connector.cancel("b2", SYMBOL)
    canceled = await collector.wait_for(lambda e: isinstance(e, OrderCanceled))
    assert canceled.client_id == "b2"
    assert canceled.leaves_qty == 0  # nothing left open once canceled
    assert exchange.open_orders(comp_of(connector)) == []

    connector.cancel("b2", SYMBOL)  # already gone: refused locally, never a crash
    refused = await collector.wait_for(lambda e: isinstance(e, OrderCancelRejected))
    assert refused.reason is RejectReason.UNKNOWN_ORDER


async def test_cancel_of_order_unknown_to_venue_is_rejected_by_venue(pair: Pair) -> None:
    exchange, connector, collector = pair
    connector.place(order("u1", Side.SELL, "60010"))
    await collector.wait_for(lambda e: isinstance(e, OrderAccepted))
    exchange.submit_taker(Side.BUY, Decimal("0.01"), Decimal("60010"))  # fills u1 fully
    await collector.wait_for(lambda e: isinstance(e, Fill))
    connector._orders["u1"] = order_entry._OrderInfo(SYMBOL, Side.SELL, Decimal("60010"), Decimal("0.01"))
    connector.cancel("u1", SYMBOL)
    refused = await collector.wait_for(lambda e: isinstance(e, OrderCancelRejected))
    assert refused.client_id == "u1" and refused.reason is RejectReason.UNKNOWN_ORDER


async def test_fills_keyed_by_exec_id_and_position(pair: Pair) -> None:
    exchange, connector, collector = pair
    connector.subscribe_trades(SYMBOL)
    connector.place(order("s1", Side.SELL, "60005", qty="0.03"))
    await collector.wait_for(lambda e: isinstance(e, OrderAccepted))
    exchange.submit_taker(Side.BUY, Decimal("0.01"), Decimal("60010"))
    exchange.submit_taker(Side.BUY, Decimal("0.02"), Decimal("60010"))
    await collector.wait_for(lambda e: isinstance(e, Fill) and e.qty == Decimal("0.02"))
    fills = [e for e in collector.of_type(Fill)]
    assert len({f.trade_id for f in fills}) == 2
    assert all(f.liquidity is Liquidity.MAKER and f.client_id == "s1" and f.side is Side.SELL for f in fills)
    assert all(f.fee == 0 and f.fee_currency == "PYUSD" for f in fills)  # maker fee 0 bps
    position = sum(-f.qty for f in fills)
    assert position == Decimal("-0.03")
    assert exchange.open_orders(comp_of(connector)) == []
    trades = await collector.wait_for(lambda e: isinstance(e, Trade))
    assert trades.price == Decimal("60005")
    status = await connector.fetch_order_status("s1", SYMBOL)
    assert status.status is VenueOrderStatus.FILLED and status.filled_qty == Decimal("0.03")


async def test_taker_fill_pays_taker_fee(pair: Pair) -> None:
    _, connector, collector = pair
    connector.place(order("m1", Side.SELL, "60000"))
    await collector.wait_for(lambda e: isinstance(e, OrderAccepted))
    connector.place(OrderRequest("t1", "truex", SYMBOL, Side.BUY, Decimal("0.01"), Decimal("60000")))
    fill = await collector.wait_for(lambda e: isinstance(e, Fill) and e.client_id == "t1")
    assert fill.liquidity is Liquidity.TAKER
    assert fill.fee == Decimal("0.6")  # 10 bps of 600 PYUSD


@pytest.mark.parametrize(
    ("price", "qty", "reason"),
    [
        ("59990.15", "0.01", RejectReason.INVALID_PRICE),  # $0.10 tick below $100k
        ("59990.1", "0.00001", RejectReason.INVALID_QTY),  # 0.0001 lot below $100k
        ("50000", "0.01", RejectReason.PRICE_BAND),  # more than 2.5 % below the 60,000 mid
        ("61500.1", "0.01", RejectReason.PRICE_BAND),  # just above +2.5 %
    ],
)
async def test_static_rules_rejected(pair: Pair, price: str, qty: str, reason: RejectReason) -> None:
    _, connector, collector = pair
    connector.place(order("r1", Side.BUY, price, qty))
    rejected = await collector.wait_for(lambda e: isinstance(e, OrderRejected))
    assert rejected.reason is reason, rejected.message


async def test_min_notional_rejected() -> None:
    exchange, connector = make_pair(cancel_on_disconnect=False, reference_price=Decimal(5000))
    exchange.start()
    try:
        await connector.connect()
        collector = Collector(connector)
        connector.place(order("n1", Side.BUY, "5000", "0.0001"))  # 0.5 PYUSD < 1 PYUSD
        rejected = await collector.wait_for(lambda e: isinstance(e, OrderRejected))
        assert rejected.reason is RejectReason.MIN_NOTIONAL
    finally:
        await connector.disconnect()
        exchange.stop()


async def test_post_only_would_cross_rejected(pair: Pair) -> None:
    _, connector, collector = pair
    connector.place(order("a1", Side.SELL, "60000"))
    await collector.wait_for(lambda e: isinstance(e, OrderAccepted))
    connector.place(order("a2", Side.BUY, "60000.5"))
    rejected = await collector.wait_for(lambda e: isinstance(e, OrderRejected))
    assert (rejected.client_id, rejected.reason) == ("a2", RejectReason.POST_ONLY_WOULD_CROSS)


def _send_raw_order(connector: TrueXConnector, client_id: str, price: str) -> None:
    message = builders.new_order_single(order("placeholder", Side.BUY, price), "PARTY1", SYMBOL, 0)
    message.setField(fix_tags.T_CLORDID, client_id)
    assert fix.Session.sendToTarget(message, connector.session_id(OE))


async def test_clordid_longer_than_18_rejected(pair: Pair) -> None:
    _, connector, collector = pair
    _send_raw_order(connector, "X" * 19, "59990")
    rejected = await collector.wait_for(lambda e: isinstance(e, OrderRejected))
    assert rejected.reason is RejectReason.INVALID_CLIENT_ID


def _add_orig_sending_time(message: fix.Message) -> None:
    """What QuickFIX does on a resend; Session::send itself clears 122, so it is added in toApp."""
    message.getHeader().setField(fix_tags.T_ORIG_SENDING_TIME, "20240101-00:00:00.000")


def _with_122(monkeypatch: pytest.MonkeyPatch, *, before_client_hook: bool) -> None:
    """Add 122 to every outgoing application message, before the client's toApp hook runs or after it."""
    real_hook = client_app_module.ClientApp.on_to_app

    def hook(self: client_app_module.ClientApp, message: fix.Message, session_id: fix.SessionID) -> None:
        if before_client_hook:
            _add_orig_sending_time(message)
        real_hook(self, message, session_id)
        if not before_client_hook:
            _add_orig_sending_time(message)

    monkeypatch.setattr(client_app_module.ClientApp, "on_to_app", hook)


async def test_tag_122_rejected_by_venue(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    _, connector, collector = pair
    _with_122(monkeypatch, before_client_hook=False)  # a client that does not strip it
    _send_raw_order(connector, "o122", "59990")
    rejected = await collector.wait_for(lambda e: isinstance(e, OrderRejected))
    assert (rejected.client_id, rejected.reason) == ("o122", RejectReason.INVALID_MESSAGE)


async def test_client_strips_tag_122(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    exchange, connector, collector = pair
    _with_122(monkeypatch, before_client_hook=True)  # 122 is there when the client's hook looks
    _send_raw_order(connector, "s122", "59990")
    accepted = await collector.wait_for(lambda e: isinstance(e, OrderAccepted | OrderRejected))
    assert isinstance(accepted, OrderAccepted)
    assert exchange.stats.rejects.get("ORIG_SENDING_TIME", 0) == 0


async def test_rate_limit_10_per_second(pair: Pair) -> None:
    _, connector, collector = pair
    for i in range(12):
        connector.place(order(f"q{i}", Side.BUY, str(Decimal("59900") + i)))
    await collector.wait_for(lambda e: isinstance(e, OrderRejected))
    await collector.wait_for(
        lambda e: len(collector.of_type(OrderAccepted)) + len(collector.of_type(OrderRejected)) >= 12
    )
    rejected = collector.of_type(OrderRejected)
    assert len(collector.of_type(OrderAccepted)) == 10
    assert [r.client_id for r in rejected] == ["q10", "q11"]
    assert all(r.reason is RejectReason.RATE_LIMIT for r in rejected)


async def test_duplicate_order_within_500ms(pair: Pair) -> None:
    _, connector, collector = pair
    connector.place(order("d1", Side.BUY, "59950"))
    connector.place(order("d2", Side.BUY, "59950"))
    rejected = await collector.wait_for(lambda e: isinstance(e, OrderRejected))
    assert (rejected.client_id, rejected.reason) == ("d2", RejectReason.DUPLICATE_ORDER)
    assert [e.client_id for e in collector.of_type(OrderAccepted)] == ["d1"]


async def test_place_while_oe_down_is_not_connected_and_reconcile(pair: Pair) -> None:
    exchange, connector, collector = pair
    comp = comp_of(connector)
    connector.place(order("k1", Side.SELL, "60001"))
    connector.place(order("k2", Side.SELL, "60002"))
    await collector.wait_for(lambda e: isinstance(e, OrderAccepted) and e.client_id == "k2")
    exchange.drop_session(comp)
    await collector.wait_for(lambda e: isinstance(e, ConnectionStatus) and e.session == "OE" and not e.connected)
    connector.place(order("k3", Side.SELL, "60003"))
    not_sent = await collector.wait_for(lambda e: isinstance(e, OrderRejected))
    assert (not_sent.client_id, not_sent.reason) == ("k3", RejectReason.NOT_CONNECTED)
    # while we are away, k1 is filled on the venue: we must learn it from reconciliation
    exchange.submit_taker(Side.BUY, Decimal("0.01"), Decimal("60001"))
    await collector.wait_for(lambda e: isinstance(e, ConnectionStatus) and e.session == "OE" and e.connected, 4.0)
    await collector.wait_for(lambda e: isinstance(e, OrderStatusReport) and e.client_id == "k2")
    await collector.wait_for(lambda e: isinstance(e, OrderStatusReport) and e.client_id == "k1")
    await collector.settle(0.1)
    reports = {r.client_id: r for r in collector.of_type(OrderStatusReport)}
    assert reports["k1"].status is VenueOrderStatus.FILLED and reports["k1"].filled_qty == Decimal("0.01")
    assert reports["k2"].status is VenueOrderStatus.NEW
    assert len(collector.of_type(OrderStatusReport)) == 2  # no duplicates from the mass status
    assert [o.client_id for o in exchange.open_orders(comp)] == ["k2"]
    assert "k3" not in reports


async def test_cancel_on_disconnect_is_reconciled_as_canceled() -> None:
    exchange, connector = make_pair(cancel_on_disconnect=True)
    exchange.start()
    try:
        await connector.connect()
        collector = Collector(connector)
        connector.place(order("z1", Side.BUY, "59990"))
        await collector.wait_for(lambda e: isinstance(e, OrderAccepted))
        exchange.drop_session(comp_of(connector))
        await collector.wait_for(
            lambda e: (
                isinstance(e, ConnectionStatus)
                and e.session == "OE"
                and e.connected
                and e.ts_recv > 0
                and len(collector.of_type(ConnectionStatus)) > 3
            ),
            4.0,
        )
        report = await collector.wait_for(lambda e: isinstance(e, OrderStatusReport))
        assert report.client_id == "z1" and report.status is VenueOrderStatus.CANCELED
        assert exchange.open_orders(comp_of(connector)) == []
    finally:
        await connector.disconnect()
        exchange.stop()


async def test_fetch_open_orders_and_not_found(pair: Pair) -> None:
    _, connector, collector = pair
    assert await connector.fetch_open_orders(SYMBOL) == []
    connector.place(order("f1", Side.BUY, "59980"))
    await collector.wait_for(lambda e: isinstance(e, OrderAccepted))
    [report] = await connector.fetch_open_orders()
    assert (report.client_id, report.status, report.price) == ("f1", VenueOrderStatus.NEW, Decimal("59980"))
    with pytest.raises(OrderNotFoundError):
        await connector.fetch_order_status("nope", SYMBOL)


async def test_md_snapshot_increments_and_gap_resync(pair: Pair) -> None:
    exchange, connector, collector = pair
    connector.place(order("g1", Side.BUY, "59990"))
    await collector.wait_for(lambda e: isinstance(e, OrderAccepted))
    connector.subscribe_book(SYMBOL)
    snapshot = await collector.wait_for(lambda e: isinstance(e, BookSnapshot))
    assert snapshot.bids == ((Decimal("59990"), Decimal("0.01")),) and snapshot.asks == ()
    connector.place(order("g2", Side.SELL, "60010"))
    delta = await collector.wait_for(lambda e: isinstance(e, BookDelta))
    assert delta.first_seq == snapshot.seq + 1
    assert delta.asks == ((Decimal("60010"), Decimal("0.01")),)
    exchange.inject_md_gap()
    connector.cancel("g1", SYMBOL)
    gapped = await collector.wait_for(lambda e: isinstance(e, BookDelta) and e.seq > delta.seq)
    assert gapped.first_seq == delta.seq + 2  # the tracker sees the hole
    connector.request_resync(SYMBOL)
    fresh = await collector.wait_for(lambda e: isinstance(e, BookSnapshot) and e.seq >= gapped.seq)
    assert fresh.seq == gapped.seq and fresh.bids == () and fresh.asks == ((Decimal("60010"), Decimal("0.01")),)
