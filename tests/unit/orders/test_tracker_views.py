"""ClientOrderTracker.version and the memoized open-order view follow every change to our orders."""

from __future__ import annotations

from decimal import Decimal

from mmkit.model import NS_PER_S, Fill, Liquidity, OrderRequest, Side
from mmkit.orders.states import OrderState
from mmkit.orders.tracker import ClientOrderTracker
from mmkit.testing.fake_connector import FakeConnector

SYM = "BTC-PYUSD"


def req(tracker: ClientOrderTracker, side: Side = Side.BUY, symbol: str = SYM) -> OrderRequest:
    return OrderRequest(tracker.new_client_id(), "sim", symbol, side, Decimal("0.01"), Decimal("59990"))


def test_view_is_reused_while_nothing_changes_and_rebuilt_after_each_change(
    fake: FakeConnector, tracker: ClientOrderTracker
) -> None:
    assert tracker.open_orders_view(SYM) == ()
    order = tracker.submit(req(tracker), 1)
    view = tracker.open_orders_view(SYM)
    assert view == (order,)
    assert tracker.open_orders_view(SYM) is view
    tracker.tick(2)  # status-query bookkeeping changes no order
    assert tracker.open_orders_view(SYM) is view

    fake.ack(order.client_id)
    before = tracker.version
    tracker.on_events(fake.drain())
    assert tracker.version > before and order.state is OrderState.OPEN
    fake.fill(order.client_id)
    tracker.on_events(fake.drain())
    assert order.state is OrderState.FILLED
    assert tracker.open_orders_view(SYM) == ()
    assert tracker.open_orders(SYM) == []


def test_every_action_moves_the_version(fake: FakeConnector, tracker: ClientOrderTracker) -> None:
    versions = [tracker.version]
    first = tracker.submit(req(tracker), 1)
    versions.append(tracker.version)
    second = tracker.submit(req(tracker, Side.SELL), 1)
    fake.ack_all()
    tracker.on_events(fake.drain())
    versions.append(tracker.version)
    assert tracker.replace(first.client_id, Decimal("59980"), Decimal("0.01"), 2) is not None
    versions.append(tracker.version)
    assert tracker.cancel(second.client_id, 3)
    versions.append(tracker.version)
    tracker.cancel_all(4, SYM)
    versions.append(tracker.version)
    tracker.reconcile([], 5 * NS_PER_S)
    versions.append(tracker.version)
    assert versions == sorted(set(versions))  # strictly increasing
    assert tracker.open_orders_view(SYM) == ()


def test_views_per_symbol_and_for_all(tracker: ClientOrderTracker) -> None:
    btc = tracker.submit(req(tracker), 1)
    eth = tracker.submit(req(tracker, symbol="ETH-PYUSD"), 1)
    assert tracker.open_orders_view(SYM) == (btc,)
    assert tracker.open_orders_view() == (btc, eth)
    assert tracker.open_orders("ETH-PYUSD") == [eth]


def test_open_orders_hands_out_a_fresh_list(tracker: ClientOrderTracker) -> None:
    order = tracker.submit(req(tracker), 1)
    listed = tracker.open_orders(SYM)
    listed.clear()
    assert tracker.open_orders(SYM) == [order]


def test_a_fill_moves_the_version_even_without_a_state_change(fake: FakeConnector, tracker: ClientOrderTracker) -> None:
    order = tracker.submit(req(tracker), 1)
    fake.ack(order.client_id)
    tracker.on_events(fake.drain())
    fake.fill(order.client_id, "0.004")
    tracker.on_events(fake.drain())
    assert order.state is OrderState.PARTIALLY_FILLED
    before = tracker.version
    fill = Fill(
        "sim",
        "late",
        order.client_id,
        SYM,
        Side.BUY,
        Decimal("59990"),
        Decimal("0.003"),
        Decimal(0),
        "PYUSD",
        Liquidity.MAKER,
        0,
        0,
    )
    tracker.on_event(fill)
    assert order.state is OrderState.PARTIALLY_FILLED and order.filled_qty == Decimal("0.007")
    assert tracker.version > before
