"""Small waiting helpers: poll a connector's inbox until a condition holds (bounded)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from connectors.ccxt.connector import CcxtConnector
from mmkit.model import VenueEvent


async def collect_until(
    connector: CcxtConnector,
    done: Callable[[list[VenueEvent]], bool],
    timeout_s: float = 2.0,
    into: list[VenueEvent] | None = None,
) -> list[VenueEvent]:
    """Drain events into a list until ``done(events)`` or the timeout (then fail loudly)."""
    events = [] if into is None else into
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        events.extend(connector.drain())
        if done(events):
            return events
        if loop.time() > deadline:
            raise AssertionError(f"condition not met in {timeout_s}s; events: {events[-10:]}")
        await asyncio.sleep(0.005)


def of_type(events: list[VenueEvent], cls: type) -> list[Any]:
    return [e for e in events if isinstance(e, cls)]
