"""The QuickFIX-thread -> loop hand-off of TrueXConnector: one wake-up per batch, nothing lost or reordered.

``TrueXConnector._call_soon`` queues work and wakes the loop only when no
drain is scheduled (thread_handoff.py), through the connector's LoopWaker
(loop_waker.py). These tests fail if an item can be stranded (the flag/queue
race), reordered, or dropped after a failing item, or if what QuickFIX
queued while stopping is lost with the waker's pipe.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from connectors.truex.connector import TrueXConnector
from connectors.truex.loop_waker import LoopWaker
from tests.unit.truex.loop_support import loop_caught_up
from tests.unit.truex.test_session_and_rules import CONFIG


def _connector(loop: asyncio.AbstractEventLoop) -> TrueXConnector:
    """A connector whose hand-off is bound to ``loop`` as ``connect`` binds it (with its LoopWaker)."""
    connector = TrueXConnector(CONFIG, env={"TRUEX_API_KEY": "k", "TRUEX_SECRET_KEY": "s"})
    connector._bind_handoff(loop)
    assert connector._waker is not None and connector._waker.uses_pipe
    return connector


async def test_items_from_several_threads_all_arrive_in_each_threads_order() -> None:
    loop = asyncio.get_running_loop()
    connector = _connector(loop)
    per_thread, threads = 5000, 3
    seen: list[tuple[int, int]] = []
    done = asyncio.Event()

    def record(thread: int, n: int) -> None:
        seen.append((thread, n))
        if len(seen) == per_thread * threads:
            done.set()

    def produce(thread: int) -> None:
        for n in range(per_thread):
            connector._call_soon(record, thread, n)

    workers = [threading.Thread(target=produce, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    await asyncio.wait_for(done.wait(), 30)  # a stranded item would leave this waiting
    for worker in workers:
        worker.join()
    for t in range(threads):
        assert [n for thread, n in seen if thread == t] == list(range(per_thread))


async def test_a_failing_item_is_reported_and_the_rest_still_run() -> None:
    loop = asyncio.get_running_loop()
    reported: list[BaseException] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context["exception"]))
    connector = _connector(loop)
    ran: list[int] = []
    arrived = asyncio.Event()

    def boom() -> None:
        raise RuntimeError("bad handler")

    def last(n: int) -> None:
        ran.append(n)
        arrived.set()

    def produce() -> None:
        connector._call_soon(ran.append, 1)
        connector._call_soon(boom)
        connector._call_soon(last, 2)

    thread = threading.Thread(target=produce)
    thread.start()
    thread.join()
    await asyncio.wait_for(arrived.wait(), 10)
    assert ran == [1, 2]
    assert len(reported) == 1 and str(reported[0]) == "bad handler"


async def test_a_burst_wakes_the_loop_once_not_per_item(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()
    connector = _connector(loop)
    wakes = 0
    original = LoopWaker.wake

    def counting(self: LoopWaker) -> None:
        nonlocal wakes
        wakes += 1
        original(self)

    monkeypatch.setattr(LoopWaker, "wake", counting)
    ran: list[int] = []
    thread = threading.Thread(target=lambda: [connector._call_soon(ran.append, n) for n in range(100)])
    thread.start()
    thread.join()  # the loop is not running while the burst is queued: one drain takes it all
    await loop_caught_up()
    assert ran == list(range(100))
    assert wakes == 1
    assert connector._waker is not None and connector._waker.fallbacks == 0  # through the pipe


async def test_an_item_queued_while_a_drain_runs_is_not_stranded() -> None:
    """The race itself, made deterministic: the QuickFIX thread queues while the loop is inside a drain."""
    loop = asyncio.get_running_loop()
    connector = _connector(loop)
    arrived = asyncio.Event()
    queued = threading.Event()

    def during_drain() -> None:  # runs on the loop, inside _run_handoff
        threading.Thread(target=lambda: (connector._call_soon(arrived.set), queued.set())).start()
        assert queued.wait(10)  # the item is queued before this drain ends

    threading.Thread(target=connector._call_soon, args=(during_drain,)).start()
    await asyncio.wait_for(arrived.wait(), 5)


async def test_what_quickfix_queued_while_stopping_runs_when_the_handoff_closes() -> None:
    """disconnect closes the waker's pipe once QuickFIX has stopped: an item whose wake-up is still in it runs."""
    loop = asyncio.get_running_loop()
    connector = _connector(loop)
    ran: list[str] = []
    thread = threading.Thread(target=connector._call_soon, args=(ran.append, "session down"))
    thread.start()
    thread.join()  # queued and its byte written; the loop has not run since
    connector._close_handoff()
    assert ran == ["session down"]
    assert connector._waker is None
    await loop_caught_up()  # a stale wake-up would be polled and run by now
    assert ran == ["session down"]  # run once, not again by a stale wake-up
