"""The Unix-socket transport on real sockets: permissions, a path past sun_path's limit, stale and
live sockets, malformed requests, the peer's credentials in ``source``."""

from __future__ import annotations

import json
import os
import socket
import stat
import threading
from decimal import Decimal as D
from pathlib import Path

import pytest

from mmkit.app.control.auth import token_matches
from mmkit.app.control.channel import ControlChannel
from mmkit.app.control.client import NoInstanceError, send_command
from mmkit.app.control.paths import ControlPathError, bind_private_socket, control_socket_path
from mmkit.app.control.server import ControlServer
from mmkit.store.audit import AuditTrail
from mmkit.testing.harness import Harness
from strategies.simple import SimpleConfig, SimpleController


def channel(tmp_path: Path) -> tuple[ControlChannel, AuditTrail]:
    h = Harness(SimpleController(SimpleConfig(half_spread_bps=D(10), order_size=D("0.5"))))
    trail = AuditTrail(tmp_path / "audit.jsonl", instance="t", fsync="never")
    return ControlChannel(h.engine, audit=trail.write, instance="t"), trail


async def ask(path: Path, action: str, **params: object) -> dict[str, object]:
    import asyncio

    return await asyncio.to_thread(send_command, path, action, params=params, source="pytest", timeout_s=10)


async def test_private_directory_and_socket_and_the_peer_in_source(tmp_path: Path) -> None:
    ch, trail = channel(tmp_path)
    (tmp_path / "control").mkdir(mode=0o755)  # too wide: tightened
    path = control_socket_path(tmp_path, "inst")
    server = ControlServer(ch, path)
    await server.start()
    try:
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_ISSOCK(path.stat().st_mode)
        status = await ask(path, "status")
        assert status["ok"] and status["data"]["instance"] == "t"  # type: ignore[index]
        refused = await ask(path, "pause")  # the clock is not running: refused, and audited
        assert refused["ok"] is False and "not trading" in str(refused["message"])
    finally:
        server.close()
    assert not path.exists()
    trail.close()
    lines = [json.loads(x)["data"] for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [line["action"] for line in lines] == ["pause", "pause"]
    assert lines[0]["source"] == f"pytest (uid {os.getuid()}, pid {os.getpid()})"


async def test_a_path_longer_than_sun_path_still_works(tmp_path: Path) -> None:
    ch, _ = channel(tmp_path)
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    path = control_socket_path(deep, "instance-with-a-long-name")
    assert len(os.fsencode(str(path))) > 108
    server = ControlServer(ch, path)
    await server.start()
    try:
        assert (await ask(path, "status"))["ok"]
    finally:
        server.close()


async def test_malformed_lines_are_answered_not_fatal(tmp_path: Path) -> None:
    import asyncio

    ch, _ = channel(tmp_path)
    path = control_socket_path(tmp_path, "inst")
    server = ControlServer(ch, path)
    await server.start()

    def exchange() -> list[dict[str, object]]:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(10)
            sock.connect(str(path))
            sock.sendall(b"not json\n[1, 2]\n{\"action\": \"status\"}\n")
            data = b""
            while data.count(b"\n") < 3:
                data += sock.recv(65536)
        return [json.loads(line) for line in data.splitlines()]

    try:
        answers = await asyncio.to_thread(exchange)
    finally:
        server.close()
    assert [a["ok"] for a in answers] == [False, False, True]
    assert "invalid request: not JSON" in str(answers[0]["message"])
    assert "invalid request" in str(answers[1]["message"])


async def test_a_live_socket_refuses_a_second_bind_and_a_stale_one_is_replaced(tmp_path: Path) -> None:
    ch, _ = channel(tmp_path)
    path = control_socket_path(tmp_path, "inst")
    server = ControlServer(ch, path)
    await server.start()
    try:
        with pytest.raises(ControlPathError, match="another instance is running"):
            bind_private_socket(path)
    finally:
        server.close()
    with socket.socket(socket.AF_UNIX) as dead:  # what a SIGKILLed run leaves: a file nobody listens on
        dead.bind(str(path))
    with pytest.raises(NoInstanceError):
        send_command(path, "status", timeout_s=5)
    sock = bind_private_socket(path)
    sock.close()
    path.unlink()
    path.write_text("not a socket")
    with pytest.raises(ControlPathError, match="not a socket"):
        bind_private_socket(path)


def test_the_socket_file_appears_only_once_it_is_0600_and_answering(tmp_path: Path) -> None:
    """Whoever waits for the file (an operator's script, the e2e tests) finds it ready, never half set up.

    A thread binds while this one spins until the file appears, then looks at it at once. Bound under its
    final name, the file was there before its chmod and its listen: about 1 look in 100 caught it
    world-readable or refusing the connection (a live instance read as "not running").
    """
    caught = []
    for n in range(400):
        path = control_socket_path(tmp_path / str(n), "inst")
        bound: list[socket.socket] = []
        binder = threading.Thread(target=lambda p=path, into=bound: into.append(bind_private_socket(p)))
        binder.start()
        while not path.exists() and binder.is_alive():
            pass
        assert path.exists(), "bind_private_socket failed"
        mode = stat.S_IMODE(path.stat().st_mode)
        with socket.socket(socket.AF_UNIX) as client:
            answered = client.connect_ex(str(path)) == 0
        if mode != 0o600 or not answered:
            caught.append((n, oct(mode), answered))
        binder.join()
        bound[0].close()
        assert os.listdir(path.parent) == [path.name]  # the staging name is gone
    assert caught == []


def test_token_check_for_non_local_transports() -> None:
    assert token_matches("s3cret", "s3cret")
    assert not token_matches("s3cre", "s3cret")
    assert not token_matches(None, "s3cret")
    assert not token_matches("", "")  # no token configured: refused, never open
