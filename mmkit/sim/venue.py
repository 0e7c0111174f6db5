"""Simulated venues that implement :class:`mmkit.connector.Connector` honestly.

Two venues share one base:

* :class:`ExchangeVenue` — a full exchange on :class:`MatchingEngine`: the
  public book is our orders plus synthetic liquidity and takers that a test
  or demo scripts (``add_liquidity``, ``take``, ``quote_around``).
* :class:`ReplayBookVenue` — a recorded book we cannot change; the backtest
  driver pushes recorded market events with ``on_market_event`` and our
  orders are filled by a :mod:`queue model <mmkit.sim.queue>` against
  recorded trades.

What makes them honest rather than convenient:

* Time comes from a ``now_ns`` callable (the Clock's ``now_ns``). Every order
  action travels the *entry* leg of the latency model before the venue acts
  on it, and every outcome travels the *response* leg before ``drain()``
  shows it. The session is FIFO: outcomes are never delivered out of order.
* The venue's rules are enforced where the venue enforces them (at arrival):
  tick, lot, min notional, price band around mid, rate limits, duplicate
  client ids, the duplicate-order window, post-only, supported order types.
* Status queries and ``fetch_*`` answer from exchange truth, which can be
  ahead of what we have seen. A dropped connection makes queries fail
  *transiently*; only ``simulate_lose_order`` produces "not found".
* Fills carry trade ids, fees by liquidity, and move balances per asset.

Call ``advance(now_ns)`` (or just ``drain()``, which advances to ``now_ns()``)
to let the venue act on everything that has arrived by then.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Literal

import attrs
from loguru import logger

from mmkit.book.book import IntLevel, OffGridError, OrderBook
from mmkit.connector import NotConnectedError, OrderNotFoundError, VenueRules
from mmkit.model import (
    ZERO,
    Balance,
    BalanceUpdate,
    BookDelta,
    BookSnapshot,
    ConnectionStatus,
    Fill,
    Instrument,
    Level,
    Liquidity,
    MarketEvent,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderNotFound,
    OrderQueryFailed,
    OrderRejected,
    OrderReplaced,
    OrderRequest,
    OrderStatusReport,
    OrderType,
    RejectReason,
    ReplaceRequest,
    Side,
    TimeInForce,
    Trade,
    VenueEvent,
    VenueOrderStatus,
)
from mmkit.sim.fees import FeeModel
from mmkit.sim.latency import Action, ConstantLatency, LatencyModel
from mmkit.sim.matching import Execution, MatchingEngine, SimOrder
from mmkit.sim.queue import ConservativeQueue, QueueModel, QueuePosition, trade_fill_qty

__all__ = ["OUR_OWNER", "ExchangeVenue", "ReplayBookVenue", "SimulatedVenue"]

#: Owner tag of our own orders inside the matching engine.
OUR_OWNER = "us"
MAKER_OWNER = "maker:sim"
TAKER_OWNER = "taker:sim"

_Kind = Literal["local", "order", "market"]

@attrs.define(slots=True)
class _VenueOrder:
    """Exchange truth about one of our orders (one per client id)."""

    client_id: str
    venue_order_id: str
    symbol: str
    side: Side
    price: Decimal | None
    qty: Decimal
    post_only: bool
    tif: TimeInForce
    ts_event: int
    filled: Decimal = ZERO
    status: VenueOrderStatus = VenueOrderStatus.NEW

    @property
    def leaves(self) -> Decimal:
        return self.qty - self.filled if self.status.is_open else ZERO


@attrs.frozen(slots=True)
class _Pending:
    """An action on its way to the venue (entry leg)."""

    kind: Action
    payload: object


class SimulatedVenue:
    """Base of both simulated venues: latency, rules, order truth, balances, session state."""

    def __init__(
        self,
        rules: VenueRules,
        now_ns: Callable[[], int],
        *,
        latency: LatencyModel | None = None,
        fees: FeeModel | None = None,
        initial_balances: Mapping[str, Decimal] | None = None,
        hold_events_while_disconnected: bool = True,
        order_id_prefix: str = "O",
    ) -> None:
        self._rules = rules
        self._now = now_ns
        self.latency: LatencyModel = latency or ConstantLatency()
        self.fees = fees or FeeModel(rules.fees)
        self._hold = hold_events_while_disconnected
        self._oid_prefix = order_id_prefix
        self._connected = False
        self._seq = itertools.count()
        self._oid_seq = itertools.count(1)
        self._fill_seq = itertools.count(1)
        self._to_venue: list[tuple[int, int, _Pending]] = []
        self._to_us: list[tuple[int, int, _Kind, VenueEvent]] = []
        self._held: list[VenueEvent] = []
        self._last_visible = 0
        self._venue_time = 0
        self._orders: dict[str, _VenueOrder] = {}
        # The orders of ``_orders`` that may still be open, in the same order. Why: every fill asks for
        # balances, which reserve for open orders; scanning every order ever placed made a long
        # backtest quadratic. Closed ones are dropped lazily by ``_open_orders``.
        self._open: dict[str, _VenueOrder] = {}
        self._fills: list[Fill] = []
        self._balances: dict[str, Decimal] = {k: Decimal(v) for k, v in (initial_balances or {}).items()}
        self._rate_windows = [deque[int]() for _ in rules.rate_limits]
        self._recent_places: dict[tuple[str, Side, Decimal | None, Decimal], int] = {}
        self._book_subs: set[str] = set()
        self._trade_subs: set[str] = set()
        self._log = logger.bind(venue=rules.venue)

    # -- Connector: identity and session --------------------------------------

    @property
    def venue(self) -> str:
        return self._rules.venue

    @property
    def rules(self) -> VenueRules:
        return self._rules

    @property
    def connected(self) -> bool:
        return self._connected

    async def connect(self) -> None:
        self.simulate_reconnect()

    async def disconnect(self) -> None:
        self.simulate_disconnect("disconnect requested")

    def simulate_reconnect(self) -> None:
        """Session up; events held while down are delivered after the up notice (FIX-resend style)."""
        if self._connected:
            return
        now = self._now()
        self._connected = True
        self._local(ConnectionStatus(self.venue, "OE", True, "connected", now))
        held, self._held = self._held, []
        for event in held:
            self._local(_with_recv(event, now))

    def simulate_disconnect(self, reason: str = "connection lost") -> None:
        """Session down. With ``rules.cancel_on_disconnect`` the venue cancels our open orders."""
        if not self._connected:
            return
        now = self._now()
        self.advance(now)
        self._connected = False
        self._log.info("simulated disconnect: {}", reason)
        self._local(ConnectionStatus(self.venue, "OE", False, reason, now))
        if self._rules.cancel_on_disconnect:
            for rec in self._open_orders(None):
                self._cancel_at_venue(rec, now)

    def simulate_lose_order(self, client_id: str) -> None:
        """The venue forgets an order entirely (for reconciliation tests): queries then say not found."""
        self.advance(self._now())
        rec = self._orders.pop(client_id, None)
        self._open.pop(client_id, None)
        if rec is not None and rec.status.is_open:
            self._remove_resting(rec, self._venue_time)

    def subscribe_book(self, symbol: str) -> None:
        self._rules.instrument(symbol)
        self._book_subs.add(symbol)

    def subscribe_trades(self, symbol: str) -> None:
        self._rules.instrument(symbol)
        self._trade_subs.add(symbol)

    # -- Connector: submit-only order entry -----------------------------------

    def place(self, order: OrderRequest) -> None:
        now = self._now()
        if not self._connected:
            self._local(
                OrderRejected(self.venue, order.client_id, RejectReason.NOT_CONNECTED, "not connected", now, now)
            )
            return
        self._send(Action.PLACE, order, now)

    def cancel(self, client_id: str, symbol: str) -> None:
        now = self._now()
        if not self._connected:
            self._local(
                OrderCancelRejected(self.venue, client_id, RejectReason.NOT_CONNECTED, "not connected", now, now)
            )
            return
        self._send(Action.CANCEL, (client_id, symbol), now)

    def replace(self, request: ReplaceRequest) -> None:
        now = self._now()
        if not self._connected:
            self._local(
                OrderCancelRejected(
                    self.venue, request.orig_client_id, RejectReason.NOT_CONNECTED, "not connected", now, now,
                    is_replace=True, new_client_id=request.client_id,
                )
            )
            return
        self._send(Action.REPLACE, request, now)

    def cancel_all(self, symbol: str | None = None) -> None:
        now = self._now()
        if not self._connected:
            for rec in self._open_orders(symbol):
                self._local(
                    OrderCancelRejected(
                        self.venue, rec.client_id, RejectReason.NOT_CONNECTED, "not connected", now, now
                    )
                )
            return
        self._send(Action.CANCEL, (None, symbol), now)

    def request_order_status(self, client_id: str, symbol: str) -> None:
        now = self._now()
        if not self._connected:
            self._local(OrderQueryFailed(self.venue, client_id, "not connected", now))
            return
        self._send(Action.QUERY, client_id, now)

    # -- Connector: reconciliation (exchange truth, no latency) ----------------

    async def fetch_order_status(self, client_id: str, symbol: str) -> OrderStatusReport:
        self._require_connected()
        rec = self._orders.get(client_id)
        if rec is None or rec.symbol != symbol:
            raise OrderNotFoundError(f"{self.venue} has no order {client_id}")
        return self._report(rec, self._now())

    async def fetch_open_orders(self, symbol: str | None = None) -> list[OrderStatusReport]:
        self._require_connected()
        now = self._now()
        return [self._report(rec, now) for rec in self._open_orders(symbol)]

    async def fetch_balances(self) -> list[Balance]:
        self._require_connected()
        return self.balances()

    async def fetch_fills(self, symbol: str, since_ns: int) -> list[Fill]:
        self._require_connected()
        if not self._rules.supports_fill_history:
            return []
        return [f for f in self._fills if f.symbol == symbol and f.ts_event >= since_ns]

    def drain(self) -> list[VenueEvent]:
        """Advance the venue to ``now_ns()`` and return every outcome visible by then, in order."""
        now = self._now()
        self.advance(now)
        out: list[VenueEvent] = []
        while self._to_us and self._to_us[0][0] <= now:
            _, _, kind, event = heapq.heappop(self._to_us)
            if self._connected or kind == "local":
                out.append(event)
            elif kind == "order" and self._hold:
                self._held.append(event)
        return out

    # -- driver API ------------------------------------------------------------

    def advance(self, now_ns: int) -> None:
        """Let the venue act on every action that has arrived by ``now_ns``, in arrival order."""
        while self._to_venue and self._to_venue[0][0] <= now_ns:
            ts, _, pending = heapq.heappop(self._to_venue)
            self._venue_time = max(self._venue_time, ts)
            self._process(pending, ts)
        self._venue_time = max(self._venue_time, now_ns)

    def balances(self) -> list[Balance]:
        """Per-asset totals, with what open orders reserve taken out of ``available``."""
        reserved: dict[str, Decimal] = {}
        for rec in self._open_orders(None):
            inst = self._rules.instrument(rec.symbol)
            if rec.side is Side.BUY and rec.price is not None:
                reserved[inst.quote] = reserved.get(inst.quote, ZERO) + rec.price * rec.leaves
            elif rec.side is Side.SELL:
                reserved[inst.base] = reserved.get(inst.base, ZERO) + rec.leaves
        assets = sorted(set(self._balances) | set(reserved))
        return [
            Balance(a, self._balances.get(a, ZERO), self._balances.get(a, ZERO) - reserved.get(a, ZERO))
            for a in assets
        ]

    def order_truth(self, client_id: str) -> OrderStatusReport | None:
        """What the venue knows about ``client_id`` right now (for tests and drivers)."""
        rec = self._orders.get(client_id)
        return None if rec is None else self._report(rec, self._venue_time)

    @property
    def fills(self) -> list[Fill]:
        return list(self._fills)

    # -- subclass hooks --------------------------------------------------------

    def _mid(self, symbol: str) -> Decimal | None:
        raise NotImplementedError

    def _enter(self, rec: _VenueOrder, ts: int) -> tuple[RejectReason, str] | None:
        """Put an accepted-by-rules order into the book; return a reject or None.

        On success the subclass emits nothing itself; it returns and then calls
        ``_book_fill`` / ``_close`` for whatever happened immediately.
        """
        raise NotImplementedError

    def _remove_resting(self, rec: _VenueOrder, ts: int) -> None:
        raise NotImplementedError

    def _replace_resting(self, old: _VenueOrder, new: _VenueOrder, ts: int) -> tuple[RejectReason, str] | None:
        raise NotImplementedError

    # -- processing at the venue -----------------------------------------------

    def _process(self, pending: _Pending, ts: int) -> None:
        if pending.kind is Action.PLACE:
            assert isinstance(pending.payload, OrderRequest)
            self._venue_place(pending.payload, ts)
        elif pending.kind is Action.CANCEL:
            assert isinstance(pending.payload, tuple)
            client_id, symbol = pending.payload
            if client_id is None:
                self._venue_cancel_all(symbol, ts)
            else:
                self._venue_cancel(client_id, ts)
        elif pending.kind is Action.REPLACE:
            assert isinstance(pending.payload, ReplaceRequest)
            self._venue_replace(pending.payload, ts)
        elif pending.kind is Action.QUERY:
            assert isinstance(pending.payload, str)
            self._venue_query(pending.payload, ts)

    def _venue_place(self, order: OrderRequest, ts: int) -> None:
        def reject(reason: RejectReason, text: str) -> None:
            self._emit(
                Action.PLACE, ts, lambda recv: OrderRejected(self.venue, order.client_id, reason, text, ts, recv)
            )

        problem = self._check_place(order, ts)
        if problem is not None:
            reject(*problem)
            return
        rec = _VenueOrder(
            order.client_id, f"{self._oid_prefix}{next(self._oid_seq)}", order.symbol, order.side,
            order.price if order.order_type is OrderType.LIMIT else None, order.qty, order.post_only, order.tif, ts,
        )
        self._orders[rec.client_id] = rec
        self._open[rec.client_id] = rec
        self._emit(
            Action.PLACE, ts, lambda recv: OrderAccepted(self.venue, rec.client_id, rec.venue_order_id, ts, recv)
        )
        entered = self._enter(rec, ts)
        if entered is not None:
            # Not live after all (e.g. post-only would cross): replace the ack we queued with a reject.
            self._orders.pop(rec.client_id, None)
            self._open.pop(rec.client_id, None)
            self._to_us = [item for item in self._to_us if not _is_ack_of(item[3], rec.client_id)]
            heapq.heapify(self._to_us)
            reject(*entered)

    def _check_place(self, order: OrderRequest, ts: int) -> tuple[RejectReason, str] | None:
        rules = self._rules
        if not self._rate_ok(ts):
            return RejectReason.RATE_LIMIT, "rate limit exceeded"
        try:
            inst = rules.instrument(order.symbol)
        except KeyError:
            return RejectReason.INVALID_MESSAGE, f"unknown symbol {order.symbol}"
        if order.client_id in self._orders:
            return RejectReason.DUPLICATE_CLIENT_ID, f"client id {order.client_id} already used"
        if order.order_type is OrderType.MARKET and not rules.supports_market_orders:
            return RejectReason.OTHER, "market orders are not supported"
        if order.post_only and not rules.supports_post_only:
            return RejectReason.OTHER, "post-only is not supported"
        if order.order_type is OrderType.LIMIT:
            assert order.price is not None
            reason = inst.check_order(order.price, order.qty, self._mid(order.symbol))
            if reason is not None:
                return reason, f"{reason.value}: price {order.price} qty {order.qty}"
        elif order.qty <= 0 or order.qty < inst.min_qty:
            return RejectReason.INVALID_QTY, f"qty {order.qty}"
        key = (order.symbol, order.side, order.price, order.qty)
        window = rules.duplicate_order_window_ns
        last = self._recent_places.get(key)
        if window > 0 and last is not None and ts - last < window:
            return RejectReason.DUPLICATE_ORDER, "same order inside the duplicate-order window"
        self._recent_places[key] = ts
        return None

    def _venue_cancel(self, client_id: str, ts: int) -> None:
        if not self._rate_ok(ts):
            self._cancel_reject(client_id, RejectReason.RATE_LIMIT, "rate limit exceeded", ts)
            return
        rec = self._orders.get(client_id)
        if rec is None or not rec.status.is_open:
            text = "unknown order" if rec is None else f"order is {rec.status.value}"
            self._cancel_reject(client_id, RejectReason.UNKNOWN_ORDER, text, ts)
            return
        self._cancel_at_venue(rec, ts)

    def _venue_cancel_all(self, symbol: str | None, ts: int) -> None:
        if not self._rate_ok(ts):
            for rec in self._open_orders(symbol):
                self._cancel_reject(rec.client_id, RejectReason.RATE_LIMIT, "rate limit exceeded", ts)
            return
        for rec in self._open_orders(symbol):
            self._cancel_at_venue(rec, ts)

    def _cancel_at_venue(self, rec: _VenueOrder, ts: int) -> None:
        leaves = rec.leaves
        self._remove_resting(rec, ts)
        rec.status = VenueOrderStatus.CANCELED
        self._emit(Action.CANCEL, ts, lambda recv: OrderCanceled(self.venue, rec.client_id, ts, recv, leaves))

    def _cancel_reject(
        self, client_id: str, reason: RejectReason, text: str, ts: int, new_client_id: str | None = None
    ) -> None:
        is_replace = new_client_id is not None
        self._emit(
            Action.REPLACE if is_replace else Action.CANCEL, ts,
            lambda recv: OrderCancelRejected(
                self.venue, client_id, reason, text, ts, recv, is_replace=is_replace, new_client_id=new_client_id
            ),
        )

    def _venue_replace(self, req: ReplaceRequest, ts: int) -> None:
        def reject(reason: RejectReason, text: str) -> None:
            self._cancel_reject(req.orig_client_id, reason, text, ts, new_client_id=req.client_id)

        if not self._rules.supports_replace:
            reject(RejectReason.OTHER, "replace is not supported")
            return
        if not self._rate_ok(ts):
            reject(RejectReason.RATE_LIMIT, "rate limit exceeded")
            return
        old = self._orders.get(req.orig_client_id)
        if old is None or not old.status.is_open:
            reject(RejectReason.UNKNOWN_ORDER, "unknown order" if old is None else f"order is {old.status.value}")
            return
        if req.client_id in self._orders:
            reject(RejectReason.DUPLICATE_CLIENT_ID, f"client id {req.client_id} already used")
            return
        reason = self._rules.instrument(old.symbol).check_order(req.price, req.qty, self._mid(old.symbol))
        if reason is not None:
            reject(reason, f"{reason.value}: price {req.price} qty {req.qty}")
            return
        # ReplaceRequest.qty is the new *open* quantity: the replacement starts unfilled and the
        # original keeps the fills it had (mmkit.model.ReplaceRequest).
        new = _VenueOrder(
            req.client_id, old.venue_order_id, old.symbol, old.side, req.price, req.qty, old.post_only, old.tif, ts,
        )
        # The replacement must be known before the book acts: an immediate execution fills ``new``.
        self._orders[new.client_id] = new
        self._open[new.client_id] = new
        old_status = old.status
        old.status = VenueOrderStatus.CANCELED
        self._emit(
            Action.REPLACE, ts,
            lambda recv: OrderReplaced(
                self.venue, new.client_id, old.client_id, new.venue_order_id, req.price, req.qty, ts, recv
            ),
        )
        problem = self._replace_resting(old, new, ts)
        if problem is not None:
            del self._orders[new.client_id]
            old.status = old_status
            # ``old`` is open again; the lazy index may have dropped it meanwhile: rebuild it in order.
            self._open = {cid: r for cid, r in self._orders.items() if r.status.is_open}
            self._to_us = [item for item in self._to_us if not _is_replace_of(item[3], new.client_id)]
            heapq.heapify(self._to_us)
            reject(*problem)

    def _venue_query(self, client_id: str, ts: int) -> None:
        rec = self._orders.get(client_id)
        if rec is None:
            self._emit(Action.QUERY, ts, lambda recv: OrderNotFound(self.venue, client_id, recv))
        else:
            report = self._report(rec, ts)
            self._emit(Action.QUERY, ts, lambda recv: attrs.evolve(report, ts_recv=recv))

    # -- fills and balances ----------------------------------------------------

    def _book_fill(
        self, rec: _VenueOrder, price: Decimal, qty: Decimal, *, liquidity: Liquidity, trade_id: str, ts: int
    ) -> None:
        """Apply one execution of our order: order truth, fee, balances, Fill + BalanceUpdate events."""
        inst = self._rules.instrument(rec.symbol)
        fee = self.fees.fee(price, qty, liquidity)
        rec.filled += qty
        if rec.filled >= rec.qty:
            rec.status = VenueOrderStatus.FILLED
        elif rec.status is VenueOrderStatus.NEW:
            rec.status = VenueOrderStatus.PARTIALLY_FILLED
        sign = rec.side.sign
        self._balances[inst.base] = self._balances.get(inst.base, ZERO) + sign * qty
        self._balances[inst.quote] = self._balances.get(inst.quote, ZERO) - sign * price * qty - fee
        fill = Fill(
            self.venue, trade_id, rec.client_id, rec.symbol, rec.side, price, qty, fee, inst.quote, liquidity,
            ts, ts, rec.venue_order_id,
        )
        self._fills.append(fill)
        self._emit(Action.FILL, ts, lambda recv: attrs.evolve(fill, ts_recv=recv))
        balances = tuple(b for b in self.balances() if b.asset in (inst.base, inst.quote))
        self._emit(Action.FILL, ts, lambda recv: BalanceUpdate(self.venue, balances, recv))

    def _close_remainder(self, rec: _VenueOrder, ts: int) -> None:
        """An IOC/FOK/market remainder that did not rest: the venue cancels it."""
        leaves = rec.leaves
        if leaves <= 0:
            return
        rec.status = VenueOrderStatus.CANCELED
        self._emit(Action.PLACE, ts, lambda recv: OrderCanceled(self.venue, rec.client_id, ts, recv, leaves))

    def _next_fill_id(self) -> str:
        return f"{self.venue}-F{next(self._fill_seq)}"

    # -- plumbing ----------------------------------------------------------------

    def _send(self, action: Action, payload: object, now: int) -> None:
        arrival = now + self.latency.entry_ns(action, now)
        heapq.heappush(self._to_venue, (arrival, next(self._seq), _Pending(action, payload)))

    def _emit(self, action: Action, ts: int, make: Callable[[int], VenueEvent], kind: _Kind = "order") -> None:
        visible = max(ts + self.latency.response_ns(action, ts), self._last_visible)
        self._last_visible = visible
        heapq.heappush(self._to_us, (visible, next(self._seq), kind, make(visible)))

    def _local(self, event: VenueEvent) -> None:
        """Outcome decided in this process (never sent): visible at once, ahead of later venue outcomes."""
        now = self._now()
        visible = max(now, self._last_visible)
        self._last_visible = visible
        heapq.heappush(self._to_us, (visible, next(self._seq), "local", event))

    def _rate_ok(self, ts: int) -> bool:
        for limit, window in zip(self._rules.rate_limits, self._rate_windows, strict=True):
            while window and window[0] <= ts - limit.window_ns:
                window.popleft()
            if len(window) >= limit.max_count:
                return False
        for window in self._rate_windows:
            window.append(ts)
        return True

    def _require_connected(self) -> None:
        if not self._connected:
            raise NotConnectedError(f"{self.venue} is not connected")
        self.advance(self._now())

    def _open_orders(self, symbol: str | None) -> list[_VenueOrder]:
        """Our open orders (of ``symbol``, or all), in the order they were placed."""
        index = self._open
        closed = [cid for cid, r in index.items() if not r.status.is_open]
        for cid in closed:
            del index[cid]
        return [r for r in index.values() if symbol is None or r.symbol == symbol]

    def _report(self, rec: _VenueOrder, ts: int) -> OrderStatusReport:
        return OrderStatusReport(
            self.venue, rec.client_id, rec.venue_order_id, rec.symbol, rec.side, rec.price, rec.qty, rec.filled,
            rec.status, rec.ts_event, ts,
        )


def _with_recv(event: VenueEvent, ts: int) -> VenueEvent:
    return attrs.evolve(event, ts_recv=ts)


def _stamper(event: VenueEvent) -> Callable[[int], VenueEvent]:
    """A factory that stamps ``event`` with its receive time (avoids late-binding lambdas in loops)."""
    return lambda recv: _with_recv(event, recv)


def _is_ack_of(event: VenueEvent, client_id: str) -> bool:
    return isinstance(event, OrderAccepted) and event.client_id == client_id


def _is_replace_of(event: VenueEvent, client_id: str) -> bool:
    return isinstance(event, OrderReplaced) and event.client_id == client_id


# ==========================================================================
# ExchangeVenue: a full exchange on the matching engine
# ==========================================================================


class ExchangeVenue(SimulatedVenue):
    """A simulated exchange whose book is our orders plus scripted synthetic liquidity."""

    def __init__(
        self,
        rules: VenueRules,
        now_ns: Callable[[], int],
        *,
        latency: LatencyModel | None = None,
        fees: FeeModel | None = None,
        initial_balances: Mapping[str, Decimal] | None = None,
        hold_events_while_disconnected: bool = True,
        book_levels: int = 20,
    ) -> None:
        super().__init__(
            rules, now_ns, latency=latency, fees=fees, initial_balances=initial_balances,
            hold_events_while_disconnected=hold_events_while_disconnected,
        )
        self.engines = {i.symbol: MatchingEngine(i, trade_id_prefix=f"{rules.venue}-T") for i in rules.instruments}
        self._by_oid: dict[str, _VenueOrder] = {}
        self._reference: dict[str, Decimal] = {}
        self._book_levels = book_levels
        self._md_seq = itertools.count(1)
        self._synthetic_seq = itertools.count(1)

    # -- scripting -------------------------------------------------------------

    def set_reference_price(self, symbol: str, price: Decimal) -> None:
        """Mid used for the price band while the book has no two-sided market."""
        self._reference[symbol] = price

    def add_liquidity(self, side: Side, price: Decimal, qty: Decimal, symbol: str | None = None) -> str:
        """Rest a synthetic maker order now; returns its exchange order id."""
        ts = self._sync()
        sym = self._symbol(symbol)
        oid = f"M{next(self._synthetic_seq)}"
        result = self.engines[sym].submit(SimOrder(oid, MAKER_OWNER, oid, side, price, qty), ts)
        if not result.accepted:
            raise ValueError(f"synthetic order refused: {result.reject_text}")
        self._after_match(sym, result.executions, ts)
        return oid

    def take(
        self, side: Side, qty: Decimal, price: Decimal | None = None, symbol: str | None = None
    ) -> list[Execution]:
        """A synthetic taker hits the book now (IOC at ``price``, or market when None)."""
        ts = self._sync()
        sym = self._symbol(symbol)
        oid = f"K{next(self._synthetic_seq)}"
        result = self.engines[sym].submit(SimOrder(oid, TAKER_OWNER, oid, side, price, qty, tif=TimeInForce.IOC), ts)
        if not result.accepted:
            raise ValueError(f"synthetic taker refused: {result.reject_text}")
        self._after_match(sym, result.executions, ts)
        return list(result.executions)

    def quote_around(self, mid: Decimal, half_spread: Decimal, qty: Decimal, levels: int = 5,
                     symbol: str | None = None) -> None:
        """Replace all synthetic liquidity with a ladder of ``levels`` a side around ``mid``."""
        ts = self._sync()
        sym = self._symbol(symbol)
        engine = self.engines[sym]
        for order in engine.orders_of(MAKER_OWNER):
            engine.cancel(order.order_id, ts)
        self._reference[sym] = mid
        inst = engine.instrument
        for k in range(levels):
            bid = inst.round_price(mid - half_spread - k * inst.tick_for(mid), Side.BUY)
            ask = inst.round_price(mid + half_spread + k * inst.tick_for(mid), Side.SELL)
            for side, price in ((Side.BUY, bid), (Side.SELL, ask)):
                oid = f"M{next(self._synthetic_seq)}"
                result = engine.submit(SimOrder(oid, MAKER_OWNER, oid, side, price, qty), ts)
                self._after_match(sym, result.executions, ts)
        self._publish_book(sym, ts)

    def _sync(self) -> int:
        ts = max(self._now(), self._venue_time)
        self.advance(ts)
        return ts

    def _symbol(self, symbol: str | None) -> str:
        if symbol is not None:
            return symbol
        if len(self.engines) != 1:
            raise ValueError("name the symbol: this venue lists several")
        return next(iter(self.engines))

    # -- hooks -------------------------------------------------------------------

    def _mid(self, symbol: str) -> Decimal | None:
        engine = self.engines.get(symbol)
        mid = engine.mid() if engine is not None else None
        return mid if mid is not None else self._reference.get(symbol)

    def _enter(self, rec: _VenueOrder, ts: int) -> tuple[RejectReason, str] | None:
        result = self.engines[rec.symbol].submit(
            SimOrder(rec.venue_order_id, OUR_OWNER, rec.client_id, rec.side, rec.price, rec.qty, rec.post_only,
                     rec.tif),
            ts,
        )
        if not result.accepted:
            assert result.reject_reason is not None
            return result.reject_reason, result.reject_text
        if result.resting is not None:
            self._by_oid[rec.venue_order_id] = rec
        self._after_match(rec.symbol, result.executions, ts, taker=rec)
        if result.canceled_qty > 0:
            self._close_remainder(rec, ts)
        return None

    def _remove_resting(self, rec: _VenueOrder, ts: int) -> None:
        if self._by_oid.get(rec.venue_order_id) is rec:
            self.engines[rec.symbol].cancel(rec.venue_order_id, ts)
            del self._by_oid[rec.venue_order_id]
            self._publish_book(rec.symbol, ts)

    def _replace_resting(self, old: _VenueOrder, new: _VenueOrder, ts: int) -> tuple[RejectReason, str] | None:
        assert new.price is not None
        engine = self.engines[old.symbol]
        resting = engine.get(old.venue_order_id)
        already_filled = (resting.qty - resting.leaves_qty) if resting is not None else Decimal(0)
        # The matching engine counts the filled part in the total; the venue's request is open quantity.
        result = engine.replace(
            old.venue_order_id, new.venue_order_id, new.client_id, new.price, already_filled + new.qty, ts
        )
        if not result.accepted:
            assert result.reject_reason is not None
            return result.reject_reason, result.reject_text
        del self._by_oid[old.venue_order_id]
        if result.resting is not None:
            self._by_oid[new.venue_order_id] = new
        self._after_match(old.symbol, result.executions, ts, taker=new)
        return None

    def _after_match(self, symbol: str, executions: tuple[Execution, ...], ts: int,
                     taker: _VenueOrder | None = None) -> None:
        for ex in executions:
            both = ex.maker_owner == OUR_OWNER and ex.taker_owner == OUR_OWNER
            if ex.maker_owner == OUR_OWNER:
                maker = self._by_oid[ex.maker_order_id]
                if ex.maker_leaves == 0:
                    del self._by_oid[ex.maker_order_id]
                self._book_fill(
                    maker, ex.price, ex.qty, liquidity=Liquidity.MAKER,
                    trade_id=ex.trade_id + ("-M" if both else ""), ts=ts,
                )
            if ex.taker_owner == OUR_OWNER and taker is not None:
                self._book_fill(
                    taker, ex.price, ex.qty, liquidity=Liquidity.TAKER,
                    trade_id=ex.trade_id + ("-T" if both else ""), ts=ts,
                )
            if symbol in self._trade_subs:
                trade = Trade(self.venue, symbol, ex.trade_id, ex.price, ex.qty, ex.taker_side, ts, ts)
                self._emit(Action.MARKET_DATA, ts, _stamper(trade), "market")
        self._publish_book(symbol, ts)

    def _publish_book(self, symbol: str, ts: int) -> None:
        if symbol not in self._book_subs:
            return
        engine = self.engines[symbol]
        seq = next(self._md_seq)
        bids = tuple(engine.depth(Side.BUY, self._book_levels))
        asks = tuple(engine.depth(Side.SELL, self._book_levels))
        self._emit(
            Action.MARKET_DATA, ts,
            lambda recv: BookSnapshot(self.venue, symbol, seq, bids, asks, ts, recv), "market",
        )


# ==========================================================================
# ReplayBookVenue: our orders against a recorded book
# ==========================================================================


@attrs.define(slots=True)
class _Queued:
    """One resting order of ours: where it is in the queue, and its price in the recorded book's ticks.

    ``tick`` is None for a price off the book's grid, which no recorded level can ever be at.
    """

    rec: _VenueOrder
    pos: QueuePosition
    tick: int | None


class ReplayBookVenue(SimulatedVenue):
    """Our orders join a recorded book; a queue model decides their fills from recorded trades.

    Our own taking does not deplete the recorded book (we cannot change the
    recording); it fills against the displayed levels at the moment it arrives.
    ``market_time`` picks which timestamp of a recorded event is venue time.

    The recorded book of each symbol is an :class:`mmkit.book.OrderBook`
    (integer ticks and lots inside, as in the engine's own book tracker):
    every recorded level update lands here, while the venue only asks for
    the best prices, the size at one price, or, when an order of ours
    crosses (rare), the levels it would take. ``book_increments`` is the
    recording's resolution (price, size), which the venue's rules do not
    state: recordings print displayed sizes finer than the order lot (Binance
    shows 8 decimals), so the caller says it. A reader's pre-scaled levels on that
    grid are applied as they are. A recorded event the book cannot hold (a
    level off that grid, or an invalid one) is refused whole, logged and
    counted in ``refused_events``, never rounded.
    """

    def __init__(
        self,
        rules: VenueRules,
        now_ns: Callable[[], int],
        *,
        book_increments: tuple[Decimal, Decimal],
        latency: LatencyModel | None = None,
        fees: FeeModel | None = None,
        initial_balances: Mapping[str, Decimal] | None = None,
        queue_model: QueueModel | None = None,
        hold_events_while_disconnected: bool = True,
        market_time: Literal["ts_event", "ts_recv"] = "ts_event",
    ) -> None:
        super().__init__(
            rules, now_ns, latency=latency, fees=fees, initial_balances=initial_balances,
            hold_events_while_disconnected=hold_events_while_disconnected,
        )
        self.queue_model: QueueModel = queue_model or ConservativeQueue()
        self._market_time = market_time
        self.books = {i.symbol: OrderBook(*book_increments, venue=i.venue, symbol=i.symbol) for i in rules.instruments}
        self._resting: dict[str, _Queued] = {}  # client id -> our resting order
        #: Recorded trade quantity per (symbol, resting side) and price (ticks) since that level last changed.
        self._traded: dict[tuple[str, Side], dict[int, Decimal]] = {}
        #: Recorded book events refused because a level was off the book's grid or invalid.
        self.refused_events = 0

    def on_market_event(self, event: MarketEvent) -> None:
        """Apply one recorded event at its venue time; our actions that arrived earlier act first."""
        ts = event.ts_event if self._market_time == "ts_event" else event.ts_recv
        # Most events find no action of ours due (one in ~30 here): test the heap root before calling
        # advance, and otherwise do only what advance then does, move venue time (keep the two in step).
        to_venue = self._to_venue
        if to_venue and to_venue[0][0] <= ts:
            self.advance(ts)
        elif ts > self._venue_time:
            self._venue_time = ts
        book = self.books.get(event.symbol)
        if book is None:
            return
        if isinstance(event, Trade):
            self._on_trade(book, event, ts)
            if event.symbol in self._trade_subs:
                self._emit(Action.MARKET_DATA, ts, lambda recv: attrs.evolve(event, ts_recv=recv), "market")
            return
        try:
            bids, asks = book.int_levels(event)
        except ValueError as exc:  # OffGridError, or an invalid level: raised before anything is applied
            self.refused_events += 1
            logger.bind(venue=self.venue, symbol=event.symbol).warning(
                "recorded book event seq={} refused: {}", event.seq, exc
            )
            return
        if isinstance(event, BookDelta):
            self._on_delta(book, event.symbol, bids, asks, event.seq, ts)
        else:
            self._on_snapshot(book, event.symbol, bids, asks, event.seq, ts)
        if event.symbol in self._book_subs:
            self._emit(Action.MARKET_DATA, ts, lambda recv: attrs.evolve(event, ts_recv=recv), "market")

    def queue_front(self, client_id: str) -> Decimal | None:
        """The model's current estimate of displayed quantity ahead of our order."""
        queued = self._resting.get(client_id)
        return None if queued is None else queued.pos.front

    # -- market data ---------------------------------------------------------------

    def _on_snapshot(
        self, book: OrderBook, symbol: str, bids: Sequence[IntLevel], asks: Sequence[IntLevel], seq: int, ts: int
    ) -> None:
        """Install a recorded snapshot; every level it or the old book listed counts as changed."""
        prev: dict[tuple[Side, int], int] = {(Side.BUY, p): book.size_at_int(Side.BUY, p) for p, _ in bids}
        prev.update({(Side.SELL, p): book.size_at_int(Side.SELL, p) for p, _ in asks})
        prev.update({(Side.BUY, p): q for p, q in book.iter_levels_int(Side.BUY)})
        prev.update({(Side.SELL, p): q for p, q in book.iter_levels_int(Side.SELL)})
        book.set_snapshot_int(bids, asks, seq)
        self._on_depth(book, symbol, prev, ts)
        for side, price in prev:
            self._traded.get((symbol, side), {}).pop(price, None)

    def _on_delta(
        self, book: OrderBook, symbol: str, bids: Sequence[IntLevel], asks: Sequence[IntLevel], seq: int, ts: int
    ) -> None:
        """Apply a recorded diff; the queue model hears only about the levels our orders rest at.

        ``prev`` is what each of those levels displayed just before the diff
        changed it (for a price listed twice, before its last change), which
        is all the queue model and the fill checks read; the recorded book
        itself is updated in one tight loop.
        """
        prev: dict[tuple[Side, int], int] = {}
        # Most diffs do not list the price an order of ours rests at: one hashed membership test per
        # side (built on first need) rules that out before walking the levels one by one.
        listed_bids: dict[int, int] | None = None
        listed_asks: dict[int, int] | None = None
        for queued in self._resting.values():
            tick = queued.tick
            rec = queued.rec
            if tick is None or rec.symbol != symbol:
                continue
            key = (rec.side, tick)
            if key in prev:
                continue
            if rec.side is Side.BUY:
                if listed_bids is None:
                    listed_bids = dict(bids)
                if tick not in listed_bids:
                    continue
                levels = bids
            else:
                if listed_asks is None:
                    listed_asks = dict(asks)
                if tick not in listed_asks:
                    continue
                levels = asks
            current = book.size_at_int(rec.side, tick)
            before = current
            for level_price, size in levels:
                if level_price == tick:
                    before = current
                    current = size
            prev[key] = before
        book.apply_levels_int(bids, asks, seq)
        if self._resting:
            self._on_depth(book, symbol, prev, ts)
        # A changed level closes the window in which trades there are netted out of its decrease.
        for side, levels in ((Side.BUY, bids), (Side.SELL, asks)):
            traded = self._traded.get((symbol, side))
            if traded:
                for price, _ in levels:
                    traded.pop(price, None)

    def _on_trade(self, book: OrderBook, trade: Trade, ts: int) -> None:
        trade_price = trade.price
        for queued in list(self._resting.values()) if self._resting else ():
            rec = queued.rec
            price = rec.price
            if rec.symbol != trade.symbol or price is None:
                continue
            # A print above our bid (below our offer) neither reaches nor trades through us: most prints.
            if trade_price > price if rec.side is Side.BUY else trade_price < price:
                continue
            qty = trade_fill_qty(
                self.queue_model, queued.pos, side=rec.side, price=price, leaves=rec.leaves,
                trade_price=trade_price, trade_qty=trade.qty, aggressor=trade.aggressor,
            )
            if qty > 0:
                self._maker_fill(queued, qty, ts)
        aggressor = trade.aggressor
        if aggressor is not None:
            tick = self._tick_of(book, trade_price)
            if tick is None:
                return  # off the book's grid: no recorded level is at that price, nothing to net
            resting = Side.SELL if aggressor is Side.BUY else Side.BUY  # the side the print traded against
            traded = self._traded.setdefault((trade.symbol, resting), {})
            traded[tick] = traded.get(tick, ZERO) + trade.qty

    def _on_depth(self, book: OrderBook, symbol: str, prev: Mapping[tuple[Side, int], int], ts: int) -> None:
        """After the recorded book of ``symbol`` changed: queue updates, fills by a crossing book.

        ``prev`` holds, for (at least) every changed level an order of ours
        rests at, the size (lots) it displayed before the change.
        """
        # Fills below never change the recorded book, so its best prices are read once for all our orders.
        best_bid, best_ask = book.best_bid_int(), book.best_ask_int()
        for queued in list(self._resting.values()):
            rec = queued.rec
            price = rec.price
            if rec.symbol != symbol or price is None:
                continue
            tick = queued.tick
            if tick is None:
                # Off the book's grid: never at a recorded level, but the book can still cross it.
                crossed = self._crosses_off_grid(book, rec.side, price, best_bid, best_ask)
            else:
                key = (rec.side, tick)
                if key in prev:
                    before = self._size(book, prev[key])
                    traded = self._traded.get((symbol, rec.side), {}).get(tick, ZERO)
                    now = self._size(book, book.size_at_int(rec.side, tick))
                    self.queue_model.on_depth_change(queued.pos, before, min(before, now + traded))
                if rec.side is Side.BUY:
                    crossed = best_ask is not None and best_ask < tick
                else:
                    crossed = best_bid is not None and best_bid > tick
            if crossed:
                self._maker_fill(queued, rec.leaves, ts)

    @staticmethod
    def _crosses_off_grid(
        book: OrderBook, side: Side, price: Decimal, best_bid: int | None, best_ask: int | None
    ) -> bool:
        if side is Side.BUY:
            return best_ask is not None and book.price_to_decimal(best_ask) < price
        return best_bid is not None and book.price_to_decimal(best_bid) > price

    @staticmethod
    def _size(book: OrderBook, lots: int) -> Decimal:
        """A recorded size as a Decimal (no level: the same ZERO the queue models start from)."""
        return book.size_to_decimal(lots) if lots else ZERO

    @staticmethod
    def _tick_of(book: OrderBook, price: Decimal) -> int | None:
        """``price`` in the book's ticks, or None when it is off the book's grid."""
        try:
            return book.price_to_int(price)
        except OffGridError:
            return None

    def _maker_fill(self, queued: _Queued, qty: Decimal, ts: int) -> None:
        rec = queued.rec
        assert rec.price is not None
        self._book_fill(
            rec, rec.price, min(qty, rec.leaves), liquidity=Liquidity.MAKER, trade_id=self._next_fill_id(), ts=ts
        )
        if not rec.status.is_open:
            del self._resting[rec.client_id]

    def _levels_through(self, book: OrderBook, side: Side, limit: Decimal | None) -> list[Level]:
        """Opposite-side levels a ``side`` order priced ``limit`` would take, best first (Decimal)."""

        def beyond(tick: int) -> bool:
            if limit is None:
                return False
            price = book.price_to_decimal(tick)
            return price > limit if side is Side.BUY else price < limit

        # Most orders do not cross: the opposite best says so before the book is walked.
        best = book.best_ask_int() if side is Side.BUY else book.best_bid_int()
        if best is None or beyond(best):
            return []
        taken: list[Level] = []
        for tick, lots in book.iter_levels_int(side.opposite):
            if beyond(tick):
                break
            taken.append((book.price_to_decimal(tick), book.size_to_decimal(lots)))
        return taken

    # -- hooks -------------------------------------------------------------------

    def _mid(self, symbol: str) -> Decimal | None:
        book = self.books.get(symbol)
        return None if book is None else book.mid()

    def _enter(self, rec: _VenueOrder, ts: int) -> tuple[RejectReason, str] | None:
        book = self.books[rec.symbol]
        crossing = self._levels_through(book, rec.side, rec.price)
        if rec.post_only and crossing:
            return RejectReason.POST_ONLY_WOULD_CROSS, "post-only order would cross the book"
        if rec.price is None and not crossing:
            return RejectReason.OTHER, "no liquidity for a market order"
        if rec.tif is TimeInForce.FOK and sum((q for _, q in crossing), ZERO) < rec.qty:
            self._close_remainder(rec, ts)
            return None
        self._take(rec, crossing, ts)
        if rec.leaves > 0:
            if rec.price is None or rec.tif in (TimeInForce.IOC, TimeInForce.FOK):
                self._close_remainder(rec, ts)
            else:
                self._join(rec)
        return None

    def _remove_resting(self, rec: _VenueOrder, ts: int) -> None:
        self._resting.pop(rec.client_id, None)

    def _replace_resting(self, old: _VenueOrder, new: _VenueOrder, ts: int) -> tuple[RejectReason, str] | None:
        assert new.price is not None
        queued = self._resting[old.client_id]
        book = self.books[old.symbol]
        crossing = self._levels_through(book, new.side, new.price)
        if crossing and old.post_only:
            return RejectReason.POST_ONLY_WOULD_CROSS, "post-only replace would cross the book"
        del self._resting[old.client_id]
        if new.price == old.price and new.qty <= old.leaves:
            self._resting[new.client_id] = _Queued(new, queued.pos, queued.tick)  # keeps its place in the queue
            return None
        self._take(new, crossing, ts)
        if new.leaves > 0:
            self._join(new)
        return None

    def _take(self, rec: _VenueOrder, crossing: list[Level], ts: int) -> None:
        for price, qty in crossing:
            if rec.leaves <= 0:
                break
            self._book_fill(
                rec, price, min(qty, rec.leaves), liquidity=Liquidity.TAKER, trade_id=self._next_fill_id(), ts=ts
            )

    def _join(self, rec: _VenueOrder) -> None:
        assert rec.price is not None
        book = self.books[rec.symbol]
        tick = self._tick_of(book, rec.price)
        level_qty = ZERO if tick is None else self._size(book, book.size_at_int(rec.side, tick))
        self._resting[rec.client_id] = _Queued(rec, self.queue_model.on_join(level_qty), tick)


def instrument_of(venue: SimulatedVenue, symbol: str) -> Instrument:
    """Convenience for drivers and tests."""
    return venue.rules.instrument(symbol)
