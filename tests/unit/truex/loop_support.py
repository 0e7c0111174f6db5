"""Waiting for an asyncio loop to have run what was queued, on events rather than time."""

from __future__ import annotations

import asyncio


async def loop_caught_up(rounds: int = 2) -> None:
    """Return once the loop has run everything queued before this call, and what its next I/O poll found.

    Each round queues a marker with ``call_soon`` and waits for it: the loop runs its ready callbacks in
    order, so the marker runs after everything queued before it, and after the callbacks of the readers
    (a wake-up pipe) that the same iteration's poll found ready. Two rounds cover a callback that a reader's
    callback itself queues.
    """
    loop = asyncio.get_running_loop()
    for _ in range(rounds):
        marker = loop.create_future()
        loop.call_soon(marker.set_result, None)
        await marker
