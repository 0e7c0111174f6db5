"""FakeConnector behaves like an honest venue: submit-only, outcomes on drain, rules enforced."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from mmkit.connector import Connector, NotConnectedError, OrderNotFoundError, load_venue_rules
from mmkit.model import (
    BookSnapshot,
    ConnectionStatus,
    Fill,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderNotFound,
    OrderQueryFailed,
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
from mmkit.testing.fake_connector import ActionKind, FakeConnector

SYM = "BTC-PYUSD"


@pytest.fixture
def fake() -> FakeConnector:
    f = FakeConnector(load_venue_rules("sim"))
    f.set_book([("60000", "1")], [("60010", "1")])
    f.drain()
    return f


def req(
    cid: str, side: Side = Side.BUY, price: str = "59990", qty: str = "0.01", post_only: bool = True
) -> OrderRequest:
    return OrderRequest(cid, "sim", SYM, side, Decimal(qty), Decimal(price), post_only=post_only)


def test_is_a_connector(fake: FakeConnector) -> None:
    assert isinstance(fake, Connector)
    assert fake.venue == "sim"


def test_place_acks_on_next_drain_and_records(fake: FakeConnector) -> None:
    fake.place(req("a1"))
    events = fake.drain()
    assert len(events) == 1 and isinstance(events[0], OrderAccepted)
    assert events[0].client_id == "a1"
    assert [o.client_id for o in fake.placed] == ["a1"]
    assert fake.actions[0].kind is ActionKind.PLACE
    assert [o.client_id for o in fake.open_orders] == ["a1"]
    assert fake.drain() == []


@pytest.mark.parametrize(
    ("price", "qty", "side", "reason"),
    [
        ("59990.05", "0.01", Side.BUY, RejectReason.INVALID_PRICE),
        ("59990", "0.00001", Side.BUY, RejectReason.INVALID_QTY),
        ("50000", "0.01", Side.BUY, RejectReason.PRICE_BAND),
        ("60010", "0.01", Side.BUY, RejectReason.POST_ONLY_WOULD_CROSS),
        ("60000", "0.01", Side.SELL, RejectReason.POST_ONLY_WOULD_CROSS),
    ],
)
def test_invalid_orders_rejected(fake: FakeConnector, price: str, qty: str, side: Side, reason: RejectReason) -> None:
    fake.place(req("x", side, price, qty))
    (event,) = fake.drain()
    assert isinstance(event, OrderRejected) and event.reason is reason
    assert fake.open_orders == []


def test_duplicate_client_id_and_scripted_reject(fake: FakeConnector) -> None:
    fake.place(req("a1"))
    fake.place(req("a1"))
    fake.reject_next(RejectReason.RATE_LIMIT)
    fake.place(req("a2"))
    _, dup, rl = fake.drain()
    assert isinstance(dup, OrderRejected) and dup.reason is RejectReason.DUPLICATE_CLIENT_ID
    assert isinstance(rl, OrderRejected) and rl.reason is RejectReason.RATE_LIMIT


def test_cancel_and_unknown_cancel(fake: FakeConnector) -> None:
    fake.place(req("a1"))
    fake.cancel("a1", SYM)
    fake.cancel("zz", SYM)
    _, canceled, rejected = fake.drain()
    assert isinstance(canceled, OrderCanceled) and canceled.leaves_qty == Decimal("0.01")
    assert isinstance(rejected, OrderCancelRejected) and rejected.reason is RejectReason.UNKNOWN_ORDER
    assert fake.canceled == ["a1", "zz"]
    assert fake.open_orders == []


def test_replace_moves_order_to_new_id(fake: FakeConnector) -> None:
    fake.place(req("a1"))
    fake.replace(ReplaceRequest("a2", "a1", "sim", SYM, Side.BUY, Decimal("0.02"), Decimal("59980")))
    _, replaced = fake.drain()
    assert isinstance(replaced, OrderReplaced)
    assert (replaced.client_id, replaced.orig_client_id, replaced.price) == ("a2", "a1", Decimal("59980"))
    assert [(o.client_id, o.price, o.qty) for o in fake.open_orders] == [("a2", Decimal("59980"), Decimal("0.02"))]
    assert len(fake.replaced) == 1


def test_replace_refused_when_venue_lacks_it() -> None:
    fake = FakeConnector(load_venue_rules("binance"))
    fake.place(OrderRequest("a1", "binance", "BTCUSDT", Side.BUY, Decimal("0.001"), Decimal("60000")))
    fake.replace(ReplaceRequest("a2", "a1", "binance", "BTCUSDT", Side.BUY, Decimal("0.001"), Decimal("59999")))
    _, refused = fake.drain()
    assert isinstance(refused, OrderCancelRejected) and refused.is_replace and refused.new_client_id == "a2"


def test_print_trade_fills_crossed_bids_best_first(fake: FakeConnector) -> None:
    fake.place(req("b1", price="59990", qty="0.01"))
    fake.place(req("b2", price="59995", qty="0.01"))
    fake.place(req("b3", price="59980", qty="0.01"))
    fake.drain()
    fills = fake.print_trade("59990", "0.015", Side.SELL)
    events = fake.drain()
    assert isinstance(events[0], Trade)
    assert [(f.client_id, f.qty, f.price) for f in fills] == [
        ("b2", Decimal("0.01"), Decimal("59995")),
        ("b1", Decimal("0.005"), Decimal("59990")),
    ]
    assert all(isinstance(e, Fill) for e in events[1:])
    assert fake.order("b2").status is VenueOrderStatus.FILLED  # type: ignore[union-attr]
    assert fake.order("b1").status is VenueOrderStatus.PARTIALLY_FILLED  # type: ignore[union-attr]
    assert fake.order("b3").filled_qty == 0  # type: ignore[union-attr]


def test_buy_aggressor_fills_asks(fake: FakeConnector) -> None:
    fake.place(req("s1", Side.SELL, "60020"))
    fake.drain()
    assert fake.print_trade("60019", "1", Side.BUY) == []
    (fill,) = fake.print_trade("60020", "1", Side.BUY)
    assert fill.client_id == "s1" and fill.qty == Decimal("0.01")


def test_forced_fill_and_trade_ids_unique(fake: FakeConnector) -> None:
    fake.place(req("a1"))
    f1 = fake.fill("a1", "0.004")
    f2 = fake.fill("a1")
    assert f1.key != f2.key
    assert f2.qty == Decimal("0.006")
    with pytest.raises(KeyError):
        fake.fill("a1")


def test_disconnect_rejects_places_and_fails_queries(fake: FakeConnector) -> None:
    fake.place(req("a1"))
    fake.drain()
    fake.disconnect()
    fake.place(req("a2"))
    fake.request_order_status("a1", SYM)
    down, rejected, failed = fake.drain()
    assert isinstance(down, ConnectionStatus) and not down.connected
    assert isinstance(rejected, OrderRejected) and rejected.reason is RejectReason.NOT_CONNECTED
    assert isinstance(failed, OrderQueryFailed)
    fake.reconnect()
    fake.request_order_status("a1", SYM)
    up, report = fake.drain()
    assert isinstance(up, ConnectionStatus) and up.connected
    assert isinstance(report, OrderStatusReport) and report.status is VenueOrderStatus.NEW


def test_lose_order_answers_not_found(fake: FakeConnector) -> None:
    fake.place(req("a1"))
    fake.lose_order("a1")
    fake.request_order_status("a1", SYM)
    _, answer = fake.drain()
    assert isinstance(answer, OrderNotFound)
    assert fake.open_orders == []


def test_scripted_query_failure(fake: FakeConnector) -> None:
    fake.place(req("a1"))
    fake.fail_next_queries(1)
    fake.request_order_status("a1", SYM)
    fake.request_order_status("a1", SYM)
    _, failed, report = fake.drain()
    assert isinstance(failed, OrderQueryFailed) and isinstance(report, OrderStatusReport)


async def test_fetch_coroutines_distinguish_not_found_from_not_connected(fake: FakeConnector) -> None:
    fake.place(req("a1"))
    report = await fake.fetch_order_status("a1", SYM)
    assert report.client_id == "a1"
    assert [r.client_id for r in await fake.fetch_open_orders(SYM)] == ["a1"]
    with pytest.raises(OrderNotFoundError):
        await fake.fetch_order_status("nope", SYM)
    await fake.disconnect()
    with pytest.raises(NotConnectedError):
        await fake.fetch_open_orders()
    await fake.connect()
    assert fake.connected


def test_auto_ack_off_waits_for_script() -> None:
    fake = FakeConnector(load_venue_rules("sim"), auto_ack=False)
    fake.place(req("a1", post_only=False))
    fake.cancel("a1", SYM)
    assert fake.drain() == []
    fake.ack("a1")
    fake.confirm_cancel("a1")
    acc, can = fake.drain()
    assert isinstance(acc, OrderAccepted) and isinstance(can, OrderCanceled)


def test_cancel_all_and_book_snapshot(fake: FakeConnector) -> None:
    fake.place(req("a1"))
    fake.place(req("a2", Side.SELL, "60020"))
    fake.drain()
    fake.cancel_all(SYM)
    assert {e.client_id for e in fake.drain() if isinstance(e, OrderCanceled)} == {"a1", "a2"}
    snap = fake.set_book([("1", "1")], [("2", "1")])
    assert isinstance(snap, BookSnapshot) and fake.drain() == [snap]


def test_disconnect_without_await_emits_no_warning(fake: FakeConnector) -> None:
    # filterwarnings=error::RuntimeWarning would turn a "never awaited" coroutine into a failure
    fake.disconnect()
    asyncio.run(_noop())
    assert not fake.connected


async def _noop() -> None:
    return None


def test_an_inverse_contract_fill_pays_its_fee_in_the_coin_on_the_coin_value() -> None:
    """3 BTCUSD_PERP contracts (100 USD each) at 60,000 are 0.005 BTC: the fee is bps of that, in BTC.

    The fake charged bps of price x contracts as if that were USD: 36 "USD" for 300 USD of contracts at
    2 bps, where the venue charges 0.06 USD worth of BTC; a strategy's unit test on a COIN-M contract
    then booked a fee 600 times the venue's, in the wrong currency.
    """
    rules = load_venue_rules("binance_coinm")
    fake = FakeConnector(rules)
    fake.set_book([("59990.0", "10")], [("60010.0", "10")], symbol="BTCUSD_PERP")
    fake.drain()
    fake.place(OrderRequest("c1", rules.venue, "BTCUSD_PERP", Side.BUY, Decimal(3), Decimal("60000.0")))
    fill = fake.fill("c1")
    coin_value = Decimal(3) * Decimal(100) / Decimal("60000.0")
    assert fill.fee_currency == "BTC"
    assert fill.fee == coin_value * rules.fees.maker_bps / Decimal(10_000)
    assert fill.fee < Decimal("0.0001")  # nowhere near the 36 "USD" of the old formula


def test_a_linear_fill_still_pays_bps_of_the_notional_in_quote(fake: FakeConnector) -> None:
    fake.place(req("l1", price="59990", qty="0.5"))
    fill = fake.fill("l1")
    rules = load_venue_rules("sim")
    assert fill.fee_currency == "PYUSD"
    assert fill.fee == rules.fees.fee(Decimal("59990") * Decimal("0.5"), True)
