"""State and plumbing shared by the ccxt connector's parts (feeds, order flow, polling, ledger check).

Why a base class: the connector is split by job (market-data feeds in
:mod:`connectors.ccxt.feeds`, order entry in :mod:`connectors.ccxt.order_flow`,
polling and private streams in :mod:`connectors.ccxt.polling`, the in-run
ledger check in :mod:`connectors.ccxt.ledger_check`), and each part needs the same inbox,
task registry, session health and clock. They are declared here once, so
each part type-checks on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from connectors.ccxt.checksums import SequenceChecker
from connectors.ccxt.convert import _Tracked
from connectors.ccxt.errors import ClassifiedError, ErrorKind, classify
from connectors.ccxt.profiles import VenueProfile
from connectors.ccxt.session_health import SessionHealth, Verdict
from connectors.ccxt.settings import CcxtConnectorConfig
from connectors.ccxt.watchdog import Backoff, FeedWatchdog
from mmkit.connector import (
    Inbox,
    VenueRules,
)
from mmkit.model import (
    ConnectionStatus,
    VenueEvent,
)


class CcxtBase:
    """Attributes every part of :class:`connectors.ccxt.connector.CcxtConnector` shares (set in its ``__init__``)."""

    _exchange: Any
    _rules: VenueRules
    _profile: VenueProfile
    _config: CcxtConnectorConfig
    _now: Callable[[], int]
    _inbox: Inbox
    #: The REST session's health (``connected``), ordered by when calls were sent (session_health.py).
    _health: SessionHealth
    _running: bool
    _tasks: dict[str, asyncio.Task[None]]
    _side_tasks: set[asyncio.Task[None]]
    _book_symbols: list[str]
    _trade_symbols: list[str]
    _orders: dict[str, _Tracked]
    #: Venue trade ids already booked as fills (one Fill per trade, whatever path saw it first).
    _seen_trades: set[str]
    _trades_wanted: bool
    _trade_sync: asyncio.Task[None] | None
    #: Wall-clock ns of the engine's last drain: the dead man's switch is only refreshed while ticks run.
    _last_drain_ns: int
    _book_seq: dict[str, int]
    _book_invalid: dict[str, bool]
    _last_checksum: dict[str, int]
    _sequences: dict[str, SequenceChecker]
    _order_backoff: Backoff
    _order_backoff_until_ns: int
    watchdogs: dict[str, FeedWatchdog]
    checksum_failures: int
    #: The in-run ledger check (ledger_check.py): woken early by a private stream's gap; its sweep's start.
    _ledger_wake: asyncio.Event
    _ledger_since_ms: int
    ledger_checks: int
    ledger_missed_trades: int
    #: OrderStatusReports sent to the engine because the venue's filled disagreed with what was passed on.
    ledger_reports: int
    sequence_gaps: int
    reconnects: int
    resyncs: int
    _log: Any

    @property
    def venue(self) -> str:
        return self._rules.venue

    @property
    def _connected(self) -> bool:
        """The REST session is up: what order entry and status queries check before sending."""
        return self._health.up

    @property
    def rest_health(self) -> SessionHealth:
        """The REST session's health and its counters (``stale_failures``), for reporting and tests."""
        return self._health

    def _send(self) -> int:
        """The send number of a REST call about to go out: take it before the call's ``await``."""
        return self._health.send()

    async def _rest(self, call: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Every ccxt REST call of the connector goes through here: its outcome feeds the session health.

        The send number is taken before the ``await`` and the outcome (an answer, or the
        classified error) is handed back with it, so the newest-*sent* call decides
        (session_health.py) whoever made it: order entry, the poller, the reconciliation
        reads (open orders, order status, balances, trade history) and the dead man's switch.
        The exception is re-raised unchanged: the caller still decides what it means.
        """
        sent = self._send()
        try:
            result = await call(*args)
        except Exception as exc:
            self._note(sent, classify(exc, self._profile.reject_texts))
            raise
        self._note(sent, None)
        return result

    def _note(self, sent: int, err: ClassifiedError | None) -> None:
        """Feed the outcome of the call numbered ``sent`` into the session health (``err`` None: success).

        Any answer brings the session up, a transport failure (TRANSIENT) takes it
        down, unless a call sent later already had its outcome: then this one is
        stale news, logged at debug and counted, and the state stays as it is.
        """
        if not self._running:
            return
        verdict = self._health.outcome(sent, err)
        if verdict is Verdict.STALE:
            what = err.message if err is not None and err.kind is ErrorKind.TRANSIENT else "an answer"
            self._log.debug("stale REST outcome ignored (a call sent later already had its outcome): {}", what)
            return
        if verdict is Verdict.UNCHANGED:
            return
        up = verdict is Verdict.WENT_UP
        reason = "answer received" if up or err is None else err.message
        self._log.warning("REST session {}: {}", "up" if up else "down", reason)
        self._put(ConnectionStatus(self.venue, "rest", up, reason, self._now()))

    def _wake_ledger_check(self, why: str) -> None:
        """Bring the in-run ledger check forward (ledger_check.py); a no-op where there is none."""

    def _symbol_or_none(self, ccxt_symbol: Any) -> str | None:
        try:
            return self._profile.mmkit_symbol(str(ccxt_symbol))
        except KeyError:
            return None

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
