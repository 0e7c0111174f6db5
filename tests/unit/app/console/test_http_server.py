"""The dashboard's HTTP server (mmkit.app.console.http_server) over real loopback sockets.

Bad input gets a clear status (400/404/405/411/413/431) and never reaches a
handler; a handler that raises answers 500; a file arrives whole; a stream
runs until the server closes, and close() does not wait on an open page.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mmkit.app.console.http_server import MAX_BODY, MAX_HEAD, HttpServer, Request, Response, Send

pytestmark = pytest.mark.integration


class Served:
    def __init__(self, server: HttpServer, port: int) -> None:
        self.server = server
        self.port = port
        self.seen: list[Request] = []


async def _exchange(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``raw`` and read the whole answer (the server closes after one response)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split(" ")[1]), headers, body


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    big = tmp_path / "big.js"
    big.write_bytes(bytes(range(256)) * 1000 + b"end")  # several blocks, not a multiple of the block size
    ticks = asyncio.Event()

    async def echo(request: Request) -> Response:
        served.seen.append(request)
        return Response.json({"method": request.method, "path": request.path, "body": request.json(),
                              "auth": request.header("AUTHORIZATION"), "remote": request.remote})

    async def boom(request: Request) -> Response:
        raise RuntimeError("handler bug")

    async def file(request: Request) -> Response:
        return Response(file=big, content_type="application/javascript")

    async def gone(request: Request) -> Response:
        return Response(file=tmp_path / "missing.js", content_type="application/javascript")

    async def events(request: Request) -> Response:
        async def stream(send: Send) -> None:
            n = 0
            while True:
                await send(f"data: {n}\n\n".encode())
                n += 1
                ticks.set()
                await asyncio.sleep(0.01)

        return Response(content_type="text/event-stream", stream=stream)

    server = HttpServer({("POST", "/echo"): echo, ("GET", "/boom"): boom, ("GET", "/file"): file,
                         ("GET", "/gone"): gone, ("GET", "/events"): events})  # fmt: skip
    port = await server.start("127.0.0.1", 0)
    served = Served(server, port)
    served.big = big  # type: ignore[attr-defined]
    served.ticks = ticks  # type: ignore[attr-defined]
    try:
        yield served
    finally:
        await server.close()


async def test_a_request_reaches_its_handler_with_body_headers_and_peer(served: Served) -> None:
    body = json.dumps({"action": "pause"}).encode()
    raw = (b"POST /echo?x=1 HTTP/1.1\r\nHost: h\r\nauthorization: Bearer t\r\nContent-Length: "
           + str(len(body)).encode() + b"\r\n\r\n" + body)  # fmt: skip
    status, headers, answer = await _exchange(served.port, raw)
    assert status == 200 and headers["connection"] == "close"
    assert int(headers["content-length"]) == len(answer)
    assert json.loads(answer) == {"method": "POST", "path": "/echo", "body": {"action": "pause"},
                                  "auth": "Bearer t", "remote": "127.0.0.1"}  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET /nowhere HTTP/1.1\r\n\r\n", 404),
        (b"GET /echo HTTP/1.1\r\n\r\n", 405),
        (b"nonsense\r\n\r\n", 400),
        (b"GET /echo HTTP/2\r\n\r\n", 400),
        (b"POST /echo HTTP/1.1\r\nno colon here\r\n\r\n", 400),
        (b"POST /echo HTTP/1.1\r\nContent-Length: -5\r\n\r\n", 400),
        ("POST /echo HTTP/1.1\r\nContent-Length: \u00b2\r\n\r\nab".encode("latin-1"), 400),  # isdigit, not int
        (b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 411),
        (b"POST /echo HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1), 413),
        (b"GET /echo HTTP/1.1\r\nX: " + b"a" * (MAX_HEAD + 10) + b"\r\n\r\n", 431),
        (b"POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\nshort", 400),
    ],
)
async def test_bad_requests_get_a_clear_status_and_never_reach_a_handler(
    served: Served, raw: bytes, status: int
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(raw)
    if raw.endswith(b"short"):
        writer.write_eof()  # the body ends before its Content-Length
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert data.startswith(f"HTTP/1.1 {status} ".encode()), data[:80]
    assert served.seen == []


async def test_a_handler_that_raises_answers_500(served: Served) -> None:
    status, _, body = await _exchange(served.port, b"GET /boom HTTP/1.1\r\n\r\n")
    assert status == 500 and b"internal error" in body


async def test_a_missing_file_answers_500_instead_of_hanging_up(served: Served) -> None:
    status, _, body = await _exchange(served.port, b"GET /gone HTTP/1.1\r\n\r\n")
    assert status == 500 and b"internal error" in body


async def test_a_file_arrives_whole(served: Served) -> None:
    status, headers, body = await _exchange(served.port, b"GET /file HTTP/1.1\r\n\r\n")
    expected = served.big.read_bytes()  # type: ignore[attr-defined]
    assert status == 200 and headers["content-type"] == "application/javascript"
    assert int(headers["content-length"]) == len(expected) and body == expected


async def test_a_stream_runs_until_close_and_close_does_not_wait_for_the_page(served: Served) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(b"GET /events HTTP/1.1\r\n\r\n")
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert b"text/event-stream" in head and b"Content-Length" not in head
    events = [await asyncio.wait_for(reader.readuntil(b"\n\n"), 10) for _ in range(3)]
    assert events == [b"data: 0\n\n", b"data: 1\n\n", b"data: 2\n\n"]
    began = time.monotonic()
    await served.server.close()
    assert time.monotonic() - began < 2.5
    rest = await asyncio.wait_for(reader.read(), 10)  # the server closed the connection: the read ends
    assert rest.count(b"data: ") < 1000
    writer.close()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", served.port)  # no longer listening
