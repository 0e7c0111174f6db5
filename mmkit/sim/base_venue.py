"""The base every simulated venue shares: honest timing, rules at arrival, FIFO outcomes, balances.

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
to let the venue act on everything that has arrived by then."""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Literal

import attrs
from loguru import logger

from mmkit.connector import NotConnectedError, OrderNotFoundError, VenueRules
from mmkit.instrument import Instrument
from mmkit.model import (
    ZERO,
    Balance,
    BalanceUpdate,
    ConnectionStatus,
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
    OrderType,
    RejectReason,
    ReplaceRequest,
    Side,
    TimeInForce,
    VenueEvent,
    VenueOrderStatus,
)
from mmkit.risk.pnl import Book
from mmkit.risk.settlement import Settlement
from mmkit.sim.fees import FeeModel
from mmkit.sim.latency import Action, ConstantLatency, LatencyModel

__all__ = ["MAKER_OWNER", "OUR_OWNER", "TAKER_OWNER", "SimulatedVenue", "VenueOrder", "event_stamper", "instrument_of"]

#: Owner tag of our own orders inside the matching engine.
OUR_OWNER = "us"
MAKER_OWNER = "maker:sim"
TAKER_OWNER = "taker:sim"

_Kind = Literal["local", "order", "market"]

@attrs.define(slots=True)
class VenueOrder:
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
        self._orders: dict[str, VenueOrder] = {}
        # The orders of ``_orders`` that may still be open, in the same order. Why: every fill asks for
        # balances, which reserve for open orders; scanning every order ever placed made a long
        # backtest quadratic. Closed ones are dropped lazily by ``_open_orders``.
        self._open: dict[str, VenueOrder] = {}
        self._fills: list[Fill] = []
        self._balances: dict[str, Decimal] = {k: Decimal(v) for k, v in (initial_balances or {}).items()}
        #: Per inverse symbol, the venue's own FIFO book of the position (realized PnL paid into the coin wallet).
        self._contract_books: dict[str, Book] = {}
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
        """Per-asset totals, with what open orders reserve taken out of ``available``.

        Linear: a buy reserves its quote (price x leaves), a sell its base. An
        inverse contract (COIN-M) is margined in the coin on either side: an
        open order reserves the coin value of its contracts (leaves x size /
        price), i.e. margin at 1x leverage, the most a venue would hold, since
        leverage is not modelled. It used to reserve ``price x contracts`` of
        the quote currency, which showed a "USD" wallet no COIN-M account has,
        with a negative balance available.
        """
        reserved: dict[str, Decimal] = {}
        for rec in self._open_orders(None):
            inst = self._rules.instrument(rec.symbol)
            if inst.inverse:
                if rec.price is not None:
                    margin = Settlement.of(inst).value(rec.price, rec.leaves)
                    reserved[inst.base] = reserved.get(inst.base, ZERO) + margin
            elif rec.side is Side.BUY and rec.price is not None:
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

    def _enter(self, rec: VenueOrder, ts: int) -> tuple[RejectReason, str] | None:
        """Put an accepted-by-rules order into the book; return a reject or None.

        On success the subclass emits nothing itself; it returns and then calls
        ``_book_fill`` / ``_close`` for whatever happened immediately.
        """
        raise NotImplementedError

    def _remove_resting(self, rec: VenueOrder, ts: int) -> None:
        raise NotImplementedError

    def _replace_resting(self, old: VenueOrder, new: VenueOrder, ts: int) -> tuple[RejectReason, str] | None:
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
        rec = VenueOrder(
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

    def _cancel_at_venue(self, rec: VenueOrder, ts: int) -> None:
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
        new = VenueOrder(
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
        self, rec: VenueOrder, price: Decimal, qty: Decimal, *, liquidity: Liquidity, trade_id: str, ts: int
    ) -> None:
        """Apply one execution of our order: order truth, fee, balances, Fill + BalanceUpdate events."""
        inst = self._rules.instrument(rec.symbol)
        fee, fee_currency = self.fees.charge(inst, price, qty, liquidity)
        rec.filled += qty
        if rec.filled >= rec.qty:
            rec.status = VenueOrderStatus.FILLED
        elif rec.status is VenueOrderStatus.NEW:
            rec.status = VenueOrderStatus.PARTIALLY_FILLED
        sign = rec.side.sign
        if inst.inverse:  # COIN-M: the coin wallet pays the fee and takes realized PnL; the position is contracts
            book = self._contract_books.get(inst.symbol) or Book(self.venue, False, inverse_size=inst.contract_size)
            self._contract_books[inst.symbol] = book
            self._balances[inst.base] = self._balances.get(inst.base, ZERO) + book.apply(rec.side, qty, price) - fee
            self._balances[inst.symbol] = self._balances.get(inst.symbol, ZERO) + sign * qty
        else:
            self._balances[inst.base] = self._balances.get(inst.base, ZERO) + sign * qty
            self._balances[inst.quote] = self._balances.get(inst.quote, ZERO) - sign * price * qty - fee
        fill = Fill(
            self.venue, trade_id, rec.client_id, rec.symbol, rec.side, price, qty, fee, fee_currency, liquidity,
            ts, ts, rec.venue_order_id,
        )
        self._fills.append(fill)
        self._emit(Action.FILL, ts, lambda recv: attrs.evolve(fill, ts_recv=recv))
        balances = tuple(b for b in self.balances() if b.asset in (inst.base, inst.quote, inst.symbol))
        self._emit(Action.FILL, ts, lambda recv: BalanceUpdate(self.venue, balances, recv))

    def _close_remainder(self, rec: VenueOrder, ts: int) -> None:
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

    def _open_orders(self, symbol: str | None) -> list[VenueOrder]:
        """Our open orders (of ``symbol``, or all), in the order they were placed."""
        index = self._open
        closed = [cid for cid, r in index.items() if not r.status.is_open]
        for cid in closed:
            del index[cid]
        return [r for r in index.values() if symbol is None or r.symbol == symbol]

    def _report(self, rec: VenueOrder, ts: int) -> OrderStatusReport:
        return OrderStatusReport(
            self.venue, rec.client_id, rec.venue_order_id, rec.symbol, rec.side, rec.price, rec.qty, rec.filled,
            rec.status, rec.ts_event, ts,
        )


def _with_recv(event: VenueEvent, ts: int) -> VenueEvent:
    return attrs.evolve(event, ts_recv=ts)


def event_stamper(event: VenueEvent) -> Callable[[int], VenueEvent]:
    """A factory that stamps ``event`` with its receive time (avoids late-binding lambdas in loops)."""
    return lambda recv: _with_recv(event, recv)


def _is_ack_of(event: VenueEvent, client_id: str) -> bool:
    return isinstance(event, OrderAccepted) and event.client_id == client_id


def _is_replace_of(event: VenueEvent, client_id: str) -> bool:
    return isinstance(event, OrderReplaced) and event.client_id == client_id


def instrument_of(venue: SimulatedVenue, symbol: str) -> Instrument:
    """Convenience for drivers and tests."""
    return venue.rules.instrument(symbol)
