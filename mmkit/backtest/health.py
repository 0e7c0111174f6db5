"""Data health of a replayed book: what the recording gave, and how long the run had no valid book.

Why: a backtest on a book that was invalid most of the time (a gap the
recording never recovered from, a reader that chains diffs by the wrong rule)
prints numbers that look like any other run's. The counts here go into
report.json (``report["data_health"]``), the terminal table and the
tearsheet, and the share of the span without a valid book decides whether
the run may exit 0 (:data:`DEFAULT_MAX_INVALID_PCT`).

The shape, per book (``"<venue>:<symbol>"``), every value a plain int, float or str::

    {"snapshots", "diffs_received", "diffs_applied", "diffs_dropped", "events_refused",
     "diffs_while_invalid", "gaps", "crossed", "resyncs", "invalid_ns", "invalid_pct", "span_ns",
     "first_invalid_ns", "first_invalid_utc", "first_invalid_reason",
     "first_gap_ns", "first_gap_utc", "first_gap_reason", "never_valid"}

* ``diffs_dropped``: covered by a snapshot, or stale repeats (a few after every snapshot is normal);
* ``events_refused``: diffs received that never reached the book (``diffs_received - diffs_applied``:
  the dropped ones, the one that broke the chain, those that waited for a snapshot);
* ``diffs_while_invalid``: diffs that arrived while there was no valid book;
* ``invalid_ns``/``invalid_pct``: time within the run's span with no valid book (before the first
  snapshot is installed, after each gap or crossed book until the next snapshot, and where the
  recording does not cover the span: :func:`outside_recording`);
* ``first_invalid_*``: when the book first went (or was still) invalid inside the span, and why;
  ``first_gap_*``: the first time a valid book was lost (gap, crossed book) inside the span.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from mmkit.book.tracker import OrderBookTracker
from mmkit.model import BookDelta, BookSnapshot

_WARM_UP = "no snapshot yet"
_BOOK_EVENTS = (BookDelta, BookSnapshot)
#: Why the span before a recording's first book event had no book (like the warm-up, not a lost book).
BEFORE_RECORDING = "before the recording starts"
#: A run whose quoted book is invalid longer than this share of its span (percent) exits non-zero.
DEFAULT_MAX_INVALID_PCT = 1.0


def utc_text(ts_ns: int) -> str:
    """ns since the epoch as ISO 8601 UTC with milliseconds (what a person reads in a report)."""
    moment = datetime.fromtimestamp(ts_ns // 1_000_000_000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{ts_ns % 1_000_000_000 // 1_000_000:03d}Z"


@attrs.define
class InvalidSpell:
    """One stretch of recorded time without a valid book; ``end_ns`` None while it lasts."""

    start_ns: int
    end_ns: int | None
    reason: str


class BookHealth:
    """Watches one tracker's validity, event by event, in recorded (receive) time.

    :meth:`observe` is called after every event handed to the tracker; it only
    compares a bool unless validity changed, so it costs nothing per diff.
    """

    def __init__(self, tracker: OrderBookTracker) -> None:
        self.tracker = tracker
        self.key = f"{tracker.venue}:{tracker.symbol}"
        self.diffs_received = 0
        self.diffs_while_invalid = 0
        self._valid = False
        #: Every spell without a valid book, in order.
        self.invalid_spells: list[InvalidSpell] = []
        self._first_ts: int | None = None
        #: The recorded events and the staleness a silence is judged by (:meth:`watch_recording`), if known.
        self._recording: tuple[Sequence[Any], int] | None = None

    def watch_recording(self, events: Sequence[Any], staleness_ns: int) -> None:
        """Judge silences in ``events`` (the replay's list) at :meth:`summary`: see :func:`silences`.

        Why after the run, from the list: the compiled delivery loop hands
        diffs to the book without this object, and a timestamp check per event
        would cost every run for a case that is rare; one pass over the
        stamps at the end costs a few ms.
        """
        self._recording = (events, staleness_ns)

    def observe(self, ts_ns: int, valid: bool) -> None:
        """Record a change of validity at recorded time ``ts_ns`` (called only when it may have changed)."""
        if self._first_ts is None:
            self._first_ts = ts_ns
            if not valid:
                self.invalid_spells.append(InvalidSpell(ts_ns, None, _WARM_UP))
            self._valid = valid
            return
        if valid == self._valid:
            return
        if valid:
            self.invalid_spells[-1].end_ns = ts_ns
        else:
            self.invalid_spells.append(InvalidSpell(ts_ns, None, self.tracker.last_invalid_reason or "invalid"))
        self._valid = valid

    def snapshot_left_invalid(self, ts_ns: int) -> None:
        """A snapshot arrived and the book is still invalid: the warm-up spell now says why, not "no snapshot yet".

        Why: a crossed snapshot (or one whose buffered diffs do not follow on)
        kept the book invalid to the end, and the report and the exit line said
        ``no snapshot yet`` of a recording that had one.
        """
        spells = self.invalid_spells
        if spells and spells[-1].end_ns is None and spells[-1].reason == _WARM_UP:
            why = self.tracker.last_invalid_reason or "invalid"
            spells[-1].reason = f"the snapshot at {utc_text(ts_ns)} gave no valid book: {why}"

    def _silences(self, start_ns: int, end_ns: int) -> list[InvalidSpell]:
        """:func:`silences` of this book's events in the watched recording."""
        assert self._recording is not None
        events, staleness_ns = self._recording
        venue, symbol = self.tracker.venue, self.tracker.symbol
        stamps = [event.ts_recv for event in events
                  if type(event) in _BOOK_EVENTS and event.symbol == symbol and event.venue == venue]
        return silences(stamps, start_ns, end_ns, staleness_ns)

    @property
    def seen_any(self) -> bool:
        return self._first_ts is not None

    def summary(self, start_ns: int, end_ns: int, outside: Sequence[InvalidSpell] = ()) -> dict[str, Any]:
        """The figures over the run's span ``[start_ns, end_ns]`` (see the module docstring).

        ``outside``: stretches of the span the recording does not cover (:func:`outside_recording`); they
        count as time without a valid book, once where they overlap the book's own spells.
        """
        span = max(0, end_ns - start_ns)
        if self._recording is not None:
            outside = [*outside, *self._silences(start_ns, end_ns)]
        spells = self.invalid_spells if self.seen_any else [InvalidSpell(start_ns, None, "no book event")]
        if outside:
            spells = sorted([*spells, *outside], key=lambda spell: spell.start_ns)
        invalid = 0
        counted_to = start_ns  # the union of the spells: what an earlier one counted is not counted again
        first: tuple[int, str] | None = None
        gap: tuple[int, str] | None = None
        for spell in spells:
            lo = max(spell.start_ns, start_ns)
            hi = min(end_ns if spell.end_ns is None else spell.end_ns, end_ns)
            if hi > lo:
                if hi > counted_to:
                    invalid += hi - max(lo, counted_to)
                    counted_to = hi
                if first is None:
                    first = (lo, spell.reason)
                if gap is None and spell.reason != _WARM_UP and not spell.reason.startswith(BEFORE_RECORDING):
                    gap = (lo, spell.reason)
        tracker = self.tracker
        return {
            "snapshots": tracker.snapshots,
            "diffs_received": self.diffs_received,
            "diffs_applied": tracker.deltas_applied,
            "diffs_dropped": tracker.deltas_dropped,
            "events_refused": max(0, self.diffs_received - tracker.deltas_applied),
            "diffs_while_invalid": self.diffs_while_invalid,
            "gaps": tracker.gaps,
            "crossed": tracker.crossed,
            "resyncs": tracker.resyncs,
            "span_ns": span,
            "invalid_ns": invalid,
            "invalid_pct": round(100.0 * invalid / span, 4) if span else 0.0,
            "first_invalid_ns": None if first is None else first[0],
            "first_invalid_utc": None if first is None else utc_text(first[0]),
            "first_invalid_reason": None if first is None else first[1],
            "first_gap_ns": None if gap is None else gap[0],
            "first_gap_utc": None if gap is None else utc_text(gap[0]),
            "first_gap_reason": None if gap is None else gap[1],
            "never_valid": invalid >= span if span else (
                len(spells) == 1 and spells[0].end_ns is None and spells[0].start_ns <= start_ns),
        }


def outside_recording(
    first_event_ns: int | None, last_event_ns: int | None, start_ns: int, end_ns: int, staleness_ns: int
) -> list[InvalidSpell]:
    """The parts of a run's span ``[start_ns, end_ns]`` that the recorded book does not cover.

    Why: ``--from``/``--to`` may ask for more than the recording holds. The
    book's own spells start at its first event, so before it nothing was
    counted, and after its last event the book stayed "valid" on stale data:
    ten hours asked of a ten-minute recording reported 0.00 % invalid, and
    every per-hour figure was divided by ten hours of nothing. Before the
    first book event the time is uncovered at once; after the last one, once
    the book is older than the reference's ``staleness_ns`` (the engine's own
    rule for a price too old to quote on; a shorter tail is a window cut just
    after an event, not a recording that ended).
    """
    spells: list[InvalidSpell] = []
    if first_event_ns is None or last_event_ns is None:
        return spells  # no book event at all: summary() already counts the whole span
    if start_ns < first_event_ns:
        spells.append(InvalidSpell(start_ns, first_event_ns,
                                   f"{BEFORE_RECORDING}: its first book event is at {utc_text(first_event_ns)}"))
    stale_from = last_event_ns + staleness_ns
    if end_ns > stale_from:
        spells.append(InvalidSpell(stale_from, end_ns,
                                   f"after the recording ends: its last book event is at {utc_text(last_event_ns)}"))
    return spells


def silences(stamps: Sequence[int], start_ns: int, end_ns: int, staleness_ns: int) -> list[InvalidSpell]:
    """Stretches of ``[start_ns, end_ns]`` inside a recording where its book had no event for over ``staleness_ns``.

    ``stamps``: the receive times of the book's events, in order. Why: a
    recording can fall silent in the middle (the recorder suspended, the feed
    frozen, a later hour's file next to this one with its update ids
    following on), and no gap check sees it: the book stays "valid" on a
    price that stopped moving. The engine's reference goes stale after
    ``staleness_ns`` without an update (confidence 0), so from then to the
    next event counts as time without a valid book, like the span after a
    recording ends (:func:`outside_recording`, which covers before the first
    stamp and after the last).
    """
    spells: list[InvalidSpell] = []
    previous: int | None = None
    for stamp in stamps:
        if previous is not None and stamp - previous > staleness_ns:
            stale_from = previous + staleness_ns
            if stale_from < end_ns and stamp > start_ns:
                spells.append(InvalidSpell(stale_from, stamp, (
                    f"recording silent: no book event for {(stamp - previous) / 1e9:.3f} s after "
                    f"{utc_text(previous)}")))
        previous = stamp
    return spells


def unhealthy(health: dict[str, Any], max_invalid_pct: float = DEFAULT_MAX_INVALID_PCT) -> bool:
    """True when a book's invalid share of the span exceeds ``max_invalid_pct`` (percent)."""
    return float(health["invalid_pct"]) > max_invalid_pct


def format_health(report: dict[str, Any]) -> str:
    """The terminal block of the data-health figures, one book per line group."""
    lines = ["── data health (recorded book) ──"]
    for key, health in (report.get("data_health") or {}).items():
        invalid_s = health["invalid_ns"] / 1e9
        lines.append(f"  {key}: snapshots {health['snapshots']}, diffs applied {health['diffs_applied']:,} "
                     f"of {health['diffs_received']:,}, gaps {health['gaps']}, resyncs {health['resyncs']}, "
                     f"events refused {health['events_refused']:,}, crossed {health['crossed']}")
        first = ""
        if health.get("first_gap_utc"):
            first = f"; first gap {health['first_gap_utc']} ({health['first_gap_reason']})"
        lines.append(f"  {' ' * len(key)}  no valid book {invalid_s:,.3f} s = {health['invalid_pct']:.2f} % "
                     f"of the span{first}")
        for note in health.get("files", ()):
            lines.append(f"  {' ' * len(key)}  file {Path(note['file']).name}: {note['note']}")
    return "\n".join(lines)


__all__ = ["DEFAULT_MAX_INVALID_PCT", "BookHealth", "InvalidSpell", "format_health", "outside_recording", "silences",
           "unhealthy", "utc_text"]
