"""Order flow of the ccxt connector: submit tasks, venue answers -> events, and polling.

``place``/``cancel`` spawn a task that calls ccxt's REST method; the answer
becomes OrderAccepted / OrderRejected / OrderCanceled / OrderCancelRejected.
Fills come from ``watch_orders`` when enabled and from REST polling of our
open orders always (the fallback that cannot hang).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import ccxt

from connectors.ccxt.base import CcxtBase
from connectors.ccxt.convert import _STATUS, _dec, _Tracked
from connectors.ccxt.errors import ClassifiedError, ErrorKind, classify
from connectors.ccxt.watchdog import Backoff
from mmkit.connector import (
    NotConnectedError,
    OrderNotFoundError,
    TransientVenueError,
)
from mmkit.model import (
    NS_PER_MS,
    ConnectionStatus,
    Fill,
    Liquidity,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderExpired,
    OrderNotFound,
    OrderQueryFailed,
    OrderRejected,
    OrderRequest,
    OrderStatusReport,
    OrderType,
    RejectReason,
    Side,
    VenueOrderStatus,
)


class OrderFlowMixin(CcxtBase):
    """Order tasks, the translation of the venue's order state into events, and the poller."""

    # -- order tasks ------------------------------------------------------

    async def fetch_order_status(self, client_id: str, symbol: str) -> OrderStatusReport:
        if not self._connected:
            raise NotConnectedError(f"{self.venue}: not connected")
        tracked = self._orders.get(client_id)
        try:
            raw = await self._fetch_raw_order(client_id, symbol, tracked)
        except Exception as exc:
            err = classify(exc)
            self._note(err)
            if err.definitive and err.reason is RejectReason.UNKNOWN_ORDER:
                raise OrderNotFoundError(f"{self.venue}: {client_id}: {err.message}") from exc
            if isinstance(exc, ccxt.InvalidOrder) and ("Unknown order" in str(exc) or "Invalid order" in str(exc)):
                # Kraken's answer for an order id it does not know: definitive for a status query.
                raise OrderNotFoundError(f"{self.venue}: {client_id}: {err.message}") from exc
            raise TransientVenueError(f"{self.venue}: {client_id}: {err.message}") from exc
        self._note(None)
        if tracked is not None:
            self._apply_order(tracked, raw)
        return self._report(client_id, symbol, raw)

    def _precheck(self, order: OrderRequest, now: int) -> tuple[RejectReason, str] | None:
        """Refuse locally what would certainly fail or must not be sent (nothing leaves the process)."""
        if not self._connected:
            return RejectReason.NOT_CONNECTED, "not connected"
        if order.client_id in self._orders:
            return RejectReason.DUPLICATE_CLIENT_ID, "client id already used"
        if now < self._order_backoff_until_ns:
            return RejectReason.RATE_LIMIT, "backing off after a rate-limit answer"
        kind = "market" if order.order_type is OrderType.MARKET else "limit"
        if kind not in self._profile.order_types:
            return RejectReason.OTHER, f"{self.venue} has no {kind} orders"
        if order.symbol not in self._profile.symbols:
            return RejectReason.INVALID_MESSAGE, f"unknown symbol {order.symbol}"
        instrument = self._rules.instrument(order.symbol)
        if order.price is not None:
            reason = instrument.check_order(order.price, order.qty)
            if reason is not None:
                return reason, f"refused locally by {self.venue} rules"
        elif order.qty <= 0 or order.qty < instrument.min_qty:
            return RejectReason.INVALID_QTY, "market order size under the venue minimum"
        return None

    async def _place(self, order: OrderRequest) -> None:
        tracked = self._orders[order.client_id]
        kind = "market" if order.order_type is OrderType.MARKET else "limit"
        params: dict[str, Any] = {self._profile.client_id_param: order.client_id}
        if order.post_only:
            params["postOnly"] = True
        if order.tif.value in ("IOC", "FOK"):
            params["timeInForce"] = order.tif.value
        try:
            raw = await self._exchange.create_order(
                self._profile.ccxt_symbol(order.symbol),
                kind,
                "buy" if order.side is Side.BUY else "sell",
                str(order.qty),
                None if order.price is None else str(order.price),
                params,
            )
        except Exception as exc:
            self._on_place_error(tracked, classify(exc))
            return
        self._order_backoff.reset()
        self._note(None)
        now = self._now()
        tracked.venue_order_id = str(raw["id"])
        self._log.bind(client_id=order.client_id).info("accepted as {}", tracked.venue_order_id)
        self._put(OrderAccepted(self.venue, order.client_id, tracked.venue_order_id, now, now))
        if raw.get("status") or raw.get("filled"):
            self._apply_order(tracked, raw)

    def _on_place_error(self, tracked: _Tracked, err: ClassifiedError) -> None:
        self._note(err)
        now = self._now()
        client_id = tracked.request.client_id
        log = self._log.bind(client_id=client_id)
        if err.kind is ErrorKind.BACKOFF:
            # The venue answered "too fast": the order was refused, and we must slow down.
            delay = self._order_backoff.next_delay()
            self._order_backoff_until_ns = now + int(delay * 1e9)
            log.warning(f"rate limited, backing off {delay:.2f}s: {err.message}")
        if err.kind is ErrorKind.TRANSIENT:
            # No answer: the order may be live. Keep it and let the poller find out.
            tracked.unknown = True
            log.warning(f"create outcome unknown ({err.message}); will query")
            self._put(OrderQueryFailed(self.venue, client_id, f"create outcome unknown: {err.message}", now))
            return
        tracked.open = False
        log.info(f"rejected: {err.message}")
        self._put(OrderRejected(self.venue, client_id, err.reason, err.message, now, now))

    async def _cancel(self, tracked: _Tracked) -> None:
        order = tracked.request
        try:
            raw = await self._exchange.cancel_order(tracked.venue_order_id, self._profile.ccxt_symbol(order.symbol))
        except Exception as exc:
            err = classify(exc)
            self._note(err)
            now = self._now()
            self._put(OrderCancelRejected(self.venue, order.client_id, err.reason, err.message, now, now))
            return
        self._note(None)
        if tracked.open:
            # A fill may have raced the cancel: take the venue's final state if it came back.
            if isinstance(raw, dict) and raw.get("filled") is not None:
                self._apply_order(tracked, raw)
            if tracked.open:
                tracked.open = False
                now = self._now()
                self._put(OrderCanceled(self.venue, order.client_id, now, now, order.qty - tracked.filled))

    async def _status_event(self, client_id: str, symbol: str) -> None:
        now = self._now()
        try:
            report = await self.fetch_order_status(client_id, symbol)
        except OrderNotFoundError:
            self._put(OrderNotFound(self.venue, client_id, now))
            return
        except TransientVenueError as exc:
            self._put(OrderQueryFailed(self.venue, client_id, str(exc), now))
            return
        self._put(report)

    async def _fetch_raw_order(self, client_id: str, symbol: str, tracked: _Tracked | None) -> Any:
        ccxt_symbol = self._profile.ccxt_symbol(symbol)
        if tracked is not None and tracked.venue_order_id is not None:
            return await self._exchange.fetch_order(tracked.venue_order_id, ccxt_symbol)
        return await self._exchange.fetch_order(None, ccxt_symbol, {self._profile.client_id_param: client_id})

    def _apply_order(self, tracked: _Tracked, raw: Any) -> None:
        """Turn the venue's cumulative view of an order into fill deltas and a terminal event."""
        if tracked.venue_order_id is None and raw.get("id"):
            tracked.venue_order_id = str(raw["id"])
        if tracked.unknown:
            tracked.unknown = False
            now = self._now()
            self._put(OrderAccepted(self.venue, tracked.request.client_id, str(tracked.venue_order_id), now, now))
        filled = _dec(raw.get("filled"))
        if filled > tracked.filled:
            self._emit_fill_delta(tracked, raw, filled)
        status = raw.get("status")
        if not tracked.open or status in (None, "open"):
            return
        now = self._now()
        client_id = tracked.request.client_id
        tracked.open = False
        if status in ("canceled", "cancelled"):
            self._put(OrderCanceled(self.venue, client_id, now, now, tracked.request.qty - tracked.filled))
        elif status == "expired":
            self._put(OrderExpired(self.venue, client_id, now, now))
        elif status == "rejected":
            self._put(OrderRejected(self.venue, client_id, RejectReason.OTHER, "rejected by venue", now, now))

    def _emit_fill_delta(self, tracked: _Tracked, raw: Any, filled: Decimal) -> None:
        order = tracked.request
        delta = filled - tracked.filled
        average = _dec(raw.get("average") or raw.get("price") or order.price)
        notional = average * filled
        price = (notional - tracked.notional) / delta if tracked.filled else average
        fee_info = raw.get("fee") or {}
        fee_total = _dec(fee_info.get("cost"))
        fee = fee_total - tracked.fee_paid if fee_total else self._estimate_fee(order, price * delta)
        tracked.filled, tracked.notional = filled, notional
        tracked.fee_paid += fee
        now = self._now()
        ts_event = int(raw.get("lastTradeTimestamp") or raw.get("timestamp") or 0) * NS_PER_MS or now
        taker = order.order_type is OrderType.MARKET or raw.get("takerOrMaker") == "taker"
        self._put(
            Fill(
                venue=self.venue,
                # Deterministic and unique per delta: a re-poll of the same state cannot double-book.
                trade_id=f"{tracked.venue_order_id}:{filled.normalize()}",
                client_id=order.client_id,
                symbol=order.symbol,
                side=order.side,
                price=price,
                qty=delta,
                fee=fee,
                fee_currency=str(fee_info.get("currency") or self._rules.instrument(order.symbol).quote),
                liquidity=Liquidity.TAKER if taker else Liquidity.MAKER,
                ts_event=ts_event,
                ts_recv=now,
                venue_order_id=str(tracked.venue_order_id),
            )
        )

    def _estimate_fee(self, order: OrderRequest, notional: Decimal) -> Decimal:
        return self._rules.fees.fee(notional, is_maker=order.order_type is OrderType.LIMIT and order.post_only)

    def _report(self, client_id: str, symbol: str, raw: Any) -> OrderStatusReport:
        now = self._now()
        filled = _dec(raw.get("filled"))
        status = _STATUS.get(str(raw.get("status")), VenueOrderStatus.NEW)
        if status is VenueOrderStatus.NEW and filled > 0:
            status = VenueOrderStatus.PARTIALLY_FILLED
        return OrderStatusReport(
            venue=self.venue,
            client_id=client_id,
            venue_order_id=str(raw.get("id") or ""),
            symbol=symbol,
            side=Side.BUY if raw.get("side") == "buy" else Side.SELL,
            price=None if raw.get("price") is None else _dec(raw["price"]),
            qty=_dec(raw.get("amount")),
            filled_qty=filled,
            status=status,
            ts_event=int(raw.get("timestamp") or 0) * NS_PER_MS,
            ts_recv=now,
        )

    def _client_id_of(self, raw: Any) -> str:
        venue_id = str(raw.get("id") or "")
        for client_id, tracked in self._orders.items():
            if tracked.venue_order_id == venue_id:
                return client_id
        return str(raw.get("clientOrderId") or "")

    # -- feeds ------------------------------------------------------------

    async def _poll_loop(self) -> None:
        """REST polling of our open orders: slow, but it cannot hang silently like a socket."""
        while self._running:
            if not self._connected:
                await self._probe()
            for client_id, tracked in list(self._orders.items()):
                if not tracked.open or (tracked.venue_order_id is None and not tracked.unknown):
                    continue  # still being placed: the create call's answer will tell
                try:
                    raw = await self._fetch_raw_order(client_id, tracked.request.symbol, tracked)
                except Exception as exc:
                    err = classify(exc)
                    self._note(err)
                    self._log.bind(client_id=client_id).debug("poll failed: {}", err.message)
                    if err.kind is ErrorKind.BACKOFF:
                        await asyncio.sleep(self._order_backoff.next_delay())
                    continue
                self._apply_order(tracked, raw)
            await asyncio.sleep(self._config.poll_interval_s)

    async def _probe(self) -> None:
        """While the REST session is down, a cheap private call tells when the venue answers again."""
        try:
            await self._exchange.fetch_balance()
        except Exception as exc:
            self._note(classify(exc))
            return
        self._note(None)

    async def _private_ws_loop(self) -> None:
        """watch_orders as the fast path for fills; gives up after repeated failures (polling remains)."""
        failures = 0
        backoff = Backoff(self._config.backoff_initial_s, self._config.backoff_max_s)
        while self._running and failures < self._config.private_ws_max_failures:
            try:
                orders = await self._exchange.watch_orders()
            except Exception as exc:
                failures += 1
                self._log.warning(
                    "watch_orders failed ({}/{}): {}",
                    failures,
                    self._config.private_ws_max_failures,
                    classify(exc).message,
                )
                await asyncio.sleep(backoff.next_delay())
                continue
            failures = 0
            backoff.reset()
            for raw in orders:
                client_id = self._client_id_of(raw)
                tracked = self._orders.get(client_id)
                if tracked is not None:
                    self._apply_order(tracked, raw)
        if self._running:
            self._put(ConnectionStatus(self.venue, "private-ws", False, "falling back to REST polling", self._now()))

