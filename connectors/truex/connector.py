"""TrueXConnector: the Connector protocol over two QuickFIX initiator sessions.

Threads: QuickFIX runs its sockets and callbacks on its own thread. A
callback only copies the message out (``toString()``) with a receive
timestamp and hands it to the asyncio loop (one ordered FIFO, one
``call_soon_threadsafe`` wake-up per batch: ``_call_soon``); parsing,
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
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import deque
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import attrs
import quickfix as fix
from loguru import logger

from connectors.truex import messages as m
from connectors.truex.client_app import MD, OE, ClientApp
from connectors.truex.config import Credentials, TrueXConfig
from connectors.truex.ids import IdGenerator
from connectors.truex.session import (
    SessionSpec,
    build_settings,
    now_ns,
    store_factory,
)
from connectors.truex.signing import load_signer
from connectors.truex.templates import Templates
from connectors.truex.watchdog import SessionWatchdog
from mmkit.conf import ConfigError, structure
from mmkit.connector import (
    ConnectorContext,
    Inbox,
    NotConnectedError,
    OrderNotFoundError,
    StatusCapabilities,
    TransientVenueError,
    VenueRules,
    load_venue_rules,
)
from mmkit.model import (
    Balance,
    ConnectionStatus,
    Fill,
    Liquidity,
    MalformedMessage,
    OrderCanceled,
    OrderCancelRejected,
    OrderExpired,
    OrderNotFound,
    OrderQueryFailed,
    OrderRejected,
    OrderReplaced,
    OrderRequest,
    OrderStatusReport,
    RejectReason,
    ReplaceRequest,
    Side,
    Trade,
    VenueEvent,
    VenueOrderStatus,
)


@attrs.define(slots=True)
class _OrderInfo:
    """What F/G/H need that the engine does not pass back (side, symbol), per live ClOrdID."""

    symbol: str
    side: Side
    price: Decimal | None
    qty: Decimal
    post_only: bool = True
    #: CumQty(14) the venue last reported for this order chain (FIX counts it across replaces).
    cum_qty: Decimal = Decimal(0)


class TrueXConnector:
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
        self._initiator: Any = None
        self._app: ClientApp | None = None
        #: NewOrderSingle from pre-rendered text (templates.py): one parse instead of ~15 setField calls.
        self._templates = Templates(self._config.dictionary_dir)
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

    @property
    def status_capabilities(self) -> StatusCapabilities:
        """35=H/35=AF only where configured; otherwise status comes from a cancel's answer (module docstring)."""
        if self._config.status_requests:
            return StatusCapabilities(order_status=True, open_orders=True, status_by_cancel=False)
        return StatusCapabilities(order_status=True, open_orders=False, status_by_cancel=True)

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
        self._loop = asyncio.get_running_loop()
        self._handoff.clear()  # nothing from a previous loop runs on this one
        self._handoff_scheduled = False
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
        for kind in (OE, MD):
            if self._logged_on[kind]:
                self._set_down(kind, "disconnected by us", now_ns())

    # -- called from QuickFIX threads ------------------------------------------

    def kind_of(self, session_id: fix.SessionID) -> str:
        kind = self._kinds_by_id.get(session_id.toString())  # one call into QuickFIX, not four
        if kind is not None:
            return kind
        key = (session_id.getSenderCompID().getValue(), session_id.getTargetCompID().getValue())
        return self._kinds.get(key, "?")

    def received(self, session_id: fix.SessionID, raw: str, ts_recv: int) -> None:
        """An application message arrived (QuickFIX thread): proof of life for the watchdog, then the loop."""
        kind = self.kind_of(session_id)
        if kind == OE and ts_recv > self._watchdog.last_recv_ns:
            self._watchdog.last_recv_ns = ts_recv
        self._call_soon(self._on_message, kind, raw, ts_recv)

    def post(self, session_id: fix.SessionID, raw: str, ts_recv: int) -> None:
        """Hand a copied message to the loop (thread-safe)."""
        self._call_soon(self._on_message, self.kind_of(session_id), raw, ts_recv)

    def note_recv(self, session_id: fix.SessionID, ts_recv: int) -> None:
        """Anything arrived on OE (any thread): the watchdog's proof of life."""
        if self.kind_of(session_id) == OE and ts_recv > self._watchdog.last_recv_ns:
            self._watchdog.last_recv_ns = ts_recv

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

    def post_status(self, session_id: fix.SessionID, up: bool, ts_recv: int) -> None:
        self._call_soon(self._on_session, self.kind_of(session_id), up, ts_recv)

    def _call_soon(self, fn: Any, *args: object) -> None:
        """Queue ``fn(*args)`` for the loop, in arrival order; one loop wake-up per batch, not per message.

        A QuickFIX thread appends to ``_handoff`` and wakes the loop
        (``call_soon_threadsafe``, a write to the loop's self-pipe) only if no
        drain is already scheduled; the drain clears the flag before it looks
        at the queue, so an item is either seen by a drain already under way
        or schedules the next one. Order is one FIFO for messages and session
        status alike, as with one ``call_soon_threadsafe`` per item before.
        """
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        self._handoff.append((fn, args))
        if not self._handoff_scheduled:
            self._handoff_scheduled = True
            with contextlib.suppress(RuntimeError):  # loop closed during shutdown
                loop.call_soon_threadsafe(self._run_handoff)

    def _run_handoff(self) -> None:
        """Loop side of ``_call_soon``: run what was queued up to now (later items get their own wake-up)."""
        self._handoff_scheduled = False
        handoff = self._handoff
        for _ in range(len(handoff)):
            fn, args = handoff.popleft()
            try:
                fn(*args)
            except Exception as exc:  # as the loop would for a callback of its own: report, run the rest
                assert self._loop is not None
                self._loop.call_exception_handler(
                    {"message": f"TrueX handoff {getattr(fn, '__name__', fn)} failed", "exception": exc}
                )

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
            message = m.order_status_request(client_id, info.side, info.symbol, request_id, self._config.party_id)
            if not self._send(OE, message):
                self._inbox_requests.discard(request_id)
                self._inbox.put(OrderQueryFailed(self.venue, client_id, "OE session down", now_ns()))
        request_id = self._ids.next("m")
        self._inbox_requests.add(request_id)
        if not self._send(OE, m.order_mass_status_request(request_id, None, self._config.party_id)):
            self._inbox_requests.discard(request_id)

    # -- loop side: incoming messages ------------------------------------------

    def _on_message(self, kind: str, raw: str, ts_recv: int) -> None:
        try:
            msg = m.RawMessage(raw)
            self._dispatch(kind, msg, ts_recv)
        except (ValueError, KeyError, ArithmeticError) as exc:
            self.malformed += 1
            self._log.warning("malformed {} message: {} | {}", kind, exc, m.redact(raw))
            self._inbox.put(MalformedMessage(self.venue, str(exc), m.redact(raw), ts_recv))

    def _dispatch(self, kind: str, msg: m.RawMessage, ts_recv: int) -> None:
        msg_type = msg.msg_type
        if kind == OE:
            answered = tuple(msg.get(tag) or "" for tag in (m.T_CLORDID, m.T_ORIG_CLORDID, m.T_BIZ_REJECT_REF_ID))
            self._watchdog.received(ts_recv, answered)
        if msg_type == "8":
            self._on_execution_report(msg, ts_recv)
        elif msg_type == "9":
            if self._on_probe_reject(msg, ts_recv):
                return
            self._check_cum_qty(msg, ts_recv)
            rejected = m.parse_cancel_reject(msg, self.venue, ts_recv)
            self._cancels.pop(msg.get(m.T_CLORDID) or "", None)
            if rejected.is_replace and rejected.new_client_id:
                self._orders.pop(rejected.new_client_id, None)
            self._inbox.put(rejected)
        elif msg_type == "j":
            self._on_business_reject(m.parse_business_reject(msg), ts_recv)
        elif msg_type == "W":
            snapshot = m.parse_snapshot(msg, self.venue, ts_recv)
            self._inbox.put(snapshot)
        elif msg_type == "X":
            for event in m.parse_incremental(msg, self.venue, next(iter(self._md_symbols), ""), ts_recv):
                if isinstance(event, Trade) and event.symbol not in self._trade_symbols:
                    continue
                self._inbox.put(event)
        elif msg_type == "Y":
            self._log.error("market data request rejected: {}", msg.get(m.T_TEXT))
        elif msg_type == "5":
            self._logout_reason[kind] = msg.get(m.T_TEXT) or "logout"
            if not self._ever_logged_on[kind]:
                self._refused.set()
            (self._log.info if self._closing else self._log.warning)(
                "{} logout from venue: {}", kind, self._logout_reason[kind])
        elif msg_type == "3":
            self._on_session_reject(msg, ts_recv)
        else:
            self._log.debug("ignoring {} on {}", msg_type, kind)

    def _on_execution_report(self, msg: m.RawMessage, ts_recv: int) -> None:
        if msg.get(m.T_EXEC_TYPE) == "4" and (msg.get(m.T_CLORDID) or "") in self._probes:
            self._on_probe_canceled(msg, ts_recv)
            return
        parsed = m.parse_execution_report(msg, self.venue, ts_recv)
        if isinstance(parsed, m.StatusAnswer):
            self._on_status_answer(parsed)
            return
        events = [self._with_fee(e, msg) if isinstance(e, Fill) else e for e in parsed]
        for event in events:
            if isinstance(event, Fill):
                self._note_fill(event)
            self._track(event, msg)
        self._check_cum_qty(msg, ts_recv)
        for event in events:
            self._inbox.put(event)

    # -- fees and CumQty checks ----------------------------------------------------

    def _with_fee(self, fill: Fill, msg: m.RawMessage) -> Fill:
        """Without Commission(12), charge the venue's schedule (conf/venues/truex.yml)."""
        if msg.get(m.T_COMMISSION) is not None:
            return fill
        fee = self._rules.fees.fee(fill.price * fill.qty, fill.liquidity is Liquidity.MAKER)
        instrument = next((i for i in self._rules.instruments if self._rules.venue_symbol(i.symbol) == fill.symbol),
                          None)
        currency = msg.get(m.T_COMM_CCY) or (instrument.quote if instrument is not None else fill.fee_currency)
        return attrs.evolve(fill, fee=fee, fee_currency=currency)

    def _note_fill(self, fill: Fill) -> None:
        if not fill.venue_order_id:
            return
        seen, total = self._passed_fills.get(fill.venue_order_id, (set(), Decimal(0)))
        if fill.trade_id in seen:
            return
        seen.add(fill.trade_id)
        self._passed_fills[fill.venue_order_id] = (seen, total + fill.qty)
        if len(self._passed_fills) > 20_000:
            for key in list(self._passed_fills)[:10_000]:
                del self._passed_fills[key]

    def _check_cum_qty(self, msg: m.RawMessage, ts_recv: int) -> None:
        """Venue's CumQty above the fills passed on for that OrderID: report it (fills were lost)."""
        cum = msg.get(m.T_CUM_QTY)
        order_id = msg.get(m.T_ORDER_ID) or ""
        if cum is None or not order_id or order_id == "NONE":
            return
        venue_cum = Decimal(cum)
        passed = self._passed_fills.get(order_id, (set(), Decimal(0)))[1]
        if venue_cum <= passed:
            return
        report = self._report_from(msg, msg.get(m.T_CLORDID) or "", ts_recv)
        if report is None:
            return
        self.cum_qty_mismatches += 1
        self._log.error(
            "venue counts {} filled on order {} ({}), fills passed on: {}",
            venue_cum, order_id, report.client_id, passed,
        )
        # The venue's count is now what we pass on: the engine books the difference once.
        seen = self._passed_fills.get(order_id, (set(), Decimal(0)))[0]
        self._passed_fills[order_id] = (seen, venue_cum)
        self._inbox.put(report)

    def _report_from(self, msg: m.RawMessage, client_id: str, ts_recv: int) -> OrderStatusReport | None:
        """An OrderStatusReport from any 8/9 that carries OrdStatus and CumQty (None if it cannot be read)."""
        status = m.STATUS_FROM_CODE.get(msg.get(m.T_ORD_STATUS) or "")
        cum = msg.get(m.T_CUM_QTY)
        if status is None or cum is None:
            return None
        orig = msg.get(m.T_ORIG_CLORDID)
        if msg.msg_type == "9" or (msg.get(m.T_EXEC_TYPE) == "4" and orig):
            client_id = orig or client_id  # a cancel's ClOrdID is the cancel's; the order is OrigClOrdID
        info = self._orders.get(client_id)
        side_code = msg.get(m.T_SIDE)
        side = m.SIDE_FROM_CODE.get(side_code, info.side if info else Side.BUY) if side_code else (
            info.side if info else Side.BUY)
        qty_text, price_text, avg_text = msg.get(m.T_QTY), msg.get(m.T_PRICE), msg.get(m.T_AVG_PX)
        return OrderStatusReport(
            venue=self.venue,
            client_id=client_id,
            venue_order_id=msg.get(m.T_ORDER_ID) or "",
            symbol=msg.get(m.T_SYMBOL) or (info.symbol if info else ""),
            side=side,
            price=Decimal(price_text) if price_text else (info.price if info else None),
            qty=Decimal(qty_text) if qty_text else (info.qty if info else Decimal(cum)),
            filled_qty=Decimal(cum),
            status=status,
            ts_event=ts_recv,
            ts_recv=ts_recv,
            avg_px=Decimal(avg_text) if avg_text else None,
        )

    # -- status probes by cancel (TrueX's published set) -----------------------------

    def _probe(
        self, client_id: str, symbol: str, future: asyncio.Future[OrderStatusReport | OrderNotFound] | None
    ) -> bool:
        """Send a 35=F whose answer is this order's status (see the module docstring); False if not sent."""
        info = self._orders.get(client_id)
        probe_id = self._ids.next("p")
        message = m.order_cancel_request(
            probe_id, client_id, side=info.side if info else Side.BUY,
            symbol=info.symbol if info else self._rules.venue_symbol(symbol),
            party_id=self._config.party_id, ts_ns=now_ns(),
        )  # fmt: skip
        self._probes[probe_id] = (client_id, future)
        if not self._send(OE, message):
            self._probes.pop(probe_id, None)
            return False
        return True

    def _answer_probe(self, probe_id: str, event: OrderStatusReport | OrderNotFound) -> None:
        client_id, future = self._probes.pop(probe_id)
        if isinstance(event, OrderNotFound) or not event.status.is_open:
            self._orders.pop(client_id, None)
        if future is not None:
            if not future.done():
                future.set_result(event)
        else:
            self._inbox.put(event)

    def _on_probe_canceled(self, msg: m.RawMessage, ts_recv: int) -> None:
        probe_id = msg.get(m.T_CLORDID) or ""
        client_id = self._probes[probe_id][0]
        self._check_cum_qty_quiet(msg)
        report = self._report_from(msg, client_id, ts_recv)
        if report is None:
            report = OrderStatusReport(
                self.venue, client_id, msg.get(m.T_ORDER_ID) or "", msg.get(m.T_SYMBOL) or "", Side.BUY, None,
                Decimal(0), Decimal(0), VenueOrderStatus.CANCELED, ts_recv, ts_recv,
            )  # fmt: skip
        self._answer_probe(probe_id, attrs.evolve(report, client_id=client_id))

    def _on_probe_reject(self, msg: m.RawMessage, ts_recv: int) -> bool:
        probe_id = msg.get(m.T_CLORDID) or ""
        if probe_id not in self._probes:
            return False
        client_id, future = self._probes[probe_id]
        known = (msg.get(m.T_ORDER_ID) or "NONE") != "NONE"
        report = self._report_from(msg, client_id, ts_recv) if known else None
        if known and report is None:
            # The venue knows the order but did not say how much of it filled: never guess (a guess of 0
            # could hide a fill). Treat it as "could not ask"; recovery refuses, the tracker asks again.
            del self._probes[probe_id]
            text = "cancel reject without OrdStatus/CumQty"
            if future is not None and not future.done():
                future.set_exception(TransientVenueError(f"{client_id}: {text}"))
            elif future is None:
                self._inbox.put(OrderQueryFailed(self.venue, client_id, text, ts_recv))
        elif report is None:
            self._answer_probe(probe_id, OrderNotFound(self.venue, client_id, ts_recv))
        else:
            self._check_cum_qty_quiet(msg)
            self._answer_probe(probe_id, attrs.evolve(report, client_id=client_id))
        return True

    def _check_cum_qty_quiet(self, msg: m.RawMessage) -> None:
        """A probe's own answer carries the CumQty to the engine; only move our count up to it."""
        cum, order_id = msg.get(m.T_CUM_QTY), msg.get(m.T_ORDER_ID) or ""
        if cum is not None and order_id and order_id != "NONE":
            seen, passed = self._passed_fills.get(order_id, (set(), Decimal(0)))
            self._passed_fills[order_id] = (seen, max(passed, Decimal(cum)))

    def _track(self, event: VenueEvent, msg: m.RawMessage) -> None:
        """Keep the side/symbol registry in step with the venue (loop thread only)."""
        cum_text = msg.get(m.T_CUM_QTY)
        tracked = self._orders.get(getattr(event, "client_id", ""))
        if cum_text and tracked is not None:
            tracked.cum_qty = Decimal(cum_text)
        if isinstance(event, OrderCanceled):
            self._orders.pop(event.client_id, None)
            self._cancels.pop(msg.get(m.T_CLORDID) or "", None)
        elif isinstance(event, OrderRejected | OrderExpired):
            self._orders.pop(event.client_id, None)
        elif isinstance(event, OrderReplaced):
            old = self._orders.pop(event.orig_client_id, None)
            info = self._orders.get(event.client_id) or old
            if info is not None:
                info.price, info.qty = event.price, event.qty
                self._orders[event.client_id] = info
        elif isinstance(event, Fill) and msg.get(m.T_ORD_STATUS) == "2":
            self._orders.pop(event.client_id, None)

    def _on_status_answer(self, answer: m.StatusAnswer) -> None:
        event = answer.event
        if isinstance(event, OrderStatusReport):
            if event.status.is_open:
                self._orders.setdefault(
                    event.client_id, _OrderInfo(event.symbol, event.side, event.price, event.qty - event.filled_qty)
                )
            else:
                self._orders.pop(event.client_id, None)
        elif isinstance(event, OrderNotFound):
            self._orders.pop(event.client_id, None)
        if answer.status_req_id is not None:
            req = answer.status_req_id
            waiter = self._status_waiters.pop(req, None)
            if waiter is not None and event is not None and not waiter[1].done():
                waiter[1].set_result(event)
            elif req in self._inbox_requests and event is not None:
                self._inbox_requests.discard(req)
                self._inbox.put(event)
            return
        if answer.mass_req_id is not None:
            req = answer.mass_req_id
            mass = self._mass_waiters.get(req)
            if mass is not None:
                if isinstance(event, OrderStatusReport):
                    mass[1].append(event)
                if answer.last_report:
                    del self._mass_waiters[req]
                    if not mass[0].done():
                        mass[0].set_result(mass[1])
            elif req in self._inbox_requests:
                # orders already asked about one by one (35=H) are not reported twice
                if isinstance(event, OrderStatusReport) and event.client_id not in self._reconciling:
                    self._inbox.put(event)
                if answer.last_report:
                    self._inbox_requests.discard(req)
            return
        if event is not None:  # unsolicited status: still useful to the tracker
            self._inbox.put(event)

    def _on_business_reject(self, reject: m.BusinessReject, ts_recv: int) -> None:
        reason = m.map_reject(reject.reason_code if reject.reason_code != "0" else None, reject.text)
        self._reject_reference(reject.ref_msg_type, reject.ref_id, reason, reject.text or "business reject", ts_recv)

    def _on_session_reject(self, msg: m.RawMessage, ts_recv: int) -> None:
        ref_seq = msg.get(45)
        sent = self._app.sent.get(int(ref_seq)) if (self._app is not None and ref_seq) else None
        text = msg.get(m.T_TEXT) or "session reject"
        if sent is None:
            self._log.warning("session reject of an unknown message: {}", text)
            return
        self._reject_reference(sent[0], sent[1], RejectReason.INVALID_MESSAGE, text, ts_recv)

    def _reject_reference(self, msg_type: str, ref_id: str, reason: RejectReason, text: str, ts_recv: int) -> None:
        """Turn a reject of one of our requests (35=j or 35=3) into the matching order event."""
        if msg_type == "D":
            self._orders.pop(ref_id, None)
            self._inbox.put(OrderRejected(self.venue, ref_id, reason, text, ts_recv, ts_recv))
        elif msg_type == "F" and ref_id in self._probes:
            client_id, probe_future = self._probes.pop(ref_id)
            if probe_future is not None and not probe_future.done():
                probe_future.set_exception(TransientVenueError(f"status probe refused: {text}"))
            elif probe_future is None:
                self._inbox.put(OrderQueryFailed(self.venue, client_id, text, ts_recv))
        elif msg_type == "F":
            orig = self._cancels.pop(ref_id, ref_id)
            self._inbox.put(OrderCancelRejected(self.venue, orig, reason, text, ts_recv, ts_recv))
        elif msg_type == "G":
            self._orders.pop(ref_id, None)
            self._log.warning("replace {} rejected: {}", ref_id, text)
            orig = self._cancels.pop(ref_id, ref_id)
            self._inbox.put(
                OrderCancelRejected(
                    self.venue, orig, reason, text, ts_recv, ts_recv, is_replace=True, new_client_id=ref_id
                )
            )
        elif msg_type == "H":
            self._inbox.put(OrderQueryFailed(self.venue, ref_id, text, ts_recv))
        else:
            self._log.warning("{} rejected by venue: {}", msg_type, text)

    # -- submit-only order entry -----------------------------------------------

    def _send(self, kind: str, message: fix.Message) -> bool:
        """True if QuickFIX took the message for sending; False = not sent (logged out)."""
        if not self._logged_on[kind]:
            return False
        try:
            return bool(fix.Session.sendToTarget(message, self._session_ids[kind]))
        except fix.SessionNotFound:
            return False

    def place(self, order: OrderRequest) -> None:
        ts = now_ns()
        symbol = self._rules.venue_symbol(order.symbol)
        message = self._templates.new_order_single(order, self._config.party_id, symbol, ts)
        self._orders[order.client_id] = _OrderInfo(symbol, order.side, order.price, order.qty, order.post_only)
        self._watchdog.sent(order.client_id, ts)
        if not self._send(OE, message):
            self._orders.pop(order.client_id, None)
            self._inbox.put(
                OrderRejected(self.venue, order.client_id, RejectReason.NOT_CONNECTED, "OE session down", ts, ts)
            )

    def cancel(self, client_id: str, symbol: str) -> None:
        ts = now_ns()
        info = self._orders.get(client_id)
        if info is None:
            self._inbox.put(
                OrderCancelRejected(self.venue, client_id, RejectReason.UNKNOWN_ORDER, "order not known", ts, ts)
            )
            return
        cancel_id = self._ids.next("c")
        message = m.order_cancel_request(
            cancel_id, client_id, side=info.side, symbol=info.symbol, party_id=self._config.party_id, ts_ns=ts
        )
        self._cancels[cancel_id] = client_id
        self._watchdog.sent(cancel_id, ts)
        if not self._send(OE, message):
            self._cancels.pop(cancel_id, None)
            self._inbox.put(
                OrderCancelRejected(self.venue, client_id, RejectReason.NOT_CONNECTED, "OE session down", ts, ts)
            )

    def replace(self, request: ReplaceRequest) -> None:
        ts = now_ns()
        info = self._orders.get(request.orig_client_id)
        symbol = info.symbol if info is not None else self._rules.venue_symbol(request.symbol)
        post_only = info.post_only if info is not None else True
        cum_qty = info.cum_qty if info is not None else Decimal(0)
        message = m.cancel_replace_request(
            request.client_id,
            request.orig_client_id,
            side=request.side,
            symbol=symbol,
            price=request.price,
            qty=request.qty + cum_qty,  # ReplaceRequest.qty is open quantity; OrderQty(38) is the chain's total
            party_id=self._config.party_id,
            ts_ns=ts,
            post_only=post_only,
        )
        self._orders.setdefault(
            request.client_id, _OrderInfo(symbol, request.side, request.price, request.qty, post_only, cum_qty)
        )
        self._cancels[request.client_id] = request.orig_client_id
        self._watchdog.sent(request.client_id, ts)
        if not self._send(OE, message):
            self._orders.pop(request.client_id, None)
            self._cancels.pop(request.client_id, None)
            self._inbox.put(
                OrderCancelRejected(
                    self.venue,
                    request.orig_client_id,
                    RejectReason.NOT_CONNECTED,
                    "OE session down",
                    ts,
                    ts,
                    is_replace=True,
                    new_client_id=request.client_id,
                )
            )

    def cancel_all(self, symbol: str | None = None) -> None:
        """TrueX has no mass cancel among its public messages: one 35=F per order we know to be live."""
        venue_symbol = None if symbol is None else self._rules.venue_symbol(symbol)
        pending = set(self._cancels.values())
        for client_id, info in list(self._orders.items()):
            if venue_symbol is None or info.symbol == venue_symbol:
                if client_id in pending:
                    continue
                self.cancel(client_id, info.symbol)

    def request_order_status(self, client_id: str, symbol: str) -> None:
        if not self._config.status_requests:
            if not self._probe(client_id, symbol, None):
                self._inbox.put(OrderQueryFailed(self.venue, client_id, "OE session down", now_ns()))
            return
        info = self._orders.get(client_id)
        side = info.side if info is not None else Side.BUY  # TrueX looks orders up by ClOrdID
        request_id = self._ids.next("s")
        message = m.order_status_request(
            client_id, side, self._rules.venue_symbol(symbol), request_id, self._config.party_id
        )
        self._inbox_requests.add(request_id)
        if not self._send(OE, message):
            self._inbox_requests.discard(request_id)
            self._inbox.put(OrderQueryFailed(self.venue, client_id, "OE session down", now_ns()))

    # -- awaitable reconciliation ----------------------------------------------

    async def fetch_order_status(self, client_id: str, symbol: str) -> OrderStatusReport:
        loop = asyncio.get_running_loop()
        if not self._config.status_requests:
            return await self._fetch_by_probe(client_id, symbol)
        info = self._orders.get(client_id)
        request_id = self._ids.next("s")
        future: asyncio.Future[OrderStatusReport | OrderNotFound] = loop.create_future()
        self._status_waiters[request_id] = (client_id, future)
        message = m.order_status_request(
            client_id,
            info.side if info else Side.BUY,
            self._rules.venue_symbol(symbol),
            request_id,
            self._config.party_id,
        )
        if not self._send(OE, message):
            self._status_waiters.pop(request_id, None)
            raise NotConnectedError("OE session down")
        try:
            result = await asyncio.wait_for(future, timeout=float(self._config.request_timeout_s))
        except TimeoutError:
            self._status_waiters.pop(request_id, None)
            raise TransientVenueError(f"no status answer for {client_id} in time") from None
        if isinstance(result, OrderNotFound):
            raise OrderNotFoundError(client_id)
        return result

    async def _fetch_by_probe(self, client_id: str, symbol: str) -> OrderStatusReport:
        future: asyncio.Future[OrderStatusReport | OrderNotFound] = asyncio.get_running_loop().create_future()
        if not self._probe(client_id, symbol, future):
            raise NotConnectedError("OE session down")
        try:
            result = await asyncio.wait_for(future, timeout=float(self._config.request_timeout_s))
        except TimeoutError:
            for probe_id, (_, waiting) in list(self._probes.items()):
                if waiting is future:
                    del self._probes[probe_id]
            raise TransientVenueError(f"no answer to the status probe of {client_id} in time") from None
        if isinstance(result, OrderNotFound):
            raise OrderNotFoundError(client_id)
        return result

    def _own_open_orders(self, symbol: str | None) -> list[OrderStatusReport]:
        """Without 35=AF: the orders this connector saw acknowledged and not finished (module docstring)."""
        venue_symbol = None if symbol is None else self._rules.venue_symbol(symbol)
        ts = now_ns()
        return [
            OrderStatusReport(
                self.venue, client_id, "", info.symbol, info.side, info.price, info.qty, info.cum_qty,
                VenueOrderStatus.PARTIALLY_FILLED if info.cum_qty > 0 else VenueOrderStatus.NEW, ts, ts,
            )
            for client_id, info in self._orders.items()
            if venue_symbol is None or info.symbol == venue_symbol
        ]

    async def fetch_open_orders(self, symbol: str | None = None) -> list[OrderStatusReport]:
        loop = asyncio.get_running_loop()
        if not self._config.status_requests:
            if not self._logged_on[OE]:
                raise NotConnectedError("OE session down")
            return self._own_open_orders(symbol)
        request_id = self._ids.next("m")
        future: asyncio.Future[list[OrderStatusReport]] = loop.create_future()
        self._mass_waiters[request_id] = (future, [])
        venue_symbol = None if symbol is None else self._rules.venue_symbol(symbol)
        if not self._send(OE, m.order_mass_status_request(request_id, venue_symbol, self._config.party_id)):
            self._mass_waiters.pop(request_id, None)
            raise NotConnectedError("OE session down")
        try:
            reports = await asyncio.wait_for(future, timeout=float(self._config.request_timeout_s))
        except TimeoutError:
            self._mass_waiters.pop(request_id, None)
            raise TransientVenueError("no mass status answer in time") from None
        return [r for r in reports if r.status.is_open]

    async def fetch_balances(self) -> list[Balance]:
        """TrueX's FIX API has no balance query; balances come from the desk's own ledger."""
        return []

    async def fetch_fills(self, symbol: str, since_ns: int) -> list[Fill]:
        """No fill history over FIX (``rules.supports_fill_history`` is False)."""
        return []

    # -- market data -----------------------------------------------------------

    def subscribe_book(self, symbol: str) -> None:
        venue_symbol = self._rules.venue_symbol(symbol)
        new = venue_symbol not in self._md_symbols
        self._md_symbols.add(venue_symbol)
        if new and self._logged_on[MD]:
            self._send_md_request(venue_symbol)

    def subscribe_trades(self, symbol: str) -> None:
        venue_symbol = self._rules.venue_symbol(symbol)
        self._trade_symbols.add(venue_symbol)
        self.subscribe_book(symbol)

    def request_resync(self, symbol: str) -> None:
        """Ask for a fresh snapshot (a new 35=V) after the book tracker saw a gap."""
        self._send_md_request(self._rules.venue_symbol(symbol))

    def _send_md_request(self, symbol: str) -> None:
        if not self._send(MD, m.market_data_request(self._ids.next("v"), symbol)):
            self._log.warning("market data request for {} not sent: MD session down", symbol)

    def drain(self) -> list[VenueEvent]:
        return self._inbox.drain()
