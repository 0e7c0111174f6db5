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
to let the venue act on everything that has arrived by then.

One module per job: the session plumbing (latency legs, FIFO delivery) is
:mod:`mmkit.sim.venue_plumbing`, the arrival-time rules
:mod:`mmkit.sim.venue_checks`, order truth, fills and balances
:mod:`mmkit.sim.venue_accounts`; this module is the Connector surface and
what the venue does with each action when it arrives."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from decimal import Decimal
from heapq import heappush

import attrs
from loguru import logger

from mmkit.connector import NotConnectedError, OrderNotFoundError, VenueRules
from mmkit.instrument import Instrument
from mmkit.model import (
    ZERO,
    Balance,
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
    OrderType,
    RejectReason,
    ReplaceRequest,
    VenueOrderStatus,
)
from mmkit.sim.fees import FeeModel
from mmkit.sim.latency import Action, ConstantLatency, LatencyModel
from mmkit.sim.venue_accounts import Accounts, VenueOrder, exact_subtract
from mmkit.sim.venue_checks import RuleChecks
from mmkit.sim.venue_plumbing import _with_recv, event_stamper, is_ack_of, is_replace_of

__all__ = ["MAKER_OWNER", "OUR_OWNER", "TAKER_OWNER", "SimulatedVenue", "VenueOrder", "event_stamper", "instrument_of"]

#: Owner tag of our own orders inside the matching engine.
OUR_OWNER = "us"
MAKER_OWNER = "maker:sim"
TAKER_OWNER = "taker:sim"

#: Looked up once: an enum member access goes through the enum metaclass, and every order action asks.
_PLACE, _CANCEL, _REPLACE, _QUERY = Action.PLACE, Action.CANCEL, Action.REPLACE, Action.QUERY
_LIMIT = OrderType.LIMIT
_NEW, _PARTIALLY_FILLED, _CANCELED = VenueOrderStatus.NEW, VenueOrderStatus.PARTIALLY_FILLED, VenueOrderStatus.CANCELED


