"""One order book for the replay venue and the reference tracker, while the two provably agree.

Why: in a replay backtest (setup ``replay``) every recorded diff reaches two
:class:`~mmkit.book.OrderBook`\\ s with the same content: the recorded venue's
(``ReplayBookVenue.books[symbol]``, behind a :class:`BookSequencer`) and the
reference tracker's (``ReplayedReference.tracker.book``). Applying each diff
twice was ~10 % of a maker run (issue 16). While the two would hold the same
levels anyway, they are one object and the compiled delivery loop applies a
diff once; the moment they could diverge, the venue is handed a copy.

Who holds which object: the tracker's book is the one object for the
tracker's life (it clears it, never replaces it; ``ReplayedReference`` and the
compiled loop keep it). ``venue.books[symbol]`` is either that object
(*shared*) or a private copy (*forked*); the venue looks its book up per
event, and the compiled loop looks it up again after every event it hands to
the sinks and after the tracker invalidates (``ReplayLoop._rebind``).

The invariant, at every event boundary while shared: each owner's book, kept
apart, would show exactly these levels and this ``seq``; and either both
sinks wait for a snapshot (the sequencer unsynced, the tracker invalid), or
both are synced at the same sequence number with the tracker valid. From
there, :class:`SharedBook`, the replay's only sink, looks at each event
*before* the sequencer (and so the venue) sees it:

* a trade writes no book;
* a diff, both waiting: both buffer it, nobody writes;
* a diff, both synced at ``L``: both drop it (``seq <= L``), or both apply it
  (``first_seq <= L + 1``, and ``first_seq == L + 1`` unless the tracker
  still waits for its bridging diff: the two rules agree exactly then). The
  venue applies it first, the tracker then applies the same absolute sizes
  to the same object again, which changes nothing (a diff sets each level it
  lists to its last size there, whatever the level showed before);
* anything else (a gap or an overlap one side takes and the other does not,
  another instrument, a snapshot, after which each side replays its own
  buffer and the tracker overwrites what the venue just applied, an unknown
  event type): fork first.

The tracker may still invalidate after applying a shared diff (a crossed book,
a checksum): it calls ``before_clear`` first, which forks; the book then shows
the diff, which is what the venue's book shows. After a snapshot (the only
event that re-syncs either side) the two are joined again if they are back in
one of the two states above, at the same ``seq``, with the same grid and the
same levels, compared level by level.

A sink that raises half-way through an event is a failure the clock counts
(the replay goes on after that event, never delivering it again). The raises
known here leave the rules above intact: a diff of another instrument forks first; a level off the
grid is refused by the venue and raises in the tracker before either writes,
and the sinks' sequence numbers then differ, which forks before the next diff.

The venue's book ``ts_event`` is the one exception: the venue never sets or
reads it (it stays 0 on a book of its own), and while shared it shows the
tracker's. tests/unit/backtest/test_shared_book.py compares runs with and
without sharing after every tick, on streams with gaps, overlaps, crossed
diffs, snapshots mid-stream, stale repeats and a strategy that reads the book.
"""

from __future__ import annotations

from typing import Any

from mmkit.backtest.replay import ReplayedReference, ReplayEvent
from mmkit.backtest.sequencing import BookSequencer
from mmkit.book.book import OrderBook
from mmkit.model import BookDelta, Trade


class SharedBook:
    """The replay's sink in front of (sequencer -> venue, reference): shares, forks and joins their books.

    ``sequencer`` must hand its events to ``venue.on_market_event`` (the replay setup's wiring); the
    book shared is ``venue.books[reference.tracker.symbol]``.
    """

    def __init__(self, sequencer: BookSequencer, reference: ReplayedReference, venue: Any) -> None:
        self.sequencer = sequencer
        self.reference = reference
        self.venue = venue
        self._tracker = tracker = reference.tracker
        self._symbol = tracker.symbol
        #: The venue's books (assigned once in its __init__; the entry for the symbol is what moves).
        self._books: dict[str, OrderBook] = venue.books
        if self._symbol not in self._books:
            raise ValueError(f"the venue has no book for {self._symbol!r} (books: {sorted(self._books)})")
        if tracker.before_clear is not None:
            raise ValueError(f"tracker {tracker.venue}:{tracker.symbol} already has a before_clear hook")
        tracker.before_clear = self.fork
        #: True while ``venue.books[symbol]`` is the tracker's book.
        self.shared = False
        #: Counters (for tests and the bench): forks, joins, and join attempts (a level comparison each).
        self.forks = 0
        self.joins = 0
        self.join_checks = 0
        self.try_join()

    def __call__(self, event: ReplayEvent) -> None:
        if self.shared and not self._in_lockstep(event):
            self.fork()
        self.sequencer(event)
        self.reference(event)
        if not self.shared and not isinstance(event, (Trade, BookDelta)):
            self.try_join()  # a snapshot: both sides may be synced again

    def _in_lockstep(self, event: ReplayEvent) -> bool:
        """True when the sinks leave both books, kept apart, with the same levels after ``event`` (the rules
        in the module docstring); reads the sinks' state before they see it."""
        if isinstance(event, Trade):
            return True
        if not isinstance(event, BookDelta):
            return False
        tracker = self._tracker
        if event.symbol != tracker.symbol or event.venue != tracker.venue or tracker._in_resync_callback:
            return False
        last = self.sequencer._last_seq
        if last is None:
            return not tracker._valid  # both buffer it until a snapshot
        if not tracker._valid or tracker._last_seq != last:
            return False
        if event.seq <= last:
            return True  # both drop it as stale
        first = event.first_seq
        return first == last + 1 or (first <= last + 1 and tracker._need_bridge)

    def fork(self) -> None:
        """Hand the venue a copy of the shared book (no-op when forked); called before anything may diverge."""
        if not self.shared:
            return
        self.shared = False
        self.forks += 1
        self._books[self._symbol] = self._tracker.book.copy()

    def try_join(self) -> bool:
        """Share the tracker's book with the venue again, when both sinks agree and the books are equal."""
        if self.shared:
            return True
        tracker = self._tracker
        if tracker._in_resync_callback:
            return False
        last = self.sequencer._last_seq
        if last is None:
            if tracker._valid:
                return False
        elif not tracker._valid or tracker._last_seq != last:
            return False
        ours = self._books[self._symbol]
        book = tracker.book
        if type(ours) is not OrderBook or ours.seq != book.seq:
            return False
        self.join_checks += 1
        if not ours.same_levels(book):
            return False
        self._books[self._symbol] = book
        self.shared = True
        self.joins += 1
        return True


__all__ = ["SharedBook"]
