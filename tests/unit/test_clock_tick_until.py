"""Clock.tick_until (the engine's backtest loop) does what a tick_once loop does: same ticks, errors, counters."""

from __future__ import annotations

import pytest

from mmkit.clock import Clock, ClockMode


class Iter:
    def __init__(self, name: str, log: list[tuple[str, int]], fail_at: int | None = None,
                 on_tick: object = None) -> None:
        self.name, self.log, self.fail_at, self.on_tick = name, log, fail_at, on_tick

    def start(self, clock: Clock, ts_ns: int) -> None:
        return None

    def stop(self, clock: Clock) -> None:
        return None

    def tick(self, ts_ns: int) -> None:
        if callable(self.on_tick):
            self.on_tick(ts_ns)
        if ts_ns == self.fail_at:
            raise RuntimeError("boom")
        self.log.append((self.name, ts_ns))


def run(loop: str, end_ns: int, stop_at: int | None = None) -> tuple[list[tuple[str, int]], int, int, int]:
    log: list[tuple[str, int]] = []
    clock = Clock(ClockMode.BACKTEST, tick_ns=10, start_ns=5)
    clock.add_iterator(Iter("a", log, fail_at=25), name="a")
    clock.add_iterator(Iter("b", log, on_tick=lambda ts: clock.request_stop() if ts == stop_at else None), name="b")
    clock.start()
    if loop == "tick_until":
        clock.tick_until(end_ns)
    else:
        while not clock.stop_requested and clock.now_ns + clock.tick_ns <= end_ns:
            clock.tick_once(clock.now_ns + clock.tick_ns)
    return log, clock.now_ns, clock.tick_count, clock.iterator_errors["a"]


@pytest.mark.parametrize("end_ns", [5, 14, 15, 16, 55, 105])
def test_tick_until_matches_a_tick_once_loop(end_ns: int) -> None:
    assert run("tick_until", end_ns) == run("tick_once", end_ns)


def test_a_stop_asked_during_a_tick_ends_the_loop_after_it() -> None:
    log, now, ticks, errors = run("tick_until", 1_000, stop_at=45)
    assert (now, ticks, errors) == (45, 4, 1) and log[-1] == ("b", 45)
    assert run("tick_once", 1_000, stop_at=45) == (log, now, ticks, errors)


def test_tick_until_refuses_a_realtime_clock() -> None:
    with pytest.raises(RuntimeError, match="BACKTEST"):
        Clock(ClockMode.REALTIME).tick_until(10)
