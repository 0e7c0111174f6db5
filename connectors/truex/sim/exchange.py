"""The local TrueX FIX exchange: a QuickFIX acceptor for the OE and MD sessions.

It plays TrueX for tests, benchmarks and ``make demo``: it verifies the HMAC
logon (bad signature -> Logout with a reason), enforces the venue's rules
with TrueX-style rejects, matches on :class:`mmkit.sim.matching.MatchingEngine`
and publishes its book as 35=W snapshots and 35=X increments with an
application sequence number (1181) that a client can check for gaps.

Threads: QuickFIX callbacks (one acceptor thread) and the market driver
thread both act under one lock, but never send while holding it: QuickFIX
holds a session's mutex while it calls ``onLogout`` (and ``toApp`` on a
resend), and ``sendToTarget`` needs that mutex, so sending under our lock
deadlocked against a logout. Messages are queued under the lock on the
``outbox`` (so they leave in the order they happened) and sent, in that
order, holding no lock of ours: by the sender thread, or, for the answers to
a client's message, by the QuickFIX thread itself once it has left the lock.

Tests ask the exchange for its OWN view of open orders (``open_orders``),
never the client's belief. For tests that run the exchange in another
process (the SIGKILL restart test), ``fills_log`` makes it append one JSON
line per client execution as it happens, and ``orders_snapshot`` /
``write_state`` expose its final order records: the venue's own record,
to check the engine's ledger against.

The exchange is split by job: this module holds the sessions (logon
checks, disconnects), the lifecycle and the queries tests use;
``order_entry`` what it does with a client's D/F/G/H/AF, ``fills`` the trade
reports and fills log after a match, ``records`` the plain data, ``reports``
the FIX answers it builds, ``market_data`` the MD side and the book levels,
``rules`` the venue's checks.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import quickfix as fix
from loguru import logger

from connectors.truex import fix_tags, raw_message
from connectors.truex.dictionary import CONF_FIX_DIR
from connectors.truex.session import GuardedApplication, SessionSpec, build_settings, session_key
from connectors.truex.signing import LogonFields, load_signer, verify
from connectors.truex.sim.fills import FillReporter
from connectors.truex.sim.hostile import bad_trade, send_bad_trade
from connectors.truex.sim.market_data import MarketDataPublisher
from connectors.truex.sim.order_entry import OrderEntryHandler
from connectors.truex.sim.outbox import Outbox, send_to_target
from connectors.truex.sim.records import (
    MAKER_OWNER,
    MD_COMP_ID,
    OE_COMP_ID,
    TAKER_OWNER,
    ExchangeAccount,
    ExchangeConfig,
    ExchangeStats,
    _owner,
    _Record,
)
from connectors.truex.sim.reports import ReportBuilder
from connectors.truex.sim.rules import DuplicateGuard, SlidingWindowLimiter
from connectors.truex.sim.tamper import check_kind, send_skipping_marked, shift_sending_time_if_marked
from connectors.truex.templates import Templates
from mmkit.model import Side, TimeInForce, VenueOrderStatus
from mmkit.sim.matching import Execution, MatchingEngine, MatchResult, RestingOrder, SimOrder

__all__ = [
    "MAKER_OWNER",
    "MD_COMP_ID",
    "OE_COMP_ID",
    "TAKER_OWNER",
    "ExchangeAccount",
    "ExchangeConfig",
    "ExchangeStats",
    "TrueXExchange",
    "default_dictionary_dir",
]


class TrueXExchange(OrderEntryHandler, FillReporter, MarketDataPublisher, ReportBuilder, GuardedApplication):
    """QuickFIX acceptor + matching engine playing TrueX. ``start()`` / ``stop()``; thread-safe queries."""

    def __init__(self, config: ExchangeConfig) -> None:
        super().__init__("truex.sim", config.log_messages)
        self.config = config
        self.instrument = config.rules.instrument(config.symbol)
        #: Unique per start unless configured: ExecIDs (trade id + M/T) and OrderIDs never repeat across restarts.
        self.id_epoch = config.id_epoch if config.id_epoch is not None else f"{time.time_ns() // 1000:x}"
        self.engine = MatchingEngine(self.instrument, trade_id_prefix=f"TX{self.id_epoch}-")
        self.stats = ExchangeStats()
        self._lock = threading.RLock()
        #: Every outgoing message goes through here, never straight to QuickFIX (see the module docstring).
        # tamper "skipped" (fault tests only) sends through a check that costs a call into QuickFIX per message
        sender = send_skipping_marked if config.tamper == "skipped" else send_to_target
        self.outbox = Outbox("truex-sim", sender, never_send_under=self._lock)
        self.templates = Templates(config.dictionary_dir, ("8", "9"))
        self._signer = load_signer(config.signer)
        self._accounts_by_comp = {}
        for account in config.accounts:
            self._accounts_by_comp[account.oe_comp_id] = account
            self._accounts_by_comp[account.md_comp_id] = account
        self._oe_sessions = {
            a.oe_comp_id: SessionSpec(config.oe_comp_id, a.oe_comp_id, config.oe_port) for a in config.accounts
        }
        self._md_sessions = {
            a.md_comp_id: SessionSpec(config.md_comp_id, a.md_comp_id, config.md_port) for a in config.accounts
        }
        self._logged_on: set[tuple[str, str]] = set()
        #: Notified when a session logs on. QuickFIX sends the Logon reply before it calls onLogon, so a client
        #: can see itself logged on before this side has recorded it: a caller that needs both waits on this.
        self._logons = threading.Condition(self._lock)
        self._keys_by_id: dict[str, tuple[str, str]] = {}  # SessionID text -> session_key (never changes)
        self._refused: dict[tuple[str, str], str] = {}
        self._disabled: set[str] = set()
        self._records: dict[tuple[str, str], _Record] = {}
        self._limiters: dict[str, SlidingWindowLimiter] = {}
        self._dupes = DuplicateGuard(config.rules.duplicate_order_window_ns)
        self._ids = itertools.count(1)
        self._md_subscribers: dict[str, str] = {}  # MD comp id -> MDReqID
        self._md_seq = 0
        # aggregated L2 kept in step with the engine, so a book change costs O(levels touched), not O(depth)
        self._levels: dict[Side, dict[Decimal, Decimal]] = {Side.BUY: {}, Side.SELL: {}}
        self._published: dict[Side, set[Decimal]] = {Side.BUY: set(), Side.SELL: set()}
        self._dirty: set[tuple[Side, Decimal]] = set()
        self.reference_price: Decimal | None = None
        self._enforce_rate_limits = config.enforce_rate_limits
        self._acceptor: fix.SocketAcceptor | None = None
        cod = config.cancel_on_disconnect
        self._cancel_on_disconnect = config.rules.cancel_on_disconnect if cod is None else cod
        self._log = logger.bind(venue="truex-sim")
        self._fills_file: IO[str] | None = None
        self._hostile_sent: set[str] = set()
        self._tampered: set[str] = set()
        if config.tamper is not None:
            check_kind(config.tamper)
        if config.hostile is not None:
            bad_trade(config.hostile, {"exec_id": "x", "qty": "1", "price": "1"})  # an unknown kind fails here

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        if self.config.fills_log is not None and self._fills_file is None:
            # Line-buffered append: every execution is on disk (in the OS) before the client hears of it,
            # so a test can compare it with the client's ledger even after killing either side.
            path = Path(self.config.fills_log)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fills_file = path.open("a", encoding="utf-8", buffering=1)
        specs = [*self._oe_sessions.values(), *self._md_sessions.values()]
        settings = build_settings("acceptor", specs, self.config.dictionary_dir)
        self.outbox.start()
        self._acceptor = fix.SocketAcceptor(self, fix.MemoryStoreFactory(), settings)
        self._acceptor.start()

    def stop(self) -> None:
        """Send what is queued (bounded), then drop every session; returns promptly with clients connected.

        No lock of ours is held here, so the QuickFIX threads' ``onLogout``
        callbacks (run while the acceptor disconnects the sessions) can finish.
        """
        self.outbox.stop()
        acceptor, self._acceptor = self._acceptor, None
        if acceptor is not None:
            acceptor.stop(True)
        with self._lock:
            fills_file, self._fills_file = self._fills_file, None
        if fills_file is not None:
            fills_file.close()

    # -- queries for tests and the driver (thread-safe) ---------------------------

    def open_orders(self, comp_id: str | None = None) -> list[RestingOrder]:
        """The exchange's own view of resting orders (of one client's OE comp id, or all clients)."""
        with self._lock:
            if comp_id is not None:
                return self.engine.orders_of(_owner(comp_id))
            return [o for a in self.config.accounts for o in self.engine.orders_of(_owner(a.oe_comp_id))]

    def orders_snapshot(self, comp_id: str | None = None) -> list[dict[str, str]]:
        """Every client order the exchange remembers (open or not), as exact strings, in arrival order.

        One entry per ClOrdID: a replace leaves the old one CANCELED and the new
        one carrying the order's cumulative quantity.
        """
        with self._lock:
            owners = {_owner(comp_id)} if comp_id is not None else {_owner(a.oe_comp_id) for a in self.config.accounts}
            return [
                {
                    "clordid": r.client_id,
                    "order_id": r.order_id,
                    "comp_id": r.owner.removeprefix("client:"),
                    "side": r.side.value,
                    "price": str(r.price),
                    "qty": str(r.qty),
                    "cum_qty": str(r.cum_qty),
                    "status": r.status.value,
                }
                for r in self._records.values()
                if r.owner in owners
            ]

    def write_state(self, path: str | Path) -> None:
        """Write the exchange's own view (open orders and every order record) as one JSON document."""
        with self._lock:
            state: dict[str, Any] = {
                "open_orders": [
                    {"clordid": o.client_id, "order_id": o.order_id, "side": o.side.value,
                     "price": str(o.price), "leaves_qty": str(o.leaves_qty)}
                    for o in self.open_orders()
                ],
                "orders": self.orders_snapshot(),
                "fills": self.stats.fills,
            }  # fmt: skip
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(state, indent=1), encoding="utf-8")

    def is_logged_on(self, comp_id: str) -> bool:
        with self._lock:
            return any(key[1] == comp_id for key in self._logged_on)

    def wait_logged_on(self, comp_id: str, timeout_s: float) -> bool:
        """Block until a session of ``comp_id`` is logged on here (True), or ``timeout_s`` passed (False)."""
        with self._logons:
            return self._logons.wait_for(lambda: any(key[1] == comp_id for key in self._logged_on), timeout_s)

    def mid(self) -> Decimal | None:
        with self._lock:
            return self._band_mid()

    @property
    def md_seq(self) -> int:
        return self._md_seq

    def set_reference_price(self, price: Decimal) -> None:
        with self._lock:
            self.reference_price = price

    def set_rate_limits(self, enforce: bool) -> None:
        """Lift (False) or restore the per-client order rate limits (benchmarks lift them)."""
        with self._lock:
            self._enforce_rate_limits = enforce

    def inject_md_gap(self) -> None:
        """Skip one MD sequence number without sending it, as a lost packet would."""
        with self._lock:
            self._md_seq += 1

    def drop_session(self, comp_id: str) -> None:
        """Disconnect a client's session abruptly (no logout), as a network failure would."""
        for sessions in (self._oe_sessions, self._md_sessions):
            spec = sessions.get(comp_id)
            if spec is not None:
                session = fix.Session.lookupSession(spec.session_id)
                if session is not None:
                    session.disconnect()

    def set_session_enabled(self, comp_id: str, enabled: bool) -> None:
        """Refuse (False) or allow again (True) logons of one client session, e.g. to keep it down in a test."""
        with self._lock:
            if enabled:
                self._disabled.discard(comp_id)
            else:
                self._disabled.add(comp_id)

    def forget_order(self, comp_id: str, client_id: str) -> bool:
        """Make the exchange lose an order entirely (tests of 'not found' handling)."""
        with self._lock:
            record = self._records.pop((_owner(comp_id), client_id), None)
            if record is None:
                return False
            self._engine_cancel(record.order_id, time.time_ns())
            self._publish_md(())
            return True

    def submit_taker(self, side: Side, qty: Decimal, limit: Decimal) -> MatchResult:
        """An IOC from the simulated crowd: fills whatever rests at or better than ``limit``."""
        with self._lock:
            order = SimOrder(
                self._next_id(), TAKER_OWNER, f"tk{next(self._ids)}", side, limit, qty, tif=TimeInForce.IOC
            )
            result = self._engine_submit(order, time.time_ns())
            self._after_match(result)
            return result

    def requote_maker(self, bids: Sequence[tuple[Decimal, Decimal]], asks: Sequence[tuple[Decimal, Decimal]]) -> None:
        """Replace the simulated makers' resting orders with these (price, qty) levels."""
        with self._lock:
            ts = time.time_ns()
            for resting in self.engine.orders_of(MAKER_OWNER):
                self._engine_cancel(resting.order_id, ts)
            executions: list[Execution] = []
            for side, levels in ((Side.BUY, bids), (Side.SELL, asks)):
                for price, qty in levels:
                    order = SimOrder(
                        self._next_id(), MAKER_OWNER, f"mk{next(self._ids)}", side, price, qty, post_only=True
                    )
                    executions.extend(self._engine_submit(order, ts).executions)
            self._publish_md(executions)

    # -- QuickFIX callbacks (acceptor thread) -------------------------------------

    def on_logon(self, session_id: fix.SessionID) -> None:
        key = session_key(session_id)
        with self._lock:
            if key not in self._refused:
                self._logged_on.add(key)
                self._logons.notify_all()

    def on_logout(self, session_id: fix.SessionID) -> None:
        key = session_key(session_id)
        with self._lock:
            self.outbox.session_ended(session_id)
            self._logged_on.discard(key)
            self._refused.pop(key, None)
            self._md_subscribers.pop(key[1], None)
            if key[0] == self.config.oe_comp_id and self._cancel_on_disconnect:
                ts = time.time_ns()
                for order in self.engine.orders_of(_owner(key[1])):
                    self._engine_cancel(order.order_id, ts)
                    record = self._records.get((order.owner, order.client_id))
                    if record is not None:
                        record.status = VenueOrderStatus.CANCELED
                self._publish_md(())

    def on_from_admin(self, message: fix.Message, session_id: fix.SessionID) -> None:
        """Verify the logon's API key and HMAC; a refused logon is answered with a Logout and a reason.

        Raising ``RejectLogon`` from Python aborts the process with this
        QuickFIX build (the C++ exception escapes the director), so a refusal
        is recorded here and the outgoing Logon reply is turned into a Logout
        in ``on_to_admin``.
        """
        header = message.getHeader()
        if header.getField(35) != "A":
            return
        key = session_key(session_id)
        account = self._accounts_by_comp.get(key[1])
        username = message.getField(fix_tags.T_USERNAME) if message.isSetField(fix_tags.T_USERNAME) else ""
        password = message.getField(fix_tags.T_PASSWORD) if message.isSetField(fix_tags.T_PASSWORD) else ""
        reason = ""
        if key[1] in self._disabled:
            reason = "Session disabled"
        elif account is None or username != account.api_key:
            reason = "Invalid API key"
        else:
            fields = LogonFields(
                sending_time=header.getField(52),
                msg_type="A",
                msg_seq_num=header.getField(34),
                sender_comp_id=header.getField(49),
                target_comp_id=header.getField(56),
                username=username,
            )
            if not verify(fields, account.secret, password, self._signer):
                reason = "Invalid signature"
        with self._lock:
            if reason:
                self.stats.bad_logons += 1
                self._refused[key] = reason
            else:
                self._refused.pop(key, None)

    def on_to_app(self, message: fix.Message, session_id: fix.SessionID) -> None:
        if self.config.tamper == "future_sending_time":  # fault tests only: no QuickFIX call per message otherwise
            shift_sending_time_if_marked(message)

    def on_to_admin(self, message: fix.Message, session_id: fix.SessionID) -> None:
        header = message.getHeader()
        if header.getField(35) != "A":
            return
        reason = self._refused.get(session_key(session_id))
        if reason is None:
            return
        header.setField(fix.MsgType("5"))
        for tag in (98, 108, 141, 789, 1137, 1409):
            if message.isSetField(tag):
                message.removeField(tag)
        message.setField(fix_tags.T_TEXT, reason)

    def on_from_app(self, message: fix.Message, session_id: fix.SessionID) -> None:
        text_id = session_id.toString()  # one call into QuickFIX; session_key takes four
        key = self._keys_by_id.get(text_id) or self._keys_by_id.setdefault(text_id, session_key(session_id))
        self.outbox.known_session(session_id, text_id)  # the answers' put() reuses the text
        raw = raw_message.RawMessage(message.toString())
        # The answers are queued under the lock (their order is the exchange's) and sent by this thread
        # once it has released the lock: no hand-off to the sender thread (outbox.py).
        with self.outbox.sending_after(), self._lock:
            if key in self._refused:
                return
            if key[0] == self.config.md_comp_id:
                self._on_md_message(raw, key[1], session_id)
            else:
                self._on_oe_message(raw, key[1], session_id)

    def _maybe_hostile(self, owner: str, exec_id: str, record: _Record, execution: Execution, is_maker: bool) -> None:
        """``config.hostile``: one bad trade report after a client's first real fill (fault tests)."""
        kind = self.config.hostile
        if kind is None or owner in self._hostile_sent:
            return
        self._hostile_sent.add(owner)
        fill = {
            "exec_id": exec_id, "clordid": record.client_id, "order_id": record.order_id,
            "side": record.side.value, "price": str(execution.price), "qty": str(execution.qty),
            "liquidity": "MAKER" if is_maker else "TAKER",
        }  # fmt: skip
        send_bad_trade(self, owner.removeprefix("client:"), fill, kind)

    # -- helpers -------------------------------------------------------------------

    def _band_mid(self) -> Decimal | None:
        if self.reference_price is not None:
            return self.reference_price
        return self.engine.mid()

    def _next_id(self) -> str:
        return f"O{self.id_epoch}-{next(self._ids)}"

    def _send(self, session_id: fix.SessionID, message: fix.Message) -> None:
        """Queue ``message`` for the sender thread; never calls QuickFIX (callers hold the lock)."""
        self.outbox.put(session_id, message)


def default_dictionary_dir() -> Path:
    return CONF_FIX_DIR
