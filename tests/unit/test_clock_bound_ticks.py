"""The clock calls each iterator's ``tick`` looked up at registration and at start (Clock._ticks).

Kept in step with the registered iterators by add/remove, also while a tick loop runs: an add or a
remove during a tick acts from the next tick, and no other iterator misses the current one; a failure is
still counted under the failing iterator's own label, even after it removed itself; a ``tick``
replaced on the instance before start (bench/bench_backtest.py times iterators this way) is the one
called.
"""

from __future__ import annotations

import pytest

from mmkit.clock import Clock, ClockMode
from tests.unit.test_clock_tick_until import Iter


@pytest.mark.parametrize("loop", ["tick_until", "tick_once"])
def test_a_removed_iterator_stops_ticking_and_the_others_keep_their_order(loop: str) -> None:
    log: list[tuple[str, int]] = []
    clock = Clock(ClockMode.BACKTEST, tick_ns=10, start_ns=0)
    a, b, c = Iter("a", log), Iter("b", log), Iter("c", log)
    for it in (a, b, c):
        clock.add_iterator(it, name=it.name)
    # b removes itself on its second tick, during the loop; d, added by a at 20, runs from the next tick
    d = Iter("d", log)
    b.on_tick = lambda ts: clock.remove_iterator(b) if ts == 20 else None
    a.on_tick = lambda ts: clock.add_iterator(d, name="d") if ts == 20 else None
    clock.start()
    if loop == "tick_until":
        clock.tick_until(40)
    else:
        for ts in (10, 20, 30, 40):
            clock.tick_once(ts)
    assert [name for name, ts in log if ts == 10] == ["a", "b", "c"]
    assert [name for name, ts in log if ts == 20] == ["a", "b", "c"]  # c does not miss the tick b left in
    assert [name for name, ts in log if ts == 30] == ["a", "c", "d"]
    assert [name for name, ts in log if ts == 40] == ["a", "c", "d"]


def test_a_failure_is_counted_under_the_failing_iterator_s_label() -> None:
    log: list[tuple[str, int]] = []
    clock = Clock(ClockMode.BACKTEST, tick_ns=10, start_ns=0)
    clock.add_iterator(Iter("a", log), name="first")
    clock.add_iterator(Iter("b", log, fail_at=20), name="second")
    clock.add_iterator(Iter("c", log, fail_at=20), name="third")
    clock.start()
    clock.tick_until(30)
    assert dict(clock.iterator_errors) == {"second": 1, "third": 1}
    assert [name for name, ts in log if ts == 30] == ["a", "b", "c"]


@pytest.mark.parametrize("loop", ["tick_until", "tick_once"])
def test_an_iterator_removed_by_another_during_a_tick_runs_out_that_tick(loop: str) -> None:
    log: list[tuple[str, int]] = []
    clock = Clock(ClockMode.BACKTEST, tick_ns=10, start_ns=0)
    a, b = Iter("a", log), Iter("b", log)
    clock.add_iterator(a, name="a")
    clock.add_iterator(b, name="b")
    a.on_tick = lambda ts: clock.remove_iterator(b) if ts == 10 else None
    clock.start()
    if loop == "tick_until":
        clock.tick_until(20)
    else:
        clock.tick_once(10)
        clock.tick_once(20)
    assert log == [("a", 10), ("b", 10), ("a", 20)]


def test_an_iterator_that_removes_itself_then_raises_is_counted_under_its_own_label() -> None:
    log: list[tuple[str, int]] = []
    clock = Clock(ClockMode.BACKTEST, tick_ns=10, start_ns=0)
    clock.add_iterator(Iter("a", log), name="first")
    b = Iter("b", log, fail_at=10)
    b.on_tick = lambda ts: clock.remove_iterator(b)
    clock.add_iterator(b, name="second")
    clock.start()
    clock.tick_until(20)
    assert dict(clock.iterator_errors) == {"second": 1}
    assert log == [("a", 10), ("a", 20)]


def test_a_tick_replaced_before_start_is_the_one_called() -> None:
    log: list[tuple[str, int]] = []
    clock = Clock(ClockMode.BACKTEST, tick_ns=10, start_ns=0)
    it = Iter("a", log)
    clock.add_iterator(it, name="a")
    calls: list[int] = []
    inner = it.tick

    def timed(ts_ns: int) -> None:
        calls.append(ts_ns)
        inner(ts_ns)

    it.tick = timed  # type: ignore[method-assign]
    clock.start()
    clock.tick_until(20)
    assert calls == [10, 20] and log == [("a", 10), ("a", 20)]
