from __future__ import annotations

import asyncio
import threading

import pytest

from mmkit.clock import Clock, ClockMode, TimeIterator


class Recorder:
    def __init__(self, name: str, log: list[tuple[str, str, int]], fail_on: int | None = None) -> None:
        self.name = name
        self.log = log
        self.fail_on = fail_on
        self.ticks = 0

    def start(self, clock: Clock, ts_ns: int) -> None:
        self.log.append((self.name, "start", ts_ns))

    def tick(self, ts_ns: int) -> None:
        self.ticks += 1
        if self.fail_on is not None and self.ticks == self.fail_on:
            raise RuntimeError("boom")
        self.log.append((self.name, "tick", ts_ns))

    def stop(self, clock: Clock) -> None:
        self.log.append((self.name, "stop", 0))


def test_recorder_satisfies_protocol() -> None:
    assert isinstance(Recorder("a", []), TimeIterator)


def test_backtest_ticks_in_registration_order_and_is_deterministic() -> None:
    def run() -> list[tuple[str, str, int]]:
        log: list[tuple[str, str, int]] = []
        clock = Clock(ClockMode.BACKTEST, tick_ns=100, start_ns=1_000)
        clock.add_iterator(Recorder("a", log))
        clock.add_iterator(Recorder("b", log))
        clock.run_backtest(end_ns=1_300)
        return log

    first = run()
    assert first == [
        ("a", "start", 1000), ("b", "start", 1000),
        ("a", "tick", 1100), ("b", "tick", 1100),
        ("a", "tick", 1200), ("b", "tick", 1200),
        ("a", "tick", 1300), ("b", "tick", 1300),
        ("b", "stop", 0), ("a", "stop", 0),
    ]  # fmt: skip
    assert run() == first


def test_failing_iterator_is_counted_and_others_still_run() -> None:
    log: list[tuple[str, str, int]] = []
    clock = Clock(ClockMode.BACKTEST, tick_ns=10, start_ns=0)
    bad = Recorder("bad", log, fail_on=2)
    good = Recorder("good", log)
    clock.add_iterator(bad, name="bad")
    clock.add_iterator(good, name="good")
    clock.run_backtest(end_ns=30)
    assert good.ticks == 3
    assert clock.iterator_errors["bad"] == 1
    assert [e for e in log if e[0] == "bad" and e[1] == "tick"] == [("bad", "tick", 10), ("bad", "tick", 30)]


def test_backtest_needs_start_time_and_positive_tick() -> None:
    with pytest.raises(ValueError):
        Clock(ClockMode.BACKTEST)
    with pytest.raises(ValueError):
        Clock(ClockMode.REALTIME, tick_ns=0)


def test_request_stop_ends_backtest_early() -> None:
    clock = Clock(ClockMode.BACKTEST, tick_ns=10, start_ns=0)
    log: list[tuple[str, str, int]] = []
    rec = Recorder("a", log)
    clock.add_iterator(rec)
    clock.run_backtest(end_ns=1_000, on_tick=lambda ts: clock.request_stop() if ts >= 50 else None)
    assert rec.ticks == 5


async def test_realtime_ticks_on_schedule_and_counts_missed_ticks() -> None:
    clock = Clock(ClockMode.REALTIME, tick_ns=20_000_000)  # 20 ms
    seen: list[int] = []

    class Slow:
        def start(self, clock: Clock, ts_ns: int) -> None: ...

        def tick(self, ts_ns: int) -> None:
            seen.append(ts_ns)
            if len(seen) == 2:
                import time

                time.sleep(0.075)  # blocks ~3.75 periods: ticks 3 and 4 cannot happen on time

        def stop(self, clock: Clock) -> None: ...

    clock.add_iterator(Slow())
    await clock.run(duration_ns=200_000_000)
    assert clock.missed_ticks >= 2
    assert 4 <= len(seen) <= 10


async def test_wake_gives_an_immediate_coalesced_tick_from_any_thread() -> None:
    clock = Clock(ClockMode.REALTIME, tick_ns=10_000_000_000)  # 10 s: only wakes can tick
    ticks: list[int] = []

    class It:
        def start(self, clock: Clock, ts_ns: int) -> None: ...

        def tick(self, ts_ns: int) -> None:
            ticks.append(ts_ns)
            if len(ticks) == 2:
                clock.request_stop()

        def stop(self, clock: Clock) -> None: ...

    clock.add_iterator(It())
    runner = asyncio.create_task(clock.run())
    await asyncio.sleep(0.01)
    clock.wake()
    clock.wake()  # coalesces with the first
    await asyncio.sleep(0.01)
    assert len(ticks) == 1
    threading.Thread(target=clock.wake).start()  # from a foreign thread (quickfix-style)
    await asyncio.wait_for(runner, timeout=2)
    assert len(ticks) == 2
    assert clock.woken_ticks == 2
    assert clock.wake_requests == 3
