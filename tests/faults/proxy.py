"""A loopback TCP proxy that misbehaves on command: drop, delay, blackhole or corrupt either direction.

Placed between the engine's FIX initiator and the TrueX simulator, it plays
the network faults of issue 11 for real: the FIX sessions, QuickFIX's gap
handling and mmkit's watchdog and reconciliation all see real bytes.

Modes, per direction (``UP`` = client to venue, ``DOWN`` = venue to client):

* ``PASS``: forward as is;
* ``DROP``: read and discard (the connection stays up; those bytes are lost);
* ``DELAY``: forward each chunk ``delay_s`` late, in order;
* ``BLACKHOLE``: stop reading, so nothing is delivered and TCP back-pressure
  builds, as on a dead route; bytes flow again (late) when the mode changes;
* ``CORRUPT``: overwrite bytes in the middle of each chunk (checksums fail).

The proxy runs its own asyncio loop in a thread so that it never shares the
engine's loop; every control call is thread-safe.
"""

from __future__ import annotations

import asyncio
import enum
import threading
from collections.abc import Coroutine
from typing import Any


class Direction(enum.Enum):
    UP = "up"  # client -> venue
    DOWN = "down"  # venue -> client


class Mode(enum.Enum):
    PASS = "pass"
    DROP = "drop"
    DELAY = "delay"
    BLACKHOLE = "blackhole"
    CORRUPT = "corrupt"


class FaultProxy:
    """Listens on 127.0.0.1:``port`` (a free port) and forwards to 127.0.0.1:``target_port``."""

    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        self.target_port = target_port
        self.host = host
        self.port = 0
        self._modes = {Direction.UP: Mode.PASS, Direction.DOWN: Mode.PASS}
        self.delay_s = 0.0
        self.bytes = {Direction.UP: 0, Direction.DOWN: 0}
        self.dropped = {Direction.UP: 0, Direction.DOWN: 0}
        self.corrupted = {Direction.UP: 0, Direction.DOWN: 0}
        self.connections = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._mode_changed: asyncio.Event | None = None
        self._ready = threading.Event()

    # -- control (any thread) ------------------------------------------------

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fault proxy did not start")
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return
        self._call(self._shutdown())
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None

    def set(self, direction: Direction, mode: Mode, delay_s: float | None = None) -> None:
        if delay_s is not None:
            self.delay_s = delay_s
        self._modes[direction] = mode
        loop, event = self._loop, self._mode_changed
        if loop is not None and event is not None:
            loop.call_soon_threadsafe(event.set)

    def set_both(self, mode: Mode, delay_s: float | None = None) -> None:
        self.set(Direction.UP, mode, delay_s)
        self.set(Direction.DOWN, mode, delay_s)

    def heal(self) -> None:
        self.set_both(Mode.PASS)

    def cut(self) -> None:
        """Close every proxied connection now (both sides see a reset)."""
        self._call(self._close_all())

    def mode(self, direction: Direction) -> Mode:
        return self._modes[direction]

    # -- the loop thread -------------------------------------------------------

    def _call(self, coro: Coroutine[Any, Any, None]) -> None:
        loop = self._loop
        if loop is None:
            coro.close()
            return
        asyncio.run_coroutine_threadsafe(coro, loop).result(10)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        self._mode_changed = asyncio.Event()
        self._server = loop.run_until_complete(asyncio.start_server(self._accept, self.host, 0))
        self.port = int(self._server.sockets[0].getsockname()[1])
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._close_all()

    async def _close_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            venue_r, venue_w = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            client_w.transport.abort()
            return
        self.connections += 1
        self._writers.update((client_w, venue_w))
        up = asyncio.ensure_future(self._pump(client_r, venue_w, Direction.UP))
        down = asyncio.ensure_future(self._pump(venue_r, client_w, Direction.DOWN))
        await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        for task in (up, down):
            task.cancel()
        for writer in (client_w, venue_w):
            writer.transport.abort()
            self._writers.discard(writer)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: Direction) -> None:
        assert self._mode_changed is not None
        while True:
            while self._modes[direction] is Mode.BLACKHOLE:
                self._mode_changed.clear()
                await self._mode_changed.wait()
            chunk = await reader.read(65536)
            if not chunk:
                return
            self.bytes[direction] += len(chunk)
            while self._modes[direction] is Mode.BLACKHOLE:  # a read already under way when it was set
                self._mode_changed.clear()
                await self._mode_changed.wait()
            mode = self._modes[direction]
            if mode is Mode.DROP:
                self.dropped[direction] += len(chunk)
                continue
            if mode is Mode.CORRUPT:
                chunk = _corrupt(chunk)
                self.corrupted[direction] += 1
            elif mode is Mode.DELAY:
                await asyncio.sleep(self.delay_s)
            writer.write(chunk)
            await writer.drain()


def _corrupt(chunk: bytes) -> bytes:
    """Overwrite a run of bytes in the middle (never the whole chunk, so framing half-survives)."""
    data = bytearray(chunk)
    middle = len(data) // 2
    for i in range(middle, min(len(data), middle + 8)):
        data[i] = ord("#") if data[i] != ord("#") else ord("%")
    return bytes(data)
