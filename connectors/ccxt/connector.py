"""CcxtConnector: the mmkit Connector protocol on top of any ccxt.pro exchange.

Why one generic connector: Kraken, Coinbase and Gemini differ in wire format,
but ccxt already normalizes those; what ccxt does *not* give us is the
engine's contract (submit-only order entry whose outcomes arrive as events,
"not found" kept apart from "could not ask", books we can trust). This class
adds exactly that, and the per-venue differences live in
:mod:`connectors.ccxt.profiles` and ``conf/venues/<venue>.yml``.

Data path: one task per subscribed feed awaits ccxt's ``watch_*`` under a
staleness watchdog and turns each update into a normalized event in the
inbox. Book integrity is checked on every raw message, inside ccxt's own
handler (Kraken CRC32, Coinbase sequence_num); a failure marks the book
invalid and tears the socket down so that the venue sends a fresh snapshot.

Order path: ``place``/``cancel`` spawn a task that calls ccxt's REST method;
the answer becomes OrderAccepted / OrderRejected / OrderCanceled /
OrderCancelRejected. Fills come from ``watch_orders`` when enabled and from
REST polling of our open orders always (the fallback that cannot hang).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Coroutine, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import ccxt
from loguru import logger

from connectors.ccxt.checksums import SequenceChecker, decimals_of, kraken_checksum
from connectors.ccxt.errors import ClassifiedError, ErrorKind, classify
from connectors.ccxt.profiles import BookCheck, VenueProfile, profile_for
from connectors.ccxt.watchdog import Backoff, FeedWatchdog
from mmkit.conf import ConfigError, structure
from mmkit.connector import (
    ConnectorContext,
    Inbox,
    NotConnectedError,
    OrderNotFoundError,
    TransientVenueError,
    VenueRules,
)
from mmkit.model import (
    NS_PER_MS,
    ZERO,
    Balance,
    BookSnapshot,
    ConnectionStatus,
    Fill,
    Level,
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
    ReplaceRequest,
    Side,
    Trade,
    VenueEvent,
    VenueOrderStatus,
)


@attrs.frozen(slots=True)
class CcxtConnectorConfig:
    """Timeouts and cadences; tests shrink them, production keeps the defaults."""

    #: A feed that delivered nothing for this long is stale: reported down and resubscribed.
    stale_s: float = 10.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    #: REST polling of our open orders (the fallback that always runs).
    poll_interval_s: float = 2.0
    #: Also use ccxt's watch_orders (private websocket); REST polling stays on as the fallback.
    use_private_ws: bool = False
    #: Private ws failures in a row before we stop trying and rely on polling alone.
    private_ws_max_failures: int = 3
    #: Levels per side put into each BookSnapshot event.
    emit_levels: int = 10


def _dec(value: Any) -> Decimal:
    """ccxt hands numbers over as floats; ``str`` recovers the venue's decimal text."""
    if value is None:
        return ZERO
    if isinstance(value, Decimal):
        return value
    return Decimal(str(value))


def _levels(side: Any, count: int) -> tuple[Level, ...]:
    return tuple((_dec(level[0]), _dec(level[1])) for level in side[:count])


_STATUS = {
    "open": VenueOrderStatus.NEW,
    "closed": VenueOrderStatus.FILLED,
    "canceled": VenueOrderStatus.CANCELED,
    "cancelled": VenueOrderStatus.CANCELED,
    "expired": VenueOrderStatus.EXPIRED,
    "rejected": VenueOrderStatus.REJECTED,
}


@attrs.define(slots=True)
class _Tracked:
    """Our shadow of one order: enough to turn cumulative venue state into fill deltas."""

    request: OrderRequest
    venue_order_id: str | None = None
    filled: Decimal = ZERO
    notional: Decimal = ZERO
    fee_paid: Decimal = ZERO
    open: bool = True
    #: The create call failed without an answer: the order may or may not exist.
    unknown: bool = False


