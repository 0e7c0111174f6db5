"""One set of behavioural tests that every Connector must pass.

Why: the executor, trackers and risk code are written once against
:class:`mmkit.connector.Connector`; a connector that answers "not found" when
it could not ask, or loses the order of events, breaks them all silently. Each
connector's test module subclasses :class:`ConnectorConformance` (named
``Test...`` so pytest collects it) and provides the hooks below; pytest then
runs every ``test_*`` method against that connector.

Hooks are ``async`` so that asynchronous connectors (FIX over loopback, ccxt
against a local HTTP/WS server) fit: ``pump`` lets time or I/O move one step
(advance a simulated clock, or ``await asyncio.sleep``), and the suite pumps
and drains until the event it expects shows up or ``max_pumps`` runs out.

Required hooks: ``make_connector``, ``venue_fill``, ``venue_lose_order``,
``drop_connection``. Optional: ``pump``, ``restore_connection``,
``reference_mid``, ``expected_fee``, ``close_connector``, ``symbol``.

``test_rejects_under_min_notional`` needs rules where an on-lot order inside
the price band can be under the minimum notional; a subclass whose venue
makes that impossible overrides it (and says why).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable
from decimal import ROUND_CEILING, Decimal

import pytest

from mmkit.connector import Connector, OrderNotFoundError, TransientVenueError
from mmkit.instrument import Instrument
from mmkit.model import (
    Balance,
    Fill,
    Liquidity,
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
    VenueEvent,
)

__all__ = ["ConnectorConformance", "Harness"]

_ids = itertools.count(1)


def new_client_id(prefix: str = "cf") -> str:
    """Unique across runs (ms clock) and within one (counter); well under 18 characters."""
    return f"{prefix}{time.time_ns() // 1_000_000 % 10**9}{next(_ids)}"[:18]


class Harness:
    """The connector under test plus everything it has emitted so far."""

    def __init__(self, suite: ConnectorConformance, connector: Connector) -> None:
        self.suite = suite
        self.connector = connector
        self.events: list[VenueEvent] = []
        self._seen = 0

    @property
    def symbol(self) -> str:
        return self.suite.symbol

    @property
    def instrument(self) -> Instrument:
        return self.connector.rules.instrument(self.symbol)

    async def collect(self) -> list[VenueEvent]:
        """One pump, then drain: what arrived in this step."""
        await self.suite.pump(self.connector)
        new = self.connector.drain()
        self.events.extend(new)
        return new

    async def wait_for(self, predicate: Callable[[VenueEvent], bool], what: str) -> VenueEvent:
        """Pump until an event not returned before satisfies ``predicate``."""
        for _ in range(self.suite.max_pumps):
            while self._seen < len(self.events):
                event = self.events[self._seen]
                self._seen += 1
                if predicate(event):
                    return event
            await self.collect()
        raise AssertionError(f"timed out waiting for {what}; got {self.events[-10:]!r}")

    async def wait_for_order(self, client_id: str, *types: type) -> VenueEvent:
        """The next event about ``client_id`` among ``types`` (events about other orders are skipped)."""
        names = "/".join(t.__name__ for t in types)
        return await self.wait_for(
            lambda e: isinstance(e, types) and getattr(e, "client_id", None) == client_id, f"{names} for {client_id}"
        )

    # -- orders the suite uses ------------------------------------------------------

    async def resting_price(self, side: Side, offset_bps: int = 40) -> Decimal:
        """A price that rests (does not cross) yet sits well inside any price band."""
        mid = await self.suite.reference_mid(self.connector)
        band = self.instrument.price_band
        bps = Decimal(offset_bps) / 10_000
        if band is not None:
            bps = min(bps, band / 2)
        raw = mid * (1 - bps) if side is Side.BUY else mid * (1 + bps)
        return self.instrument.round_price(raw, side)

    def valid_qty(self, price: Decimal) -> Decimal:
        """The smallest on-lot size comfortably above the minimum notional and minimum size."""
        inst = self.instrument
        lot = inst.lot_for(price)
        need = max(inst.min_notional * 2 / price, inst.min_qty, lot)
        return ((need / lot).to_integral_value(rounding=ROUND_CEILING) * lot).quantize(lot)

    def request(self, side: Side, price: Decimal, qty: Decimal | None = None, **kw: object) -> OrderRequest:
        return OrderRequest(
            client_id=new_client_id(), venue=self.connector.venue, symbol=self.symbol, side=side,
            qty=qty if qty is not None else self.valid_qty(price), price=price, **kw,  # type: ignore[arg-type]
        )

    async def place_resting(self, side: Side = Side.BUY, offset_bps: int = 40) -> tuple[OrderRequest, OrderAccepted]:
        price = await self.resting_price(side, offset_bps)
        order = self.request(side, price, post_only=self.connector.rules.supports_post_only)
        self.connector.place(order)
        event = await self.wait_for_order(order.client_id, OrderAccepted, OrderRejected)
        assert isinstance(event, OrderAccepted), f"resting order refused: {event!r}"
        return order, event


class ConnectorConformance:
    """Subclass as ``TestMyConnectorConformance`` and implement the hooks."""

    symbol: str = "BTC-PYUSD"
    #: How many pump+drain steps a wait may take before the test fails.
    max_pumps: int = 500

    # -- hooks -------------------------------------------------------------------------

    async def make_connector(self) -> Connector:
        """A fresh connector wired to a fresh venue (not yet connected)."""
        raise NotImplementedError

    async def pump(self, connector: Connector) -> None:
        """Let time / I/O move one step. Simulated venues advance their clock here."""
        await asyncio.sleep(0.005)

    async def venue_fill(self, connector: Connector, order: OrderRequest) -> None:
        """Make the venue fill ``order`` completely (a counterparty trades against it)."""
        raise NotImplementedError

    async def venue_lose_order(self, connector: Connector, client_id: str) -> None:
        """Make the venue forget ``client_id`` entirely."""
        raise NotImplementedError

    async def drop_connection(self, connector: Connector) -> None:
        """Drop the session from the venue's side (not a polite disconnect)."""
        raise NotImplementedError

    async def restore_connection(self, connector: Connector) -> None:
        await connector.connect()

    async def reference_mid(self, connector: Connector) -> Decimal:
        """Where the market is, so the suite can price orders that rest inside the band."""
        raise NotImplementedError

    def expected_fee(self, connector: Connector, fill: Fill) -> Decimal:
        return connector.rules.fees.fee(fill.notional, fill.liquidity is Liquidity.MAKER)

    async def close_connector(self, connector: Connector) -> None:
        if connector.connected:
            connector.cancel_all(self.symbol)
            await connector.disconnect()

    # -- fixture ---------------------------------------------------------------------

    @pytest.fixture
    async def h(self) -> AsyncIterator[Harness]:
        connector = await self.make_connector()
        await connector.connect()
        harness = Harness(self, connector)
        await harness.collect()
        try:
            yield harness
        finally:
            await self.close_connector(connector)

    # -- the tests -------------------------------------------------------------------

    async def test_connects_and_implements_protocol(self, h: Harness) -> None:
        assert isinstance(h.connector, Connector)
        assert h.connector.connected
        assert h.connector.rules.instrument(self.symbol).symbol == self.symbol

    async def test_place_is_accepted_with_venue_order_id(self, h: Harness) -> None:
        order, ack = await h.place_resting(Side.BUY)
        assert ack.venue_order_id and ack.venue == h.connector.venue
        open_ids = {r.client_id for r in await h.connector.fetch_open_orders(self.symbol)}
        assert order.client_id in open_ids

    async def _expect_reject(self, h: Harness, order: OrderRequest, reason: RejectReason) -> None:
        h.connector.place(order)
        event = await h.wait_for_order(order.client_id, OrderAccepted, OrderRejected)
        assert isinstance(event, OrderRejected), f"expected {reason}, got {event!r}"
        assert event.reason is reason, event

    async def test_rejects_off_tick_price(self, h: Harness) -> None:
        price = await h.resting_price(Side.BUY)
        bad = price - h.instrument.tick_for(price) / 2
        await self._expect_reject(h, h.request(Side.BUY, bad, h.valid_qty(price)), RejectReason.INVALID_PRICE)

    async def test_rejects_off_lot_size(self, h: Harness) -> None:
        price = await h.resting_price(Side.BUY)
        bad = h.valid_qty(price) + h.instrument.lot_for(price) / 2
        await self._expect_reject(h, h.request(Side.BUY, price, bad), RejectReason.INVALID_QTY)

    async def test_rejects_under_min_notional(self, h: Harness) -> None:
        price = await h.resting_price(Side.BUY)
        inst = h.instrument
        qty = max(inst.lot_for(price), inst.min_qty)
        assert price * qty < inst.min_notional, "rules leave no on-lot order under min notional: override this test"
        await self._expect_reject(h, h.request(Side.BUY, price, qty), RejectReason.MIN_NOTIONAL)

    async def test_cancel_is_confirmed(self, h: Harness) -> None:
        order, _ = await h.place_resting(Side.SELL)
        h.connector.cancel(order.client_id, self.symbol)
        event = await h.wait_for_order(order.client_id, OrderCanceled, OrderCancelRejected)
        assert isinstance(event, OrderCanceled), event
        assert order.client_id not in {r.client_id for r in await h.connector.fetch_open_orders(self.symbol)}

    async def test_cancel_unknown_is_rejected(self, h: Harness) -> None:
        client_id = new_client_id("nx")
        h.connector.cancel(client_id, self.symbol)
        event = await h.wait_for_order(client_id, OrderCanceled, OrderCancelRejected)
        assert isinstance(event, OrderCancelRejected) and not event.is_replace

    async def test_replace(self, h: Harness) -> None:
        order, _ = await h.place_resting(Side.BUY)
        assert order.price is not None
        new_price = order.price - h.instrument.tick_for(order.price)
        req = ReplaceRequest(
            new_client_id("rp"), order.client_id, h.connector.venue, self.symbol, Side.BUY, order.qty, new_price
        )
        h.connector.replace(req)
        if not h.connector.rules.supports_replace:
            refused = await h.wait_for_order(order.client_id, OrderCancelRejected, OrderReplaced)
            assert isinstance(refused, OrderCancelRejected) and refused.is_replace
            return
        event = await h.wait_for(
            lambda e: (isinstance(e, OrderReplaced) and e.client_id == req.client_id)
            or (isinstance(e, OrderCancelRejected) and e.client_id == order.client_id),
            "replace outcome",
        )
        assert isinstance(event, OrderReplaced), event
        assert event.orig_client_id == order.client_id and event.price == new_price and event.qty == order.qty
        report = await h.connector.fetch_order_status(req.client_id, self.symbol)
        assert report.status.is_open and report.price == new_price

    async def test_fill_has_trade_id_fee_and_liquidity(self, h: Harness) -> None:
        order, ack = await h.place_resting(Side.BUY)
        await self.venue_fill(h.connector, order)
        fill = await h.wait_for_order(order.client_id, Fill)
        assert isinstance(fill, Fill)
        assert fill.trade_id and fill.qty == order.qty and fill.side is Side.BUY and fill.symbol == self.symbol
        assert fill.liquidity is Liquidity.MAKER
        assert fill.fee == self.expected_fee(h.connector, fill)
        assert fill.fee_currency == h.instrument.quote
        report = await h.connector.fetch_order_status(order.client_id, self.symbol)
        assert report.filled_qty == order.qty and not report.status.is_open
        assert ack.venue_order_id == report.venue_order_id

    async def test_order_status_report_and_not_found(self, h: Harness) -> None:
        order, _ = await h.place_resting(Side.SELL)
        h.connector.request_order_status(order.client_id, self.symbol)
        report = await h.wait_for_order(order.client_id, OrderStatusReport, OrderNotFound, OrderQueryFailed)
        assert isinstance(report, OrderStatusReport) and report.status.is_open and report.qty == order.qty
        missing = new_client_id("nf")
        h.connector.request_order_status(missing, self.symbol)
        answer = await h.wait_for_order(missing, OrderStatusReport, OrderNotFound, OrderQueryFailed)
        assert isinstance(answer, OrderNotFound)
        with pytest.raises(OrderNotFoundError):
            await h.connector.fetch_order_status(missing, self.symbol)

    async def test_lost_order_is_reported_not_found(self, h: Harness) -> None:
        order, _ = await h.place_resting(Side.BUY)
        await self.venue_lose_order(h.connector, order.client_id)
        h.connector.request_order_status(order.client_id, self.symbol)
        answer = await h.wait_for_order(order.client_id, OrderStatusReport, OrderNotFound, OrderQueryFailed)
        assert isinstance(answer, OrderNotFound)

    async def test_disconnected_place_and_query_fail_transiently(self, h: Harness) -> None:
        order, _ = await h.place_resting(Side.BUY)
        await self.drop_connection(h.connector)
        await h.collect()
        assert not h.connector.connected
        late = h.request(Side.BUY, await h.resting_price(Side.BUY, 60))
        h.connector.place(late)
        rejected = await h.wait_for_order(late.client_id, OrderAccepted, OrderRejected)
        assert isinstance(rejected, OrderRejected) and rejected.reason is RejectReason.NOT_CONNECTED
        h.connector.request_order_status(order.client_id, self.symbol)
        failed = await h.wait_for_order(order.client_id, OrderStatusReport, OrderNotFound, OrderQueryFailed)
        assert isinstance(failed, OrderQueryFailed), "a disconnect must never read as 'not found'"
        with pytest.raises(TransientVenueError):
            await h.connector.fetch_order_status(order.client_id, self.symbol)
        await self.restore_connection(h.connector)
        await h.collect()
        assert h.connector.connected

    async def test_cancel_all_leaves_nothing_open(self, h: Harness) -> None:
        placed = [
            (await h.place_resting(Side.BUY, 40))[0],
            (await h.place_resting(Side.BUY, 50))[0],
            (await h.place_resting(Side.SELL, 45))[0],
        ]
        h.connector.cancel_all(self.symbol)
        for order in placed:
            event = await h.wait_for_order(order.client_id, OrderCanceled, OrderCancelRejected)
            assert isinstance(event, OrderCanceled), event
        assert await h.connector.fetch_open_orders(self.symbol) == []

    async def test_drain_returns_events_in_order(self, h: Harness) -> None:
        order, _ = await h.place_resting(Side.SELL, 70)
        h.connector.cancel(order.client_id, self.symbol)
        await h.wait_for_order(order.client_id, OrderCanceled)
        about = [e for e in h.events if getattr(e, "client_id", None) == order.client_id]
        kinds = [type(e) for e in about]
        assert kinds.index(OrderAccepted) < kinds.index(OrderCanceled)
        stamps = [e.ts_recv for e in h.events if hasattr(e, "ts_recv")]
        assert stamps == sorted(stamps), "events must come out in arrival order"
        again = h.connector.drain()
        assert not any(e in h.events for e in again), "drain must not return an event twice"

    async def test_fetch_balances(self, h: Harness) -> None:
        balances = await h.connector.fetch_balances()
        assert all(isinstance(b, Balance) and b.available <= b.total for b in balances)
