"""LoopWaker: wakes the loop from another thread keeping the GIL, loses no wake-up, falls back cleanly.

loop_waker.py says why it exists (the loop stealing the GIL from a QuickFIX
callback in mid-call). Each test here fails if one of its rules is broken:
the pipe emptied after the callback instead of before (a lost wake-up), the
GIL let go during the write, a loop without ``add_reader`` left unwoken, a
closed waker's descriptors left open.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import sys
import threading
import time
from typing import Any

import pytest

from connectors.truex import loop_waker
from connectors.truex.loop_waker import LoopWaker
from tests.unit.truex.loop_support import loop_caught_up


async def test_a_wake_from_another_thread_runs_the_callback_on_the_loop() -> None:
    loop = asyncio.get_running_loop()
    ran_on: list[int] = []
    done = asyncio.Event()

    def callback() -> None:
        ran_on.append(threading.get_ident())
        done.set()

    waker = LoopWaker(loop, callback)
    assert waker.uses_pipe
    threading.Thread(target=waker.wake).start()
    await asyncio.wait_for(done.wait(), 10)
    assert ran_on == [threading.get_ident()]
    assert waker.fallbacks == 0
    waker.close()


async def test_a_wake_written_while_the_callback_runs_is_not_lost() -> None:
    """The reader empties the pipe before the callback: a byte written during the callback wakes it again."""
    loop = asyncio.get_running_loop()
    runs = 0
    second = asyncio.Event()

    def callback() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:  # work queued after this callback looked at its queue: its wake-up must survive
            writer = threading.Thread(target=waker.wake)
            writer.start()
            writer.join()
        else:
            second.set()

    waker = LoopWaker(loop, callback)
    waker.wake()
    await asyncio.wait_for(second.wait(), 5)  # emptying the pipe after the callback would eat this wake-up
    assert runs == 2
    waker.close()


async def test_the_waking_thread_keeps_the_gil_until_it_lets_go_itself() -> None:
    """After wake() returns, the loop runs no Python until the waking thread blocks or returns.

    A write that let go of the GIL (``call_soon_threadsafe``'s ``socket.send``, or ``os.write``) lets the
    loop, woken by that byte, take the GIL inside the write now and then (when the kernel runs the woken
    thread first); the waking thread then sees the callback run during its busy wait below. Over many
    wake-ups that shows; with the GIL kept it never can.
    """
    loop = asyncio.get_running_loop()
    ran = threading.Event()
    waker = LoopWaker(loop, ran.set)
    stolen = 0
    interval = sys.getswitchinterval()

    def waking_thread(rounds: int) -> None:
        nonlocal stolen
        for _ in range(rounds):
            ran.clear()
            waker.wake()
            until = time.perf_counter() + 0.002  # pure Python, no system call: the GIL is never let go here
            while time.perf_counter() < until:
                if ran.is_set():
                    stolen += 1
                    break
            ran.wait(5)  # blocks: now the loop may run the callback

    sys.setswitchinterval(5.0)  # no forced switch during a busy wait
    try:
        thread = threading.Thread(target=waking_thread, args=(300,))
        thread.start()
        await asyncio.to_thread(thread.join)
    finally:
        sys.setswitchinterval(interval)
    assert stolen == 0
    waker.close()


def test_the_write_is_a_c_call_that_keeps_the_gil() -> None:
    """The waker writes through ``_WRITE``, a ``ctypes.PyDLL`` function (the flag that keeps the GIL)."""
    assert loop_waker._WRITE is not None
    assert loop_waker._WRITE._flags_ & ctypes._FUNCFLAG_PYTHONAPI  # type: ignore[attr-defined]


class _NoReaderLoop:
    """A loop without add_reader (like Windows' proactor), recording call_soon_threadsafe."""

    def __init__(self) -> None:
        self.soon: list[Any] = []

    def add_reader(self, *args: object) -> None:
        raise NotImplementedError

    def call_soon_threadsafe(self, callback: Any, *args: object) -> None:
        self.soon.append(callback)


def test_a_loop_without_add_reader_is_woken_through_call_soon_threadsafe() -> None:
    loop = _NoReaderLoop()
    ran: list[int] = []
    waker = LoopWaker(loop, lambda: ran.append(1))  # type: ignore[arg-type]
    assert not waker.uses_pipe
    waker.wake()
    assert len(loop.soon) == 1 and waker.fallbacks == 1
    loop.soon[0]()
    assert ran == [1]


def test_without_a_gil_keeping_write_the_waker_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loop_waker, "_WRITE", None)
    loop = _NoReaderLoop()
    waker = LoopWaker(loop, lambda: None)  # type: ignore[arg-type]
    assert not waker.uses_pipe
    waker.wake()
    assert waker.fallbacks == 1 and len(loop.soon) == 1


async def test_close_stops_watching_and_closes_both_ends() -> None:
    loop = asyncio.get_running_loop()
    ran: list[int] = []
    waker = LoopWaker(loop, lambda: ran.append(1))
    read_fd, write_fd = waker._read_fd, waker._write_fd
    waker.close()
    for fd in (read_fd, write_fd):
        with pytest.raises(OSError):
            os.fstat(fd)
    waker.close()  # twice is harmless
    waker.wake()  # after close: through the loop's own wake-up, not into a reused descriptor
    await loop_caught_up()  # the fallback's callback was queued before this
    assert ran == [1] and waker.fallbacks == 1
