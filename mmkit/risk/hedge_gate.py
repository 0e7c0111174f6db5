"""The hedge gate: the named conditions under which hedging stops, and the loss it counts against.

Why its own module, apart from the quoting kill switch and from the
executor's order work: the quoting kill switch pulls the quotes, but the
largest exposure is exactly the one it leaves behind (an inventory emergency
trips it), so hedging must keep reducing inventory while quoting is halted.
Hedging therefore stops only on its own, named conditions, decided here:

* :data:`STOP_VENUE_DOWN`: the hedge venue's session is down (resumes by itself);
* :data:`STOP_LOSS_LIMIT`: what hedging has cost reached ``max_loss`` (sticky
  until :meth:`HedgeGate.reset_by_hand`, which measures a new breach from there);
* :data:`STOP_HELD`: the engine held it for the rest of the run
  (e.g. its market claim was lost, so the books are not this run's alone).

Every change of the gate is logged once, at ERROR when it closes
(``HEDGING STOPPED: <reason>``), and reported to the problem listeners
(``hedge_stopped`` / ``hedge_resumed``). What closing means for working
orders (cancel them, drop the market fallback) is the executor's to do.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from mmkit.model import ZERO

if TYPE_CHECKING:
    from loguru import Logger

    from mmkit.connector import Connector

#: Named reasons why hedging stops (the quoting kill switch is deliberately not one of them).
STOP_VENUE_DOWN = "hedge venue down"
STOP_LOSS_LIMIT = "hedge loss limit"
STOP_HELD = "hedging held"

#: Called with (event name, detail dict) when the gate closes/opens or a hedge cannot be funded.
ProblemListener = Callable[[str, dict[str, str]], None]


class Halt(Protocol):
    """Anything with a ``halted`` flag (KillSwitch)."""

    @property
    def halted(self) -> bool: ...


class Reporter(Protocol):
    """The executor's report to its problem listeners: an event name and string details."""

    def __call__(self, event: str, **detail: str) -> None: ...


class HedgeGate:
    """Whether hedging may act now, and why not; each change said once (log and report)."""

    def __init__(self, connector: Connector, max_loss: Decimal | None, log: Logger, report: Reporter) -> None:
        self.connector = connector
        self.max_loss = max_loss
        self._log = log
        self._report = report
        self._loss_stop: str | None = None
        #: The cost already accepted by a reset by hand: a new breach is measured from it.
        self._loss_base: Decimal = ZERO
        self._held: str | None = None
        #: The reason last said (logged and reported), so a change is said once.
        self._said: str | None = None

    def current_stop(self) -> str | None:
        """Why hedging is stopped right now (starts with a ``STOP_*`` name), None while it may hedge."""
        if self._held is not None:
            return self._held
        if self._loss_stop is not None:
            return self._loss_stop
        if not self.connector.connected:
            return f"{STOP_VENUE_DOWN}: {self.connector.venue} is not connected"
        return None

    def trip_on_loss(self, hedge_cost: Decimal) -> str | None:
        """Close the gate (sticky) if ``hedge_cost`` reached ``max_loss``; returns the reason when it trips now."""
        limit = self.max_loss
        if self._loss_stop is None and limit is not None and hedge_cost - self._loss_base >= limit:
            self._loss_stop = f"{STOP_LOSS_LIMIT}: hedging cost {hedge_cost - self._loss_base} >= max_loss {limit}"
            return self._loss_stop
        return None

    def announce(self, position: Decimal) -> bool:
        """Say a change of the gate once (log and report); True while hedging must not act."""
        reason = self.current_stop()
        if reason != self._said:
            if reason is None:
                self._log.warning("hedging resumed (was: {})", self._said)
                self._report("hedge_resumed", was=self._said or "")
            else:
                self._log.error("HEDGING STOPPED: {} (position {})", reason, position)
                self._report("hedge_stopped", reason=reason, position=str(position))
            self._said = reason
        return reason is not None

    def hold(self, reason: str) -> str | None:
        """Hold hedging for the rest of the run; returns the held reason, None if it was held already."""
        if self._held is not None:
            return None
        self._held = f"{STOP_HELD}: {reason}"
        return self._held

    def reset_by_hand(self, hedge_cost: Decimal) -> bool:
        """Lift the sticky loss-limit stop; returns True if it was stopped by it. A hold is not lifted."""
        if self._loss_stop is None:
            return False
        self._log.warning("hedge loss-limit stop reset by hand (cost so far {})", hedge_cost)
        self._loss_stop = None
        self._loss_base = hedge_cost
        return True