class SimulatedVenue(Accounts, RuleChecks):
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
        self.latency = latency or ConstantLatency()
        self.fees = fees or FeeModel(rules.fees)
        self._oid_prefix = order_id_prefix
        self._connected = False
        self._oid_seq = itertools.count(1)
        self._init_plumbing(hold_events_while_disconnected)
        self._init_accounts(initial_balances)
        self._init_checks(rules)
        self._book_subs: set[str] = set()
        self._trade_subs: set[str] = set()
        self._log = logger.bind(venue=rules.venue)

    # -- Connector: identity and session --------------------------------------

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
            self._release(rec)

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
        # ``_send`` spelled out (a call per order).
        entry = self._entry_const
        arrival = now + (self._latency.entry_ns(_PLACE, now) if entry is None else entry)
        heappush(self._to_venue, (arrival, next(self._seq), self._venue_place, order))

    def cancel(self, client_id: str, symbol: str) -> None:
        now = self._now()
        if not self._connected:
            self._local(
                OrderCancelRejected(self.venue, client_id, RejectReason.NOT_CONNECTED, "not connected", now, now)
            )
            return
        # ``_send`` spelled out (a call per cancel).
        entry = self._entry_const
        arrival = now + (self._latency.entry_ns(_CANCEL, now) if entry is None else entry)
        heappush(self._to_venue, (arrival, next(self._seq), self._venue_cancel, client_id))

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
        self._send(_REPLACE, self._venue_replace, request, now)

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
        self._send(_CANCEL, self._venue_cancel_all, symbol, now)

    def request_order_status(self, client_id: str, symbol: str) -> None:
        now = self._now()
        if not self._connected:
            self._local(OrderQueryFailed(self.venue, client_id, "not connected", now))
            return
        self._send(_QUERY, self._venue_query, client_id, now)

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

    def _venue_place(self, order: OrderRequest, ts: int) -> None:
        problem = self._check_place(order, ts)
        if problem is not None:
            self._place_reject(order.client_id, problem, ts)
            return
        client_id = order.client_id
        limit = order.order_type is _LIMIT
        rec = VenueOrder(
            client_id, f"{self._oid_prefix}{next(self._oid_seq)}", order.symbol, order.side,
            order.price if limit else None, order.qty, order.post_only, order.tif, ts,
        )
        self._orders[client_id] = rec
        self._open[client_id] = rec
        self._open_commitment(rec)
        # ``_visible`` + ``_push`` spelled out (two calls per order; tests/unit/sim/test_venue_fast_paths.py).
        response = self._response_const
        visible = ts + (self._latency.response_ns(_PLACE, ts) if response is None else response)
        last = self._last_visible
        self._last_visible = visible = visible if visible > last else last
        heappush(self._to_us, (visible, next(self._seq), "order",
                               OrderAccepted(self._venue_name, client_id, rec.venue_order_id, ts, visible)))
        entered = self._enter(rec, ts)
        if entered is not None:
            # Not live after all (e.g. post-only would cross): replace the ack we queued with a reject.
            self._orders.pop(client_id, None)
            self._open.pop(client_id, None)
            self._release(rec)
            self._drop_queued(is_ack_of(client_id))
            self._place_reject(client_id, entered, ts)

    def _place_reject(self, client_id: str, problem: tuple[RejectReason, str], ts: int) -> None:
        visible = self._visible(_PLACE, ts)
        self._push(visible, OrderRejected(self.venue, client_id, problem[0], problem[1], ts, visible))

    def _venue_cancel(self, client_id: str, ts: int) -> None:
        # Without rate limits _rate_ok has nothing to count or refuse (as in _check_place).
        if self._rate_windows and not self._rate_ok(ts):
            self._cancel_reject(client_id, RejectReason.RATE_LIMIT, "rate limit exceeded", ts)
            return
        rec = self._orders.get(client_id)
        # ``status.is_open`` spelled out (a property call per cancel).
        if rec is None or (rec.status is not _NEW and rec.status is not _PARTIALLY_FILLED):
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
        """Cancel an open order of ours at the venue (every caller checked it is open: ``leaves`` spelled out)."""
        leaves = rec.qty - rec.filled
        self._remove_resting(rec, ts)
        rec.status = _CANCELED
        self._open.pop(rec.client_id, None)  # closed: out of the open index now (not at the next fill's pass)
        commitment = rec.commitment
        if commitment:  # ``_release`` spelled out (a call per cancel)
            totals = self._commitments
            asset = rec.commit_asset
            assert asset is not None
            totals[asset] = exact_subtract(totals[asset], commitment)
            rec.commitment = ZERO
        # ``_visible`` + ``_push`` spelled out, as in ``_venue_place``.
        response = self._response_const
        visible = ts + (self._latency.response_ns(_CANCEL, ts) if response is None else response)
        last = self._last_visible
        self._last_visible = visible = visible if visible > last else last
        heappush(self._to_us, (visible, next(self._seq), "order",
                               OrderCanceled(self._venue_name, rec.client_id, ts, visible, leaves)))

    def _cancel_reject(
        self, client_id: str, reason: RejectReason, text: str, ts: int, new_client_id: str | None = None
    ) -> None:
        is_replace = new_client_id is not None
        visible = self._visible(_REPLACE if is_replace else _CANCEL, ts)
        self._push(
            visible,
            OrderCancelRejected(
                self.venue, client_id, reason, text, ts, visible, is_replace=is_replace, new_client_id=new_client_id
            ),
        )

    def _venue_replace(self, req: ReplaceRequest, ts: int) -> None:
        def reject(reason: RejectReason, text: str) -> None:
            self._cancel_reject(req.orig_client_id, reason, text, ts, new_client_id=req.client_id)

        problem = self._check_replace(req, ts)
        if problem is not None:
            reject(*problem)
            return
        old = self._orders[req.orig_client_id]
        # ReplaceRequest.qty is the new *open* quantity: the replacement starts unfilled and the
        # original keeps the fills it had (mmkit.model.ReplaceRequest).
        new = VenueOrder(
            req.client_id, old.venue_order_id, old.symbol, old.side, req.price, req.qty, old.post_only, old.tif, ts,
        )
        # The replacement must be known before the book acts: an immediate execution fills ``new``.
        self._orders[new.client_id] = new
        self._open[new.client_id] = new
        self._open_commitment(new)
        old_status = old.status
        old.status = VenueOrderStatus.CANCELED
        self._release(old)
        visible = self._visible(_REPLACE, ts)
        self._push(
            visible,
            OrderReplaced(
                self.venue, new.client_id, old.client_id, new.venue_order_id, req.price, req.qty, ts, visible
            ),
        )
        problem = self._replace_resting(old, new, ts)
        if problem is not None:
            del self._orders[new.client_id]
            self._release(new)
            old.status = old_status
            self._recommit(old)
            # ``old`` is open again; the lazy index may have dropped it meanwhile: rebuild it in order.
            self._open = {cid: r for cid, r in self._orders.items() if r.status.is_open}
            self._drop_queued(is_replace_of(new.client_id))
            reject(*problem)

    def _venue_query(self, client_id: str, ts: int) -> None:
        rec = self._orders.get(client_id)
        if rec is None:
            visible = self._visible(_QUERY, ts)
            self._push(visible, OrderNotFound(self.venue, client_id, visible))
        else:
            report = self._report(rec, ts)
            visible = self._visible(_QUERY, ts)
            self._push(visible, attrs.evolve(report, ts_recv=visible))

    # -- helpers ---------------------------------------------------------------

    def _require_connected(self) -> None:
        if not self._connected:
            raise NotConnectedError(f"{self.venue} is not connected")
        self.advance(self._now())


def instrument_of(venue: SimulatedVenue, symbol: str) -> Instrument:
    """Convenience for drivers and tests."""
    return venue.rules.instrument(symbol)
