"""The REST session's health, ordered by when calls were sent, not by when their outcomes came back.

Why: REST calls run concurrently (the poller, status queries, order placement
and cancels, the reconciliation reads, the ledger check, the dead man's switch
refreshes: every one goes through ``CcxtBase._rest``), and a slow outcome can arrive after a faster one that was sent
later. Taking outcomes in arrival order let a 503 for a call sent while the
venue was down take the session down *after* a later call had already seen
the venue answer again; the engine then refused orders (NOT_CONNECTED) and
stopped quoting until the next answer, a whole poll interval or more, with a
misleading "REST session down" warning.

The rule: every call takes a send number (:meth:`SessionHealth.send`, strictly
increasing) before it awaits the venue, and hands it back with its outcome.
The session's state is the outcome of the *most recently sent* call whose
outcome is known:

* an answer (any answer: an order, a rejection, "not found", "too fast" all
  prove the venue is there) brings the session up,
* a transport failure (no answer: 5xx, network, timeout) takes it down,

unless the outcome of a call sent *after* it is already known.

An outcome overtaken by a later-sent one (its outcome already known) is
stale news: it changes nothing, is counted (``stale_failures`` /
``stale_answers``) and the caller logs it at debug. Both directions are stale
for the same reason: a late answer to an old call must not bring up a session
that a newer call found unreachable, any more than a late failure may take
down one that a newer call found answering. One watermark (the newest send
number with a known outcome) is therefore the whole rule.

``declare_up`` is for a new session (``connect``) with nothing in flight: it
says "up" without a call, and outcomes of anything sent before it are stale.
The class knows nothing of ccxt or asyncio beyond the classified error kinds
(:mod:`connectors.ccxt.errors`): one asyncio loop drives it, so it needs no
lock, and it is tested on its own (tests/unit/ccxt/test_session_health.py).
"""

from __future__ import annotations

import enum

from connectors.ccxt.errors import ClassifiedError, ErrorKind


class Verdict(enum.Enum):
    """What one outcome did to the session."""

    WENT_UP = "WENT_UP"  # the session was down and is up now
    WENT_DOWN = "WENT_DOWN"  # the session was up and is down now
    UNCHANGED = "UNCHANGED"  # fresh news that agrees with the current state
    STALE = "STALE"  # a later-sent call's outcome is already known: ignored


class SessionHealth:
    """Up or down, as the newest-sent call whose outcome is known found the venue."""

    __slots__ = ("_last_sent", "_newest_known", "_up", "stale_answers", "stale_failures")

    def __init__(self) -> None:
        #: The last send number handed out (0: none yet; numbers start at 1).
        self._last_sent = 0
        #: Send number of the newest-sent call whose outcome is known (or of a declared start or stop).
        self._newest_known = 0
        self._up = False
        #: Outcomes ignored because a later-sent call's outcome was already known.
        self.stale_failures = 0
        self.stale_answers = 0

    @property
    def up(self) -> bool:
        return self._up

    def send(self) -> int:
        """The number of a call about to be sent: take it *before* awaiting the venue."""
        self._last_sent += 1
        return self._last_sent

    def outcome(self, sent: int, err: ClassifiedError | None) -> Verdict:
        """One call's outcome (``err`` None: it succeeded); only a TRANSIENT error is a failure.

        A definitive error (the venue said no) and a BACKOFF one (the venue said "too fast")
        are answers: the venue is there.
        """
        if err is not None and err.kind is ErrorKind.TRANSIENT:
            return self.failed(sent)
        return self.answered(sent)

    def answered(self, sent: int) -> Verdict:
        """The call numbered ``sent`` got an answer from the venue (whatever it said)."""
        if self._stale(sent):
            self.stale_answers += 1
            return Verdict.STALE
        return self._become(True)

    def failed(self, sent: int) -> Verdict:
        """The call numbered ``sent`` got no answer (transport failure: 5xx, network, timeout)."""
        if self._stale(sent):
            self.stale_failures += 1
            return Verdict.STALE
        return self._become(False)

    def declare_up(self) -> None:
        """A new session starts up without a call (``connect`` with nothing in flight).

        Outcomes of calls sent before now are older than this start, so they are stale.
        """
        self._newest_known = self._last_sent
        self._up = True

    def declare_down(self) -> None:
        """The session is closed on purpose (``disconnect``): outcomes of calls sent before now are stale."""
        self._newest_known = self._last_sent
        self._up = False

    def _stale(self, sent: int) -> bool:
        if not 1 <= sent <= self._last_sent:
            raise ValueError(f"send number {sent} was never handed out (last: {self._last_sent})")
        if sent <= self._newest_known:  # (equal only to a declared start or stop: one call, one outcome)
            return True
        self._newest_known = sent
        return False

    def _become(self, up: bool) -> Verdict:
        if up is self._up:
            return Verdict.UNCHANGED
        self._up = up
        return Verdict.WENT_UP if up else Verdict.WENT_DOWN
