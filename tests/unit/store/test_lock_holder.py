"""The holder name of an advisory lock's connection, and the judgement "that holder is dead" (mmkit.store.lock_holder).

Real processes on this machine: a reaped child, a zombie, a live child; the
judgement must never call a live holder dead, and must decline to judge
whatever it cannot prove (another host, another pid namespace, a cut name).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mmkit.store import lock_holder
from mmkit.store.lock_holder import MAX_NAME_BYTES, holder_name, marker, parse_holder, why_dead

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="the marker needs Linux /proc")
HOST = socket.gethostname()


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)


def place() -> str:
    mine = marker()
    assert mine is not None and len(mine) == 8
    return mine[:4]


def test_the_name_carries_pid_host_marker_and_note_within_63_bytes() -> None:
    name = holder_name("truex-btc")
    assert name == f"mmkit pid {os.getpid()} on {HOST}:{marker()} (truex-btc)"
    holder = parse_holder(name)
    assert holder is not None and (holder.pid, holder.host) == (os.getpid(), HOST)
    long = holder_name("x" * 200)
    assert len(long.encode()) == MAX_NAME_BYTES and parse_holder(long) is not None  # the note is cut, not the marker


def test_a_host_name_too_long_for_the_marker_leaves_it_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """A marker that does not fit whole is not written: such a holder is never judged (refused as before)."""
    monkeypatch.setattr(lock_holder.socket, "gethostname", lambda: "h" * 40)
    name = holder_name("alpha")
    assert name.startswith(f"mmkit pid {os.getpid()} on {'h' * 40}") and ":" not in name
    assert parse_holder(name) is None and why_dead(name) is None


def test_this_live_process_is_not_dead() -> None:
    assert why_dead(holder_name("alpha")) is None


def test_a_reaped_holder_is_dead() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    assert why_dead(f"mmkit pid {proc.pid} on {HOST}:{place()}0000 (alpha)") == (
        f"pid {proc.pid} is not running on {HOST}")


def test_a_zombie_holder_is_dead(
    child: subprocess.Popen[bytes], wait_until: Callable[[Callable[[], bool], float], bool],
) -> None:
    live = marker(child.pid)
    assert live is not None
    name = f"mmkit pid {child.pid} on {HOST}:{live} (alpha)"
    assert why_dead(name) is None  # alive, the same process
    os.kill(child.pid, signal.SIGKILL)  # not reaped yet: a zombie with the same start time
    assert wait_until(lambda: Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z",
                      10.0), "never became a zombie"
    assert why_dead(name) == f"pid {child.pid} on {HOST} has exited (a zombie: its sockets are closed)"


def test_a_pid_reused_by_another_process_is_dead(child: subprocess.Popen[bytes]) -> None:
    live = marker(child.pid)
    assert live is not None
    other_start = "0000" if live[4:] != "0000" else "0001"
    why = why_dead(f"mmkit pid {child.pid} on {HOST}:{live[:4]}{other_start} (alpha)")
    assert why is not None and why.startswith(f"pid {child.pid} on {HOST} is now another process"), why


@pytest.mark.parametrize("name", [
    "mmkit pid {pid} on other-host:{place}0000 (alpha)",  # another host
    "mmkit pid {pid} on {host}:{other}0000 (alpha)",  # this host's name, another machine or pid namespace
    "mmkit pid {pid} on {host} (alpha)",  # an older version: no marker
    "mmkit pid {pid} on {host}:{place}00",  # the marker cut at 63 bytes
    "mmkit pid {pid} on {host}:{place}0000x",  # not a marker
    "mmkit pid 0 on {host}:{place}0000",  # pid 0 is never a holder (kill(0) signals our group)
    "psql",
    "",
])
def test_what_cannot_be_proved_dead_here_is_not_judged(name: str) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)  # its pid runs nothing: only the name decides
    other = "zzzz" if place() != "zzzz" else "yyyy"
    assert why_dead(name.format(pid=proc.pid, host=HOST, place=place(), other=other)) is None
