"""A small HTTP/1.1 server on asyncio streams: what the dashboard needs and nothing more.

Why not aiohttp: its server and client (yarl, multidict, email, urllib,
http.cookies, ...) cost ~10 MB resident in a live process (issue 16: the
``mmkit demo`` process must stay under 100 MB), for six routes on loopback.
Why not ``http.server``: the dashboard must run on the engine's loop (a
snapshot is taken between two ticks and control actions go through
``ControlChannel.execute`` there), not on a thread.

What it does: one request per connection (every response says
``Connection: close``), routes by method and path (the query string is
ignored), a body only with ``Content-Length`` (bounded), responses with a
body, a file sent in blocks, or a stream written until the handler returns
or the server closes (server-sent events). Malformed requests get 400, an
unknown path 404, a known path with another method 405, a handler that
raises 500 (logged). :meth:`HttpServer.close` stops listening and cancels
the requests still running (an open page must not hold the instance's stop).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any

from loguru import logger

MAX_HEAD = 16 * 1024
MAX_BODY = 64 * 1024
FILE_BLOCK = 64 * 1024
READ_TIMEOUT_S = 10.0


class BadRequest(Exception):
    """The request cannot be parsed or is too large: answered with ``status`` and closed."""

    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status = status


class Request:
    """One parsed request: method, path (no query), lower-cased headers, body, the peer's address."""

    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes, remote: str) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        self.remote = remote

    def header(self, name: str, default: str = "") -> str:
        """A header's value by name, any case (HTTP header names are case-insensitive)."""
        return self.headers.get(name.lower(), default)

    def json(self) -> Any:
        """The body decoded as JSON (raises ``ValueError`` on a malformed one, like ``json.loads``)."""
        return json.loads(self.body.decode("utf-8"))


Send = Callable[[bytes], Awaitable[None]]


class Response:
    """What a handler returns: a body, or a file sent in blocks, or a ``stream`` writing through ``send``."""

    def __init__(
        self,
        status: int = 200,
        body: bytes = b"",
        content_type: str = "text/plain; charset=utf-8",
        *,
        file: Path | None = None,
        stream: Callable[[Send], Awaitable[None]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.file = file
        self.stream = stream
        self.headers = headers or {}

    @classmethod
    def text(cls, text: str, content_type: str, status: int = 200) -> Response:
        return cls(status, text.encode("utf-8"), f"{content_type}; charset=utf-8")

    @classmethod
    def json(cls, data: Any, status: int = 200) -> Response:
        return cls(status, json.dumps(data).encode("utf-8"), "application/json; charset=utf-8")


Handler = Callable[[Request], Awaitable[Response]]


async def read_request(reader: asyncio.StreamReader, remote: str) -> Request:
    """Parse one request from ``reader`` (raises :class:`BadRequest`)."""
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_S)
    except asyncio.LimitOverrunError as exc:
        raise BadRequest(431, "request head too large") from exc
    except asyncio.IncompleteReadError as exc:
        raise BadRequest(400, "connection closed before the end of the request head") from exc
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(400, f"malformed request line {lines[0][:80]!r}")
    method, target, _ = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise BadRequest(400, f"malformed header line {line[:80]!r}")
        headers[name.lower()] = value.strip()
    if "transfer-encoding" in headers:
        raise BadRequest(411, "a body needs Content-Length (chunked bodies are not accepted)")
    length_text = headers.get("content-length", "0")
    if not (length_text.isascii() and length_text.isdigit()):  # "²".isdigit() is True, int("²") fails
        raise BadRequest(400, f"bad Content-Length {length_text[:20]!r}")
    length = int(length_text)
    if length > MAX_BODY:
        raise BadRequest(413, f"body of {length} bytes (at most {MAX_BODY})")
    try:
        body = await asyncio.wait_for(reader.readexactly(length), READ_TIMEOUT_S) if length else b""
    except asyncio.IncompleteReadError as exc:
        raise BadRequest(400, "connection closed before the end of the body") from exc
    return Request(method, target.split("?", 1)[0], headers, body, remote)


def _head(status: int, content_type: str, length: int | None, extra: dict[str, str]) -> bytes:
    reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
    lines = [f"HTTP/1.1 {status} {reason}", f"Content-Type: {content_type}", "Connection: close"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    lines.extend(f"{k}: {v}" for k, v in extra.items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class HttpServer:
    """Serves ``routes`` ({(method, path): handler}) on the running loop; :meth:`start` binds."""

    def __init__(self, routes: dict[tuple[str, str], Handler], name: str = "http") -> None:
        self.routes = routes
        self._paths = {path for _, path in routes}
        self._server: asyncio.Server | None = None
        self._running: set[asyncio.Task[Any]] = set()
        self._log = logger.bind(component=name)

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (0: a free port); returns the port bound. Raises ``OSError`` if taken."""
        self._server = await asyncio.start_server(self._serve, host, port, limit=MAX_HEAD)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self, grace_s: float = 2.0) -> None:
        """Stop listening, cancel the requests still running and wait (bounded) for them to end."""
        if self._server is not None:
            self._server.close()
            self._server = None
        running = list(self._running)
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running, timeout=grace_s)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        peer = writer.get_extra_info("peername")
        remote = str(peer[0]) if isinstance(peer, tuple) else "?"
        try:
            await self._answer(reader, writer, remote)
        except (ConnectionError, asyncio.CancelledError):
            pass  # the peer went away, or the server is closing
        except Exception:  # a bug here must not escape to the loop's handler unlogged, nor leave the peer hanging
            self._log.opt(exception=True).error("request from {} failed outside its handler", remote)
        finally:
            if task is not None:
                self._running.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, remote: str) -> None:
        try:
            request = await read_request(reader, remote)
        except BadRequest as exc:
            await self._send(writer, Response(exc.status, f"{exc}\n".encode()))
            return
        except TimeoutError:
            return
        handler = self.routes.get((request.method, request.path))
        if handler is None:
            status = 405 if request.path in self._paths else 404
            await self._send(writer, Response(status, f"{HTTPStatus(status).phrase}\n".encode()))
            return
        try:
            response = await handler(request)
        except Exception:
            self._log.opt(exception=True).error("{} {} failed", request.method, request.path)
            response = Response(500, b"internal error\n")
        await self._send(writer, response)

    async def _send(self, writer: asyncio.StreamWriter, response: Response) -> None:
        if response.stream is not None:
            writer.write(_head(response.status, response.content_type, None, response.headers))
            await writer.drain()

            async def send(data: bytes) -> None:
                writer.write(data)
                await writer.drain()

            await response.stream(send)
            return
        if response.file is not None:
            try:
                size = response.file.stat().st_size
            except OSError as exc:  # e.g. an installed plotly without its bundle: say so, do not hang up
                self._log.error("cannot serve {}: {}", response.file, exc)
                await self._send(writer, Response(500, b"internal error\n"))
                return
            writer.write(_head(response.status, response.content_type, size, response.headers))
            with response.file.open("rb") as source:
                while block := source.read(FILE_BLOCK):
                    writer.write(block)
                    await writer.drain()
            return
        writer.write(_head(response.status, response.content_type, len(response.body), response.headers))
        writer.write(response.body)
        await writer.drain()
