"""The local transport of the control channel: a Unix socket speaking line-delimited JSON.

Protocol (one request per line, one answer per line, UTF-8)::

    -> {"action": "pause", "params": {}, "source": "mmkit pause"}
    <- {"ok": true, "action": "pause", "message": "...", "data": {...}, "id": "18c...-3"}

A connection may send several requests; each is answered in order. A line
that is not a JSON object with a string ``action`` is answered with
``ok: false`` (and audited as action ``"invalid"``); a line longer than
64 KiB closes the connection.

Who asked: the kernel's peer credentials (``SO_PEERCRED``: uid, pid) are
appended to the ``source`` the client names, so the audit trail says
``mmkit pause (uid 1000, pid 4242)``, not only what the client claims. Peers
with another uid than the instance's (root excepted) are refused: the 0700
directory and 0600 socket already keep them out; this is the second lock.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
from pathlib import Path
from typing import Any

from loguru import logger

from mmkit.app.control.channel import ControlChannel
from mmkit.app.control.paths import bind_private_socket

MAX_LINE = 64 * 1024


class ControlServer:
    """Serves :class:`ControlChannel` on a Unix socket on the engine's loop."""

    def __init__(self, channel: ControlChannel, path: Path) -> None:
        self.channel = channel
        self.path = path
        self._server: asyncio.base_events.Server | None = None
        self._sock: socket.socket | None = None
        self._log = logger.bind(component="control", socket=str(path))

    async def start(self) -> None:
        """Bind (refusing if another instance answers on the path) and start serving."""
        self._sock = bind_private_socket(self.path)
        self._server = await asyncio.start_unix_server(self._serve, sock=self._sock, limit=MAX_LINE)
        self._log.info("control channel listening on {}", self.path)

    def close(self) -> None:
        """Stop accepting and remove the socket file, so `mmkit pause` says at once that nothing runs."""
        if self._server is not None:
            self._server.close()  # closes the listening socket too
            self._server = None
        if self._sock is not None:
            self._sock = None
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                self._log.warning("could not remove the control socket {}: {}", self.path, exc)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _peer(writer)
        try:
            if peer is not None and peer[1] not in (os.getuid(), 0):
                self._log.error("refused a control connection from uid {} (pid {})", peer[1], peer[0])
                await _send(writer, {"ok": False, "action": "", "message": "permission denied", "data": {}})
                return
            while True:
                try:
                    line = await reader.readline()
                except (asyncio.LimitOverrunError, ValueError):
                    await _send(writer, {"ok": False, "action": "", "message": "request too long", "data": {}})
                    return
                if not line:
                    return
                if not line.strip():
                    continue
                answer = await self._answer(line, peer)
                await _send(writer, answer)
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    async def _answer(self, line: bytes, peer: tuple[int, int] | None) -> dict[str, Any]:
        try:
            request = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            request = None
            problem = f"not JSON: {exc}"
        else:
            problem = "expected an object with a string 'action'"
        claimed = ""
        if isinstance(request, dict):
            claimed = str(request.get("source") or "")[:200]
        who = _who(claimed or "socket client", peer)
        if not (isinstance(request, dict) and isinstance(request.get("action"), str)):
            result = await self.channel.execute("invalid", source=who, params={"problem": problem})
            return {**result.as_dict(), "message": f"invalid request: {problem}"}
        params = request.get("params") or {}
        if not isinstance(params, dict):
            params = {"value": params}
        result = await self.channel.execute(request["action"], source=who, params=params)
        return result.as_dict()


def _peer(writer: asyncio.StreamWriter) -> tuple[int, int] | None:
    """(pid, uid) of the connected process, from the kernel (Linux SO_PEERCRED)."""
    sock = writer.get_extra_info("socket")
    option = getattr(socket, "SO_PEERCRED", None)
    if sock is None or option is None:
        return None
    try:
        pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i")))
    except OSError:
        return None
    return pid, uid


def _who(claimed: str, peer: tuple[int, int] | None) -> str:
    if peer is None:
        return claimed
    return f"{claimed} (uid {peer[1]}, pid {peer[0]})"


async def _send(writer: asyncio.StreamWriter, payload: dict[str, Any]) -> None:
    writer.write((json.dumps(payload, default=str) + "\n").encode("utf-8"))
    await writer.drain()
