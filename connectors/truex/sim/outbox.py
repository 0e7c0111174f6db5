"""The simulated exchange's outbox: one thread that hands every outgoing FIX message to QuickFIX.

WHY a separate sender: QuickFIX holds a session's mutex while it runs some
application callbacks (``Session::disconnect`` calls ``onLogout`` under it,
a resend calls ``toApp`` under it), and those callbacks take the exchange's
lock. ``Session.sendToTarget`` needs the same session mutex. So a thread
that called ``sendToTarget`` while holding the exchange's lock (the market
driver reporting a fill, say) could wait for the session mutex while the
QuickFIX thread, holding that mutex, waited for the exchange's lock: a
lock-order deadlock that froze the simulator (no logon answered after a
client logged out; ``stop()`` never returned).

The exchange therefore never sends under its lock: it ``put``s messages here
(under its lock, so the queue's order is the order things happened on the
exchange), and the one sender thread sends them in that order holding no
exchange lock. One FIFO and one sender keep every session's messages in
order: an ExecutionReport can never overtake an earlier one.

A message queued for a session that has since logged out (``session_ended``)
is dropped rather than sent to the session's next connection: the sessions
reset their sequence numbers on logon, so such a message was lost with the
connection, as it would be at a real venue.

Who sends: whoever holds the flush lock, one thread at a time, always from
the head of the FIFO, so order holds whichever thread it is. The sender
thread is woken for every message queued outside a ``sending_after`` block.
A QuickFIX callback that answers a client (``on_from_app``) runs inside
``sending_after``: its messages do not wake the sender; the callback's own
thread sends them once it has left the exchange's lock, saving a thread
hand-off per answer (bench/bench_fix.py). Taking the flush lock never blocks
(``acquire(blocking=False)``); a thread that finds it taken leaves the
messages to the holder, which looks at the queue again after releasing it,
so nothing is stranded.

"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import quickfix as fix
from loguru import logger

from connectors.truex import raw_message

_Item = tuple[fix.SessionID, fix.Message, str, int]  # session, message, its SessionID text, generation

#: How long ``stop`` lets the sender drain what is queued before giving up on it.
DRAIN_TIMEOUT_S = 2.0


def send_to_target(session_id: fix.SessionID, message: fix.Message) -> bool:
    """QuickFIX's send (the default sender); False when the session is down or unknown."""
    try:
        return bool(fix.Session.sendToTarget(message, session_id))
    except fix.SessionNotFound:
        return False


class _SendingAfter:
    """The ``with`` block of ``Outbox.sending_after`` (a class: cheaper per message than a generator)."""

    __slots__ = ("_outbox",)

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox

    def __enter__(self) -> None:
        local = self._outbox._local
        local.depth = getattr(local, "depth", 0) + 1

    def __exit__(self, *exc: object) -> None:
        local = self._outbox._local
        local.depth -= 1
        if local.depth == 0:
            self._outbox._end_block()


class Outbox:
    """A FIFO of (session, message), sent in order by one thread at a time (see the module docstring)."""

    def __init__(
        self,
        name: str,
        send: Callable[[fix.SessionID, fix.Message], bool] = send_to_target,
        *,
        never_send_under: Any = None,
    ) -> None:
        """``never_send_under``: the exchange's RLock; a ``sending_after`` block that ends while this thread
        still holds it leaves its messages to the sender thread instead of sending them itself."""
        self._name = name
        self._send = send
        self._items: deque[_Item] = deque()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._local = threading.local()
        self._never_send_under = never_send_under
        self._generation: dict[str, int] = {}
        self._known: tuple[fix.SessionID | None, str] = (None, "")
        self._thread: threading.Thread | None = None
        self._log = logger.bind(venue="truex-sim")
        self.sent = 0
        self.not_sent = 0
        self.dropped_stale = 0
        #: Messages sent by the thread that queued them (``sending_after``) rather than by the sender thread.
        self.sent_by_caller = 0

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"{self._name}-sender", daemon=True)
        self._thread.start()

    def put(self, session_id: fix.SessionID, message: fix.Message) -> None:
        """Queue one message; never blocks and never calls into QuickFIX (safe under any lock)."""
        known = self._known
        # Each call into QuickFIX (toString) lets go of the GIL, and on a busy loopback another thread takes it:
        # the session's text is taken once per message received (``known_session``) and reused here.
        key = known[1] if session_id is known[0] else session_id.toString()
        self._items.append((session_id, message, key, self._generation.get(key, 0)))
        if not getattr(self._local, "depth", 0):
            self._wake.set()

    def known_session(self, session_id: fix.SessionID, text: str) -> None:
        """``text`` is ``session_id.toString()``: ``put`` for this same object need not ask QuickFIX again.

        Holds a reference to the object, so an identity match is never a recycled id. One entry, replaced whole
        (a tuple): a thread that reads it sees a matching pair.
        """
        self._known = (session_id, text)

    def sending_after(self) -> _SendingAfter:
        """This thread sends what it queues in the block itself, after it (see the module docstring)."""
        return _SendingAfter(self)

    def _end_block(self) -> None:
        """The outermost ``sending_after`` block of this thread ended: send now, unless still under the lock."""
        if self._stopping:  # once stopped, only the sender thread drains
            return
        lock = self._never_send_under
        if lock is not None and lock._is_owned():  # still under the exchange's lock: not here
            self._wake.set()
        else:
            self.flush(by_caller=True)

    def session_ended(self, session_id: fix.SessionID) -> None:
        """The session logged out: what is still queued for it belongs to a connection that is gone."""
        key = session_id.toString()
        self._generation[key] = self._generation.get(key, 0) + 1

    def stop(self, timeout_s: float = DRAIN_TIMEOUT_S) -> bool:
        """Send what is queued (up to ``timeout_s``), then end the thread; True if it ended in time."""
        thread, self._thread = self._thread, None
        if thread is None:
            return True
        self._stopping = True
        self._wake.set()
        thread.join(timeout=timeout_s)
        if thread.is_alive():
            self._log.error("{} sender did not drain within {}s; abandoning it", self._name, timeout_s)
            return False
        return True

    def flush(self, by_caller: bool = False) -> None:
        """Send everything queued, in order, unless another thread is sending (it will send it instead).

        The caller must hold no exchange lock (see the module docstring).
        """
        items = self._items
        while items and self._flush_lock.acquire(blocking=False):
            try:
                while items:
                    self._send_one(*items.popleft(), by_caller)
            finally:
                self._flush_lock.release()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            self.flush()
            if self._stopping:
                with self._flush_lock:  # let a caller that is sending finish (this thread holds nothing else)
                    pass
                self.flush()
                if not self._items:
                    return

    def _send_one(
        self, session_id: fix.SessionID, message: fix.Message, key: str, generation: int, by_caller: bool
    ) -> None:
        if self._generation.get(key, 0) != generation:
            self.dropped_stale += 1
            return
        try:
            if self._send(session_id, message):
                self.sent += 1
                self.sent_by_caller += by_caller
            else:
                self.not_sent += 1
                self._log.debug("not sent (session down): {}", raw_message.redact(message.toString()))
        except Exception as exc:  # the sender must outlive one bad message
            self.not_sent += 1
            self._log.opt(exception=exc).error("send to {} failed", session_id.toString())
