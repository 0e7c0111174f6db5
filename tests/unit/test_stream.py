"""UserStreamTracker: order tracker first, then listeners; duplicates once; balances kept."""

from __future__ import annotations

from decimal import Decimal

from mmkit.connector import load_venue_rules
from mmkit.model import (
    Balance,
    BalanceUpdate,
    Fill,
    OrderAccepted,
    OrderRequest,
    Side,
    Trade,
    VenueEvent,
)
from mmkit.orders.states import OrderState
from mmkit.orders.tracker import ClientOrderTracker
from mmkit.stream import UserStreamTracker
from mmkit.testing.fake_connector import FakeConnector

SYM = "BTC-PYUSD"


def setup() -> tuple[FakeConnector, ClientOrderTracker, UserStreamTracker]:
    fake = FakeConnector(load_venue_rules("sim"))
    tracker = ClientOrderTracker(fake)
    return fake, tracker, UserStreamTracker(tracker)


def test_tracker_sees_event_before_listeners_and_order_is_kept() -> None:
    fake, tracker, stream = setup()
    order = tracker.submit(OrderRequest("c1", "sim", SYM, Side.BUY, Decimal("0.01"), Decimal("59990")))
    seen: list[tuple[str, object]] = []

    def on_order(event: VenueEvent) -> None:
        seen.append(("order", tracker.get("c1").state))  # type: ignore[union-attr]

    def on_fill(fill: Fill) -> None:
        seen.append(("fill", (fill.trade_id, tracker.get("c1").filled_qty)))  # type: ignore[union-attr]

    stream.add_order_listener(on_order)
    stream.add_fill_listener(on_fill)
    fake.fill("c1", "0.004")
    fake.fill("c1", "0.006")
    stream.process(fake.drain())
    assert seen == [
        ("order", OrderState.OPEN),
        ("fill", ("F1", Decimal("0.004"))),
        ("fill", ("F2", Decimal("0.01"))),
    ]
    assert order.state is OrderState.FILLED


def test_duplicate_fill_delivered_once() -> None:
    fake, tracker, stream = setup()
    tracker.submit(OrderRequest("c1", "sim", SYM, Side.BUY, Decimal("0.01"), Decimal("59990")))
    fills: list[Fill] = []
    stream.add_fill_listener(fills.append)
    fill = fake.fill("c1", "0.004")
    events = fake.drain()
    stream.process(events)
    assert stream.push(fill) is False
    stream.process(events)
    assert fills == [fill]
    assert stream.duplicate_fills == 2
    assert tracker.get("c1").filled_qty == Decimal("0.004")  # type: ignore[union-attr]


def test_balances_latest_per_venue_and_listener() -> None:
    _, _, stream = setup()
    got: list[BalanceUpdate] = []
    stream.add_balance_listener(got.append)
    stream.push(
        BalanceUpdate("sim", (Balance("BTC", Decimal(1), Decimal(1)), Balance("PYUSD", Decimal(5), Decimal(5))), 1)
    )
    stream.push(BalanceUpdate("sim", (Balance("BTC", Decimal(2), Decimal("1.5")),), 2))
    stream.push(BalanceUpdate("kraken", (Balance("BTC", Decimal(7), Decimal(7)),), 3))
    assert stream.balances("sim") == {
        "BTC": Balance("BTC", Decimal(2), Decimal("1.5")),
        "PYUSD": Balance("PYUSD", Decimal(5), Decimal(5)),
    }
    assert stream.balance("kraken", "BTC") == Balance("BTC", Decimal(7), Decimal(7))
    assert len(got) == 3


def test_failing_listener_does_not_stop_the_others() -> None:
    _, _, stream = setup()
    got: list[VenueEvent] = []

    def boom(event: VenueEvent) -> None:
        raise RuntimeError("listener bug")

    stream.add_order_listener(boom)
    stream.add_order_listener(got.append)
    event = OrderAccepted("sim", "unknown", "V1", 0, 0)
    assert stream.push(event)
    assert got == [event] and stream.listener_errors == 1


def test_market_events_ignored_and_no_tracker_needed() -> None:
    stream = UserStreamTracker()
    assert not stream.push(Trade("sim", SYM, "1", Decimal(1), Decimal(1), Side.BUY, 0, 0))
    assert stream.ignored_events == 1
    assert stream.push(OrderAccepted("sim", "c1", "V1", 0, 0))