class CcxtConnector:
    """The mmkit Connector for one ccxt.pro exchange instance.

    The exchange instance is injected (built by :func:`build_exchange` or by a
    test pointing it at a local server), so the connector never decides URLs
    or credentials itself.
    """

    def __init__(
        self,
        exchange: Any,
        rules: VenueRules,
        profile: VenueProfile,
        config: CcxtConnectorConfig | None = None,
        now_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._exchange = exchange
        self._rules = rules
        self._profile = profile
        self._config = config or CcxtConnectorConfig()
        self._now = now_ns
        self._inbox = Inbox()
        self._connected = False
        #: Feed and poll loops run while this is set; ``_connected`` is the REST session's health.
        self._running = False
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._book_symbols: list[str] = []
        self._trade_symbols: list[str] = []
        self._orders: dict[str, _Tracked] = {}
        self._book_seq: dict[str, int] = {}
        #: ccxt symbol -> True while a checksum/sequence failure waits for a fresh snapshot.
        self._book_invalid: dict[str, bool] = {}
        self._last_checksum: dict[str, int] = {}
        self._sequences: dict[str, SequenceChecker] = {}
        self._order_backoff = Backoff(self._config.backoff_initial_s, self._config.backoff_max_s)
        self._order_backoff_until_ns = 0
        self.watchdogs: dict[str, FeedWatchdog] = {}
        #: Counters for health reporting and tests.
        self.checksum_failures = 0
        self.sequence_gaps = 0
        self.reconnects = 0
        self.resyncs = 0
        self._log = logger.bind(venue=rules.venue, connector="ccxt")
        self._install_taps()

    @classmethod
    def from_config(
        cls, settings: Mapping[str, Any], *, rules: VenueRules, symbol: str, context: ConnectorContext
    ) -> CcxtConnector:
        """Build from an engine config's settings; errors name the key before anything connects.

        Settings: ``profile`` (kraken / coinbase / gemini; default: the rules' venue), optional
        ``api_key`` / ``secret_key`` / ``password`` (``${ENV}`` only), ``urls`` (override ccxt's
        endpoints, e.g. a local mock venue; merged key by key into ccxt's nested ``urls``, so
        overriding one websocket endpoint keeps the REST ones), ``ccxt_options`` (extra ccxt
        constructor options such as ``rateLimit`` or ``timeout``; never credentials),
        ``markets_file`` (a JSON file of ccxt market definitions: ``load_markets`` is skipped, for
        offline runs against a local venue), and the fields of :class:`CcxtConnectorConfig`.
        """
        data = dict(settings)
        profile_name = str(data.pop("profile", rules.venue))
        credentials = {k: str(data.pop(k)) for k in ("api_key", "secret_key", "password") if k in data}
        urls = data.pop("urls", None)
        options = data.pop("ccxt_options", None)
        markets_file = data.pop("markets_file", None)
        try:
            profile = profile_for(profile_name)
        except KeyError as exc:
            raise ConfigError(context.file, f"{context.key_path}.profile", str(exc.args[0])) from exc
        if symbol not in profile.symbols:
            raise ConfigError(context.file, context.key_path, f"profile {profile_name} has no symbol {symbol!r}")
        if urls is not None and not isinstance(urls, Mapping):
            raise ConfigError(context.file, f"{context.key_path}.urls", "must be a mapping (ccxt's urls layout)")
        overrides = _ccxt_options(options, context)
        if markets_file is not None:
            overrides["markets"] = _markets_from(markets_file, context)
        config = structure(data, CcxtConnectorConfig, file=context.file, root="$." + context.key_path)
        ccxt_credentials = {
            "apiKey": credentials.get("api_key", ""),
            "secret": credentials.get("secret_key", ""),
            "password": credentials.get("password", ""),
        }
        if urls is not None:
            # Through the constructor, which deep-merges into the exchange's own urls. Assigning
            # exchange.urls afterwards replaced whole branches (overriding api.ws dropped api.public).
            overrides["urls"] = dict(urls)
        exchange = build_exchange(profile, {k: v for k, v in ccxt_credentials.items() if v} or None, **overrides)
        return cls(exchange, rules, profile, config, now_ns=context.now_ns)

    # -- protocol: identity and lifecycle ---------------------------------

    @property
    def venue(self) -> str:
        return self._rules.venue

    @property
    def rules(self) -> VenueRules:
        return self._rules

    @property
    def profile(self) -> VenueProfile:
        return self._profile

    @property
    def exchange(self) -> Any:
        return self._exchange

    @property
    def connected(self) -> bool:
        return self._connected

    async def connect(self) -> None:
        """Start every subscribed feed and the order poller. Markets must be loaded or injected."""
        if self._connected and self._running:
            return
        self._inbox.bind_loop(asyncio.get_running_loop())
        if not self._exchange.markets:
            try:
                await self._exchange.load_markets()
            except Exception as exc:
                raise TransientVenueError(f"{self.venue}: load_markets failed: {exc}") from exc
        self._connected = True
        self._running = True
        self._put(ConnectionStatus(self.venue, "rest", True, "connected", self._now()))
        for symbol in self._book_symbols:
            self._start(f"book:{symbol}", self._book_loop(symbol))
        for symbol in self._trade_symbols:
            self._start(f"trades:{symbol}", self._trade_loop(symbol))
        if self._profile.heartbeat_channel:
            self._start("heartbeat", self._heartbeat_loop(self._profile.heartbeat_channel))
        self._start("poll", self._poll_loop())
        if self._config.use_private_ws:
            self._start("private", self._private_ws_loop())

    async def disconnect(self) -> None:
        self._connected = False
        self._running = False
        tasks = list(self._tasks.values()) + list(self._side_tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        self._side_tasks.clear()
        with contextlib.suppress(Exception):
            await self._exchange.close()
        self._put(ConnectionStatus(self.venue, "rest", False, "disconnected", self._now()))

    def subscribe_book(self, symbol: str) -> None:
        self._profile.ccxt_symbol(symbol)  # fail fast on an unknown symbol
        if symbol not in self._book_symbols:
            self._book_symbols.append(symbol)
            if self._running:
                self._start(f"book:{symbol}", self._book_loop(symbol))

    def subscribe_trades(self, symbol: str) -> None:
        self._profile.ccxt_symbol(symbol)
        if symbol not in self._trade_symbols:
            self._trade_symbols.append(symbol)
            if self._running:
                self._start(f"trades:{symbol}", self._trade_loop(symbol))

    def add_event_tap(self, tap: Callable[[VenueEvent], None]) -> None:
        """See :meth:`mmkit.connector.Inbox.add_tap` (the aggregator sees books as they arrive)."""
        self._inbox.add_tap(tap)

    def drain(self) -> list[VenueEvent]:
        return self._inbox.drain()

    # -- protocol: order entry (submit-only) ------------------------------

    def place(self, order: OrderRequest) -> None:
        now = self._now()
        reason = self._precheck(order, now)
        if reason is not None:
            self._put(OrderRejected(self.venue, order.client_id, reason[0], reason[1], now, now))
            return
        self._orders[order.client_id] = _Tracked(order)
        self._spawn(self._place(order))

    def cancel(self, client_id: str, symbol: str) -> None:
        now = self._now()
        tracked = self._orders.get(client_id)
        if not self._connected or tracked is None or tracked.venue_order_id is None:
            reason = RejectReason.NOT_CONNECTED if not self._connected else RejectReason.UNKNOWN_ORDER
            self._put(OrderCancelRejected(self.venue, client_id, reason, "cannot cancel: no venue id", now, now))
            return
        self._spawn(self._cancel(tracked))

    def replace(self, request: ReplaceRequest) -> None:
        """None of the ccxt venues we use has an atomic replace (``rules.supports_replace`` is False)."""
        now = self._now()
        self._put(
            OrderCancelRejected(
                self.venue,
                request.orig_client_id,
                RejectReason.OTHER,
                "replace not supported: cancel and place",
                now,
                now,
                is_replace=True,
                new_client_id=request.client_id,
            )
        )

    def cancel_all(self, symbol: str | None = None) -> None:
        for client_id, tracked in list(self._orders.items()):
            if tracked.open and (symbol is None or tracked.request.symbol == symbol):
                self.cancel(client_id, tracked.request.symbol)

    def request_order_status(self, client_id: str, symbol: str) -> None:
        self._spawn(self._status_event(client_id, symbol))

    # -- protocol: reconciliation ----------------------------------------

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

    async def fetch_open_orders(self, symbol: str | None = None) -> list[OrderStatusReport]:
        ccxt_symbol = None if symbol is None else self._profile.ccxt_symbol(symbol)
        try:
            raws = await self._exchange.fetch_open_orders(ccxt_symbol)
        except Exception as exc:
            raise TransientVenueError(f"{self.venue}: fetch_open_orders: {classify(exc).message}") from exc
        reports = []
        for raw in raws:
            ours = self._symbol_or_none(raw.get("symbol"))
            client_id = self._client_id_of(raw)
            reports.append(self._report(client_id, ours or str(raw.get("symbol")), raw))
        return reports

    async def fetch_balances(self) -> list[Balance]:
        try:
            raw = await self._exchange.fetch_balance()
        except Exception as exc:
            raise TransientVenueError(f"{self.venue}: fetch_balance: {classify(exc).message}") from exc
        totals = raw.get("total") or {}
        free = raw.get("free") or {}
        return [
            Balance(asset, _dec(total), _dec(free.get(asset))) for asset, total in totals.items() if total is not None
        ]

    async def fetch_fills(self, symbol: str, since_ns: int) -> list[Fill]:
        if not self._rules.supports_fill_history:
            return []
        try:
            trades = await self._exchange.fetch_my_trades(self._profile.ccxt_symbol(symbol), since_ns // NS_PER_MS)
        except Exception as exc:
            raise TransientVenueError(f"{self.venue}: fetch_my_trades: {classify(exc).message}") from exc
        by_venue_id = {t.venue_order_id: cid for cid, t in self._orders.items() if t.venue_order_id}
        now = self._now()
        fills = []
        for trade in trades:
            fee = trade.get("fee") or {}
            order_id = str(trade.get("order") or "")
            fills.append(
                Fill(
                    venue=self.venue,
                    trade_id=str(trade["id"]),
                    client_id=by_venue_id.get(order_id, ""),
                    symbol=symbol,
                    side=Side.BUY if trade["side"] == "buy" else Side.SELL,
                    price=_dec(trade["price"]),
                    qty=_dec(trade["amount"]),
                    fee=_dec(fee.get("cost")),
                    fee_currency=str(fee.get("currency") or ""),
                    liquidity=Liquidity.MAKER if trade.get("takerOrMaker") == "maker" else Liquidity.TAKER,
                    ts_event=int(trade.get("timestamp") or 0) * NS_PER_MS,
                    ts_recv=now,
                    venue_order_id=order_id,
                )
            )
        return fills

    # -- order tasks ------------------------------------------------------

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

    def _rest_health(self, ok: bool, reason: str = "") -> None:
        """Track the REST session: a transport failure takes it down, any answer brings it back."""
        if ok == self._connected or not self._running:
            return
        self._connected = ok
        self._log.warning("REST session {}: {}", "up" if ok else "down", reason or "answer received")
        self._put(ConnectionStatus(self.venue, "rest", ok, reason or "answer received", self._now()))

    def _note(self, err: ClassifiedError | None) -> None:
        """Feed one call's outcome into the session health (None = success)."""
        if err is None or err.kind is not ErrorKind.TRANSIENT:
            self._rest_health(True)  # the venue answered, even if it said no
        else:
            self._rest_health(False, err.message)

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

    def _symbol_or_none(self, ccxt_symbol: Any) -> str | None:
        try:
            return self._profile.mmkit_symbol(str(ccxt_symbol))
        except KeyError:
            return None

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

    async def _book_loop(self, symbol: str) -> None:
        ccxt_symbol = self._profile.ccxt_symbol(symbol)
        feed = f"book:{symbol}"
        dog = self.watchdogs.setdefault(feed, FeedWatchdog(feed, int(self._config.stale_s * 1e9)))
        backoff = Backoff(self._config.backoff_initial_s, self._config.backoff_max_s)
        up = False
        while self._running:
            try:
                if self._profile.book_depth is None:
                    watch = self._exchange.watch_order_book(ccxt_symbol)
                else:
                    watch = self._exchange.watch_order_book(ccxt_symbol, self._profile.book_depth)
                book = await asyncio.wait_for(watch, timeout=self._config.stale_s)
            except asyncio.CancelledError:
                if _really_cancelled():
                    raise
                exc = ConnectionError("watch future cancelled by a socket close")
                self._log.debug("{}: {}", self.venue, exc)
                await asyncio.sleep(self._config.backoff_initial_s)
                continue
            except Exception as exc:
                timed_out = isinstance(exc, TimeoutError)
                reason = "stale: no update within watchdog limit" if timed_out else classify(exc).message
                if timed_out:
                    dog.stale_events += 1
                if up:
                    self._put(ConnectionStatus(self.venue, feed, False, reason, self._now()))
                up = False
                self._log.warning("{} down: {}", feed, reason)
                await self._drop_socket()
                await asyncio.sleep(backoff.next_delay())
                continue
            if self._book_invalid.get(ccxt_symbol):
                continue  # a failed check is being resynced; this book is not trustworthy
            now = self._now()
            dog.beat(now)
            backoff.reset()
            if not up:
                up = True
                self._put(ConnectionStatus(self.venue, feed, True, "book live", now))
            seq = self._book_seq.get(symbol, 0) + 1
            self._book_seq[symbol] = seq
            ts = book.get("timestamp")
            levels = self._config.emit_levels
            self._put(
                BookSnapshot(
                    venue=self.venue,
                    symbol=symbol,
                    seq=seq,
                    bids=_levels(book["bids"], levels),
                    asks=_levels(book["asks"], levels),
                    ts_event=int(ts) * NS_PER_MS if ts else now,
                    ts_recv=now,
                    checksum=self._last_checksum.get(ccxt_symbol),
                )
            )

    async def _trade_loop(self, symbol: str) -> None:
        ccxt_symbol = self._profile.ccxt_symbol(symbol)
        feed = f"trades:{symbol}"
        dog = self.watchdogs.setdefault(feed, FeedWatchdog(feed, int(self._config.stale_s * 1e9)))
        backoff = Backoff(self._config.backoff_initial_s, self._config.backoff_max_s)
        seen: set[str] = set()
        while self._running:
            try:
                trades = await asyncio.wait_for(self._exchange.watch_trades(ccxt_symbol), timeout=self._config.stale_s)
            except asyncio.CancelledError:
                if _really_cancelled():
                    raise
                exc = ConnectionError("watch future cancelled by a socket close")
                self._log.debug("{}: {}", self.venue, exc)
                await asyncio.sleep(self._config.backoff_initial_s)
                continue
            except Exception as exc:
                self._log.warning("{} down: {}", feed, classify(exc).message)
                await asyncio.sleep(backoff.next_delay())
                continue
            now = self._now()
            dog.beat(now)
            backoff.reset()
            for trade in trades:
                trade_id = str(trade.get("id"))
                if trade_id in seen:
                    continue  # ccxt returns a cache that may repeat earlier trades
                seen.add(trade_id)
                side = trade.get("side")
                self._put(
                    Trade(
                        venue=self.venue,
                        symbol=symbol,
                        trade_id=trade_id,
                        price=_dec(trade["price"]),
                        qty=_dec(trade["amount"]),
                        aggressor=Side.BUY if side == "buy" else Side.SELL if side == "sell" else None,
                        ts_event=int(trade.get("timestamp") or 0) * NS_PER_MS,
                        ts_recv=now,
                    )
                )
            if len(seen) > 10_000:
                seen.clear()

    async def _heartbeat_loop(self, channel: str) -> None:
        """Keep a heartbeat subscription open (Coinbase closes sockets with no subscribed activity)."""
        backoff = Backoff(self._config.backoff_initial_s, self._config.backoff_max_s)
        while self._running:
            try:
                await asyncio.wait_for(self._exchange.subscribe(channel, False), timeout=self._config.stale_s)
                backoff.reset()
            except asyncio.CancelledError:
                if _really_cancelled():
                    raise
                exc = ConnectionError("watch future cancelled by a socket close")
                self._log.debug("{}: {}", self.venue, exc)
                await asyncio.sleep(self._config.backoff_initial_s)
                continue
            except Exception as exc:
                self._log.debug("heartbeat: {}", classify(exc).message)
                await asyncio.sleep(backoff.next_delay())

    # -- integrity checks inside ccxt's handlers ---------------------------

    def _install_taps(self) -> None:
        """Wrap ccxt's per-message handlers so every raw book message is checked as it is applied."""
        exchange = self._exchange
        if self._profile.book_check is BookCheck.KRAKEN_CRC32 and hasattr(exchange, "handle_order_book"):
            original = exchange.handle_order_book

            def kraken_checked(client: Any, message: Any) -> None:
                original(client, message)
                self._check_kraken(client, message)

            exchange.handle_order_book = kraken_checked
        elif self._profile.book_check is BookCheck.COINBASE_SEQUENCE and hasattr(exchange, "handle_message"):
            original_message = exchange.handle_message

            def sequence_checked(client: Any, message: Any) -> None:
                if self._check_sequence(client, message):
                    original_message(client, message)

            exchange.handle_message = sequence_checked

    def _check_kraken(self, client: Any, message: Any) -> None:
        data = (message.get("data") or [{}])[0]
        expected = data.get("checksum")
        ws_symbol = data.get("symbol")
        book = self._exchange.orderbooks.get(ws_symbol)
        if expected is None or book is None:
            return
        market = self._exchange.markets.get(ws_symbol) or {}
        precision = market.get("precision") or {}
        actual = kraken_checksum(
            book["asks"],
            book["bids"],
            decimals_of(precision.get("price") or "0.1"),
            decimals_of(precision.get("amount") or "0.00000001"),
        )
        self._last_checksum[ws_symbol] = int(expected)
        if actual == int(expected):
            if message.get("type") == "snapshot" and self._book_invalid.pop(ws_symbol, None):
                self._log.info("book {} resynced from a fresh snapshot", ws_symbol)
            return
        self.checksum_failures += 1
        self._invalidate(ws_symbol, f"checksum mismatch: venue {expected}, local {actual}", client)

    def _check_sequence(self, client: Any, message: Any) -> bool:
        """Return False to drop a message that arrives after a gap (the socket is being replaced)."""
        if not isinstance(message, dict) or "sequence_num" not in message:
            return True
        url = str(getattr(client, "url", ""))
        checker = self._sequences.setdefault(url, SequenceChecker())
        if checker.check(int(message["sequence_num"])):
            if message.get("channel") == "l2_data":
                for event in message.get("events") or []:
                    if event.get("type") == "snapshot":
                        symbol = self._exchange.safe_symbol(event.get("product_id"), None, "-")
                        self._book_invalid.pop(symbol, None)
            return True
        self.sequence_gaps += 1
        checker.reset()
        for ccxt_symbol in [self._profile.ccxt_symbol(s) for s in self._book_symbols]:
            self._invalidate(ccxt_symbol, f"sequence gap at {message['sequence_num']}", client)
        return False

    def _invalidate(self, ccxt_symbol: str, reason: str, client: Any) -> None:
        """Mark a book untrustworthy and replace the socket so the venue sends a new snapshot."""
        self._book_invalid[ccxt_symbol] = True
        self.resyncs += 1
        now = self._now()
        symbol = self._symbol_or_none(ccxt_symbol) or ccxt_symbol
        self._log.warning("book {} invalid ({}); resyncing", symbol, reason)
        self._put(ConnectionStatus(self.venue, f"book:{symbol}", False, f"resync: {reason}", now))
        self._spawn(self._close_client(client))

    async def _close_client(self, client: Any) -> None:
        self.reconnects += 1
        with contextlib.suppress(Exception):
            await client.close()

    async def _drop_socket(self) -> None:
        """After a stale or failed watch, close every websocket so the next watch reconnects cleanly."""
        for client in list(getattr(self._exchange, "clients", {}).values()):
            await self._close_client(client)
        self._sequences.clear()

    # -- plumbing ---------------------------------------------------------

    def _put(self, event: VenueEvent) -> None:
        self._inbox.put(event)

    def _start(self, name: str, coro: Coroutine[Any, Any, None]) -> None:
        old = self._tasks.get(name)
        if old is not None and not old.done():
            coro.close()
            return
        self._tasks[name] = asyncio.get_running_loop().create_task(coro, name=f"{self.venue}:{name}")

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)


def _really_cancelled() -> bool:
    """True if *our* task is being cancelled, not just a ccxt future that a socket close cancelled.

    ccxt cancels its pending futures when a websocket client closes; awaiting
    one raises CancelledError in the feed task although nobody cancelled it.
    """
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


#: ccxt constructor keys that carry secrets: only the env-only settings may set them.
_SECRET_OPTIONS = frozenset({"apiKey", "secret", "password", "uid", "privateKey", "walletAddress", "token"})


def _ccxt_options(options: Any, context: ConnectorContext) -> dict[str, Any]:
    """Validate ``settings.ccxt_options``: a mapping of ccxt constructor options, without secrets."""
    if options is None:
        return {}
    key = f"{context.key_path}.ccxt_options"
    if not isinstance(options, Mapping):
        raise ConfigError(context.file, key, "must be a mapping of ccxt constructor options")
    secret = sorted(str(k) for k in options if k in _SECRET_OPTIONS)
    if secret:
        raise ConfigError(context.file, f"{key}.{secret[0]}", "credentials go in api_key / secret_key / password")
    if "urls" in options:
        raise ConfigError(context.file, f"{key}.urls", "use settings.urls")
    if "enableRateLimit" in options:
        raise ConfigError(context.file, f"{key}.enableRateLimit", "ccxt's rate limiter is always on (tune rateLimit)")
    return {str(k): _json_number(v) for k, v in options.items()}


def _json_number(value: Any) -> Any:
    """The config reads numbers as Decimal; ccxt expects JSON numbers (int or float)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {k: _json_number(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_number(v) for v in value]
    return value


def _markets_from(path_text: Any, context: ConnectorContext) -> dict[str, Any]:
    """Read ``settings.markets_file``: ccxt market definitions keyed by unified symbol."""
    key = f"{context.key_path}.markets_file"
    try:
        markets = json.loads(Path(str(path_text)).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(context.file, key, f"cannot read {path_text}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ConfigError(context.file, key, f"{path_text} is not JSON: {exc}") from exc
    if not isinstance(markets, dict) or not markets:
        raise ConfigError(context.file, key, f"{path_text} must map ccxt symbols to market definitions")
    return markets


def build_exchange(profile: VenueProfile, credentials: dict[str, str] | None = None, **overrides: Any) -> Any:
    """Construct the ccxt.pro exchange for a profile with ``enableRateLimit`` on.

    Credentials come from the caller (the app reads them from the environment);
    ``overrides`` are merged into ccxt's constructor config (tests pass
    ``markets=`` to skip market loading).
    """
    import ccxt.pro as ccxtpro

    config: dict[str, Any] = {"enableRateLimit": True, **profile.ccxt_options, **(credentials or {}), **overrides}
    return getattr(ccxtpro, profile.ccxt_id)(config)
