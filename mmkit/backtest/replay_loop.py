"""When a replay may hand its events to the compiled delivery loop (``mmkit._speedups._replayloop``).

Why a gate: the compiled loop does, for the common recorded event, what the
sinks of the replay backtest setup (a book sequencer in front of a
:class:`~mmkit.sim.replay_venue.ReplayBookVenue`, then a
:class:`~mmkit.backtest.replay.ReplayedReference`) would do, reading and
writing their attributes directly. So it may run only in front of exactly
those sinks (alone, or behind the :class:`~mmkit.backtest.shared_book.SharedBook`
that keeps the venue's and the tracker's book one object), of exactly those
classes (a subclass that overrides a step would be bypassed), with the venue
on recorded venue time (``ts_event``). Any other
set of sinks is delivered event by event as before; so is everything when
``MMKIT_PURE_PYTHON=1`` or the module is not built (:mod:`mmkit._speedups`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mmkit._speedups import compiled_replay_loop_class

#: A replay's loop before it was looked up (None means: looked up, none fits).
NOT_LOOKED_UP: Any = object()

#: The ReplayBookVenue methods the loop stands in for, or calls: a venue class overriding one gets no loop.
_VENUE_STEPS = ("on_market_event", "_on_trade", "_on_delta", "_on_depth", "advance", "_reach", "_watched",
                "_resting_orders")
#: The same for the reference's tracker.
_TRACKER_STEPS = ("on_delta", "_apply", "_invalidate_crossed")


def compiled_loop_for(sinks: Sequence[Any]) -> Any:
    """A compiled ``ReplayLoop`` for ``sinks``, or None when they are not the replay setup's (or none is built).

    The setup's sinks are the pair (sequencer, reference), or one :class:`~mmkit.backtest.shared_book.SharedBook`
    in front of that pair (the venue's and the tracker's book one object while they agree; the loop then
    applies a diff once, and calls the SharedBook for every event it does not handle).
    """
    loop_class = compiled_replay_loop_class()
    if loop_class is None:
        return None
    from mmkit.backtest.health import BookHealth
    from mmkit.backtest.replay import ReplayedReference
    from mmkit.backtest.sequencing import BookSequencer
    from mmkit.backtest.shared_book import SharedBook
    from mmkit.book.book import OrderBook
    from mmkit.book.tracker import OrderBookTracker
    from mmkit.sim.replay_venue import ReplayBookVenue

    if len(sinks) == 1 and type(sinks[0]) is SharedBook:
        share = sinks[0]
        sequencer, reference = share.sequencer, share.reference
    elif len(sinks) == 2:
        share = None
        sequencer, reference = sinks
    else:
        return None
    if type(reference) is not ReplayedReference or type(reference.tracker.book) is not OrderBook:
        return None
    if type(reference.health) is not BookHealth:
        return None
    if not _unchanged(type(reference.tracker), OrderBookTracker, _TRACKER_STEPS):
        return None
    sequencer_class = compiled_sequencer_types()
    if type(sequencer) not in (BookSequencer, *sequencer_class):
        return None
    on_event = getattr(sequencer, "_sink", None)
    venue = getattr(on_event, "__self__", None)
    if not isinstance(venue, ReplayBookVenue) or getattr(on_event, "__func__", None) is not (
        ReplayBookVenue.on_market_event
    ):
        return None
    if not _unchanged(type(venue), ReplayBookVenue, _VENUE_STEPS) or venue._market_time != "ts_event":
        return None
    if share is None and reference.tracker.book is venue.books.get(reference.tracker.symbol):
        return None  # one book without the SharedBook that keeps it right: the sinks alone
    if share is not None and share.venue is not venue:
        return None
    if any(type(book) is not OrderBook for book in venue.books.values()) or reference.tracker.symbol not in venue.books:
        return None
    return loop_class(list(sinks), sequencer, venue, reference)


def compiled_sequencer_types() -> tuple[type[Any], ...]:
    """The compiled sequencer class, when it is built (either sequencer may stand in front of the venue)."""
    from mmkit._speedups import compiled_sequencer_class

    compiled = compiled_sequencer_class()
    return () if compiled is None else (compiled,)


def _unchanged(cls: type[Any], base: type[Any], steps: Sequence[str]) -> bool:
    """True when ``cls`` (``base`` or a subclass) uses ``base``'s own code for every method in ``steps``."""
    return all(getattr(cls, name) is getattr(base, name) for name in steps)


__all__ = ["NOT_LOOKED_UP", "compiled_loop_for"]
