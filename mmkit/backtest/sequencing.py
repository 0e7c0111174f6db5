"""Sequence a recorded L2 stream before a simulated venue applies it.

A recorded Binance stream starts with diffs that arrive *before* the REST
snapshot, and a recording may have gaps. Applied naively in file order the
book crosses (see ../shared/data/README.md). The engine's own
:class:`mmkit.book.OrderBookTracker` handles that for the strategy; the
simulated venue (:class:`mmkit.sim.replay_venue.ReplayBookVenue`) applies whatever
it is given, so this filter stands in front of it and hands on only a
consistent stream:

* diffs before the first snapshot are buffered; on the snapshot, those it
  already covers (``seq <= snapshot.seq``) are dropped, the one that bridges
  it (``first_seq <= snapshot.seq + 1 <= seq``) and those following on are
  handed on after the snapshot, re-stamped with its receive time so the
  stream stays in receive-time order;
* then each diff must follow on (``first_seq == previous seq + 1``); a stale
  one (``seq <= previous``) is dropped; a gap stops the book until the next
  snapshot (a recording cannot be asked to resend), and is counted;
* trades pass through untouched.

:class:`BookSequencer` is the pure-Python reference; ``mmkit._speedups``
has a compiled twin with the same behaviour (every event handed on, every
counter, every log line), which ``BookSequencer(sink)`` builds instead when
:func:`mmkit._speedups.compiled_sequencer_class` selects it.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
from loguru import logger

from mmkit._speedups import compiled_sequencer_class
from mmkit.model import BookDelta, BookSnapshot, Trade

SequencedEvent = BookSnapshot | BookDelta | Trade


class BookSequencer:
    """A replay sink that forwards a consistent book stream (and every trade) to ``sink``.

    Constructing one gives the compiled twin when it is built and selected
    (see :mod:`mmkit._speedups`); ``pure=True`` always gives this class.
    """

    def __new__(cls, sink: Callable[[SequencedEvent], None], *, pure: bool = False) -> BookSequencer:
        compiled = None if pure or cls is not BookSequencer else compiled_sequencer_class()
        if compiled is not None:
            made: BookSequencer = compiled(sink)  # same methods and counters; see mmkit/_speedups/_sequencer.pyx
            return made
        return super().__new__(cls)

    def __init__(self, sink: Callable[[SequencedEvent], None], *, pure: bool = False) -> None:
        self._sink = sink
        self._last_seq: int | None = None
        self._buffer: list[BookDelta] = []
        self.gaps = 0
        self.dropped = 0
        self.snapshots = 0

    @property
    def synced(self) -> bool:
        return self._last_seq is not None

    def __call__(self, event: SequencedEvent) -> None:
        if isinstance(event, Trade):
            self._sink(event)
        elif isinstance(event, BookSnapshot):
            self._on_snapshot(event)
        else:
            self._on_delta(event)

    def _on_snapshot(self, snapshot: BookSnapshot) -> None:
        self.snapshots += 1
        self._last_seq = snapshot.seq
        self._sink(snapshot)
        buffered, self._buffer = self._buffer, []
        for delta in buffered:
            if delta.seq <= snapshot.seq:
                self.dropped += 1
                continue
            self._on_delta(attrs.evolve(delta, ts_recv=max(delta.ts_recv, snapshot.ts_recv)))

    def _on_delta(self, delta: BookDelta) -> None:
        last = self._last_seq
        if last is None:
            self._buffer.append(delta)
            return
        if delta.seq <= last:
            self.dropped += 1
            return
        first = delta.first_seq
        if first <= last + 1:
            self._last_seq = delta.seq
            self._sink(delta)
            return
        self.gaps += 1
        self._last_seq = None
        self._buffer = [delta]
        logger.bind(venue=delta.venue, symbol=delta.symbol).warning(
            "recorded book gap: expected update {}, got {}..{}; waiting for the next snapshot", last + 1, first,
            delta.seq,
        )
