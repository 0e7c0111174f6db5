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
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from loguru import logger

from connectors.ccxt.errors import classify
from connectors.ccxt.profiles import DeadMansSwitch

#: Gemini's heartbeat timeout is fixed by the venue.
GEMINI_HEARTBEAT_TIMEOUT_S = 30.0


class DeadMansSwitchLoop:
    """Refreshes the venue's timer while the engine ticks; disarms it on a clean stop."""

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
    ) -> None:
        self.exchange = exchange
        self.kind = kind
        #: A configured timeout of 0 turns the switch off on every venue.
        self.enabled = timeout_s > 0
        self.timeout_s = GEMINI_HEARTBEAT_TIMEOUT_S if kind is DeadMansSwitch.GEMINI_HEARTBEAT else timeout_s
        # Refresh well inside the timeout, whatever the config says.
        self.refresh_s = min(refresh_s, self.timeout_s / 3) if self.enabled else refresh_s
        self.tick_grace_s = tick_grace_s
        self.last_tick_ns = last_tick_ns
        self.refreshes = 0
        self.failures = 0
        self.skipped = 0
        self._log = logger.bind(venue=venue, component="dead-man")

    @property
    def active(self) -> bool:
        return self.enabled and self.kind is not DeadMansSwitch.NONE

    async def run(self) -> None:
        """Until cancelled: refresh the timer every ``refresh_s`` while ticks are fresh."""
        warned = False
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
            await asyncio.sleep(self.refresh_s)

    async def refresh(self) -> None:
        try:
            if self.kind is DeadMansSwitch.KRAKEN_CANCEL_AFTER:
                await self.exchange.cancel_all_orders_after(int(self.timeout_s * 1000))
            elif self.kind is DeadMansSwitch.GEMINI_HEARTBEAT:
                await self.exchange.private_post_v1_heartbeat()
        except Exception as exc:
            self.failures += 1
            self._log.warning("dead man's switch refresh failed: {}", classify(exc).message)
            return
        self.refreshes += 1

    async def disarm(self) -> None:
        """A clean stop: Kraken's countdown is switched off (Gemini's session simply ends)."""
        if self.kind is DeadMansSwitch.KRAKEN_CANCEL_AFTER:
            try:
                await self.exchange.cancel_all_orders_after(0)
            except Exception as exc:
                self._log.warning("could not disarm the dead man's switch: {}", classify(exc).message)
