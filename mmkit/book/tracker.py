"""OrderBookTracker: keeps one venue book valid from a snapshot plus a diff stream.

Why a tracker apart from the book: the book only stores levels; deciding
whether a diff may be applied at all is a protocol question. Venues send
diffs before the snapshot arrives (Binance recordings show it), lose messages,
or send a checksum we must verify. A generic book without these checks is how
a strategy ends up quoting off a stale or crossed book, so the rules live here
once, for every venue:

* Before a snapshot (or after an invalidation) diffs are buffered.
* After a snapshot, buffered and new diffs already covered by it
  (``seq <= snapshot.seq``) are dropped; the first one applied must bridge
  (``first_seq <= snapshot.seq + 1 <= seq``); every later one must follow on
  (``first_seq == previous seq + 1``). A repeat of an old diff (``seq <=
  previous seq``) is dropped as stale.
* A gap, a crossed (or locked) book after an update, or a checksum mismatch
  invalidates the book: it is counted, the book is cleared,
  ``request_resync(reason)`` is called once, and diffs are buffered until the
  next snapshot. The callback must only *schedule* the snapshot request
  (handing a snapshot in from inside it raises): re-entering the tracker
  half-way through an update is how books silently go wrong.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from decimal import Decimal

from loguru import logger

from mmkit.book.book import OrderBook
from mmkit.clock import Clock
from mmkit.model import BookDelta, BookSnapshot

#: Computes the venue's checksum of a book (e.g. Kraken's CRC32 over the top levels).
ChecksumFn = Callable[[OrderBook], int]

#: Diffs kept while waiting for a snapshot; older ones are discarded (the snapshot will cover them, or the
#: bridge check will fail and ask for a newer snapshot).
DEFAULT_MAX_BUFFER = 10_000
#: What the book raises for a snapshot or diff it refuses whole: OffGridError (a ValueError) and the level
#: checks raise ValueError; a NaN or an infinity fails the conversion to ticks (ValueError, OverflowError).
MALFORMED_LEVEL = (ValueError, ArithmeticError)


class OrderBookTracker:
    """Snapshot + diff sequencing, gap/crossed/checksum detection and resync for one (venue, symbol)."""

    def __init__(
        self,
        venue: str,
        symbol: str,
        price_increment: Decimal,
        size_increment: Decimal,
        *,
        request_resync: Callable[[str], None],
        checksum: ChecksumFn | None = None,
        max_buffer: int = DEFAULT_MAX_BUFFER,
    ) -> None:
        self.venue = venue
        self.symbol = symbol
        self._book = OrderBook(price_increment, size_increment, venue=venue, symbol=symbol)
        self._request_resync = request_resync
        self._checksum = checksum
        self._buffer: deque[BookDelta] = deque(maxlen=max_buffer)
        self._valid = False
        self._need_bridge = False
        self._last_seq = -1
        self._in_resync_callback = False
        #: Called just before the tracker clears its book (an invalidation): whoever shares the book object
        #: takes a copy of what it shows first (a replay backtest's venue, :mod:`mmkit.backtest.shared_book`).
        self.before_clear: Callable[[], None] | None = None
        self._log = logger.bind(venue=venue, symbol=symbol, component="OrderBookTracker")
        # Counters (monotonic, for metrics and tests).
        self.snapshots = 0
        self.deltas_applied = 0
        self.deltas_dropped = 0  # covered by the snapshot or stale repeats
        self.gaps = 0
        self.crossed = 0
        self.checksum_failures = 0
        #: Snapshots and diffs the book refused whole (a NaN, an infinity, a level off the grid, a price at or
        #: below zero, a negative size): the book was invalidated and a resync asked for.
        self.malformed = 0
        self.resyncs = 0
        self.last_invalid_reason: str | None = None

    # ------------------------------------------------------------------ state

    @property
    def book(self) -> OrderBook:
        """The live book. Read it only while :attr:`is_valid` is true."""
        return self._book

    @property
    def is_valid(self) -> bool:
        return self._valid

    @property
    def last_seq(self) -> int:
        """Sequence number the book is at (-1 before the first snapshot)."""
        return self._last_seq

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    # ------------------------------------------------------------------ events

    def on_snapshot(self, snapshot: BookSnapshot) -> None:
        """Install a snapshot, then replay the buffered diffs it does not cover."""
        self._check_instrument(snapshot.venue, snapshot.symbol)
        self._check_not_reentrant()
        self.snapshots += 1
        try:
            self._book.apply_snapshot(snapshot)
        except MALFORMED_LEVEL as exc:
            # The book refused it whole and still shows the state this snapshot was sent to replace: not a
            # book to quote off. The buffered diffs stay for the snapshot the resync brings.
            self._invalidate(f"malformed snapshot seq={snapshot.seq}: {exc}", kind="malformed")
            return
        self._last_seq = snapshot.seq
        self._need_bridge = True
        self._valid = True
        if self._book.is_crossed():
            self._buffer.clear()
            self._invalidate(f"crossed snapshot seq={snapshot.seq}", kind="crossed")
            return
        if not self._verify(snapshot.checksum, after=f"snapshot seq={snapshot.seq}"):
            self._buffer.clear()
            return
        pending = list(self._buffer)
        self._buffer.clear()
        self._log.debug("snapshot seq={} installed, {} buffered diffs to replay", snapshot.seq, len(pending))
        for index, delta in enumerate(pending):
            self._apply(delta)
            if not self._valid:
                # Keep what came after the failure point: the next snapshot may be older than those diffs.
                self._buffer.extend(pending[index + 1 :])
                return

    def on_delta(self, delta: BookDelta) -> None:
        """Apply a diff if it follows on; buffer it while there is no valid book."""
        # Both checks inline (every recorded diff passes here); the methods raise with the full message.
        if delta.symbol != self.symbol or delta.venue != self.venue:
            self._check_instrument(delta.venue, delta.symbol)
        if self._in_resync_callback:
            self._check_not_reentrant()
        if not self._valid:
            self._buffer.append(delta)
            return
        self._apply(delta)

    # ------------------------------------------------------------------ TimeIterator (nothing to do per tick)

    def start(self, clock: Clock, ts_ns: int) -> None:
        """The tracker is event-driven; it is a TimeIterator only so it can be registered like the others."""

    def tick(self, ts_ns: int) -> None:
        """Nothing to do per tick: diffs are applied as they are handed in."""

    def stop(self, clock: Clock) -> None:
        """Nothing to release."""

    # ------------------------------------------------------------------ internals

    def _check_instrument(self, venue: str, symbol: str) -> None:
        if venue != self.venue or symbol != self.symbol:
            raise ValueError(f"tracker for {self.venue}:{self.symbol} was handed an event for {venue}:{symbol}")

    def _check_not_reentrant(self) -> None:
        if self._in_resync_callback:
            raise RuntimeError(
                f"{self.venue}:{self.symbol}: request_resync must only schedule the snapshot request; "
                "hand the snapshot in later, not from inside the callback"
            )

    def _apply(self, delta: BookDelta) -> None:
        last = self._last_seq
        if delta.seq <= last:
            self.deltas_dropped += 1
            return
        if self._need_bridge:
            if delta.first_seq > last + 1:
                # Kept: the snapshot the resync brings may be older than this diff and need it.
                self._buffer.append(delta)
                self._invalidate(
                    f"gap: first diff after snapshot starts at {delta.first_seq}, book at {last}", kind="gap"
                )
                return
        elif delta.first_seq != last + 1:
            self._buffer.append(delta)
            self._invalidate(f"gap: expected first_seq {last + 1}, got {delta.first_seq}..{delta.seq}", kind="gap")
            return
        self._need_bridge = False
        book = self._book
        try:
            book.apply_delta(delta)
        except MALFORMED_LEVEL as exc:
            # Refused whole (the book is unchanged), and it can never be applied: dropped, and the book is
            # resynced, since every later diff builds on this one.
            self._invalidate(f"malformed diff seq={delta.seq}: {exc}", kind="malformed")
            return
        self._last_seq = delta.seq
        self.deltas_applied += 1
        if book.is_crossed():
            self._invalidate_crossed(delta)
            return
        if delta.checksum is not None:
            self._verify(delta.checksum, after=f"diff seq={delta.seq}")

    def _invalidate_crossed(self, delta: BookDelta) -> None:
        """The book crossed after ``delta`` was applied (also called by the compiled replay loop)."""
        book = self._book
        self._invalidate(
            f"crossed book after seq {delta.seq}: bid {book.best_bid()} >= ask {book.best_ask()}", kind="crossed"
        )

    def _verify(self, expected: int | None, after: str) -> bool:
        if expected is None or self._checksum is None:
            return True
        actual = self._checksum(self._book)
        if actual == expected:
            return True
        self._invalidate(f"checksum mismatch after {after}: venue {expected}, ours {actual}", kind="checksum")
        return False

    def _invalidate(self, reason: str, kind: str) -> None:
        if kind == "gap":
            self.gaps += 1
        elif kind == "crossed":
            self.crossed += 1
        elif kind == "checksum":
            self.checksum_failures += 1
        elif kind == "malformed":
            self.malformed += 1
        self._valid = False
        self._need_bridge = False
        # Cleared so that anyone who reads the book despite is_valid sees an empty book, never a wrong one.
        before_clear = self.before_clear
        if before_clear is not None:
            before_clear()
        self._book.clear()
        self.resyncs += 1
        self.last_invalid_reason = reason
        # A malformed venue message is an error of the venue's (or of its parsing), the rest happen on any feed.
        (self._log.error if kind == "malformed" else self._log.warning)("book invalid, requesting resync: {}", reason)
        self._in_resync_callback = True
        try:
            self._request_resync(reason)
        finally:
            self._in_resync_callback = False
