"""TrueXConnector's side of the thread boundary: QuickFIX threads hand messages to the asyncio loop.

A mixin of :class:`connectors.truex.connector.TrueXConnector` (split out of
``connector.py`` by job). These are the only connector methods that run on a
QuickFIX thread (called by ``client_app.ClientApp``): they take a receive
timestamp, note proof of life for the watchdog and queue the work for the
loop in arrival order, one wake-up per batch (``loop_waker``: it keeps the
GIL, so the loop never steals it from a QuickFIX thread in mid-callback).
Nothing here parses or touches order state, so no lock is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import TYPE_CHECKING, Any

import quickfix as fix

from connectors.truex.client_app import OE, field_value
from connectors.truex.fix_tags import SOH
from connectors.truex.loop_waker import LoopWaker
from connectors.truex.watchdog import SessionWatchdog

#: SenderCompID / TargetCompID markers: an incoming message's 56 is our SenderCompID (``received``).
_SENDER, _TARGET = f"{SOH}49=", f"{SOH}56="


class QuickFixHandoff:
    """Hand-off from QuickFIX threads to the loop (see the module docstring)."""

    _handoff: deque[tuple[Any, tuple[object, ...]]]
    _handoff_scheduled: bool
    _kinds: dict[tuple[str, str], str]
    _kinds_by_id: dict[str, str]
    _loop: asyncio.AbstractEventLoop | None
    _waker: LoopWaker | None
    _watchdog: SessionWatchdog

    if TYPE_CHECKING:  # provided by TrueXConnector and its other mixins; for the type checker only

        def _on_message(self, kind: str, raw: str, ts_recv: int) -> None: ...

        def _on_session(self, kind: str, up: bool, ts_recv: int) -> None: ...

        def _on_refused(self, kind: str, reject_raw: str, ts_recv: int) -> None: ...

    def kind_of(self, session_id: fix.SessionID) -> str:
        kind = self._kinds_by_id.get(session_id.toString())  # one call into QuickFIX, not four
        if kind is not None:
            return kind
        key = (session_id.getSenderCompID().getValue(), session_id.getTargetCompID().getValue())
        return self._kinds.get(key, "?")

    def kind_of_comp_ids(self, ours: str, theirs: str) -> str | None:
        """OE / MD for a session named by (our SenderCompID, their TargetCompID); None if not ours."""
        return self._kinds.get((ours, theirs))

    def received(self, session_id: fix.SessionID, raw: str, ts_recv: int) -> None:
        """An application message arrived (QuickFIX thread): proof of life for the watchdog, then the loop.

        The session is named by the message's own TargetCompID/SenderCompID (QuickFIX has checked them
        against the session before this callback) rather than by asking QuickFIX: a call into QuickFIX lets
        go of the GIL, and on a busy loopback the loop thread takes it (bench/bench_fix.py).
        """
        kind = self.kind_of_comp_ids(field_value(raw, _TARGET), field_value(raw, _SENDER)) or self.kind_of(session_id)
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

    def post_refused(self, session_id: fix.SessionID, reject_raw: str, ts_recv: int) -> None:
        """QuickFIX is sending a session Reject (35=3) of a venue message it refused: tell the loop."""
        self._call_soon(self._on_refused, self.kind_of(session_id), reject_raw, ts_recv)

    def post_status(self, session_id: fix.SessionID, up: bool, ts_recv: int) -> None:
        self._call_soon(self._on_session, self.kind_of(session_id), up, ts_recv)

    def _call_soon(self, fn: Any, *args: object) -> None:
        """Queue ``fn(*args)`` for the loop, in arrival order; one loop wake-up per batch, not per message.

        A QuickFIX thread appends to ``_handoff`` and wakes the loop
        (``LoopWaker.wake``, one byte on a pipe the loop watches) only if no
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
            waker = self._waker
            if waker is not None:
                waker.wake()
            else:  # no waker bound (a loop set by hand): the loop's own wake-up
                with contextlib.suppress(RuntimeError):  # loop closed during shutdown
                    loop.call_soon_threadsafe(self._run_handoff)

    def _bind_handoff(self, loop: asyncio.AbstractEventLoop) -> None:
        """Loop thread: hand-offs go to ``loop`` from now on (connect); nothing queued before runs on it."""
        waker, self._waker = self._waker, None
        if waker is not None:
            waker.close()
        self._loop = loop
        self._handoff.clear()
        self._handoff_scheduled = False
        self._waker = LoopWaker(loop, self._run_handoff)

    def _close_handoff(self) -> None:
        """Loop thread, once QuickFIX has stopped calling back: run what is queued, release the waker's pipe.

        What QuickFIX queued while stopping (the sessions going down) has its
        wake-up in the pipe being closed, so it runs here rather than never.
        """
        waker, self._waker = self._waker, None
        if waker is not None:
            waker.close()
        if self._handoff:
            self._run_handoff()

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
