"""QuickFIX plumbing shared by the TrueX client and the local TrueX exchange.

Two things live here:

* ``build_settings``: the session settings TrueX needs, built in code from
  our attrs config (no hand-edited .cfg drift). ``ResetOnLogon=Y`` instead of
  adding 141=Y ourselves (QuickFIX rewrites 34 after ``toAdmin`` if we add
  141, which breaks the logon signature); ``PersistMessages=N`` so that a
  resend request is answered with gap fills and a stale order is never
  replayed to the venue.
* ``GuardedApplication``: a ``quickfix.Application`` whose callbacks can
  never let a Python exception escape. An uncaught exception in a QuickFIX
  callback hangs the process, so every callback body runs inside a guard;
  only QuickFIX's own control exceptions (DoNotSend, RejectLogon, the field
  errors that make QuickFIX send a session Reject) are let through on purpose.
  Beware: with this QuickFIX build, DoNotSend and RejectLogon raised from
  Python abort the whole process (``terminate called after throwing an
  instance of 'FIX::DoNotSend'``), so neither is raised on a path that can be
  reached (tests/integration/truex/test_misrouted_send.py).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import attrs
import quickfix as fix
from loguru import logger

from connectors.truex.config import TlsConfig
from connectors.truex.fix_tags import BEGIN_STRING, T_ORIG_SENDING_TIME
from connectors.truex.raw_message import redact

APP_VER_ID = "FIX.5.0SP2"

#: Exceptions QuickFIX interprets (they are part of the callback contract, not bugs).
_QUICKFIX_CONTROL = (
    fix.DoNotSend,
    fix.RejectLogon,
    fix.FieldNotFound,
    fix.IncorrectDataFormat,
    fix.IncorrectTagValue,
    fix.UnsupportedMessageType,
)


@attrs.frozen(slots=True)
class SessionSpec:
    """One session as QuickFIX sees it: our comp id, theirs, and the socket."""

    sender_comp_id: str
    target_comp_id: str
    port: int
    host: str | None = None  # initiators only

    @property
    def session_id(self) -> fix.SessionID:
        return fix.SessionID(BEGIN_STRING, self.sender_comp_id, self.target_comp_id)


def build_settings(
    role: Literal["initiator", "acceptor"],
    sessions: Sequence[SessionSpec],
    dictionary_dir: str | Path,
    *,
    heartbeat_s: int = 10,
    reconnect_s: int = 1,
    tls: TlsConfig | None = None,
    store_dir: str | None = None,
) -> fix.SessionSettings:
    """QuickFIX settings for TrueX-style FIXT.1.1 / FIX 5.0 SP2 sessions."""
    directory = Path(dictionary_dir)
    settings = fix.SessionSettings()
    defaults = fix.Dictionary()
    values = {
        "ConnectionType": role,
        "DefaultApplVerID": APP_VER_ID,
        "TransportDataDictionary": str(directory / "FIXT11.xml"),
        "AppDataDictionary": str(directory / "TRUEX-FIX50SP2.xml"),
        "UseDataDictionary": "Y",
        "StartTime": "00:00:00",
        "EndTime": "00:00:00",
        "HeartBtInt": str(heartbeat_s),
        "ReconnectInterval": str(reconnect_s),
        "ResetOnLogon": "Y",
        "ResetOnLogout": "Y",
        "ResetOnDisconnect": "Y",
        "PersistMessages": "N",
        "SocketNodelay": "Y",
        "ValidateUserDefinedFields": "N",
        # A venue may add known fields to a message whose layout does not list them (TrueX's 35=9 carrying
        # CumQty/AvgPx): read them rather than reject the whole message and lose its OrdStatus.
        "AllowUnknownMsgFields": "Y",
        "LogonTimeout": "5",
        "LogoutTimeout": "2",
    }
    if role == "acceptor":
        values["SocketReuseAddress"] = "Y"
    if store_dir is not None:
        values["FileStorePath"] = store_dir
    if tls is not None and tls.enabled:
        values["SSLProtocol"] = tls.protocols
        if tls.ca_file:
            values["CertificationAuthoritiesFile"] = tls.ca_file
        if role == "initiator":
            if tls.cert_file:
                values["ClientCertificateFile"] = tls.cert_file
            if tls.key_file:
                values["ClientCertificateKeyFile"] = tls.key_file
        else:
            if tls.cert_file:
                values["ServerCertificateFile"] = tls.cert_file
            if tls.key_file:
                values["ServerCertificateKeyFile"] = tls.key_file
    for key, value in values.items():
        defaults.setString(key, value)
    settings.set(defaults)
    for spec in sessions:
        session = fix.Dictionary()
        session.setString("BeginString", BEGIN_STRING)
        if role == "initiator":
            session.setString("SocketConnectHost", spec.host or "127.0.0.1")
            session.setString("SocketConnectPort", str(spec.port))
        else:
            session.setString("SocketAcceptPort", str(spec.port))
        settings.set(spec.session_id, session)
    return settings


def store_factory(settings: fix.SessionSettings, store_dir: str | None) -> fix.MessageStoreFactory:
    """Sequence numbers in memory unless a directory is configured (ResetOnLogon makes both safe)."""
    if store_dir is None:
        return fix.MemoryStoreFactory()
    return fix.FileStoreFactory(settings)


def strip_orig_sending_time(message: fix.Message) -> None:
    """TrueX rejects OrigSendingTime (122), which QuickFIX adds to resends and gap fills."""
    header = message.getHeader()
    if header.isSetField(T_ORIG_SENDING_TIME):
        header.removeField(T_ORIG_SENDING_TIME)


def session_key(session_id: fix.SessionID) -> tuple[str, str]:
    """(SenderCompID, TargetCompID): a hashable, thread-independent name for a session."""
    return (session_id.getSenderCompID().getValue(), session_id.getTargetCompID().getValue())


class GuardedApplication(fix.Application):
    """``quickfix.Application`` whose callbacks never leak an exception into QuickFIX.

    Subclasses implement the ``on_*`` hooks; the QuickFIX-facing methods wrap
    them. ``log_messages`` logs every message with 553/554 redacted.
    """

    def __init__(self, name: str, log_messages: bool = False) -> None:
        super().__init__()
        self._log = logger.bind(component=name)
        self._log_messages = log_messages
        self.callback_errors = 0

    # -- hooks for subclasses (run on a QuickFIX thread) ---------------------

    def on_create(self, session_id: fix.SessionID) -> None:
        """A session object exists (before any connection)."""

    def on_logon(self, session_id: fix.SessionID) -> None:
        """The session is logged on."""

    def on_logout(self, session_id: fix.SessionID) -> None:
        """The session is logged out or disconnected."""

    def on_to_admin(self, message: fix.Message, session_id: fix.SessionID) -> None:
        """An admin message is about to go out (sign the logon here)."""

    def on_from_admin(self, message: fix.Message, session_id: fix.SessionID) -> None:
        """An admin message arrived (verify a logon here; raise RejectLogon to refuse)."""

    def on_to_app(self, message: fix.Message, session_id: fix.SessionID) -> None:
        """An application message is about to go out (raise DoNotSend to drop it)."""

    def on_from_app(self, message: fix.Message, session_id: fix.SessionID) -> None:
        """An application message arrived."""

    # -- QuickFIX callbacks ----------------------------------------------------

    def _guard(self, label: str, hook: object, *args: object) -> None:
        try:
            hook(*args)  # type: ignore[operator]
        except _QUICKFIX_CONTROL:
            raise
        except BaseException as exc:  # an escaping exception would hang QuickFIX
            self._failed(label, exc)

    def _failed(self, label: str, exc: BaseException) -> None:
        self.callback_errors += 1
        with contextlib.suppress(BaseException):  # even logging must not escape
            self._log.opt(exception=exc).error("{} callback failed: {!r}", label, exc)

    def _trace(self, direction: str, message: fix.Message) -> None:
        if self._log_messages:
            self._log.debug("{} {}", direction, redact(message.toString()))

    def onCreate(self, sessionID: fix.SessionID) -> None:  # QuickFIX's names
        self._guard("onCreate", self.on_create, sessionID)

    def onLogon(self, sessionID: fix.SessionID) -> None:
        self._guard("onLogon", self.on_logon, sessionID)

    def onLogout(self, sessionID: fix.SessionID) -> None:
        self._guard("onLogout", self.on_logout, sessionID)

    def toAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        self._guard("toAdmin", self.on_to_admin, message, sessionID)
        if self._log_messages:
            self._guard("toAdmin.trace", self._trace, "OUT", message)

    def fromAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        if self._log_messages:
            self._guard("fromAdmin.trace", self._trace, "IN", message)
        self._guard("fromAdmin", self.on_from_admin, message, sessionID)

    # toApp / fromApp run for every order and report: the guard is written out rather than
    # called through ``_guard`` (one Python frame less per message on the order path).

    def toApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        try:
            self.on_to_app(message, sessionID)
        except _QUICKFIX_CONTROL:
            raise
        except BaseException as exc:  # an escaping exception would hang QuickFIX
            self._failed("toApp", exc)
        if self._log_messages:
            self._guard("toApp.trace", self._trace, "OUT", message)

    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        if self._log_messages:
            self._guard("fromApp.trace", self._trace, "IN", message)
        try:
            self.on_from_app(message, sessionID)
        except _QUICKFIX_CONTROL:
            raise
        except BaseException as exc:  # an escaping exception would hang QuickFIX
            self._failed("fromApp", exc)


def now_ns() -> int:
    return time.time_ns()
