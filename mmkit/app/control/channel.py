"""The in-process operator API of a running instance: every transport calls :meth:`ControlChannel.execute`.

Why one channel under every transport: the CLI (over the local Unix socket,
:mod:`mmkit.app.control.server`) and, later, a web dashboard must do exactly
the same thing for "pause", with the same checks and the same audit line.
A transport only authenticates its peer and names it in ``source``.

Threading: ``execute`` is a coroutine on the engine's asyncio loop. The
clock's tick is synchronous on that loop, so an action always runs between
two ticks and never races strategy code. A transport living on another
thread must use :meth:`ControlChannel.execute_threadsafe`. Actions that need
the engine to act (cancels going out, hedges filling) wait for the following
ticks through :class:`TickWaiter`, a post-iterator of the clock.

Actions (``ACTIONS``):

* ``status``: what quoting and hedging are doing, position, open orders.
* ``pause``: stop quoting (pull every quote) until ``resume``; hedging goes on.
* ``resume``: lift a pause, reset a tripped kill switch by hand (``resume:
  manual``) and a hedge loss-limit stop; fails if a kill-switch trigger is
  still active (it trips again on the next tick).
* ``cancel-all``: pause, then cancel every order of the symbol at the quoting
  venue (ours and any the engine does not know) and confirm with the venue's
  own list that none is open.
* ``flatten``: pause, then hedge the whole position to zero on the hedge venue.
* ``trip``: trip the kill switch by hand (an emergency stop; ``resume`` lifts it).

Every command is audited twice (``kind: "control"``): when it is received
(``phase: "request"``) and with its result (``phase: "result"``), so a crash
in the middle still leaves who asked for what. ``status`` changes nothing and
is polled (a dashboard asks every second), so it is not audited.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

import attrs
from loguru import logger

from mmkit.app.engine import Engine
from mmkit.app.strategy_runner import GateHold
from mmkit.clock import Clock
from mmkit.connector import TransientVenueError
from mmkit.risk.hedge import HedgeExecutor

ACTIONS = ("status", "pause", "resume", "cancel-all", "flatten", "trip")

def one_line(text: str) -> str:
    """``text`` with every character that is not printable escaped (``\\n``, ``\\x1b``): one log line, as sent."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


#: The parameters each action takes. Anything else is refused, not ignored: ``pause`` with
#: ``{"symbol": "ETH-USD"}`` or ``cancel-all`` with ``{"dry_run": true}`` must not do the whole thing.
ACTION_PARAMS: dict[str, frozenset[str]] = {action: frozenset() for action in ACTIONS} | {"trip": frozenset({"reason"})}

#: (kind, payload, ts_ns): the audit trail's writer (Persistence.audit.put) or AuditTrail.write.
AuditSink = Callable[[str, Any, int | None], object]
ResultListener = Callable[["ControlResult"], None]


@attrs.frozen
class ControlResult:
    """What an action did: ``ok`` False means it was refused or did not achieve its aim."""

    ok: bool
    action: str
    message: str
    data: dict[str, Any] = attrs.Factory(dict)
    command_id: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "action": self.action, "message": self.message, "data": self.data,
                "id": self.command_id}


@attrs.frozen
class ControlTimeouts:
    """How long an action waits for the engine to confirm its effect (seconds)."""

    pull_quotes_s: float = 10.0
    cancel_all_s: float = 15.0
    #: Added to the hedge's limit timeout: a flatten is a limit, then market after the timeout.
    flatten_extra_s: float = 20.0
    resume_ticks: int = 3


class ClockStopped(Exception):
    """The clock stopped (the instance is stopping) while an action waited for a tick."""


class TickWaiter:
    """A post-iterator that wakes coroutines waiting for the next tick(s) of the clock."""

    def __init__(self) -> None:
        self.running = False
        self.ticks = 0
        self._waiters: list[asyncio.Future[int]] = []

    def start(self, clock: Clock, ts_ns: int) -> None:
        self.running = True

    def stop(self, clock: Clock) -> None:
        self.running = False
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(ClockStopped("the instance is stopping"))
        self._waiters.clear()

    def tick(self, ts_ns: int) -> None:
        self.ticks += 1
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(ts_ns)

    async def next_tick(self, timeout_s: float = 5.0) -> int:
        """Wait until one more whole tick has run; raises TimeoutError, or ClockStopped when it stops."""
        if not self.running:
            raise ClockStopped("the instance is not running its clock")
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        return await asyncio.wait_for(waiter, timeout_s)


