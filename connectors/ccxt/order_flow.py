"""Order flow of the ccxt connector: submit tasks, and the venue's answers -> events.

``place``/``cancel`` spawn a task that calls ccxt's REST method; the answer
becomes OrderAccepted / OrderRejected / OrderCanceled / OrderCancelRejected.
Fills come from the venue's trades (``_book_trades``), read when the polling
(:mod:`connectors.ccxt.polling`) or a private stream sees an order's filled
quantity move.

The venue's ``filled`` on an order is also set against the trades this
connector passed on for it, counted *before* the request that read it was
sent (every such trade happened before the venue answered): an answer below
that count goes to the engine as an OrderStatusReport, whose stream compares
it with the ledger and halts (mmkit.stream, "ledger ahead of venue"). An
answer below the trades passed on *while it was in flight* only predates
them; a status query treats it as "could not ask" and asks again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from decimal import Decimal
from typing import Any

import attrs

from connectors.ccxt.answers import (
    MalformedAnswer,
    MalformedAnswers,
    as_malformed,
    cancel_answer,
    order_answer,
    parse_failed,
    trade_on_other_market,
    venue_error_in,
)
from connectors.ccxt.convert import _STATUS, _dec, _Tracked
from connectors.ccxt.errors import ClassifiedError, ErrorKind, ccxt_exc, classify
from connectors.ccxt.lookup import kraken_order_by_client_id
from connectors.ccxt.profiles import ClientIdLookup
from connectors.ccxt.trade_history import TradeHistoryMixin
from mmkit.connector import (
    NotConnectedError,
    OrderNotFoundError,
    TransientVenueError,
)
from mmkit.model import (
    NS_PER_MS,
    Fill,
    Liquidity,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderExpired,
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
    VenueOrderStatus,
)

#: Pages of a paged trade history (Kraken: 50 trades each, Gemini 500) one trade sync reads at most
#: (the venue counts calls).
TRADE_SYNC_MAX_PAGES = 4


class OrderFlowMixin(TradeHistoryMixin):
    """Order tasks, the translation of the venue's order state into events, and the poller."""

    #: Venue trades of our orders that did not parse (each logged at ERROR once, never booked as they were).
    malformed_trades: int
    _malformed_seen: set[str]
    #: Answers that were no answer (a proxy's page, a cut body, another order's answer): answers.py.
    answers: MalformedAnswers
    #: Trades whose fee the venue charged in an asset of neither side of the market.
    foreign_fee_currency: int

    @property
    def malformed_answers(self) -> int:
        return self.answers.count

    # -- order tasks ------------------------------------------------------

    async def fetch_order_status(self, client_id: str, symbol: str) -> OrderStatusReport:
        if not self._connected:
            raise NotConnectedError(f"{self.venue}: not connected")
        tracked = self._orders.get(client_id)
        booked_before = tracked.filled if tracked is not None else None
        try:
            raw = await self._fetch_raw_order(client_id, symbol, tracked)
        except Exception as exc:
            err = classify(exc)
            if err.definitive and err.reason is RejectReason.UNKNOWN_ORDER:
                raise OrderNotFoundError(f"{self.venue}: {client_id}: {err.message}") from exc
            if isinstance(exc, ccxt_exc.ExchangeError) and any(t in str(exc) for t in self._profile.not_found_texts):
                # The venue's own words for an order id it does not know: definitive for a status query.
                raise OrderNotFoundError(f"{self.venue}: {client_id}: {err.message}") from exc
            raise TransientVenueError(f"{self.venue}: {client_id}: {err.message}") from exc
        if (tracked is not None and booked_before is not None and raw.get("filled") is not None
                and booked_before <= _dec(raw["filled"]) < tracked.filled):
            # Trades of this order were passed on while the question was out: the answer predates them and
            # would read as "the venue has less filled than the ledger". Not an answer; asked again later.
            raise TransientVenueError(
                f"{self.venue}: {client_id}: the venue's answer ({_dec(raw['filled'])} filled) predates trades"
                f" passed on meanwhile ({tracked.filled}); asking again"
            )
        if tracked is None:
            tracked = self._adopt(client_id, symbol, raw)
        if tracked is not None:
            self._apply_order(tracked, raw)
            if _dec(raw.get("filled")) > tracked.filled:
                # The trades behind the venue's figure are being read (``_apply_order`` asked): let them reach
                # the engine first. A report above what was passed on would book the difference as missing
                # (a synthetic fill and a halt), and the trades, arriving next, a second time.
                await self._trades_read(self._config.trade_wait_s)
        return self._report(client_id, symbol, raw)

    def _adopt(self, client_id: str, symbol: str, raw: Any) -> _Tracked | None:
        """Track an order this process did not place (found after a restart), so it can be cancelled.

        Its filled quantity so far is the baseline: fills before now are restart
        recovery's to book (from the venue's fill history), not ours to emit.
        """
        if not client_id or client_id in self._orders or raw.get("status") != "open" or raw.get("price") is None:
            return None
        request = OrderRequest(
            client_id=client_id, venue=self.venue, symbol=symbol,
            side=Side.BUY if raw.get("side") == "buy" else Side.SELL,
            qty=_dec(raw.get("amount")), price=_dec(raw.get("price")), post_only=bool(raw.get("postOnly")),
        )
        tracked = _Tracked(request, venue_order_id=str(raw.get("id")), filled=_dec(raw.get("filled")),
                           sent_ns=time.time_ns(), last_raw=raw)
        self._orders[client_id] = tracked
        self._log.bind(client_id=client_id).info("adopted venue order {}", tracked.venue_order_id)
        return tracked

    def _precheck(self, order: OrderRequest, now: int) -> tuple[RejectReason, str] | None:
        """Refuse locally what would certainly fail or must not be sent (nothing leaves the process)."""
        if not self._connected:
            return RejectReason.NOT_CONNECTED, "not connected"
        if order.client_id in self._orders:
            return RejectReason.DUPLICATE_CLIENT_ID, "client id already used"
        if not self._profile.client_id_ok(order.client_id):
            rule = self._profile.client_id_pattern
            return RejectReason.INVALID_MESSAGE, f"client id breaks {self.venue}'s rule {rule}"
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
        tracked.sent_ns = time.time_ns()
        kind = "market" if order.order_type is OrderType.MARKET else "limit"
        params: dict[str, Any] = {self._profile.client_id_param: order.client_id}
        if order.post_only:
            params["postOnly"] = True
        if order.tif.value in ("IOC", "FOK"):
            params["timeInForce"] = order.tif.value
        if kind == "market" and order.side is Side.BUY and self._profile.market_buy_in_base:
            params["order_configuration"] = {"market_market_ioc": {"base_size": str(order.qty)}}
        try:
            raw = await self._rest(
                self._exchange.create_order,
                self._profile.ccxt_symbol(order.symbol),
                kind,
                "buy" if order.side is Side.BUY else "sell",
                str(order.qty),
                None if order.price is None else str(order.price),
                params,
            )
            order_answer(raw, "create_order", client_id=order.client_id)
            if any(t.venue_order_id == str(raw["id"]) for t in self._orders.values()):
                raise MalformedAnswer(f"create_order: the answer names order {raw['id']}, already another of ours")
        except Exception as caught:
            exc = as_malformed(caught, "create_order")
            if isinstance(exc, MalformedAnswer):
                self.answers.note(self._log, exc, order.client_id)
            self._on_place_error(tracked, classify(exc, self._profile.reject_texts))
            return
        self._order_backoff.reset()
        now = self._now()
        tracked.venue_order_id = str(raw["id"])
        refusal = self._refusal_in(raw)
        if refusal is not None and not _dec(raw.get("filled")):
            # Gemini answers a maker-or-cancel order that would take with the order, already cancelled.
            tracked.open = False
            self._log.bind(client_id=order.client_id).info("refused by the venue: {}", refusal.value)
            self._put(OrderRejected(self.venue, order.client_id, refusal, "refused by the venue", now, now))
            return
        self._log.bind(client_id=order.client_id).info("accepted as {}", tracked.venue_order_id)
        self._put(OrderAccepted(self.venue, order.client_id, tracked.venue_order_id, now, now))
        if raw.get("status") or raw.get("filled"):
            self._apply_order(tracked, raw)

    def _on_place_error(self, tracked: _Tracked, err: ClassifiedError) -> None:
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
        booked_before = tracked.filled
        try:
            raw = cancel_answer(await self._rest(
                self._exchange.cancel_order, tracked.venue_order_id, self._profile.ccxt_symbol(order.symbol)),
                "cancel_order")
            if raw.get("id") is not None:  # the venue answered with the order (Gemini): it must be this one, sane
                order_answer(raw, "cancel_order", venue_order_id=tracked.venue_order_id)
        except Exception as caught:
            exc = as_malformed(caught, "cancel_order")
            err = classify(exc, self._profile.reject_texts)
            now = self._now()
            if isinstance(exc, MalformedAnswer):
                # The cancel may or may not have reached the venue: the order stays open here, the poller reads it.
                self.answers.note(self._log, exc, order.client_id)
            self._put(OrderCancelRejected(self.venue, order.client_id, err.reason, err.message, now, now))
            return
        if tracked.open:
            # A fill may have raced the cancel: take the venue's final state if it came back.
            if isinstance(raw, dict) and raw.get("filled") is not None:
                self._apply_order(tracked, raw, booked_before)
                if _dec(raw.get("filled")) > tracked.filled:
                    return  # its trades are being read; the cancel is reported after them, with true leaves
            if tracked.open:
                tracked.open = False
                now = self._now()
                self._put(OrderCanceled(self.venue, order.client_id, now, now, order.qty - tracked.filled))

    async def _replace(self, tracked: _Tracked, request: ReplaceRequest) -> None:
        order = tracked.request
        total = request.qty + tracked.filled
        params: dict[str, Any] = {}
        if self._profile.replace_post_only_param and order.post_only:
            params["postOnly"] = True
        try:
            await self._rest(
                self._exchange.edit_order, tracked.venue_order_id, self._profile.ccxt_symbol(order.symbol), "limit",
                "buy" if order.side is Side.BUY else "sell", str(total), str(request.price), params,
            )
        except Exception as exc:
            err = classify(exc, self._profile.reject_texts)
            now = self._now()
            if err.kind is ErrorKind.BACKOFF:
                delay = self._order_backoff.next_delay()
                self._order_backoff_until_ns = now + int(delay * 1e9)
            self._put(OrderCancelRejected(self.venue, order.client_id, err.reason, err.message, now, now,
                                          is_replace=True, new_client_id=request.client_id))
            return
        now = self._now()
        # The venue order lives on under the new client id, with the fills it already had.
        tracked.open = False
        self._orders[request.client_id] = _Tracked(
            attrs.evolve(order, client_id=request.client_id, price=request.price, qty=total),
            venue_order_id=tracked.venue_order_id, filled=tracked.filled, notional=tracked.notional,
            fee_paid=tracked.fee_paid, sent_ns=tracked.sent_ns, last_raw=tracked.last_raw,
        )
        self._log.bind(client_id=request.client_id).info("replaced {} in place", order.client_id)
        self._put(OrderReplaced(self.venue, request.client_id, order.client_id, str(tracked.venue_order_id),
                                request.price, request.qty, now, now))

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
        """The venue's answer about one order, checked (answers.py): a non-answer raises MalformedAnswer."""
        try:
            return await self._fetch_raw_order_unchecked(client_id, symbol, tracked)
        except MalformedAnswer as exc:
            self.answers.note(self._log, exc, client_id)
            raise
        except (ArithmeticError, KeyError, TypeError, ValueError) as exc:  # ccxt's parse choked on the body
            malformed = parse_failed(exc, "fetch_order")
            self.answers.note(self._log, malformed, client_id)
            raise malformed from exc
        except ccxt_exc.OrderNotFound as exc:
            if self._exchange.id == "kraken" and not venue_error_in(self._exchange.last_json_response):
                # ccxt's own "could not find order id": the body held no order and no venue error.
                malformed = MalformedAnswer(f"fetch_order: {exc}; the body was no venue answer")
                self.answers.note(self._log, malformed, client_id)
                raise malformed from exc
            raise

    async def _fetch_raw_order_unchecked(self, client_id: str, symbol: str, tracked: _Tracked | None) -> Any:
        ccxt_symbol = self._profile.ccxt_symbol(symbol)
        if tracked is not None and tracked.venue_order_id is not None:
            raw = await self._rest(self._exchange.fetch_order, tracked.venue_order_id, ccxt_symbol)
            # No client id check: after a replace in place the venue order keeps its first client id.
            return order_answer(raw, "fetch_order", venue_order_id=tracked.venue_order_id)
        if self._profile.client_id_lookup is ClientIdLookup.SCAN:
            for raw in await self._rest(self._exchange.fetch_orders, ccxt_symbol):
                if isinstance(raw, dict) and raw.get("clientOrderId") == client_id:
                    return order_answer(raw, "fetch_orders", client_id=client_id)
            raise ccxt_exc.OrderNotFound(f"{client_id} is not among {self.venue}'s orders")
        if self._exchange.id == "kraken":  # ccxt's fetchOrder cannot look up by client id (lookup.py)
            raw = await kraken_order_by_client_id(self._exchange, self._rest, client_id)
        else:
            raw = await self._rest(
                self._exchange.fetch_order, None, ccxt_symbol, {self._profile.client_id_param: client_id})
        return order_answer(raw, "fetch_order", client_id=client_id)

    def _apply_order(self, tracked: _Tracked, raw: Any, booked_before: Decimal | None = None) -> None:
        """Turn the venue's cumulative view of an order into fills (from its trades) and a terminal event.

        Fills are booked from the venue's trade history, one Fill per venue
        trade id, never from the difference of two order snapshots: the same
        trade is then the same fill at run time and in restart recovery
        (:meth:`fetch_fills`), so it can never be counted twice. A terminal
        state waits until the trades that explain its filled quantity are in.

        ``booked_before``: what was passed on for the order when the request
        that read ``raw`` was sent (None: ``raw`` is not a fresh answer). A
        venue figure below it is reported to the engine, once per figure.
        """
        if tracked.venue_order_id is None and raw.get("id"):
            tracked.venue_order_id = str(raw["id"])
        if tracked.unknown:
            tracked.unknown = False
            now = self._now()
            self._put(OrderAccepted(self.venue, tracked.request.client_id, str(tracked.venue_order_id), now, now))
        tracked.last_raw = raw
        self._note_behind(tracked, raw)
        if booked_before is not None and raw.get("filled") is not None:
            venue_filled = _dec(raw["filled"])
            if venue_filled < booked_before and venue_filled != tracked.reported_short:
                tracked.reported_short = venue_filled
                self._log.bind(client_id=tracked.request.client_id).error(
                    "venue counts {} filled on order {}, trades passed on: {}",
                    venue_filled, tracked.venue_order_id, booked_before,
                )
                self.ledger_reports += 1
                self._put(self._report(tracked.request.client_id, tracked.request.symbol, raw))
        if _dec(raw.get("filled")) > tracked.filled:
            self._want_trades()
            return
        status = raw.get("status")
        if not tracked.open or status in (None, "open"):
            return
        now = self._now()
        client_id = tracked.request.client_id
        tracked.open = False
        if status in ("canceled", "cancelled"):
            refusal = self._refusal_in(raw)
            if refusal is not None:
                self._log.bind(client_id=client_id).info("cancelled by the venue: {}", refusal.value)
            self._put(OrderCanceled(self.venue, client_id, now, now, tracked.request.qty - tracked.filled))
        elif status == "expired":
            self._put(OrderExpired(self.venue, client_id, now, now))
        elif status == "rejected":
            self._put(OrderRejected(self.venue, client_id, RejectReason.OTHER, "rejected by venue", now, now))

    def _note_behind(self, tracked: _Tracked, raw: Any) -> None:
        """Keep since when the venue counts more filled than the trades passed on, and when a finished order agreed."""
        if raw.get("filled") is None:
            return  # no figure (a websocket order): nothing to compare
        venue_filled = _dec(raw["filled"])
        if venue_filled > tracked.filled:
            if tracked.behind_since_ns is None:
                tracked.behind_since_ns = time.time_ns()
            return
        tracked.behind_since_ns = None
        if venue_filled == tracked.filled and raw.get("status") not in (None, "open"):
            tracked.verified_filled = tracked.filled

    def _refusal_in(self, raw: Any) -> RejectReason | None:
        """A post-only refusal carried by a cancelled order's reason (Gemini, Kraken)."""
        if raw.get("status") not in ("canceled", "cancelled"):
            return None
        info = raw.get("info") or {}
        reason = info.get("reason") if isinstance(info, dict) else None
        return self._profile.reject_reason_in(str(reason)) if reason else None

    def _want_trades(self) -> None:
        """Ask for a trade sync (coalesced: one runs at a time, and runs again if asked meanwhile)."""
        self._trades_wanted = True
        task = self._trade_sync
        if task is None or task.done():
            self._trade_sync = asyncio.get_running_loop().create_task(self._sync_trades())
            self._side_tasks.add(self._trade_sync)
            self._trade_sync.add_done_callback(self._side_tasks.discard)

    async def _trades_read(self, timeout_s: float) -> None:
        """Wait (at most ``timeout_s``) for the trade sync under way; what it could not find stays unbooked."""
        task = self._trade_sync
        if task is None or task.done():
            return
        with contextlib.suppress(Exception):  # a timeout or a failed read: the caller reports what it has
            await asyncio.wait_for(asyncio.shield(task), timeout_s)

    async def _sync_trades(self) -> None:
        """Book the venue trades of our orders whose filled quantity moved, one Fill per trade id."""
        while self._trades_wanted and self._running:
            self._trades_wanted = False
            behind = [
                t for t in self._orders.values()
                if t.venue_order_id and t.last_raw is not None and _dec(t.last_raw.get("filled")) > t.filled
            ]
            for symbol in sorted({t.request.symbol for t in behind}):
                group = [t for t in behind if t.request.symbol == symbol]
                since_ms = min(t.sent_ns for t in group) // NS_PER_MS - 60_000
                try:
                    trades, whole = await self._read_trades(symbol, since_ms, TRADE_SYNC_MAX_PAGES)
                except Exception as exc:
                    err = classify(exc)
                    self._log.warning("trade history unavailable ({}); fills wait for the next poll", err.message)
                    continue
                if not whole:
                    self._log.warning("trade history of {} since {}: more than {} pages; the rest waits for the "
                                      "next poll or the ledger check's sweep", symbol, since_ms, TRADE_SYNC_MAX_PAGES)
                self._book_trades(trades, symbol)
                for tracked in group:
                    if _dec(tracked.last_raw.get("filled")) <= tracked.filled:
                        self._apply_order(tracked, tracked.last_raw)

    def _book_trades(self, trades: list[Any], symbol: str) -> list[Fill]:
        """Pass on each trade of one of our orders not passed on before (by venue trade id); returns those."""
        # The latest client id on a venue order wins: after a replace, the order lives on under the new id.
        by_venue_id = {t.venue_order_id: t for t in self._orders.values() if t.venue_order_id}
        booked = []
        for trade in sorted(trades, key=lambda t: t.get("timestamp") or 0):
            trade_id = str(trade.get("id"))
            tracked = by_venue_id.get(str(trade.get("order") or ""))
            if tracked is None or trade_id in self._seen_trades:
                continue
            try:  # parsed before it is marked seen: a malformed trade stays unbooked, and a corrected one is booked
                elsewhere = trade_on_other_market(trade, self._profile.ccxt_symbol(tracked.request.symbol))
                if elsewhere is None and symbol != tracked.request.symbol:
                    elsewhere = MalformedAnswer(f"trade read as {symbol}, its order is on {tracked.request.symbol}")
                if elsewhere is not None:
                    raise elsewhere
                fill = self._fill_from_trade(trade, symbol, tracked.request.client_id, tracked.request)
                if not (fill.qty.is_finite() and fill.price.is_finite() and fill.fee.is_finite()
                        and fill.qty > 0 and fill.price > 0):
                    raise ValueError(f"price {fill.price}, qty {fill.qty}, fee {fill.fee}")
            except (ArithmeticError, KeyError, TypeError, ValueError) as exc:
                self._malformed_trade(trade_id, tracked, exc)
                continue
            self._seen_trades.add(trade_id)
            self._check_fee_currency(fill)
            tracked.filled += fill.qty
            tracked.notional += fill.notional
            tracked.fee_paid += fill.fee
            self._put(fill)
            booked.append(fill)
        return booked

    def _check_fee_currency(self, fill: Fill) -> None:
        """A fee charged in an asset of neither side of the market: booked as charged, said at ERROR, counted.

        The trade is real (not booking it would lose a position); the fee is kept as the venue
        charged it, but the PnL takes a fee in any other asset as quote (mmkit/risk/pnl.py), so
        the figure is flagged where it enters.
        """
        instrument = self._rules.instrument(fill.symbol)
        if not fill.fee or fill.fee_currency.upper() in (instrument.base.upper(), instrument.quote.upper()):
            return
        self.foreign_fee_currency += 1
        self._log.bind(client_id=fill.client_id).error(
            "fee of trade {} charged in {} ({}), neither {} nor {}: booked as charged, the PnL counts it as {} "
            "({} so far)", fill.trade_id, fill.fee_currency, fill.fee, instrument.base, instrument.quote,
            instrument.quote, self.foreign_fee_currency)

    def _malformed_trade(self, trade_id: str, tracked: _Tracked, exc: BaseException) -> None:
        """A venue trade of one of our orders that does not parse: logged at ERROR and counted once per trade id.

        Not booked and not marked seen: the venue's corrected answer (the next sweep or
        trade sync) books it; until then the order's venue filled runs ahead of its
        trades, which the ledger check reports after its grace ("fills missing").
        """
        if trade_id in self._malformed_seen:
            return
        self._malformed_seen.add(trade_id)
        self.malformed_trades += 1
        self._log.bind(client_id=tracked.request.client_id).error(
            "malformed venue trade {} on order {} not booked ({}: {}); {} malformed so far",
            trade_id, tracked.venue_order_id, type(exc).__name__, exc, self.malformed_trades,
        )

    def _fill_from_trade(self, trade: Any, symbol: str, client_id: str, order: OrderRequest | None) -> Fill:
        """One venue trade as a Fill; the fee is the venue's, else the fee schedule's."""
        price, qty = _dec(trade["price"]), _dec(trade["amount"])
        taker_or_maker = trade.get("takerOrMaker")
        if taker_or_maker is None and order is not None:
            maker = order.order_type is OrderType.LIMIT and order.post_only
        else:
            maker = taker_or_maker == "maker"
        fee_info = trade.get("fee") or {}
        cost = fee_info.get("cost")
        fee = _dec(cost) if cost is not None else self._rules.fees.fee(price * qty, maker)
        return Fill(
            venue=self.venue,
            trade_id=str(trade["id"]),
            client_id=client_id,
            symbol=symbol,
            side=Side.BUY if trade.get("side") == "buy" else Side.SELL,
            price=price,
            qty=qty,
            fee=fee,
            fee_currency=str(fee_info.get("currency") or self._rules.instrument(symbol).quote),
            liquidity=Liquidity.MAKER if maker else Liquidity.TAKER,
            ts_event=int(trade.get("timestamp") or 0) * NS_PER_MS or self._now(),
            ts_recv=self._now(),
            venue_order_id=str(trade.get("order") or ""),
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
        found = ""
        for client_id, tracked in self._orders.items():
            if tracked.venue_order_id == venue_id:
                found = client_id  # the latest one: a replace keeps the venue id under a new client id
        return found or str(raw.get("clientOrderId") or "")
