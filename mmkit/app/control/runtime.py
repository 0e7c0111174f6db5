"""Wiring the control channel into a live run (``mmkit start``): one call at start, one closer.

:func:`open_controls` runs after persistence is attached and before the
engine starts: it claims the control socket (refusing to start when another
instance of the same name answers on it), adds the channel's tick waiter to
the clock (after every other iterator, so a waited-for tick is a whole tick),
sends hedge-gate problems and every command to the audit trail, and keeps
the hedge venue's balances fresh for the hedge gate's funding check.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from loguru import logger

from mmkit.app.control.channel import ControlChannel, TickWaiter
from mmkit.app.control.paths import ControlPathError, control_socket_path
from mmkit.app.control.server import ControlServer


class ControlStartError(Exception):
    """The control channel cannot be opened: the instance must not start (nobody could pause it)."""


class Controls:
    """What :func:`open_controls` started; :meth:`close` (an Engine closer) stops all of it."""

    def __init__(self, channel: ControlChannel, server: ControlServer) -> None:
        self.channel = channel
        self.server = server
        self._tasks: list[asyncio.Task[None]] = []

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        self.server.close()


async def open_controls(built: Any, persistence: Any) -> Controls:
    """Open the control channel of ``built`` (a BuiltEngine) and register its closer."""
    engine, hedge = built.engine, built.hedge
    config = built.config.engine
    path = control_socket_path(config.output_dir, config.instance)
    audit = persistence.audit.put if persistence is not None else None
    ticks = TickWaiter()
    channel = ControlChannel(engine, hedge=hedge, audit=audit, ticks=ticks, instance=config.instance)
    server = ControlServer(channel, path)
    try:
        await server.start()
    except (ControlPathError, OSError) as exc:
        raise ControlStartError(f"cannot open the control channel {path}: {exc}") from exc
    controls = Controls(channel, server)
    engine.clock.add_iterator(ticks, name="control")
    engine.closers.append(controls.close)
    if hedge is not None:
        if audit is not None:
            hedge.problem_listeners.append(
                lambda event, detail: audit("risk", {"event": event, **detail}, time.time_ns())
            )
        if hedge.balances is not None:
            controls._tasks.append(asyncio.create_task(_refresh_balances(hedge), name="hedge-balances"))
    return controls


async def _refresh_balances(hedge: Any) -> None:
    """Re-read the hedge venue's balances on a period (its events keep them current in between)."""
    period = float(hedge.config.balance_refresh_s)
    log = logger.bind(component="hedge", venue=hedge.connector.venue)
    failing = False
    while True:
        await asyncio.sleep(period)
        if not hedge.connector.connected:
            continue
        try:
            await hedge.balances.refresh(hedge.connector)
        except Exception as exc:
            if not failing:
                log.error("cannot refresh the hedge venue's balances (the last known stay in use): {}", exc)
            failing = True
            continue
        if failing:
            log.info("hedge venue balances readable again: {}", hedge.balances.as_dict())
        failing = False
