"""Order-entry session watchdog: a session that stops answering is down within two heartbeats.

Why not QuickFIX alone: it sends a TestRequest after 1.2 heartbeat intervals
of silence and drops the session only after 2.4 (24 s at TrueX's 10 s), and
it never notices a session that still carries heartbeats but no longer
answers orders. Issue 11 measured 24 s of blind quoting. This watchdog, run
on the engine loop, declares OE down when either

* nothing at all (heartbeat, TestRequest answer, report) has arrived for
  ``silence_heartbeats`` heartbeat intervals (default 1.5: the TestRequest
  QuickFIX sent at 1.2 went unanswered), or
* ``max_unanswered`` order actions (D, F, G) are older than
  ``ack_timeout_ns`` without any answer (ExecutionReport, cancel reject,
  business or session reject) naming their ClOrdID. A venue working through
  a backlog (a burst of orders, a slow spell) answers in order and is alive:
  dropping it cancelled its resting orders (cancel on disconnect) and lost
  the burst's answers (seen in bench/bench_fix.py on a loaded machine). So
  a late action is excused while answers keep coming (one in the last
  ``ack_timeout_ns``) *and* it is still in the queue's order: no action sent
  after it has been answered. One sent before an action that was answered
  is lost, not queued (a half-dead venue that still answers cancels but
  drops new orders, a dead shard beside a live one), and counts.

Declaring down means: the connector drops the socket (QuickFIX reconnects
and the connector reconciles on logon) and the engine sees
``ConnectionStatus(OE, False)`` and stops acting on the venue at once.
"""

from __future__ import annotations

from collections import OrderedDict

from mmkit.model import NS_PER_S


class SessionWatchdog:
    """Counts what was sent and what came back; :meth:`verdict` says why the session is dead, or None."""

    def __init__(
        self,
        heartbeat_s: int,
        *,
        silence_heartbeats: float = 1.5,
        ack_timeout_ns: int = 5 * NS_PER_S,
        max_unanswered: int = 3,
    ) -> None:
        self.silence_limit_ns = int(heartbeat_s * silence_heartbeats * NS_PER_S)
        self.ack_timeout_ns = ack_timeout_ns
        self.max_unanswered = max_unanswered
        self.last_recv_ns = 0
        #: When an answer last named an action we were waiting for (0: none since the logon).
        self.last_answer_ns = 0
        #: When the latest-sent of the answered actions was sent: an unanswered one sent before it is lost.
        self.answered_sent_ns = 0
        self._unanswered: OrderedDict[str, int] = OrderedDict()

    def reset(self, now_ns: int) -> None:
        """A new logon: start counting afresh."""
        self.last_recv_ns = now_ns
        self.last_answer_ns = 0
        self.answered_sent_ns = 0
        self._unanswered.clear()

    def received(self, now_ns: int, clordids: tuple[str, ...] = ()) -> None:
        """Anything arrived on the session; ``clordids`` it answers are no longer waiting."""
        self.last_recv_ns = max(self.last_recv_ns, now_ns)
        for clordid in clordids:
            if not clordid:
                continue
            sent_ns = self._unanswered.pop(clordid, None)
            if sent_ns is not None:
                self.last_answer_ns = max(self.last_answer_ns, now_ns)
                self.answered_sent_ns = max(self.answered_sent_ns, sent_ns)

    def sent(self, clordid: str, now_ns: int) -> None:
        self._unanswered[clordid] = now_ns
        if len(self._unanswered) > 10_000:
            self._unanswered.popitem(last=False)

    def verdict(self, now_ns: int) -> str | None:
        """Why the session must be treated as down now, or None while it is alive."""
        if self.last_recv_ns and now_ns - self.last_recv_ns > self.silence_limit_ns:
            return f"nothing received for {(now_ns - self.last_recv_ns) / NS_PER_S:.1f}s (heartbeats unanswered)"
        flowing = now_ns - self.last_answer_ns <= self.ack_timeout_ns  # answers are still coming
        overdue_before = now_ns - self.ack_timeout_ns
        stale = 0
        for sent_ns in self._unanswered.values():
            if sent_ns >= overdue_before:
                continue  # not overdue yet
            if not flowing or sent_ns < self.answered_sent_ns:  # not a backlog's tail: lost
                stale += 1
        if stale >= self.max_unanswered:
            return f"{stale} order actions unanswered for more than {self.ack_timeout_ns / NS_PER_S:.1f}s"
        return None
