"""TrueXConnector: the Connector protocol over two QuickFIX initiator sessions.

Threads: QuickFIX runs its sockets and callbacks on its own thread. A
callback only copies the message out (``toString()``) with a receive
timestamp and hands it to the asyncio loop (one ordered FIFO, one wake-up
per batch that keeps the GIL: ``_call_soon``, ``loop_waker``); parsing,
bookkeeping and event emission all happen on the loop, so strategy and
engine code never run on a QuickFIX thread and no lock is needed here.

Sessions: order entry ("OE") carries D/F/G/H/AF and their answers; market
data ("MD") carries V/W/X. A message of one kind is refused (DoNotSend) on
the other session, because TrueX treats a stray MD message on OE as a
sequence gap and queues everything behind it.

Faults: ``place`` while OE is down becomes ``OrderRejected(NOT_CONNECTED)``
(nothing left this process); a status query becomes ``OrderQueryFailed``.
When OE drops, the engine sees ``ConnectionStatus(OE, False)`` and treats
every live order as unknown; on the next logon the connector asks for the
status of every order it knew to be live (35=H) and for all open orders
(35=AF), and emits the answers as status reports for the tracker to
reconcile. Nothing is marked lost because of a network error.

Status without 35=H / 35=AF (``status_requests: false``, the default):
TrueX's published order-entry set is D, F, G answered by 8 and 9, so the
connector learns an order's state from a *cancel's* answer: a 35=F whose
ExecutionReport (canceled) or OrderCancelReject carries OrdStatus, CumQty and
AvgPx. ``request_order_status`` / ``fetch_order_status`` send such a probe
(asking about a live order cancels it), and ``fetch_open_orders`` lists the
orders this connector saw acknowledged and not finished; with the venue's
cancel-on-disconnect that view starts empty and truthful after a restart.
``status_capabilities`` says which of the two a session uses.

CumQty checks: every ExecutionReport and cancel reject that carries CumQty is
compared with the fills this connector passed on for that OrderID; when the
venue counts more (bytes were lost), an OrderStatusReport with the venue's
CumQty/AvgPx goes out first, so the engine books the difference and halts.
Fees: a fill without Commission(12) is charged from the venue rules' fee
schedule (conf/venues/truex.yml), not booked at zero.

The connector is split by job: this module holds construction, the session
lifecycle (connect, disconnect, logon/logout, reconcile on re-logon) and the
dispatch of incoming messages; its mixins hold the rest: ``thread_handoff``
(QuickFIX threads to the loop), ``order_entry`` (D/F/G/H requests),
``order_answers`` (8/9/j/3 to events, fees, CumQty checks), ``status_probes``
(status by cancel), ``queries`` (awaitable reconciliation) and
``md_subscriptions`` (35=V); ``client_app`` is the QuickFIX application.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import quickfix as fix
from loguru import logger

from connectors.truex import builders, fix_tags, parsers, raw_message
from connectors.truex.client_app import MD, OE, ClientApp
from connectors.truex.config import Credentials, TrueXConfig
from connectors.truex.ids import IdGenerator
from connectors.truex.loop_waker import LoopWaker
from connectors.truex.md_subscriptions import MarketDataSubscriptions
from connectors.truex.order_answers import OrderAnswers
from connectors.truex.order_entry import OrderEntry, _OrderInfo
from connectors.truex.queries import StatusQueries
from connectors.truex.session import (
    SessionSpec,
    build_settings,
    now_ns,
    store_factory,
)
from connectors.truex.signing import load_signer
from connectors.truex.status_probes import StatusProbes
from connectors.truex.templates import Templates
from connectors.truex.thread_handoff import QuickFixHandoff
from connectors.truex.unreadable import UnreadableAnswers
from connectors.truex.watchdog import SessionWatchdog
from mmkit.conf import ConfigError, structure
from mmkit.connector import (
    ConnectorContext,
    Inbox,
    NotConnectedError,
    StatusCapabilities,
    TransientVenueError,
    VenueRules,
    load_venue_rules,
)
from mmkit.model import (
    BookDelta,
    BookSnapshot,
    ConnectionStatus,
    OrderNotFound,
    OrderQueryFailed,
    OrderStatusReport,
    Trade,
    VenueEvent,
)


class TrueXConnector(
    QuickFixHandoff, OrderEntry, OrderAnswers, StatusProbes, StatusQueries, MarketDataSubscriptions, UnreadableAnswers
):
    """TrueX over FIX (FIXT.1.1 / FIX 5.0 SP2): order entry + market data. See the module docstring."""

    def __init__(
        self,
        config: TrueXConfig | Mapping[str, Any],
        rules: VenueRules | None = None,
        *,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._config = config if isinstance(config, TrueXConfig) else TrueXConfig.from_mapping(config)
        self._rules = rules if rules is not None else load_venue_rules("truex")
        self._env = env
        self._inbox = Inbox()
        self._ids = IdGenerator()
        self._log = logger.bind(venue=self._config.venue, component="truex.connector")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waker: LoopWaker | None = None
        self._initiator: Any = None
        self._app: ClientApp | None = None
        #: NewOrderSingle from pre-rendered text (templates.py): one parse instead of ~15 setField calls.
        self._templates = Templates(self._config.dictionary_dir, ("D",))
        oe, md = self._config.oe, self._config.md
        self._specs = {
            OE: SessionSpec(oe.sender_comp_id, oe.target_comp_id, oe.port, oe.host),
            MD: SessionSpec(md.sender_comp_id, md.target_comp_id, md.port, md.host),
        }
        self._kinds = {(s.sender_comp_id, s.target_comp_id): kind for kind, s in self._specs.items()}
        self._kinds_by_id = {s.session_id.toString(): kind for kind, s in self._specs.items()}
        self._session_ids = {kind: s.session_id for kind, s in self._specs.items()}  # built once, not per send
        #: QuickFIX threads -> loop: (callable, args) in arrival order (see ``_call_soon``).
        self._handoff: deque[tuple[Any, tuple[object, ...]]] = deque()
        self._handoff_scheduled = False
        self._logged_on = {OE: False, MD: False}
        self._ever_logged_on = {OE: False, MD: False}
        self._logon_events = {OE: asyncio.Event(), MD: asyncio.Event()}
        self._logout_reason = {OE: "", MD: ""}
        self._refused = asyncio.Event()
        #: True while we log out ourselves: the venue's Logout reply and the session going down are expected.
        self._closing = False
        self._orders: dict[str, _OrderInfo] = {}
        self._cancels: dict[str, str] = {}  # cancel ClOrdID -> the order's ClOrdID
        self._status_waiters: dict[str, tuple[str, asyncio.Future[OrderStatusReport | OrderNotFound]]] = {}
        self._mass_waiters: dict[str, tuple[asyncio.Future[list[OrderStatusReport]], list[OrderStatusReport]]] = {}
        self._inbox_requests: set[str] = set()
        self._reconciling: set[str] = set()  # status/mass request ids whose answers go to the inbox
        self._md_symbols: set[str] = set()
        self._trade_symbols: set[str] = set()
        #: Status probes by cancel (see the module docstring): probe ClOrdID -> (order's ClOrdID, waiter or
        #: None when the answer goes to the inbox).
        self._probes: dict[str, tuple[str, asyncio.Future[OrderStatusReport | OrderNotFound] | None]] = {}
        #: OrderID -> (ExecIDs passed on, their total quantity): compared with the venue's CumQty.
        self._passed_fills: dict[str, tuple[set[str], Decimal]] = {}
        self.cum_qty_mismatches = 0
        cfg = self._config
        self._watchdog = SessionWatchdog(
            cfg.heartbeat_s,
            silence_heartbeats=float(cfg.down_after_heartbeats),
            ack_timeout_ns=int(cfg.request_timeout_s * 1_000_000_000),
            max_unanswered=cfg.max_unanswered_actions,
        )
        self._watch_task: asyncio.Task[None] | None = None
        self.watchdog_drops = 0
        self.malformed = 0
        #: Venue messages QuickFIX refused before any callback (it sent a 35=3 back): also in ``malformed``.
        self.refused_by_session = 0
        #: Times a lost order-entry answer made us ask the venue about every live order (unreadable.py).
        self.rechecks = 0
        #: SequenceResets that skipped messages of the venue's (a gap fill answering our resend request).
        self.gap_fills = 0
        #: Venue symbol -> the instrument's finest (tick, lot): a book level must be on it (``_check_grid``).
        self._grids: dict[str, tuple[Decimal, Decimal]] = {}
        #: MDReqIDs we sent (35=V): a 35=W/X naming another is not ours to apply.
        self._md_req_ids: set[str] = set()

    @classmethod
    def from_config(
        cls, settings: Mapping[str, Any], *, rules: VenueRules, symbol: str, context: ConnectorContext
    ) -> TrueXConnector:
        """Build from an engine config's ``venue.settings``; fails before connecting, naming the key.

        The API key and secret must already be in the environment: a run that
        would only discover their absence at logon fails here instead.
        """
        data = dict(settings)
        # One secret style everywhere (issue 13): ``api_key: "${NAME}"`` / ``secret_key: "${NAME}"``,
        # expanded from the environment by the config loader; the ``*_env: NAME`` spelling is refused.
        for old_style in ("api_key_env", "secret_env"):
            if old_style in data:
                raise ConfigError(context.file, f"{context.key_path}.{old_style}",
                                  'write api_key: "${TRUEX_API_KEY}" and secret_key: "${TRUEX_SECRET_KEY}" instead')
        secrets = {key: str(data.pop(key)) for key in ("api_key", "secret_key") if key in data}
        config = structure(data, TrueXConfig, file=context.file, root="$." + context.key_path)
        if secrets:
            if set(secrets) != {"api_key", "secret_key"}:
                missing = "secret_key" if "api_key" in secrets else "api_key"
                raise ConfigError(context.file, f"{context.key_path}.{missing}", "required with the other credential")
            rules.instrument(symbol)
            return cls(config, rules, env={config.api_key_env: secrets["api_key"],
                                           config.secret_env: secrets["secret_key"]})
        for key, env_name in (("api_key_env", config.api_key_env), ("secret_env", config.secret_env)):
            if not os.environ.get(env_name):
                raise ConfigError(context.file, f"{context.key_path}.{key}",
                                  f"secret environment variable {env_name} is not set")
        rules.instrument(symbol)
        return cls(config, rules)

    def add_event_tap(self, tap: Callable[[VenueEvent], None]) -> None:
        """See :meth:`mmkit.connector.Inbox.add_tap`."""
        self._inbox.add_tap(tap)

    # -- Connector protocol: properties ----------------------------------------

    @property
    def venue(self) -> str:
        return self._config.venue

    @property
    def rules(self) -> VenueRules:
        return self._rules

    @property
    def config(self) -> TrueXConfig:
        return self._config

    @property
    def connected(self) -> bool:
        return self._logged_on[OE]

    def exchange_market(self, symbol: str) -> tuple[str, str]:
        """TrueX, and its own symbol for ``symbol`` (the rules' ``venue_symbol``), whatever the venue or its rules
        file is called: the market claim follows the exchange (mmkit.app.market_claim). The FIX session and the
        PartyID are claimed as the account's identities."""
        return "truex", self._rules.venue_symbol(symbol)

    @property
    def status_capabilities(self) -> StatusCapabilities:
        """35=H/35=AF only where configured; otherwise status comes from a cancel's answer (module docstring)."""
        if self._config.status_requests:
            return StatusCapabilities(order_status=True, open_orders=True, status_by_cancel=False,
                                      filled_spans_replaces=True)
        return StatusCapabilities(order_status=True, open_orders=False, status_by_cancel=True,
                                  filled_spans_replaces=True)

    @property
    def md_connected(self) -> bool:
        return self._logged_on[MD]

    def session_id(self, kind: str) -> fix.SessionID:
        return self._specs[kind].session_id

    # -- lifecycle -------------------------------------------------------------

    async def connect(self) -> None:
        """Start both sessions and wait for both logons; raise NotConnectedError with the venue's reason."""
        if self._initiator is not None:
            return
        self._closing = False
        self._bind_handoff(asyncio.get_running_loop())  # nothing from a previous loop runs on this one
        assert self._loop is not None
        self._inbox.bind_loop(self._loop)
        credentials = Credentials.from_env(self._config, self._env)
        signer = load_signer(self._config.signer)
        cfg = self._config
        settings = build_settings(
            "initiator",
            list(self._specs.values()),
            cfg.dictionary_dir,
            heartbeat_s=cfg.heartbeat_s,
            reconnect_s=cfg.reconnect_s,
            tls=cfg.tls,
            store_dir=cfg.store_dir,
        )
        self._app = ClientApp(self, credentials, signer, cfg.log_messages)
        factory = fix.SSLSocketInitiator if cfg.tls.enabled else fix.SocketInitiator
        self._initiator = factory(self._app, store_factory(settings, cfg.store_dir), settings)
        self._initiator.start()
        self._watch_task = asyncio.ensure_future(self._watch())
        logons: asyncio.Future[Any] = asyncio.ensure_future(
            asyncio.gather(self._logon_events[OE].wait(), self._logon_events[MD].wait())
        )
        refused: asyncio.Future[Any] = asyncio.ensure_future(self._refused.wait())
        done, _ = await asyncio.wait(
            {logons, refused}, timeout=float(cfg.connect_timeout_s), return_when=asyncio.FIRST_COMPLETED
        )
        logons.cancel()
        refused.cancel()
        await asyncio.gather(logons, refused, return_exceptions=True)  # retrieve: no "never retrieved" warning
        if logons not in done:
            # a venue refusal (Logout with a reason before any logon) is final: do not keep retrying
            reason = "; ".join(f"{k}: {r}" for k, r in self._logout_reason.items() if r) or "no logon in time"
            await self.disconnect()
            raise NotConnectedError(f"TrueX logon failed: {reason}")

    async def disconnect(self) -> None:
        """Log both sessions out and stop QuickFIX (blocking stop runs off the loop)."""
        initiator, self._initiator = self._initiator, None
        self._closing = True  # a clean stop logs no warnings (issue 13)
        task, self._watch_task = self._watch_task, None
        if task is not None:
            task.cancel()
        if initiator is not None:
            await asyncio.to_thread(initiator.stop)
        self._close_handoff()  # QuickFIX calls back no more: its wake-up pipe can go
        for kind in (OE, MD):
            if self._logged_on[kind]:
                self._set_down(kind, "disconnected by us", now_ns())

    async def _watch(self) -> None:
        """Every 250 ms: is the OE session still answering? (connectors/truex/watchdog.py)."""
        while True:
            await asyncio.sleep(0.25)
            if not self._logged_on[OE]:
                continue
            reason = self._watchdog.verdict(now_ns())
            if reason is None:
                continue
            self.watchdog_drops += 1
            self._log.error("OE session treated as down: {}", reason)
            self._set_down(OE, f"watchdog: {reason}", now_ns())
            session = fix.Session.lookupSession(self._specs[OE].session_id)
            if session is not None:
                await asyncio.to_thread(session.disconnect)  # QuickFIX reconnects; we reconcile on logon

    # -- loop side: sessions ---------------------------------------------------

    def _on_session(self, kind: str, up: bool, ts_recv: int) -> None:
        if up:
            reconnect = self._ever_logged_on[kind]
            self._logged_on[kind] = True
            self._ever_logged_on[kind] = True
            self._logout_reason[kind] = ""
            self._logon_events[kind].set()
            if kind == OE:
                self._watchdog.reset(ts_recv)
            self._inbox.put(ConnectionStatus(self.venue, kind, True, "logged on", ts_recv))
            self._log.info("{} session logged on", kind)
            if kind == MD:
                for symbol in sorted(self._md_symbols):
                    self._send_md_request(symbol)
            elif reconnect:
                self.reconcile()
        else:
            self._set_down(kind, self._logout_reason[kind] or "logged out", ts_recv)

    def _set_down(self, kind: str, reason: str, ts_recv: int) -> None:
        was_up = self._logged_on[kind]
        self._logged_on[kind] = False
        self._logon_events[kind].clear()
        if kind == OE:
            error = TransientVenueError(f"OE session down: {reason}")
            for _, status_future in self._status_waiters.values():
                if not status_future.done():
                    status_future.set_exception(error)
            for mass_future, _ in self._mass_waiters.values():
                if not mass_future.done():
                    mass_future.set_exception(error)
            self._status_waiters.clear()
            self._mass_waiters.clear()
            for client_id, probe_future in list(self._probes.values()):
                if probe_future is not None and not probe_future.done():
                    probe_future.set_exception(error)
                elif probe_future is None:
                    self._inbox.put(OrderQueryFailed(self.venue, client_id, "OE session down", ts_recv))
            self._probes.clear()
        if was_up:
            self._inbox.put(ConnectionStatus(self.venue, kind, False, reason, ts_recv))
            (self._log.info if self._closing else self._log.warning)("{} session down: {}", kind, reason)

    def reconcile(self) -> None:
        """Ask for every order we believed live (35=H) and for all open orders (35=AF).

        Answers arrive as OrderStatusReport / OrderNotFound events for the
        ClientOrderTracker. Called on every OE re-logon.
        """
        self._reconciling = set(self._orders)
        if not self._config.status_requests:
            for client_id, info in list(self._orders.items()):
                if not self._probe(client_id, info.symbol, None):
                    self._inbox.put(OrderQueryFailed(self.venue, client_id, "OE session down", now_ns()))
            return
        for client_id, info in list(self._orders.items()):
            request_id = self._ids.next("s")
            self._inbox_requests.add(request_id)
            message = builders.order_status_request(
                client_id, info.side, info.symbol, request_id, self._config.party_id
            )
            if not self._send(OE, message, "H"):
                self._inbox_requests.discard(request_id)
                self._inbox.put(OrderQueryFailed(self.venue, client_id, "OE session down", now_ns()))
        request_id = self._ids.next("m")
        self._inbox_requests.add(request_id)
        if not self._send(OE, builders.order_mass_status_request(request_id, None, self._config.party_id), "AF"):
            self._inbox_requests.discard(request_id)

    # -- loop side: incoming messages ------------------------------------------

    def _on_message(self, kind: str, raw: str, ts_recv: int) -> None:
        try:
            msg = raw_message.RawMessage(raw)
            self._dispatch(kind, msg, ts_recv)
        except (ValueError, KeyError, ArithmeticError) as exc:
            self._on_unreadable(kind, raw, str(exc), ts_recv)  # counted, told, and asked again (unreadable.py)

    def _dispatch(self, kind: str, msg: raw_message.RawMessage, ts_recv: int) -> None:
        msg_type = msg.msg_type
        if kind == OE:
            get = msg.get  # every order answer passes here: a plain tuple, not a generator
            answered = (get(fix_tags.T_CLORDID) or "", get(fix_tags.T_ORIG_CLORDID) or "",
                        get(fix_tags.T_BIZ_REJECT_REF_ID) or "")
            self._watchdog.received(ts_recv, answered)
        if msg_type == "8":
            if not self._on_order_accepted(msg, ts_recv):
                self._on_execution_report(msg, ts_recv)
        elif msg_type == "9":
            if self._on_probe_reject(msg, ts_recv):
                return
            self._check_cum_qty(msg, ts_recv)
            rejected = parsers.parse_cancel_reject(msg, self.venue, ts_recv)
            self._cancels.pop(msg.get(fix_tags.T_CLORDID) or "", None)
            if rejected.is_replace and rejected.new_client_id:
                self._orders.pop(rejected.new_client_id, None)
            self._inbox.put(rejected)
        elif msg_type == "j":
            self._on_business_reject(parsers.parse_business_reject(msg), ts_recv)
        elif msg_type in ("W", "X") and (req_id := msg.get(fix_tags.T_MD_REQ_ID)) and req_id not in self._md_req_ids:
            raise raw_message.ParseError(f"MDReqID {req_id!r} is not one we sent")
        elif msg_type == "W":
            snapshot = parsers.parse_snapshot(msg, self.venue, ts_recv)
            self._check_grid(snapshot)
            self._inbox.put(snapshot)
        elif msg_type == "X":
            for event in parsers.parse_incremental(msg, self.venue, next(iter(self._md_symbols), ""), ts_recv):
                if isinstance(event, Trade):
                    if event.symbol not in self._trade_symbols:
                        continue
                else:
                    self._check_grid(event)
                self._inbox.put(event)
        elif msg_type == "Y":
            self._log.error("market data request rejected: {}", msg.get(fix_tags.T_TEXT))
        elif msg_type == "5":
            self._logout_reason[kind] = msg.get(fix_tags.T_TEXT) or "logout"
            if not self._ever_logged_on[kind]:
                self._refused.set()
            (self._log.info if self._closing else self._log.warning)(
                "{} logout from venue: {}", kind, self._logout_reason[kind])
        elif msg_type == "3":
            self._on_session_reject(msg, ts_recv)
        elif msg_type == "4":
            self._on_sequence_reset(kind, msg, ts_recv)
        else:
            self._log.debug("ignoring {} on {}", msg_type, kind)

    def _check_grid(self, event: BookSnapshot | BookDelta) -> None:
        """A level off the instrument's finest grid would raise inside the book (OffGridError): refuse it here."""
        grid = self._grids.get(event.symbol)
        if grid is None:
            rules = self._rules
            instrument = next((i for i in rules.instruments if rules.venue_symbol(i.symbol) == event.symbol), None)
            if instrument is None:
                return  # not a market we know: the engine has no book for it
            grid = self._grids[event.symbol] = instrument.finest_increments()
        parsers.check_grid(event.bids, *grid)
        parsers.check_grid(event.asks, *grid)

    def drain(self) -> list[VenueEvent]:
        return self._inbox.drain()
