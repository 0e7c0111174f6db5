"""Alert webhooks against a real HTTP server on loopback (aiohttp), in-process.

The sender's contract: ``alert()`` never blocks (it queues), the document is the documented
version-1 payload, a 500 (or a refused connection) is retried with backoff, a 4xx is not, the same
alert is rate-limited with the repeats counted in the next one, and ``mmkit alert-test`` posts a
``test`` alert (a real subprocess).
"""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from mmkit.app.console.alerts import AlertSender, AlertSettings, Webhook

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[4]


class Receiver:
    def __init__(self) -> None:
        self.statuses: list[int] = []  # what to answer, in order; then 200
        self.received: list[dict[str, Any]] = []
        self.attempt_times: list[float] = []
        self.headers: list[dict[str, str]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.attempt_times.append(time.monotonic())
        self.headers.append(dict(request.headers))
        body = await request.json()
        status = self.statuses.pop(0) if self.statuses else 200
        if status == 200:
            self.received.append(body)
        return web.Response(status=status)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    rec.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield rec
    finally:
        await runner.cleanup()


def _sender(url: str, **kw: Any) -> AlertSender:
    settings = AlertSettings(webhooks=(Webhook(url, {"X-Test": "yes"}),), backoff_s=0.05, timeout_s=5, **kw)
    return AlertSender(settings, "inst-a")


async def _until(predicate: Any, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_payload_and_retry_after_a_500(receiver: Receiver) -> None:
    receiver.statuses = [500, 503]
    sender = _sender(receiver.url, retries=3)
    sender.start()
    assert sender.alert("kill_switch", "max_loss", "kill switch tripped: max_loss", details={"pnl": "-2001"})
    assert not receiver.attempt_times  # queued, not sent, on the caller's time (nothing awaited yet)
    await _until(lambda: receiver.received)
    await sender.close()
    alert = receiver.received[0]
    assert alert["version"] == 1 and alert["source"] == "mmkit" and alert["instance"] == "inst-a"
    assert alert["kind"] == "kill_switch" and alert["severity"] == "critical" and alert["subject"] == "max_loss"
    assert alert["details"] == {"pnl": "-2001"} and alert["suppressed"] == 0
    assert alert["time"].endswith("Z") and isinstance(alert["ts_ns"], int)
    assert len(receiver.attempt_times) == 3  # 500, 503, then accepted
    gaps = [b - a for a, b in zip(receiver.attempt_times, receiver.attempt_times[1:], strict=False)]
    # Exponential backoff: each wait is at least the doubled delay (a sleep is a lower bound, whatever the load).
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1, gaps
    assert receiver.headers[0]["X-Test"] == "yes"
    assert sender.sent == 1 and sender.failed == 0


async def test_gives_up_after_the_retries_and_does_not_retry_a_4xx(receiver: Receiver) -> None:
    receiver.statuses = [500] * 10
    sender = _sender(receiver.url, retries=2)
    sender.start()
    sender.alert("store", "write", "store write failures: 3")
    await _until(lambda: sender.failed == 1)
    assert len(receiver.attempt_times) == 3 and not receiver.received
    receiver.statuses = [400]
    sender.alert("hedge", "hedge_stopped", "hedge did not complete")
    await _until(lambda: sender.failed == 2)
    assert len(receiver.attempt_times) == 4  # one attempt: the receiver refused the document
    await sender.close()


async def test_a_dead_receiver_is_retried_then_given_up() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: connection refused
    sender = _sender(f"http://127.0.0.1:{port}/hook", retries=1)
    assert await sender.post({"kind": "test"}) is False
    await sender.close()


async def test_rate_limit_suppresses_repeats_and_reports_them(receiver: Receiver) -> None:
    sender = _sender(receiver.url, min_interval_s=0.5)
    sender.start()
    assert sender.alert("venue_down", "truex", "down 30 s")
    for _ in range(5):
        assert not sender.alert("venue_down", "truex", "down 30 s")  # flapping: suppressed
    assert sender.alert("venue_down", "kraken", "down 30 s")  # another subject is not held back
    await _until(lambda: len(receiver.received) == 2)
    await asyncio.sleep(0.6)
    assert sender.alert("venue_down", "truex", "down again")
    await _until(lambda: len(receiver.received) == 3)
    await sender.close()
    assert [a["subject"] for a in receiver.received] == ["truex", "kraken", "truex"]
    assert receiver.received[2]["suppressed"] == 5 and sender.rate_limited == 5


async def test_a_full_queue_drops_and_counts(receiver: Receiver) -> None:
    sender = _sender(receiver.url, max_queued=2, min_interval_s=0)
    assert sender.alert("a", "1", "x") and sender.alert("a", "2", "x")
    assert not sender.alert("a", "3", "x")
    assert sender.dropped == 1
    sender.start()
    await _until(lambda: len(receiver.received) == 2)
    await sender.close()


@pytest.fixture
def threaded_receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A receiver on its own thread, for the subprocess test (the test itself is synchronous)."""
    received: list[dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/secret-path", received
    finally:
        server.shutdown()
        server.server_close()


def test_alert_test_command(threaded_receiver: tuple[str, list[dict[str, Any]]], tmp_path: Path) -> None:
    hook_url, received = threaded_receiver
    config = tmp_path / "cfg.yml"
    config.write_text(
        "engine: {instance: alert-inst}\nvenue: {connector: x, symbol: Y, settings: {api_key: '${NOT_SET_ANYWHERE}'}}\n"
        "strategy: {controller: 'a:B'}\n"
        "console:\n  alerts:\n    webhooks: [{url: '${MMKIT_TEST_HOOK}'}]\n    retries: 0\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "MMKIT_TEST_HOOK": hook_url}
    run = subprocess.run([sys.executable, "-m", "mmkit.app.cli", "alert-test", str(config)], env=env,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("alert-test: sent to http://127.0.0.1:") and "secret" not in run.stdout
    assert [(a["kind"], a["instance"], a["version"]) for a in received] == [("test", "alert-inst", 1)]
    no_hooks = tmp_path / "none.yml"
    no_hooks.write_text("venue: {connector: x, symbol: Y}\nstrategy: {controller: 'a:B'}\n")
    run = subprocess.run([sys.executable, "-m", "mmkit.app.cli", "alert-test", str(no_hooks)], env=env,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 2 and "console.alerts.webhooks" in run.stderr and "Traceback" not in run.stderr
