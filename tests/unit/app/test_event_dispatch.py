"""The router and the user stream pick an event's route by its class, remembered per class (issue 16).

The remembered route must be what the isinstance checks give: a subclass of
an event class goes where its base goes, and an object that only *claims* a
class (``__class__`` differs from its type, as a proxy or a spec'd mock does)
is classified on its own each time, never under its type's remembered route.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs

from mmkit.app.event_router import EventRouter
from mmkit.connector import load_venue_rules
from mmkit.model import (
    Balance,
    BalanceUpdate,
    Fill,
    Liquidity,
    MalformedMessage,
    OrderAccepted,
    OrderRequest,
    Side,
    Trade,
    VenueEvent,
)
from mmkit.orders.tracker import ClientOrderTracker
from mmkit.stream import UserStreamTracker
from mmkit.testing.fake_connector import FakeConnector

SYM = "BTC-PYUSD"


class Claims:
    """Stands for ``inner``: ``isinstance`` sees ``inner``'s class, ``type()`` sees Claims (a proxy)."""

    def __init__(self, inner: object) -> None:
        self._inner = inner

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        return type(self._inner)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@attrs.frozen(slots=True)
class LateAccepted(OrderAccepted):
    """A connector's own subclass of an order event."""


def accepted(cid: str = "c1") -> OrderAccepted:
    return OrderAccepted("sim", cid, "V1", 0, 0)


def balance() -> BalanceUpdate:
    return BalanceUpdate("sim", (Balance("BTC", Decimal(1), Decimal(1)),), 0)


def trade() -> Trade:
    return Trade("sim", SYM, "T1", Decimal(1), Decimal(1), Side.BUY, 0, 0)


class Heard:
    def __init__(self, stream: UserStreamTracker) -> None:
        self.orders: list[object] = []
        self.balances: list[object] = []
        self.fills: list[object] = []
        stream.add_order_listener(self.orders.append)
        stream.add_balance_listener(self.balances.append)
        stream.add_fill_listener(self.fills.append)


# ----------------------------------------------------------------- UserStreamTracker


def test_stream_routes_a_proxy_by_the_class_it_claims_each_time() -> None:
    stream = UserStreamTracker()
    heard = Heard(stream)
    as_order, as_balance = Claims(accepted()), Claims(balance())
    assert type(as_order) is type(as_balance)  # one type, two claimed classes
    assert stream.push(as_order)  # type: ignore[arg-type]
    assert stream.push(as_balance)  # type: ignore[arg-type]
    stream.process([as_balance, as_order])  # type: ignore[list-item]
    assert heard.orders == [as_order, as_order] and heard.balances == [as_balance, as_balance]
    assert stream.ignored_events == 0


def test_stream_routes_a_subclass_as_its_base_and_remembers_each_class_apart() -> None:
    stream = UserStreamTracker()
    heard = Heard(stream)
    late, plain = LateAccepted("sim", "c2", "V2", 0, 0), accepted()
    for event in (late, plain, late, balance()):
        assert stream.push(event)
    assert heard.orders == [late, plain, late] and len(heard.balances) == 1
    assert not stream.push(trade())  # not ours: ignored, and still ignored the second time
    assert not stream.push(trade())
    assert stream.ignored_events == 2


def test_stream_fills_still_go_through_the_ledger_checks() -> None:
    fake = FakeConnector(load_venue_rules("sim"))
    tracker = ClientOrderTracker(fake)
    stream = UserStreamTracker(tracker)
    heard = Heard(stream)
    tracker.submit(OrderRequest("c1", "sim", SYM, Side.BUY, Decimal("0.01"), Decimal("59990")))
    fill = Fill("sim", "F1", "c1", SYM, Side.BUY, Decimal("59990"), Decimal("0.004"), Decimal(0), "PYUSD",
                Liquidity.MAKER, 1, 1)
    stream.process([fill, fill])  # the repeat is dropped, by the fill handler the class picked
    assert heard.fills == [fill] and stream.duplicate_fills == 1
    assert tracker.get("c1").filled_qty == Decimal("0.004")  # type: ignore[union-attr]


# ----------------------------------------------------------------- EventRouter


class Sink:
    def __init__(self) -> None:
        self.batches: list[list[VenueEvent]] = []

    def process(self, events: Any) -> None:
        self.batches.append(list(events))


def router_with_sink() -> tuple[EventRouter, Sink, list[VenueEvent]]:
    router = EventRouter()
    sink = Sink()
    market: list[VenueEvent] = []
    router.add_market_listener(market.append)
    router._streams["sim"] = sink  # a stream without a connector: route() is called directly
    return router, sink, market


def test_router_routes_a_proxy_by_the_class_it_claims_each_time() -> None:
    router, sink, market = router_with_sink()
    as_trade, as_order = Claims(trade()), Claims(accepted())
    router.route("sim", [as_trade])  # type: ignore[list-item]
    router.route("sim", [as_order])  # type: ignore[list-item]
    router.route("sim", [as_order, as_trade])  # type: ignore[list-item]
    assert market == [as_trade, as_trade]
    assert sink.batches == [[as_order], [as_order]]
    assert router.events == {"Claims": 4}  # counted by type, as before


def test_router_keeps_private_events_in_order_after_the_market_ones() -> None:
    router, sink, market = router_with_sink()
    first, late, bad = accepted("c1"), LateAccepted("sim", "c2", "V2", 0, 0), MalformedMessage("sim", "bad", "{", 0)
    router.route("sim", [first, trade(), bad, late])
    router.route("sim", [late, first])  # only private events: the batch goes over as it came
    assert market == [trade()]
    assert sink.batches == [[first, late], [late, first]]
    assert router.malformed == 1
    assert router.events == {"OrderAccepted": 2, "LateAccepted": 2, "Trade": 1, "MalformedMessage": 1}
