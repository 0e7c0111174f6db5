"""CcxtConnector: the mmkit Connector protocol on top of any ccxt.pro exchange.

Why one generic connector: Kraken, Coinbase and Gemini differ in wire format,
but ccxt already normalizes those; what ccxt does *not* give us is the
engine's contract (submit-only order entry whose outcomes arrive as events,
"not found" kept apart from "could not ask", books we can trust). This class
adds exactly that, and the per-venue differences live in
:mod:`connectors.ccxt.profiles` and ``conf/venues/<venue>.yml``.

The connector is split by job: :mod:`connectors.ccxt.feeds` (books and trades
under a watchdog, integrity checks), :mod:`connectors.ccxt.order_flow` (order
tasks, venue state -> events), :mod:`connectors.ccxt.polling` (the poller and
the private streams), :mod:`connectors.ccxt.ledger_check` (the in-run ledger
check), :mod:`connectors.ccxt.deadman` (the venue's dead man's switch, and
whether quotes may rest), :mod:`connectors.ccxt.settings` (config and exchange
construction), :mod:`connectors.ccxt.base` (shared state and plumbing, and
``_rest``, through which every REST call feeds the session health). This
module holds the protocol surface and the wiring.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from loguru import logger

from connectors.ccxt.answers import MalformedAnswer, MalformedAnswers, balance_answer, order_answer
from connectors.ccxt.checksums import SequenceChecker
from connectors.ccxt.convert import _dec, _Tracked
from connectors.ccxt.deadman import DeadMansSwitchLoop, shared_switch
from connectors.ccxt.errors import classify
from connectors.ccxt.feeds import FeedsMixin
from connectors.ccxt.ledger_check import LedgerCheckMixin
from connectors.ccxt.profiles import VenueProfile, profile_for
from connectors.ccxt.session_health import SessionHealth
from connectors.ccxt.settings import (
    CcxtConnectorConfig,
    _ccxt_options,
    _markets_from,
    build_exchange,
)
from connectors.ccxt.watchdog import Backoff, FeedWatchdog
from mmkit.conf import ConfigError, structure
from mmkit.connector import (
    ConnectorContext,
    Inbox,
    TransientVenueError,
    VenueRules,
)
from mmkit.model import (
    NS_PER_MS,
    Balance,
    ConnectionStatus,
    Fill,
    OrderCancelRejected,
    OrderRejected,
    OrderRequest,
    OrderStatusReport,
    RejectReason,
    ReplaceRequest,
    VenueEvent,
)

__all__ = ["CcxtConnector", "CcxtConnectorConfig", "build_exchange"]

#: Pages of a paged trade history (Kraken: 50 trades each) a restart's recovery reads before it gives up loudly.
RECOVERY_MAX_PAGES = 200


class CcxtConnector(FeedsMixin, LedgerCheckMixin):
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
        self._health = SessionHealth()
        #: Feed and poll loops run while this is set; ``_health`` (``connected``) is the REST session's.
        self._running = False
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._book_symbols: list[str] = []
        self._trade_symbols: list[str] = []
        self._orders: dict[str, _Tracked] = {}
        self._seen_trades: set[str] = set()
        self._trades_wanted = False
        self._trade_sync: asyncio.Task[None] | None = None
        self._last_drain_ns = 0
        #: Why this connector no longer refreshes or disarms the key's dead man's switch (:meth:`yield_shared_switch`).
        self.dead_man_yielded: str | None = None
        self.dead_man = DeadMansSwitchLoop(
            exchange, profile.dead_mans_switch,
            timeout_s=self._config.dead_man_timeout_s, refresh_s=self._config.dead_man_refresh_s,
            tick_grace_s=self._config.dead_man_tick_grace_s, last_tick_ns=lambda: self._last_drain_ns,
            venue=rules.venue, call=self._rest, halt_after_s=self._config.dead_man_halt_after_s,
            on_change=self._dead_man_changed,
        )
        if rules.supports_replace and not profile.replace:
            raise ValueError(f"{rules.venue}: the venue rules say supports_replace but {profile.venue} has no replace")
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
        self._ledger_wake = asyncio.Event()
        self._ledger_since_ms = 0
        self.ledger_checks = 0
        self.ledger_missed_trades = 0
        self.ledger_reports = 0
        self.ledger_check_errors = 0
        self._sweeps = {}
        self._ledger_lock = asyncio.Lock()
        self.malformed_trades = 0
        self._malformed_seen = set()
        self.answers = MalformedAnswers()
        self.malformed_books = 0
        self.foreign_fee_currency = 0
        #: Times a loop that must run while connected (dead man's switch, ledger check) ended and was restarted.
        self.loop_restarts = 0
        if exchange.id == "kraken":
            exchange.enableLastJsonResponse = True  # the trade history's page count (ledger_check._trade_page)
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
        offline runs against a local venue), ``account`` (the exchange account's name: instances whose
        configs name the same account may not quote one symbol at once, whatever their API keys;
        mmkit.app.market_claim), and the fields of :class:`CcxtConnectorConfig`.
        """
        data = dict(settings)
        profile_name = str(data.pop("profile", rules.venue))
        credentials = {k: str(data.pop(k)) for k in ("api_key", "secret_key", "password") if k in data}
        urls = data.pop("urls", None)
        options = data.pop("ccxt_options", None)
        markets_file = data.pop("markets_file", None)
        account = data.pop("account", None)  # read by the market claim (mmkit.app.market_claim), not by ccxt
        if account is not None and not (isinstance(account, str) and account.strip()):
            raise ConfigError(context.file, f"{context.key_path}.account",
                              f"must be the exchange account's name (text), got {account!r}")
        try:
            profile = profile_for(profile_name)
        except KeyError as exc:
            raise ConfigError(context.file, f"{context.key_path}.profile", str(exc.args[0])) from exc
        if symbol not in profile.symbols:
            raise ConfigError(context.file, context.key_path, f"profile {profile_name} has no symbol {symbol!r}")
        if rules.supports_replace and not profile.replace:
            raise ConfigError(
                context.file, context.key_path,
                f"the {rules.venue} rules say supports_replace, but {profile_name} cannot replace in place",
            )
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
        """Start every subscribed feed and the order poller. Markets must be loaded or injected.

        On a running connector whose REST session is down (a reconnect), the session is
        up only once the venue answers a call sent now: outcomes of calls sent before it
        are then stale and cannot take it down again (session_health.py). No answer:
        TransientVenueError, and the session stays down (the poller keeps probing).
        """
        if self._connected and self._running:
            return
        self._inbox.bind_loop(asyncio.get_running_loop())
        if not self._exchange.markets:
            try:
                await self._rest(self._exchange.load_markets)
            except Exception as exc:
                raise TransientVenueError(f"{self.venue}: load_markets failed: {exc}") from exc
        if self._running:
            await self._probe()
            if not self._connected:
                raise TransientVenueError(f"{self.venue}: reconnect: the venue does not answer yet")
        else:
            self._running = True
            self._health.declare_up()  # a new session: nothing of ours is in flight
            self._put(ConnectionStatus(self.venue, "rest", True, "connected", self._now()))
        for symbol in self._book_symbols:
            self._start(f"book:{symbol}", self._book_loop(symbol))
        for symbol in self._trade_symbols:
            self._start(f"trades:{symbol}", self._trade_loop(symbol))
        if self._profile.heartbeat_channel:
            self._start("heartbeat", self._heartbeat_loop(self._profile.heartbeat_channel))
        self._start("poll", self._poll_loop())
        if self._config.ledger_check_s > 0 and self._exchange.apiKey:
            if not self._ledger_since_ms:  # trades before this session are restart recovery's (fetch_fills)
                self._ledger_since_ms = time.time_ns() // NS_PER_MS
            self._watch("ledger-check", self._ledger_check_loop, self._ledger_check_ended)
        if self.dead_man.active and self._exchange.apiKey and self.dead_man_yielded is None:
            self._last_drain_ns = time.time_ns()
            self._watch("dead-man", self.dead_man.run, self.dead_man.loop_ended)
        if self._config.use_private_ws:
            self._start("private", self._private_ws_loop())
            if self._exchange.has.get("watchMyTrades"):
                self._start("private-trades", self._private_trades_loop())

    def _watch(self, name: str, loop: Callable[[], Coroutine[Any, Any, None]],
               ended: Callable[[str, int], None]) -> None:
        """Run a loop that must not end while connected; if it ends anyway, say why and start it again.

        Why: these loops catch what they expect, but ccxt can raise CancelledError when a
        session closes (base.py), and a bug raises anything. A loop that ended silently left
        its job undone (the dead man's switch unrefreshed while the guard said "armed").
        ``ended(why, now_ns)`` is told (it logs at ERROR); the loop restarts one refresh
        period later (not in a tight loop if it dies at once again).
        """
        old = self._tasks.get(name)
        if not self._running or (old is not None and not old.done()):
            return  # stopped, or it runs (and is watched) already
        self._start(name, loop())
        task = self._tasks[name]

        def done(finished: asyncio.Task[None]) -> None:
            if not self._running or self._tasks.get(name) is not finished:
                return  # a disconnect cancelled it, or a newer one runs
            if finished.cancelled():
                why = "CancelledError escaped it (ccxt cancels its pending calls when a session closes)"
            elif finished.exception() is not None:
                exc = finished.exception()
                why = f"{type(exc).__name__}: {exc}"
            else:
                why = "it returned"
            self.loop_restarts += 1
            ended(why, time.time_ns())
            asyncio.get_running_loop().call_later(self._restart_delay_s(), self._watch, name, loop, ended)

        task.add_done_callback(done)

    def _restart_delay_s(self) -> float:
        return min(self.dead_man.refresh_s, 1.0) if self.dead_man.active else 1.0

    def _ledger_check_ended(self, why: str, now_ns: int) -> None:
        self._log.error("ledger check loop ended: {}; started again", why)

    async def disconnect(self) -> None:
        if self._running and "dead-man" in self._tasks:
            await self.dead_man.disarm()
        self._health.declare_down()
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
        self._last_drain_ns = time.time_ns()
        return self._inbox.drain()

    @property
    def account_wide_claim(self) -> str | None:
        """Why one instance must hold every symbol of this API key (mmkit.app.market_claim), or None.

        The venue's dead man's switch covers the whole key (the profile's ``dead_mans_switch_scope``).
        """
        return shared_switch(self._profile)

    def yield_shared_switch(self, reason: str) -> bool:
        """Our claim on this key was lost: leave its dead man's switch to the instance that now holds it.

        Why: the switch covers every order of the key (:attr:`account_wide_claim`), so after the
        claim is lost it guards the new holder's quotes. Refreshing it would keep them alive if
        that instance hangs, and the disarm of a clean stop (Kraken's ``CancelAllOrdersAfter(0)``)
        would leave them unprotected until its next refresh. So the refresh loop is stopped for good
        (not restarted as a dead loop is) and the stop does not disarm. Our own orders are cancelled
        one by one by the engine. Returns False when there is no such switch to leave (nothing done).
        """
        if not self.dead_man.active or self.account_wide_claim is None:
            return False
        self.dead_man_yielded = reason
        task = self._tasks.pop("dead-man", None)  # popped first: its done callback then restarts nothing
        if task is not None:
            task.cancel()
        self._log.error("dead man's switch left to the key's new holder (no refresh, no disarm at stop): {}", reason)
        return True

    def exchange_market(self, symbol: str) -> tuple[str, str]:
        """The exchange (the profile's ccxt id) and its market (ccxt's unified symbol) that ``symbol`` is, whatever
        the venue rules file is called: the market claim follows the exchange (mmkit.app.market_claim)."""
        return self._profile.ccxt_id, self._profile.ccxt_symbol(symbol)

    def health_counters(self) -> dict[str, int]:
        """What this connector caught and handled by itself (mmkit.connector.health_counters: the final report)."""
        dead_man, health = self.dead_man, self.rest_health
        return {
            "ledger_checks": self.ledger_checks,
            "ledger_reports": self.ledger_reports,
            "ledger_missed_trades": self.ledger_missed_trades,
            "ledger_check_errors": self.ledger_check_errors,
            "malformed_trades": self.malformed_trades,
            "malformed_answers": self.answers.count,
            "malformed_books": self.malformed_books,
            "foreign_fee_currency": self.foreign_fee_currency,
            "loop_restarts": self.loop_restarts,
            "dead_man_refreshes": dead_man.refreshes,
            "dead_man_failures": dead_man.failures,
            "dead_man_skipped": dead_man.skipped,
            "dead_man_halts": dead_man.halts,
            "stale_rest_failures": health.stale_failures,
            "stale_rest_answers": health.stale_answers,
            "checksum_failures": self.checksum_failures,
            "sequence_gaps": self.sequence_gaps,
            "reconnects": self.reconnects,
            "resyncs": self.resyncs,
        }

    def quoting_halt_reason(self) -> str | None:
        """Why quotes must not rest on this venue now, or None (mmkit.connector.QuotingGuard).

        The engine reads it every tick before the controller: a reason pulls our quotes and
        keeps them off. Here: the venue's dead man's switch, where one is armed, is not
        (deadman.py). Orders are still accepted (hedges reduce risk and do not rest).
        """
        if not self._running:
            return None
        return self.dead_man.quoting_halt_reason(time.time_ns())

    def _dead_man_changed(self, armed: bool, reason: str) -> None:
        self._put(ConnectionStatus(self.venue, "dead-man", armed, reason, self._now()))

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

    @property
    def supports_replace(self) -> bool:
        """The executor's choice between one replace and cancel + new (from ``rules.supports_replace``)."""
        return self._rules.supports_replace

    def replace(self, request: ReplaceRequest) -> None:
        """Change a resting order's price/size in place where the venue can (Kraken AmendOrder, Coinbase edit).

        ``request.qty`` is what should rest afterwards; the venues count an
        order's total size, so the quantity already filled is added.
        Outcome: OrderReplaced (same venue order id, new client id) or
        OrderCancelRejected with ``is_replace``.
        """
        now = self._now()
        tracked = self._orders.get(request.orig_client_id)
        refusal: tuple[RejectReason, str] | None = None
        if not self._rules.supports_replace:
            refusal = RejectReason.OTHER, "replace not supported: cancel and place"
        elif not self._connected:
            refusal = RejectReason.NOT_CONNECTED, "not connected"
        elif tracked is None or tracked.venue_order_id is None or not tracked.open:
            refusal = RejectReason.UNKNOWN_ORDER, "no open order to replace"
        elif request.client_id in self._orders or not self._profile.client_id_ok(request.client_id):
            refusal = RejectReason.DUPLICATE_CLIENT_ID, "new client id already used or not valid here"
        else:
            reason = self._rules.instrument(request.symbol).check_order(request.price, request.qty)
            if reason is not None:
                refusal = reason, f"refused locally by {self.venue} rules"
        if refusal is not None:
            self._put(OrderCancelRejected(self.venue, request.orig_client_id, refusal[0], refusal[1], now, now,
                                          is_replace=True, new_client_id=request.client_id))
            return
        assert tracked is not None
        self._spawn(self._replace(tracked, request))

    def cancel_all(self, symbol: str | None = None) -> None:
        for client_id, tracked in list(self._orders.items()):
            if tracked.open and (symbol is None or tracked.request.symbol == symbol):
                self.cancel(client_id, tracked.request.symbol)

    def request_order_status(self, client_id: str, symbol: str) -> None:
        self._spawn(self._status_event(client_id, symbol))

    # -- protocol: reconciliation ----------------------------------------

    async def fetch_open_orders(self, symbol: str | None = None) -> list[OrderStatusReport]:
        ccxt_symbol = None if symbol is None else self._profile.ccxt_symbol(symbol)
        try:
            raws = await self._rest(self._exchange.fetch_open_orders, ccxt_symbol)
        except Exception as exc:
            raise TransientVenueError(f"{self.venue}: fetch_open_orders: {classify(exc).message}") from exc
        reports = []
        for raw in raws:
            try:  # a listing with an entry that is no order is no listing: a partial one would read as orders gone
                order_answer(raw, "fetch_open_orders")
            except MalformedAnswer as exc:
                self.answers.note(self._log, exc)
                raise TransientVenueError(f"{self.venue}: fetch_open_orders: MalformedAnswer: {exc}") from exc
            ours = self._symbol_or_none(raw.get("symbol"))
            client_id = self._client_id_of(raw)
            if ours is not None:
                self._adopt(client_id, ours, raw)
            reports.append(self._report(client_id, ours or str(raw.get("symbol")), raw))
        return reports

    async def fetch_balances(self) -> list[Balance]:
        try:
            raw = balance_answer(await self._rest(self._exchange.fetch_balance))
        except Exception as exc:
            if isinstance(exc, MalformedAnswer):
                self.answers.note(self._log, exc)
            raise TransientVenueError(f"{self.venue}: fetch_balance: {classify(exc).message}") from exc
        totals = raw.get("total") or {}
        free = raw.get("free") or {}
        return [
            Balance(asset, _dec(total), _dec(free.get(asset))) for asset, total in totals.items() if total is not None
        ]

    async def _client_id_from_venue(self, order_id: str, symbol: str) -> str:
        """Our client id for a venue order this process never saw (Kraken's trades do not carry it)."""
        try:
            raw = await self._rest(self._exchange.fetch_order, order_id, self._profile.ccxt_symbol(symbol))
        except Exception as exc:
            self._log.warning("cannot read order {} for its client id: {}", order_id, classify(exc).message)
            return ""
        return str(raw.get("clientOrderId") or "")

    async def fetch_fills(self, symbol: str, since_ns: int) -> list[Fill]:
        """Our fills since ``since_ns`` from the venue's trade history, keyed by the venue's trade ids.

        The same ids the run-time path books (:meth:`_book_trades`), so recovery
        can tell a fill it already holds from one it missed. After a restart the
        client id is the venue's (Gemini reports it) or the one this process
        knows for the venue order id, else empty (the venue order id still ties
        the fill to its order).
        """
        if not self._rules.supports_fill_history:
            return []
        try:
            trades, whole = await self._read_trades(symbol, since_ns // NS_PER_MS, RECOVERY_MAX_PAGES)
        except Exception as exc:
            raise TransientVenueError(f"{self.venue}: fetch_my_trades: {classify(exc).message}") from exc
        if not whole:  # a recovery on part of the history would book part of the fills: refuse, loudly
            raise TransientVenueError(
                f"{self.venue}: fetch_my_trades: more than {RECOVERY_MAX_PAGES} pages of {symbol} trades since "
                f"{since_ns} ns; recover from a later point or raise the bound")
        by_venue_id = {t.venue_order_id: cid for cid, t in self._orders.items() if t.venue_order_id}
        fills = []
        for trade in trades:
            if int(trade.get("timestamp") or 0) * NS_PER_MS < since_ns - NS_PER_MS:
                continue
            order_id = str(trade.get("order") or "")
            info = trade.get("info") or {}
            venue_client_id = info.get("client_order_id") or trade.get("clientOrderId") or ""
            if not by_venue_id.get(order_id) and not venue_client_id and order_id:
                by_venue_id[order_id] = await self._client_id_from_venue(order_id, symbol)
            client_id = by_venue_id.get(order_id) or str(venue_client_id)
            tracked = self._orders.get(client_id)
            fills.append(self._fill_from_trade(trade, symbol, client_id, tracked.request if tracked else None))
        return fills

