# cython: language_level=3
"""Compiled twin of :class:`mmkit.backtest.sequencing.BookSequencer` (read its docstring for the rules).

Line for line the same logic, counters and log line; it exists because every
recorded event of a replay passes through it, where a Python call and its
isinstance checks are a measurable share of the run (issue 16).
"""

cdef extern from *:
    const char *MMKIT_SOURCE_SHA  # defined by setup.py: the sha256 of this file when it was compiled

#: The digest of the .pyx this module was built from (mmkit._speedups compares it with the file beside it).
SOURCE_SHA = MMKIT_SOURCE_SHA.decode("ascii")

import attrs
from loguru import logger

from mmkit.model import BookSnapshot, Trade


cdef class CBookSequencer:
    """A replay sink that forwards a consistent book stream (and every trade) to ``sink``."""

    # Public (readable and writable from Python) because the compiled replay loop (_replayloop.pyx) hands
    # diffs that follow on straight to the venue and moves ``_last_seq`` itself, as the pure sequencer's are.
    cdef public object _sink
    cdef public object _last_seq  # None while unsynced (an int otherwise, of any size, as in the pure sequencer)
    cdef list _buffer
    cdef public object gaps
    cdef public object dropped
    cdef public object snapshots

    def __init__(self, sink):
        self._sink = sink
        self._last_seq = None
        self._buffer = []
        self.gaps = 0
        self.dropped = 0
        self.snapshots = 0

    @property
    def synced(self):
        return self._last_seq is not None

    def __call__(self, event):
        if isinstance(event, Trade):
            self._sink(event)
        elif isinstance(event, BookSnapshot):
            self._on_snapshot(event)
        else:
            self._on_delta(event)

    cdef _on_snapshot(self, snapshot):
        self.snapshots += 1
        self._last_seq = snapshot.seq
        self._sink(snapshot)
        buffered = self._buffer
        self._buffer = []
        for delta in buffered:
            if delta.seq <= snapshot.seq:
                self.dropped += 1
                continue
            self._on_delta(attrs.evolve(delta, ts_recv=max(delta.ts_recv, snapshot.ts_recv)))

    cdef _on_delta(self, delta):
        last = self._last_seq
        if last is None:
            self._buffer.append(delta)
            return
        seq = delta.seq
        if seq <= last:
            self.dropped += 1
            return
        first = delta.first_seq
        if first <= last + 1:
            self._last_seq = seq
            self._sink(delta)
            return
        self.gaps += 1
        self._last_seq = None
        self._buffer = [delta]
        logger.bind(venue=delta.venue, symbol=delta.symbol).warning(
            "recorded book gap: expected update {}, got {}..{}; waiting for the next snapshot", last + 1, first,
            seq,
        )