class ControlChannel:
    """Executes operator actions on one engine, audits and logs each one."""

    def __init__(
        self,
        engine: Engine,
        *,
        hedge: HedgeExecutor | None = None,
        audit: AuditSink | None = None,
        ticks: TickWaiter | None = None,
        timeouts: ControlTimeouts | None = None,
        instance: str = "",
    ) -> None:
        self.engine = engine
        self.hedge = hedge
        self.audit = audit
        self.ticks = ticks or TickWaiter()
        self.timeouts = timeouts or ControlTimeouts()
        self.instance = instance
        self.listeners: list[ResultListener] = []
        self.paused_by: str | None = None
        self._lock = asyncio.Lock()
        self._ids = itertools.count(1)
        self._stem = f"{time.time_ns() // 1_000_000:x}"
        self._log = logger.bind(component="control", instance=instance)

    # ------------------------------------------------------------------ API

    async def execute(self, action: str, *, source: str, params: dict[str, Any] | None = None) -> ControlResult:
        """Run ``action`` for ``source`` (who asked, as the transport authenticated it); never raises."""
        params = dict(params or {})
        if action == "status":  # read-only and polled (dashboards): neither audited nor logged above DEBUG
            self._log.debug("control: status for {}", source)
            return ControlResult(True, action, self._status_line(), self.status())
        command_id = f"{self._stem}-{next(self._ids)}"
        received = time.time_ns()
        self._audit({"phase": "request", "id": command_id, "source": source, "action": action, "params": params},
                    received)
        # What a client claims (who it is, the action, a trip's reason) goes to the log on one line: a newline
        # in it would let anyone who can reach the socket write a log line of their choosing.
        self._log.warning("control: {} asked to {} {}", one_line(source), one_line(action),
                          one_line(str(params)) if params else "")
        async with self._lock:  # one action at a time: a pause and a resume must not interleave
            try:
                result = await self._dispatch(action, source, params)
            except Exception as exc:
                self._log.opt(exception=True).error("control action {} failed", one_line(action))
                result = ControlResult(False, action, f"{action} failed: {type(exc).__name__}: {exc}")
        result = attrs.evolve(result, command_id=command_id)
        done = time.time_ns()
        self._audit({"phase": "result", "id": command_id, "source": source, "action": action, "params": params,
                     "ok": result.ok, "message": result.message, "data": result.data,
                     "received_ns": received, "duration_ms": (done - received) // 1_000_000}, done)
        log = self._log.warning if result.ok else self._log.error
        log("control: {} by {}: {}: {}", one_line(action), one_line(source), "done" if result.ok else "FAILED",
            one_line(result.message))
        for listener in self.listeners:
            try:
                listener(result)
            except Exception:
                self._log.exception("control result listener failed")
        return result

    def execute_threadsafe(
        self, loop: asyncio.AbstractEventLoop, action: str, *, source: str, params: dict[str, Any] | None = None
    ) -> Future[ControlResult]:
        """For a transport on another thread: the action still runs on the engine's loop."""
        return asyncio.run_coroutine_threadsafe(self.execute(action, source=source, params=params), loop)

    def status(self) -> dict[str, Any]:
        """What an operator looks at first (also the data of the ``status`` action)."""
        engine = self.engine
        kill = engine.runner.kill_switch
        holds = engine.runner.gate_holds
        if not engine.runner.quoting_enabled:
            quoting = f"paused by {self.paused_by}" if self.paused_by else "paused"
        elif kill is not None and kill.halted:
            quoting = f"halted: kill switch: {kill.reason}"
        elif engine.runner.failure_halt is not None:
            quoting = f"halted: {engine.runner.failure_halt}"
        elif holds:  # runner gates (the venue's guard, the market claim, the journal) hold it: every one named
            quoting = "held " + _by_gates(holds)
        else:
            quoting = "active"
        return {
            "instance": self.instance,
            "running": self.ticks.running,
            "ticks": self.ticks.ticks,
            "quoting": quoting,
            "kill_switch": {"halted": bool(kill is not None and kill.halted),
                            "reason": kill.reason if kill is not None else "",
                            "resume": kill.config.resume if kill is not None else "",
                            # no loss limit on purpose (unlimited_loss, or no switch): said in every status
                            "unlimited_loss": bool(kill is None or kill.loss_unlimited)},
            # every gate holding quoting (gate order): why, since when (clock ns), for how many ticks; [] if none
            "gates": [hold.as_dict() for hold in holds],
            # the first of them, or None: the field as versions before "gates" answered it (a desk's monitor
            # reading "gate" must still see a hold, not a missing field it would take for "none holds")
            "gate": holds[0].as_dict() if holds else None,
            "position": str(engine.inventory.position),
            "open_orders": engine.open_order_count(),
            "pnl_total": str(engine.pnl.total()),
            "hedge": self.hedge.gate_status() if self.hedge is not None else None,
        }

    # ------------------------------------------------------------------ actions

    async def _dispatch(self, action: str, source: str, params: dict[str, Any]) -> ControlResult:
        if action not in ACTIONS:
            return ControlResult(False, action, f"unknown action {action!r}; one of: {', '.join(ACTIONS)}")
        refusal = _params_refusal(action, params)
        if refusal is not None:
            return ControlResult(False, action, refusal)
        if not self.ticks.running:
            return ControlResult(False, action, "the instance is not trading (starting or stopping); try again")
        if action == "pause":
            return await self._pause(source)
        if action == "resume":
            return await self._resume(source)
        if action == "cancel-all":
            return await self._cancel_all(source)
        if action == "flatten":
            return await self._flatten(source)
        return self._trip(source, params.get("reason", "emergency stop"))

    async def _pause(self, source: str) -> ControlResult:
        self._pull(source)
        left = await self._wait_until(lambda: self.engine.open_order_count() == 0, self.timeouts.pull_quotes_s)
        data = self.status()
        if left:
            return ControlResult(False, "pause", f"paused, but {self.engine.open_order_count()} quotes still open "
                                 f"after {self.timeouts.pull_quotes_s:.0f} s", data)
        return ControlResult(True, "pause", "quoting paused, no quote open; hedging goes on", data)

    async def _resume(self, source: str) -> ControlResult:
        engine = self.engine
        done: list[str] = []
        if not engine.runner.quoting_enabled:
            engine.runner.quoting_enabled = True
            done.append(f"pause lifted (was paused by {self.paused_by or 'an operator'})")
            self.paused_by = None
        kill = engine.runner.kill_switch
        if kill is not None and kill.halted:
            was = kill.reason
            kill.reset_by_hand(engine.clock.now_ns, engine.pnl.total())
            done.append(f"kill switch reset (was: {was})")
        if self.hedge is not None and self.hedge.reset_by_hand():
            done.append("hedge loss-limit stop reset")
        if not done:
            holds = engine.runner.gate_holds
            if holds:
                return ControlResult(False, "resume", f"nothing to resume by hand; quoting is {_held(holds)}",
                                     self.status())
            return ControlResult(True, "resume", "nothing to resume: quoting was active", self.status())
        # The next evaluations tell whether a trigger is still there (it trips again at once).
        for _ in range(self.timeouts.resume_ticks):
            await self.ticks.next_tick()
        if kill is not None and kill.halted:
            return ControlResult(False, "resume", f"{'; '.join(done)}; but the kill switch tripped again: "
                                 f"{kill.reason}", self.status())
        holds = engine.runner.gate_holds
        if holds:  # a gate is not lifted by hand: "quoting" would be untrue
            return ControlResult(False, "resume", f"{'; '.join(done)}; but quoting is {_held(holds)}", self.status())
        return ControlResult(True, "resume", f"{'; '.join(done)}; quoting", self.status())

    async def _cancel_all(self, source: str) -> ControlResult:
        engine = self.engine
        self._pull(source)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeouts.cancel_all_s
        venue_open: list[str] | None = None
        while True:
            engine.venue.cancel_all(engine.symbol)  # also what the engine does not know about
            await self._next_tick_or_none()
            try:
                venue_open = [r.client_id for r in await engine.venue.fetch_open_orders(engine.symbol)]
            except TransientVenueError as exc:
                self._log.warning("cancel-all: could not list open orders: {}", exc)
                venue_open = None
            if venue_open == [] and engine.open_order_count() == 0:
                return ControlResult(True, "cancel-all", f"nothing open at {engine.venue.venue} (confirmed by the "
                                     "venue); quoting paused", self.status())
            if loop.time() >= deadline:
                still = venue_open if venue_open is not None else "unknown (venue did not answer)"
                return ControlResult(False, "cancel-all", f"still open at {engine.venue.venue} after "
                                     f"{self.timeouts.cancel_all_s:.0f} s: {still}", self.status())

    async def _flatten(self, source: str) -> ControlResult:
        hedge, engine = self.hedge, self.engine
        if hedge is None:
            return ControlResult(False, "flatten", "no hedge venue is configured (hedge.enabled): cannot flatten",
                                 self.status())
        self._pull(source)
        before = engine.inventory.position
        if hedge.stop_reason is not None:
            return ControlResult(False, "flatten", f"hedging is stopped: {hedge.stop_reason}; position {before}",
                                 self.status())
        hedge.request_flatten(f"operator flatten by {source}")
        timeout = hedge.config.limit_timeout_ms / 1000 + self.timeouts.flatten_extra_s
        left = await self._wait_until(lambda: not hedge.flattening or hedge.stop_reason is not None, timeout)
        after = engine.inventory.position
        data = {**self.status(), "position_before": str(before)}
        if hedge.stop_reason is not None:
            return ControlResult(False, "flatten", f"hedging stopped: {hedge.stop_reason}; position {after}", data)
        if left:
            return ControlResult(False, "flatten", f"not flat after {timeout:.0f} s: position {after} (was {before}); "
                                 f"{hedge.funding_problem or 'hedges still working'}", data)
        return ControlResult(True, "flatten", f"position {after} (was {before}), hedged on {hedge.connector.venue}; "
                             "quoting paused", data)

    def _trip(self, source: str, reason: str) -> ControlResult:
        kill = self.engine.runner.kill_switch
        if kill is None:
            return ControlResult(False, "trip", "this instance has no kill switch (risk.kill_switch.enabled)")
        if kill.halted:  # a repeated (or replayed) trip: the first reason stays, and the answer says so
            return ControlResult(True, "trip", f"kill switch already halted: {kill.reason}", self.status())
        kill.trip(self.engine.clock.now_ns, f"operator ({source}): {reason}")
        return ControlResult(True, "trip", f"kill switch tripped: {kill.reason}", self.status())

    # ------------------------------------------------------------------ helpers

    def _pull(self, source: str) -> None:
        """Pause quoting and send the cancels now (the strategy step keeps them cancelled)."""
        if self.engine.runner.quoting_enabled:
            self.paused_by = source
        self.engine.pull_quotes()

    async def _next_tick_or_none(self) -> None:
        with contextlib.suppress(TimeoutError):
            await self.ticks.next_tick()

    async def _wait_until(self, done: Callable[[], bool], timeout_s: float) -> bool:
        """Tick by tick until ``done()``; returns True if it timed out first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not done():
            if loop.time() >= deadline:
                return True
            await self._next_tick_or_none()
        return False

    def _status_line(self) -> str:
        s = self.status()
        hedge = s["hedge"]
        hedging = "no hedge venue" if hedge is None else (
            f"hedging {hedge['hedging']}" + (f" ({hedge['stop_reason']})" if hedge["stop_reason"] else ""))
        return f"quoting {s['quoting']}; position {s['position']}; {s['open_orders']} open; {hedging}"

    def _audit(self, payload: dict[str, Any], ts_ns: int) -> None:
        if self.audit is None:
            return
        try:
            self.audit("control", payload, ts_ns)
        except Exception:  # the action itself must not fail because the trail did; it is logged anyway
            self._log.exception("could not audit a control command")


def _params_refusal(action: str, params: dict[str, Any]) -> str | None:
    """Why ``params`` cannot be carried out as asked by ``action`` (None: they can)."""
    allowed = ACTION_PARAMS[action]
    unknown = sorted(str(name) for name in params if name not in allowed)
    if unknown:
        takes = ", ".join(sorted(allowed)) or "none"
        return (f"unknown parameter(s) {', '.join(repr(name) for name in unknown)} for {action} (it takes: "
                f"{takes}); nothing was done")
    reason = params.get("reason", "emergency stop")
    if action == "trip" and not (isinstance(reason, str) and reason.strip()):
        return f"trip: reason must be a non-empty text, got {reason!r}; nothing was done"
    return None


def _by_gates(holds: Sequence[GateHold]) -> str:
    """``by gate A: why; by gate B: why``: every gate holding quoting, in gate order (never only the first)."""
    return "; ".join(f"by gate {hold.gate}: {hold.reason}" for hold in holds)


def _held(holds: Sequence[GateHold]) -> str:
    """How resume names the gates that still hold quoting (each clears by itself when its cause does)."""
    return f"held {_by_gates(holds)} (a gate clears by itself when its cause does)"
