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
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

import quickfix as fix
from loguru import logger

from connectors.truex import messages as m

_Item = tuple[fix.SessionID, fix.Message, int] | None

#: How long ``stop`` lets the sender drain what is queued before giving up on it.
DRAIN_TIMEOUT_S = 2.0


def send_to_target(session_id: fix.SessionID, message: fix.Message) -> bool:
    """QuickFIX's send (the default sender); False when the session is down or unknown."""
    try:
        return bool(fix.Session.sendToTarget(message, session_id))
    except fix.SessionNotFound:
        return False


class Outbox:
    """A FIFO of (session, message) and the one thread that sends them (see the module docstring)."""

    def __init__(self, name: str, send: Callable[[fix.SessionID, fix.Message], bool] = send_to_target) -> None:
        self._name = name
        self._send = send
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._generation: dict[str, int] = {}
        self._thread: threading.Thread | None = None
        self._log = logger.bind(venue="truex-sim")
        self.sent = 0
        self.not_sent = 0
        self.dropped_stale = 0

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self._run, name=f"{self._name}-sender", daemon=True)
        self._thread.start()

    def put(self, session_id: fix.SessionID, message: fix.Message) -> None:
        """Queue one message; never blocks and never calls into QuickFIX (safe under any lock)."""
        generation = self._generation.get(session_id.toString(), 0)
        self._queue.put((session_id, message, generation))

    def session_ended(self, session_id: fix.SessionID) -> None:
        """The session logged out: what is still queued for it belongs to a connection that is gone."""
        key = session_id.toString()
        self._generation[key] = self._generation.get(key, 0) + 1

    def stop(self, timeout_s: float = DRAIN_TIMEOUT_S) -> bool:
        """Send what is queued (up to ``timeout_s``), then end the thread; True if it ended in time."""
        thread, self._thread = self._thread, None
        if thread is None:
            return True
        self._queue.put(None)
        thread.join(timeout=timeout_s)
        if thread.is_alive():
            self._log.error("{} sender did not drain within {}s; abandoning it", self._name, timeout_s)
            return False
        return True

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            session_id, message, generation = item
            if self._generation.get(session_id.toString(), 0) != generation:
                self.dropped_stale += 1
                continue
            try:
                if self._send(session_id, message):
                    self.sent += 1
                else:
                    self.not_sent += 1
                    self._log.debug("not sent (session down): {}", m.redact(message.toString()))
            except Exception as exc:  # the sender must outlive one bad message
                self.not_sent += 1
                self._log.opt(exception=exc).error("send to {} failed", session_id.toString())
