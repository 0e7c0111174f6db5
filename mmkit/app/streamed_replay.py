"""A live run's replayed reference, read as it is played: the recording is never held whole in memory.

Why: ``mmkit demo`` and ``mmkit start --reference-replay`` price off a
recording in real time (sped up). A backtest needs every event at once (it
replays them as fast as it can, and the in-process and on-disk caches make a
second read cheap), but a live run plays a few minutes of recording in a
30-second demo and may run for hours: holding the parsed recording (tens of
MB of Python objects for the shared one, plus the decoded cache entry while
it loads) was the largest part of the demo's resident memory. Here the
``.gz`` files are decompressed a block at a time and each line is parsed
just before the clock reaches it; only the clock-fit samples (one pass
first, the same fit as :func:`mmkit.backtest.binance.read_recording`) and
one block of lines are alive at once.

The events are those ``read_recording`` yields for the same files (a test
compares them one by one), so a live replay and a backtest see the same
market. Binance recordings only (what ``reference.replay`` accepts).
"""

from __future__ import annotations

import gzip
import zlib
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path

from mmkit.backtest.binance import (
    RecordingFormatError,
    _Parser,
    detect_instrument,
    estimate_clock_correction,
)
from mmkit.backtest.binance_parse import parse_lines
from mmkit.backtest.replay import ReplayEvent, ReplayTimeline, Sink
from mmkit.clock import Clock
from mmkit.model import BookDelta, BookSnapshot, Trade

#: Decompressed bytes read per step (a few hundred lines of the shared recording). Measured on the demo:
#: 1 MB blocks left ~5 MB more resident than 64 KB ones (the block, its split lines and the joined rest).
BLOCK_BYTES = 1 << 16
#: Lines parsed together, by one parser (the reader builds a batch's book levels in one go). Measured on the demo
#: (steady resident MB, growth over 20 s): one parser for the whole read 116 (+8); a fresh one every 20,000
#: lines 111 (+6), every 4,000 108 (+0.7), every 1,000 106.5 (+0.6) (before the reader's batched build);
#: with it, 1,000-line parsers 113, 250-line batches each with its own parser 110.
BATCH_LINES = 250
#: A stream the replay does not use (bookTicker): its JSON is never decoded, as in read_recording.
_BOOK_TICKER = b'@bookTicker"'



def _numbered_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, line) of every non-blank line, decompressed a block at a time."""
    number = 0
    rest = b""
    try:
        with gzip.open(path, "rb") as handle:
            while block := handle.read(BLOCK_BYTES):
                lines = (rest + block).split(b"\n")
                rest = lines.pop()
                for line in lines:
                    number += 1
                    if line.strip():
                        yield number, line
    except FileNotFoundError as exc:
        raise RecordingFormatError(f"{path}: no such recording file") from exc
    except (OSError, EOFError, zlib.error) as exc:  # not gzip, truncated, corrupt
        raise RecordingFormatError(f"{path}: not a readable gzip recording ({exc})") from exc
    if rest.strip():
        yield number + 1, rest


def stream_recording(paths: Sequence[Path]) -> Iterator[ReplayEvent]:
    """Book snapshots, diffs and trades of a Binance recording, parsed lazily, in file order.

    The clock fit is computed first (a pass that keeps only its samples), so a
    damaged file fails here, before anything is replayed; a line that does not
    parse raises :class:`RecordingFormatError` naming the file and line. Lines
    are parsed a batch at a time by the reader's own :func:`parse_lines` (it
    builds a batch's book levels at once).
    """
    recorded = detect_instrument(paths)
    correction = estimate_clock_correction(paths)

    def parsed(path: Path, batch: list[tuple[int, int, bytes]]) -> Iterator[ReplayEvent]:
        # A fresh parser per batch: one interns every distinct price and size text it meets for its whole life
        # (fine for a backtest's one pass, a slow leak over a live run of hours).
        parse = _Parser(recorded.venue, recorded.symbol, False, recorded=recorded)
        for event in parse_lines(path, batch, parse, correction):
            if isinstance(event, BookSnapshot | BookDelta | Trade):
                yield event

    for path in paths:
        batch: list[tuple[int, int, bytes]] = []
        for number, line in _numbered_lines(path):
            stamp, sep, payload = line.partition(b" ")
            if not sep or not stamp.isdigit():
                raise RecordingFormatError(f"{path}:{number}: expected '<ns> <json>', got {line[:80]!r}")
            if _BOOK_TICKER in payload:
                continue
            batch.append((number, int(stamp), payload))
            if len(batch) >= BATCH_LINES:
                yield from parsed(path, batch)
                batch = []
        yield from parsed(path, batch)


class StreamedReplay(ReplayTimeline):
    """:class:`mmkit.backtest.replay.RecordingReplay`'s delivery, pulling events from an iterator.

    Same contract as the list-based replay for what a live reference uses
    (``peek``, ``add_sink``, ``recorded_now``, the clock iterator methods,
    ``delivered``, ``finished``); an event is dropped once delivered. There is
    no ``last_ts``: the end of a stream is known only when it is reached.
    """

    def __init__(self, events: Iterator[ReplayEvent], sinks: Sequence[Sink] = (), *, speed: float = 1.0) -> None:
        self._source = events
        self._ahead: deque[ReplayEvent] = deque()
        first = self.peek(1)
        super().__init__(sinks, speed, first[0].ts_recv if first else 0)

    def peek(self, count: int) -> list[ReplayEvent]:
        """The next ``count`` undelivered events (fewer at the end), without delivering them."""
        ahead = self._ahead
        while len(ahead) < count:
            event = next(self._source, None)
            if event is None:
                break
            ahead.append(event)
        return list(ahead)[:count]

    @property
    def finished(self) -> bool:
        return not self.peek(1)

    def deliver_until(self, recorded_ns: int) -> int:
        """Deliver every event with ``ts_recv <= recorded_ns``; returns how many."""
        ahead, sinks, source = self._ahead, self._sinks, self._source
        count = 0
        while True:
            if ahead:
                event = ahead[0]
                if event.ts_recv > recorded_ns:
                    break
                ahead.popleft()
            else:
                pulled = next(source, None)
                if pulled is None:
                    break
                if pulled.ts_recv > recorded_ns:
                    ahead.append(pulled)
                    break
                event = pulled
            count += 1
            try:
                for sink in sinks:
                    sink(event)
            except BaseException:
                self.delivered += count  # popped: a raising event is not delivered again (as the list replay)
                raise
        self.delivered += count
        return count

    def stop(self, clock: Clock) -> None:
        return None
