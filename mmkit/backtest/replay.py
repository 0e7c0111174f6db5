"""Deliver recorded market events as the clock passes their timestamps.

The replay is a TimeIterator registered before the engine's router, so on
each tick it hands every event recorded up to "now" to its sinks (a book
tracker for the reference venue, a simulated venue, a taker-flow model)
before anything else runs: exactly where a live connector's inbox would be
drained. In BACKTEST, recorded time *is* the clock's time; in REALTIME,
recorded time advances ``speed`` times faster than the wall clock from the
first tick on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any, Protocol

from mmkit.backtest.health import BookHealth
from mmkit.backtest.replay_loop import NOT_LOOKED_UP as _NOT_LOOKED_UP
from mmkit.backtest.replay_loop import compiled_loop_for
from mmkit.book.tracker import OrderBookTracker
from mmkit.clock import Clock, ClockMode
from mmkit.model import BookDelta, BookSnapshot, FairValue, Trade

ReplayEvent = BookSnapshot | BookDelta | Trade
_BACKTEST = ClockMode.BACKTEST
Sink = Callable[[ReplayEvent], None]


class RecordedTime(Protocol):
    """What a sink needs of a replay: recorded time for a clock time (the list replay, or a live streamed one)."""

    def recorded_now(self, ts_ns: int) -> int: ...


class ReplayTimeline:
    """What every replay shares: its sinks, and the mapping from clock time to recorded time.

    Why a base: the list replay (backtests) and the streamed one (a live reference) differ only in
    where their events come from; the time mapping, the sinks and the clock-iterator calls are one
    thing, written once. Subclasses provide ``deliver_until``.
    """

    def __init__(self, sinks: Sequence[Sink], speed: float, recorded_start: int) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self._sinks = list(sinks)
        self.speed = speed
        self._mode = ClockMode.BACKTEST
        self._wall_start = 0
        self._recorded_start = recorded_start
        self.delivered = 0

    def add_sink(self, sink: Sink) -> None:
        self._sinks.append(sink)
        self._sinks_changed()

    def _sinks_changed(self) -> None:
        """Hook for subclasses that derive something from the sinks."""

    @property
    def first_ts(self) -> int:
        return self._recorded_start

    def recorded_now(self, ts_ns: int) -> int:
        """The recorded time that corresponds to clock time ``ts_ns``."""
        if self._mode is ClockMode.BACKTEST:
            return ts_ns
        return self._recorded_start + int((ts_ns - self._wall_start) * self.speed)

    def start(self, clock: Clock, ts_ns: int) -> None:
        self._mode = clock.mode
        self._wall_start = ts_ns

    def tick(self, ts_ns: int) -> None:
        # recorded_now, inline: in BACKTEST (every tick of every backtest) recorded time is the clock's.
        self.deliver_until(ts_ns if self._mode is _BACKTEST else self.recorded_now(ts_ns))

    def deliver_until(self, recorded_ns: int) -> int:
        raise NotImplementedError


class RecordingReplay(ReplayTimeline):
    """Hands recorded events (sorted by ``ts_recv``) to sinks in order, by simulated time."""

    def __init__(
        self,
        events: Iterable[ReplayEvent],
        sinks: Sequence[Sink] = (),
        *,
        speed: float = 1.0,
    ) -> None:
        self._events: list[ReplayEvent] = list(events)
        self._index = 0
        super().__init__(sinks, speed, self._events[0].ts_recv if self._events else 0)
        #: The compiled delivery loop for these sinks (mmkit.backtest.replay_loop), found at the first delivery.
        self._loop: Any = _NOT_LOOKED_UP
        #: Set False to deliver through the sinks alone even when the compiled loop fits (tests, bench).
        self.use_compiled_loop = True

    @property
    def last_ts(self) -> int:
        return self._events[-1].ts_recv if self._events else 0

    def peek(self, count: int) -> list[ReplayEvent]:
        """The next ``count`` undelivered events, without delivering them."""
        return self._events[self._index : self._index + count]

    @property
    def finished(self) -> bool:
        return self._index >= len(self._events)

    def _sinks_changed(self) -> None:
        self._loop = _NOT_LOOKED_UP

    @property
    def compiled_loop(self) -> Any:
        """The compiled loop delivering the events (None: the sinks alone; looked up at the first delivery)."""
        if self._loop is _NOT_LOOKED_UP:
            self._loop = compiled_loop_for(self._sinks) if self.use_compiled_loop else None
        return self._loop

    def deliver_until(self, recorded_ns: int) -> int:
        """Deliver every event with ``ts_recv <= recorded_ns``; returns how many.

        Through the compiled loop when it fits these sinks (the same effects, see
        :mod:`mmkit.backtest.replay_loop`), otherwise event by event through the sinks.
        """
        events = self._events
        began = index = self._index
        loop = self._loop
        if loop is _NOT_LOOKED_UP:
            loop = self.compiled_loop
        try:
            if loop is not None:
                index = loop.deliver(events, index, recorded_ns)
            end = len(events)
            if index < end and events[index].ts_recv <= recorded_ns:  # (the sinks' own loop: set up only if needed)
                sinks = self._sinks
                while index < end and events[index].ts_recv <= recorded_ns:
                    event = events[index]
                    index += 1
                    for sink in sinks:
                        sink(event)
        except BaseException:
            # A sink raised (the clock counts it, and the run ends with exit 4): the events before the bad one,
            # and the bad one, count as delivered, so the next tick goes on after it. Delivering them again
            # would hand the venue the same prints twice (fills booked twice) and never get past the bad event.
            if loop is not None and index == began:
                index = max(index, loop.resume_index)
            self._delivered_to(began, index)
            raise
        if index == began:  # nothing was due (most ticks of a sparse recording)
            return 0
        return self._delivered_to(began, index)

    def _delivered_to(self, began: int, index: int) -> int:
        """Record that ``events[began:index]`` were delivered; returns how many."""
        self._index = index
        count = index - began
        self.delivered += count
        return count

    def stop(self, clock: Clock) -> None:
        return None


class ReplayedReference:
    """A replay sink that keeps the reference venue's book and publishes its mid and trades.

    The book goes through the real :class:`OrderBookTracker` (snapshot
    buffering, gap and crossed-book detection), so a damaged recording shows
    up as an invalid book and confidence 0, as a live feed would. It is also
    a fair-value source for the strategy: the mid, with confidence 1 while
    the book is valid and fresh. :attr:`health` follows the book's validity
    in recorded time (:mod:`mmkit.backtest.health`): the report's data health.
    """

    def __init__(self, tracker: OrderBookTracker, staleness_ns: int, clock: Clock | None = None) -> None:
        self.tracker = tracker
        #: The tracker's book (one object for the tracker's life: it clears it, never replaces it).
        self._book = tracker.book
        self.staleness_ns = staleness_ns
        self._clock = clock
        self._mid_listeners: list[Callable[[Decimal], None]] = []
        self._trade_listeners: list[Callable[[Trade], None]] = []
        self.last_mid: Decimal | None = None
        self.last_update_ns = 0
        self._replay: RecordedTime | None = None
        self._timeline: ReplayTimeline | None = None
        self._last_top: tuple[int | None, int | None] | None = None
        self._last_fair: FairValue | None = None
        self.health = BookHealth(tracker)
        self._was_valid: bool | None = None

    def bind(self, replay: RecordedTime) -> None:
        """Staleness is judged in recorded time, which the replay maps from the clock."""
        self._replay = replay
        #: The same replay when it is one of ours: its clock mode is read directly (fair() runs every tick).
        self._timeline = replay if isinstance(replay, ReplayTimeline) else None
        if isinstance(replay, RecordingReplay):  # a whole recording: silences in it are judged at the summary
            self.health.watch_recording(replay._events, self.staleness_ns)

    def on_mid(self, listener: Callable[[Decimal], None]) -> None:
        self._mid_listeners.append(listener)

    def on_trade(self, listener: Callable[[Trade], None]) -> None:
        self._trade_listeners.append(listener)

    def __call__(self, event: ReplayEvent) -> None:
        if isinstance(event, Trade):
            for trade_listener in self._trade_listeners:
                trade_listener(event)
            return
        tracker = self.tracker
        if isinstance(event, BookSnapshot):
            tracker.on_snapshot(event)
            if not tracker.is_valid:
                if self._was_valid is None:  # the first event: the warm-up spell starts here
                    self._was_valid = False
                    self.health.observe(event.ts_recv, False)
                self.health.snapshot_left_invalid(event.ts_recv)
        else:
            health = self.health
            health.diffs_received += 1
            if not tracker.is_valid:
                health.diffs_while_invalid += 1
            tracker.on_delta(event)
        valid = tracker.is_valid
        if valid is not self._was_valid:
            self._was_valid = valid
            self.health.observe(event.ts_recv, valid)
        if not valid:
            return
        self.last_update_ns = event.ts_recv
        # Most diffs leave the best prices alone: compare them as ticks and skip the Decimal mid then.
        book = self._book
        top = (book.best_bid_int(), book.best_ask_int())
        if top == self._last_top:
            return
        self._last_top = top
        mid = book.mid()
        if mid is not None and mid != self.last_mid:
            self.last_mid = mid
            for listener in self._mid_listeners:
                listener(mid)

    def fair(self, now_ns: int) -> FairValue:
        mid = self.last_mid
        if mid is None or not self.tracker.is_valid:
            return FairValue(None, 0.0, now_ns)
        timeline = self._timeline
        if timeline is not None and timeline._mode is _BACKTEST:  # recorded_now, inline: recorded time is now
            recorded_now = now_ns
        else:
            replay = self._replay
            recorded_now = now_ns if replay is None else replay.recorded_now(now_ns)
        age = max(0, recorded_now - self.last_update_ns)
        confidence = 1.0 if age <= self.staleness_ns else 0.0
        ts = now_ns - age
        # Asked every tick, mostly with nothing new: hand back the same (immutable) value while it holds.
        last = self._last_fair
        if last is not None and last.price is mid and last.ts == ts and last.confidence == confidence:
            return last
        self._last_fair = last = FairValue(mid, confidence, ts, 1)  # sources=1, passed by position (cheaper)
        return last
