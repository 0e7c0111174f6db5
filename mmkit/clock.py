"""The Clock: one fixed-rate heartbeat that ticks every TimeIterator in order.

Why a clock rather than callbacks: every decision in a tick sees one settled
snapshot (books applied, fills booked, orders advanced) because I/O never calls
strategy code; it only fills inboxes that the first iterators drain. The same
iterators run in REALTIME (asyncio, wall time) and BACKTEST (simulated time,
deterministic), so a backtest exercises the live code.

This module imports nothing from mmkit.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from loguru import logger

DEFAULT_TICK_NS = 100_000_000  # 100 ms


class ClockMode(enum.Enum):
    REALTIME = "REALTIME"
    BACKTEST = "BACKTEST"


#: Looked up once (a member read through its enum class goes through the enum metaclass).
_REALTIME = ClockMode.REALTIME


@runtime_checkable
class TimeIterator(Protocol):
    """Anything the clock ticks. ``tick`` must not block: no I/O waits on the tick path."""

    def start(self, clock: Clock, ts_ns: int) -> None: ...

    def tick(self, ts_ns: int) -> None: ...

    def stop(self, clock: Clock) -> None: ...


class Clock:
    """Ticks registered iterators in registration order on a fixed period.

    * A failing iterator is logged and counted; the others still run.
    * In REALTIME, ticks that could not run on time are counted in
      ``missed_ticks`` (never silently skipped) and the schedule re-aligns.
    * ``wake()`` asks for an immediate extra tick; several wakes before that
      tick coalesce into one. It is safe to call from any thread.
    * In BACKTEST, time only moves when the clock advances it, so a run is
      a pure function of its inputs.
    """

    def __init__(
        self,
        mode: ClockMode,
        tick_ns: int = DEFAULT_TICK_NS,
        start_ns: int | None = None,
        time_source: Callable[[], int] = time.time_ns,
    ) -> None:
        if tick_ns <= 0:
            raise ValueError(f"tick_ns must be positive, got {tick_ns}")
        self.mode = mode
        self.tick_ns = tick_ns
        self._time_source = time_source
        if mode is ClockMode.BACKTEST and start_ns is None:
            raise ValueError("a BACKTEST clock needs start_ns")
        self._now_ns = start_ns if start_ns is not None else time_source()
        self._iterators: list[tuple[str, TimeIterator]] = []
        #: Each registered iterator's ``tick``, in the same order, looked up at registration and again at
        #: :meth:`start` (a ``tick`` replaced on the instance after start is not seen): the tick loops call these,
        #: one attribute lookup per iterator and tick less. A new tuple on every add and remove, never changed
        #: in place: a tick loop runs the tuple it read when the tick began, so an iterator added or removed
        #: during a tick runs, or stops running, from the next tick, and no other iterator misses this one.
        self._ticks: tuple[Callable[[int], None], ...] = ()
        #: The label of each ``tick`` ever registered (kept after removal: an iterator that removes itself and
        #: then raises is still counted under its own name).
        self._tick_labels: dict[Callable[[int], None], str] = {}
        self._started = False
        self._stop_requested = False
        self._wake_requested = False
        self._wake_event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self.tick_count = 0
        self.missed_ticks = 0
        self.woken_ticks = 0
        self.wake_requests = 0
        self.iterator_errors: Counter[str] = Counter()
        #: Wall time spent in the last tick, for health reporting.
        self.last_tick_duration_ns = 0

    # -- registration -----------------------------------------------------

    def add_iterator(self, iterator: TimeIterator, name: str | None = None) -> None:
        label = name or type(iterator).__name__
        if any(it is iterator for _, it in self._iterators):
            raise ValueError(f"iterator {label} is already registered")
        self._iterators.append((label, iterator))
        tick = iterator.tick
        self._tick_labels[tick] = label
        self._ticks = (*self._ticks, tick)
        if self._started:
            self._call(label, iterator.start, self, self._now_ns)

    def remove_iterator(self, iterator: TimeIterator) -> None:
        for index, (label, it) in enumerate(self._iterators):
            if it is iterator:
                del self._iterators[index]
                self._ticks = self._ticks[:index] + self._ticks[index + 1:]
                if self._started:
                    self._call(label, iterator.stop, self)
                return
        raise ValueError("iterator is not registered")

    @property
    def iterators(self) -> list[TimeIterator]:
        return [it for _, it in self._iterators]

    # -- time -------------------------------------------------------------

    @property
    def now_ns(self) -> int:
        """Current time: wall time in REALTIME, simulated time in BACKTEST."""
        if self.mode is _REALTIME:  # read on every venue call of a backtest: no enum lookup through the class
            return self._time_source()
        return self._now_ns

    # -- lifecycle --------------------------------------------------------

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        self._stop_requested = False
        self._ticks = tuple(iterator.tick for _, iterator in self._iterators)
        self._tick_labels.update(zip(self._ticks, (label for label, _ in self._iterators), strict=True))
        ts = self.now_ns
        for label, iterator in list(self._iterators):
            self._call(label, iterator.start, self, ts)

    def stop(self) -> None:
        """Stop iterators in reverse order (the executor stops before the trackers it relies on)."""
        if not self._started:
            return
        self._started = False
        for label, iterator in reversed(list(self._iterators)):
            self._call(label, iterator.stop, self)

    def request_stop(self) -> None:
        """Ask a running loop to finish after the current tick (thread-safe)."""
        self._stop_requested = True
        self._set_wake_event()

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested

    def tick_once(self, ts_ns: int | None = None) -> None:
        """Run every iterator once at ``ts_ns`` (defaults to now)."""
        ts = self.now_ns if ts_ns is None else ts_ns
        if self.mode is ClockMode.BACKTEST:
            self._now_ns = ts
        began = time.perf_counter_ns()
        self._wake_requested = False
        # The try is inline rather than through ``_call``: one Python call per iterator per tick
        # less on the path every backtest tick takes (zero-cost when nothing raises).
        for tick in self._ticks:
            try:
                tick(ts)
            except Exception:
                self._tick_failed(tick)
        self.tick_count += 1
        self.last_tick_duration_ns = time.perf_counter_ns() - began

    def tick_until(self, end_ns: int) -> None:
        """BACKTEST: tick every ``tick_ns`` while the next tick is at or before ``end_ns`` and no stop is asked.

        What :meth:`tick_once` does, in one loop: a backtest runs thousands of
        ticks, and per tick this saves the property reads of the caller's loop
        and the call itself. Same order, same error handling, same counters.
        """
        if self.mode is not ClockMode.BACKTEST:
            raise RuntimeError("tick_until needs a BACKTEST clock")
        step = self.tick_ns
        clock_ns = time.perf_counter_ns
        while not self._stop_requested:
            ts = self._now_ns + step
            if ts > end_ns:
                return
            self._now_ns = ts
            began = clock_ns()
            self._wake_requested = False
            for tick in self._ticks:  # the tuple of this tick: add/remove act from the next one
                try:
                    tick(ts)
                except Exception:
                    self._tick_failed(tick)
            self.tick_count += 1
            self.last_tick_duration_ns = clock_ns() - began

    def wake(self) -> None:
        """Request an immediate (coalesced) tick; callable from any thread."""
        self.wake_requests += 1
        if self._wake_requested:
            return
        self._wake_requested = True
        self._set_wake_event()

    def _set_wake_event(self) -> None:
        event, loop = self._wake_event, self._loop
        if event is None or loop is None:
            return
        if threading.get_ident() == self._loop_thread:
            event.set()
        else:
            with contextlib.suppress(RuntimeError):  # loop already closed: nothing left to wake
                loop.call_soon_threadsafe(event.set)

    # -- runners ----------------------------------------------------------

    def run_backtest(self, end_ns: int, on_tick: Callable[[int], None] | None = None) -> None:
        """Advance simulated time tick by tick until ``end_ns`` (inclusive) or a stop request.

        Wakes are counted but cannot shorten simulated time: data arrives by
        timestamp and is seen on the tick that covers it.
        """
        if self.mode is not ClockMode.BACKTEST:
            raise RuntimeError("run_backtest needs a BACKTEST clock")
        self.start()
        try:
            while not self._stop_requested:
                next_ts = self._now_ns + self.tick_ns
                if next_ts > end_ns:
                    break
                self.tick_once(next_ts)
                if on_tick is not None:
                    on_tick(next_ts)
        finally:
            self.stop()

    async def run(self, duration_ns: int | None = None) -> None:
        """Tick in wall time until ``request_stop()`` or ``duration_ns`` has elapsed."""
        if self.mode is not ClockMode.REALTIME:
            raise RuntimeError("run needs a REALTIME clock; use run_backtest")
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._wake_event = asyncio.Event()
        if self._stop_requested:
            self._wake_event.set()
        self.start()
        began = self.now_ns
        deadline = began + self.tick_ns
        try:
            while not self._stop_requested:
                if duration_ns is not None and self.now_ns - began >= duration_ns:
                    break
                wait_ns = deadline - self.now_ns
                woken = False
                if wait_ns > 0 and not self._wake_requested:
                    try:
                        await asyncio.wait_for(self._wake_event.wait(), timeout=wait_ns / 1e9)
                        woken = True
                    except TimeoutError:
                        pass
                elif self._wake_requested:
                    woken = True
                self._wake_event.clear()
                if self._stop_requested:
                    break
                now = self.now_ns
                if woken and now < deadline:
                    self.woken_ticks += 1
                    self.tick_once(now)
                    await asyncio.sleep(0)
                    continue
                self.tick_once(now)
                # Count whole periods that went by without a tick, then re-align.
                late = now - deadline
                if late >= self.tick_ns:
                    self.missed_ticks += late // self.tick_ns
                deadline += (late // self.tick_ns + 1) * self.tick_ns if late >= 0 else self.tick_ns
                await asyncio.sleep(0)
        finally:
            self.stop()
            self._wake_event = None
            self._loop = None

    # -- helpers ----------------------------------------------------------

    def _call(self, label: str, fn: Callable[..., None], *args: object) -> None:
        try:
            fn(*args)
        except Exception:
            self._failed(label, fn)

    def _tick_failed(self, tick: Callable[[int], None]) -> None:
        """:meth:`_failed` for the iterator whose bound ``tick`` raised (the label is looked up only now)."""
        label = self._tick_labels.get(tick) or str(getattr(tick, "__qualname__", "?"))
        self._failed(label, tick)

    def _failed(self, label: str, fn: Callable[..., None]) -> None:
        """Count and log the exception being handled; one iterator's failure never stops the others."""
        self.iterator_errors[label] += 1
        logger.opt(exception=True).error("iterator {} failed in {}", label, getattr(fn, "__name__", fn))
