"""The venue-side dead man's switch: orders die at the venue if mmkit stops ticking.

Why: a crashed or hung engine cannot cancel its quotes, and a stale quote on
a moving market is the most expensive thing a market maker can leave behind.
Where the venue offers a timer, we keep pushing it back, but only while the
engine's tick is alive (the connector's ``drain`` is called once per tick):
a process that is up but whose loop is stuck stops refreshing too, and the
venue cancels everything when the timer runs out.

* Kraken: ``CancelAllOrdersAfter(timeout)`` arms a countdown that cancels all
  orders of the account when it reaches zero; each call restarts it, and
  ``timeout=0`` disarms it. Kraken recommends a 60 s timeout refreshed every
  15 to 30 s.
* Gemini: ``/v1/heartbeat`` keeps a session whose API key has "Requires
  Heartbeat" alive; 30 s without any private call or heartbeat cancels the
  session's orders. The key setting is the operator's (docs/connectors/ccxt.md).
* Coinbase Advanced Trade offers no such timer on its REST/WebSocket API:
  nothing is refreshed, and the documentation says so.

Quoting relies on the switch, so the connector quotes only while it is armed
(:meth:`DeadMansSwitchLoop.quoting_halt_reason`, read by the engine's quoting
gate every tick): not before the first refresh was answered, not once the
newest answered refresh was *sent* more than ``halt_after_s`` ago (refreshes
failing or hanging: the venue's countdown runs out soon, or the timer is gone
without anyone knowing), and not after the venue refused a refresh (it said
no: nothing protects the quotes) until a later refresh is answered. The halt
is logged at ERROR with its reason, counted (``halts``) and reported as a
``ConnectionStatus`` of session ``dead-man``; it ends by itself when a refresh
is answered again. Hedges are not gated: a hedge reduces risk and does not rest.
A refresh is a REST call like any other: it goes through the connector's
session-health accounting (``call``), so a refresh that times out takes the
REST session down when it is the newest-sent call with a known outcome.

**Shared by the key.** Both venues' switches cover every order of the API
key, not of a symbol or a process (the profile's ``dead_mans_switch_scope``):
two processes on one key share one timer. :func:`shared_switch` says so, and
``mmkit start`` then claims the whole account (mmkit.app.market_claim), so a
second instance on the key is refused whatever its symbol.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from loguru import logger

from connectors.ccxt.errors import ErrorKind, classify
from connectors.ccxt.profiles import DeadMansSwitch, SwitchScope, VenueProfile

#: Gemini's heartbeat timeout is fixed by the venue.
GEMINI_HEARTBEAT_TIMEOUT_S = 30.0

#: What sharing each switch between processes on one key does (for the refusal of a second instance).
_SHARED = {
    DeadMansSwitch.KRAKEN_CANCEL_AFTER: (
        "CancelAllOrdersAfter covers every order of the API key, every symbol: one instance that hangs lets "
        "the timer cancel all instances' orders, and one that stops cleanly disarms it (timeout 0) for all"
    ),
    DeadMansSwitch.GEMINI_HEARTBEAT: (
        "the heartbeat session is the API key, every symbol: one instance's heartbeats keep a hung "
        "instance's orders alive, and the key's nonce must increase across both"
    ),
}


def shared_switch(profile: VenueProfile) -> str | None:
    """Why every process on one API key shares this venue's dead man's switch, or None where none does.

    Not whether this config enables it (``dead_man_timeout_s: 0``): another instance on the key may, and
    its timer cancels this one's orders too.
    """
    kind = profile.dead_mans_switch
    if kind is DeadMansSwitch.NONE or profile.dead_mans_switch_scope is not SwitchScope.API_KEY:
        return None
    return f"{profile.venue}'s dead man's switch is per API key: {_SHARED[kind]}"


#: Called on every change of the switch's protection: (armed, reason).
StatusSink = Callable[[bool, str], None]


class DeadMansSwitchLoop:
    """Refreshes the venue's timer while the engine ticks; disarms it on a clean stop; says when it is not armed."""

    def __init__(
        self,
        exchange: Any,
        kind: DeadMansSwitch,
        *,
        timeout_s: float,
        refresh_s: float,
        tick_grace_s: float,
        last_tick_ns: Callable[[], int],
        venue: str,
        call: Callable[..., Awaitable[Any]] | None = None,
        halt_after_s: float | None = None,
        on_change: StatusSink | None = None,
    ) -> None:
        self.exchange = exchange
        self.kind = kind
        #: A configured timeout of 0 turns the switch off on every venue.
        self.enabled = timeout_s > 0
        self.timeout_s = GEMINI_HEARTBEAT_TIMEOUT_S if kind is DeadMansSwitch.GEMINI_HEARTBEAT else timeout_s
        # Refresh well inside the timeout, whatever the config says.
        self.refresh_s = min(refresh_s, self.timeout_s / 3) if self.enabled else refresh_s
        #: Quoting halts once the newest answered refresh was sent longer ago than this (default: two
        #: refresh periods, at most half the venue's timeout; never beyond the timeout itself).
        default_halt = min(2 * self.refresh_s, self.timeout_s / 2)
        self.halt_after_s = min(halt_after_s, self.timeout_s) if halt_after_s is not None else default_halt
        self.tick_grace_s = tick_grace_s
        self.last_tick_ns = last_tick_ns
        #: How each REST call is made: the connector's ``_rest`` (session health), or the bare call.
        self._call: Callable[..., Awaitable[Any]] = call if call is not None else _bare
        self._on_change = on_change
        self.refreshes = 0
        self.failures = 0
        self.skipped = 0
        #: Times quoting was halted because the switch was not armed (each logged at ERROR).
        self.halts = 0
        #: Wall-clock ns at which the newest answered refresh was sent (the venue's countdown began no earlier).
        self.armed_at_ns: int | None = None
        #: Failed refreshes since the last answered one, and what the last failure said.
        self.failures_in_a_row = 0
        self.last_error: str | None = None
        #: The venue refused a refresh (a definitive answer) after the newest answered one: not protected.
        self.refused: str | None = None
        #: Set while the loop runs (``run``): only then is quoting gated on the switch.
        self.running = False
        self._halted: str | None = None
        #: Why the refresh loop ended while it should run (``loop_ended``), until a refresh is answered again.
        self.ended: str | None = None
        self._log = logger.bind(venue=venue, component="dead-man")
        self._venue = venue

    @property
    def active(self) -> bool:
        return self.enabled and self.kind is not DeadMansSwitch.NONE

    async def run(self) -> None:
        """Until cancelled: refresh the timer every ``refresh_s`` while ticks are fresh."""
        warned = False
        self.running = True
        try:
            while True:
                age_s = (time.time_ns() - self.last_tick_ns()) / 1e9
                if age_s <= self.tick_grace_s:
                    warned = False
                    await self.refresh()
                else:
                    self.skipped += 1
                    if not warned:
                        warned = True
                        self._log.warning(
                            "no engine tick for {:.1f} s: not refreshing the venue's timer (orders die in {:.0f} s)",
                            age_s, self.timeout_s,
                        )
                self.quoting_halt_reason(time.time_ns())  # a change is logged even where no engine asks
                await asyncio.sleep(self.refresh_s)
        finally:
            self.running = False

    async def refresh(self) -> None:
        sent_ns = time.time_ns()
        try:
            if self.kind is DeadMansSwitch.KRAKEN_CANCEL_AFTER:
                await self._call(self.exchange.cancel_all_orders_after, int(self.timeout_s * 1000))
            elif self.kind is DeadMansSwitch.GEMINI_HEARTBEAT:
                await self._call(self.exchange.private_post_v1_heartbeat)
        except Exception as exc:
            err = classify(exc)
            self.failures += 1
            self.failures_in_a_row += 1
            self.last_error = err.message
            if err.kind is ErrorKind.DEFINITIVE:
                self.refused = err.message
            self._log.warning("dead man's switch refresh failed ({} in a row): {}", self.failures_in_a_row,
                              err.message)
            return
        self.refreshes += 1
        self.failures_in_a_row = 0
        self.ended = None
        self.refused = None
        if self.armed_at_ns is None or sent_ns > self.armed_at_ns:
            self.armed_at_ns = sent_ns

    def quoting_halt_reason(self, now_ns: int) -> str | None:
        """Why quotes must not rest on this venue now (the switch is not armed), or None while it is.

        A change either way is logged (ERROR when quoting halts, WARNING when it may resume),
        counted and handed to ``on_change``.
        """
        reason = self._reason(now_ns) if self.running or self.ended is not None else None
        if reason is not None and self._halted is None:
            if self.failures_in_a_row or self.refused or self.armed_at_ns is not None or self.ended is not None:
                self.halts += 1
                self._log.error("DEAD MAN'S SWITCH NOT ARMED, quoting halted: {}", reason)
            else:
                self._log.info("quoting waits for the dead man's switch: {}", reason)
            self._tell(False, reason)
        elif reason is None and self._halted is not None:
            self._log.warning("dead man's switch armed again (refresh answered): quoting may resume")
            self._tell(True, "dead man's switch armed again")
        self._halted = reason
        return reason

    def loop_ended(self, why: str, now_ns: int) -> None:
        """The refresh loop ended while the switch should be kept armed: nothing refreshes the venue's timer.

        Logged at ERROR with the cause, and a halt reason (quoting stops) until a refresh is
        answered again (the connector starts the loop again).
        """
        self.ended = why
        self._log.error("dead man's switch loop ended: {}; nothing refreshes the venue's timer", why)
        self.quoting_halt_reason(now_ns)

    def _reason(self, now_ns: int) -> str | None:
        venue = self._venue
        if self.ended is not None:
            return (f"{venue}: dead man's switch loop ended: {self.ended}; quotes are not protected until a "
                    f"refresh is answered again")
        if self.refused is not None:
            return (f"{venue} refused the dead man's switch refresh ({self.refused}): resting quotes are not "
                    f"protected if mmkit stops")
        if self.armed_at_ns is None:
            failed = f" ({self.failures_in_a_row} failed, last: {self.last_error})" if self.failures_in_a_row else ""
            return f"{venue}: dead man's switch not armed yet: no refresh answered{failed}"
        age_s = (now_ns - self.armed_at_ns) / 1e9
        if age_s <= self.halt_after_s:
            return None
        failed = (f"{self.failures_in_a_row} refresh(es) failed since, last: {self.last_error}"
                  if self.failures_in_a_row else "the refresh in flight has not been answered")
        return (f"{venue}: dead man's switch last refreshed {age_s:.1f} s ago (bound {self.halt_after_s:g} s; "
                f"{failed}); the venue cancels every order {self.timeout_s:g} s after the last refresh, or the "
                f"protection is gone")

    def _tell(self, armed: bool, reason: str) -> None:
        if self._on_change is not None:
            self._on_change(armed, reason)

    async def disarm(self) -> None:
        """A clean stop: Kraken's countdown is switched off (Gemini's session simply ends)."""
        if self.kind is DeadMansSwitch.KRAKEN_CANCEL_AFTER:
            try:
                await self._call(self.exchange.cancel_all_orders_after, 0)
            except Exception as exc:
                self._log.warning("could not disarm the dead man's switch: {}", classify(exc).message)


async def _bare(call: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    return await call(*args)
