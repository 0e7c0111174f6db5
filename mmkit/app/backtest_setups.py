"""Setup (a) of a backtest: quote on the recorded venue itself.

Our orders join the recorded book of the venue the data came from and are
filled by a queue model (:mod:`mmkit.sim.queue`) against the recorded trades
and depth changes; the recording itself is never changed by what we do::

    recording ─▶ RecordingReplay ─▶ SharedBook ─┬─▶ BookSequencer ─▶ ReplayBookVenue.on_market_event
                                                 │                    (venue time = ts_event)
                                                 └─▶ ReplayedReference (real OrderBookTracker, at ts_recv)
                                                       ─▶ fair value = mid, book seen by the controller

The strategy sees the recorded book when the recorder received it
(``ts_recv``), through the real :class:`OrderBookTracker` (snapshot
buffering, gap checks), at the recording's own size resolution: Binance
prints displayed sizes finer than its order lot, which a tracker built from
the venue's order rules would reject. The venue therefore does not publish
the recording back over its session (``subscribe_book`` is a no-op); its
order outcomes and fills still travel the latency model.
The venue's recorded book and the tracker's book hold the same levels
nearly all the time; :class:`~mmkit.backtest.shared_book.SharedBook` keeps
them one object while that is provable (each diff applied once) and forks
them the moment they could diverge (``share_book=False``: two books always).
Setup (b) (a simulated venue priced off the recording) is
:func:`mmkit.app.simulated.build_sim_setup`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Literal

import attrs

from mmkit.app.assembly import RiskSettings, assemble
from mmkit.app.engine import Engine
from mmkit.app.simulated import REFERENCE_SIZE, REFERENCE_TICK
from mmkit.backtest.replay import RecordingReplay, ReplayedReference, ReplayEvent
from mmkit.backtest.sequencing import BookSequencer
from mmkit.backtest.shared_book import SharedBook
from mmkit.book.tracker import OrderBookTracker
from mmkit.clock import Clock
from mmkit.connector import VenueRules
from mmkit.model import NS_PER_S
from mmkit.sim.fees import FeeModel
from mmkit.sim.latency import DEFAULT_BACKTEST_LATENCY, LatencyModel
from mmkit.sim.queue import ConservativeQueue, ProbabilisticQueue, QueueModel
from mmkit.sim.replay_venue import ReplayBookVenue
from mmkit.sim.through_fill import ThroughFill
from mmkit.strategy import Controller

QueueName = Literal["conservative", "probabilistic"]


def queue_model(name: QueueName, seed: int = 0) -> QueueModel:
    """The queue model named on the command line or in a test ("conservative" is the default)."""
    if name == "conservative":
        return ConservativeQueue()
    if name == "probabilistic":
        return ProbabilisticQueue(seed=seed)
    raise ValueError(f"unknown queue model {name!r} (conservative, probabilistic)")


class RecordedVenue(ReplayBookVenue):
    """A ReplayBookVenue whose market data reaches the strategy through the replay, not the session."""

    def subscribe_book(self, symbol: str) -> None:
        return None

    def subscribe_trades(self, symbol: str) -> None:
        return None


@attrs.frozen
class ReplayVenueSetup:
    engine: Engine
    venue: ReplayBookVenue
    replay: RecordingReplay
    reference: ReplayedReference
    sequencer: BookSequencer
    #: The sink that keeps the venue's and the tracker's book one object while they agree (None: not shared).
    shared_book: SharedBook | None = None


def build_replay_venue_setup(
    clock: Clock,
    controller: Controller,
    events: Iterable[ReplayEvent],
    rules: VenueRules,
    symbol: str,
    *,
    risk: RiskSettings | None = None,
    queue: QueueModel | None = None,
    latency: LatencyModel | None = None,
    fees: FeeModel | None = None,
    initial_balances: Mapping[str, Decimal] | None = None,
    staleness_ns: int = 2 * NS_PER_S,
    speed: float = 1.0,
    book_increments: tuple[Decimal, Decimal] = (REFERENCE_TICK, REFERENCE_SIZE),
    share_book: bool = True,
    through_fill: ThroughFill = "tape",
) -> ReplayVenueSetup:
    """Wire replay → ReplayBookVenue → engine on ``clock`` (setup (a)).

    ``rules`` must describe the recorded venue (e.g. ``conf/venues/binance.yml``)
    and ``symbol`` the recorded instrument, since our orders join that book.
    ``share_book=False`` keeps the venue's and the tracker's book apart throughout (the same results,
    each recorded diff applied to both; for tests that compare the two). ``through_fill``: what a print or
    the book moving through our price fills (:mod:`mmkit.sim.through_fill`).
    """
    venue = RecordedVenue(
        rules,
        lambda: clock.now_ns,
        latency=latency or DEFAULT_BACKTEST_LATENCY,
        fees=fees,
        initial_balances=initial_balances,
        queue_model=queue or ConservativeQueue(),
        book_increments=book_increments,  # the recording's resolution, as the strategy's tracker reads it
        through_fill=through_fill,
    )
    tracker = OrderBookTracker(
        rules.venue,
        symbol,
        book_increments[0],
        book_increments[1],
        request_resync=lambda reason: None,  # a recording cannot resend: invalid until its next snapshot
    )
    reference = ReplayedReference(tracker, staleness_ns)
    sequencer = BookSequencer(venue.on_market_event)
    shared = SharedBook(sequencer, reference, venue) if share_book else None
    replay = RecordingReplay(events, sinks=[shared] if shared else [sequencer, reference], speed=speed)
    reference.bind(replay)
    engine = assemble(
        clock,
        venue,
        symbol,
        controller,
        fair_source=reference,
        risk=risk,
        pre_iterators=[("replay", replay)],
        staleness_ns=staleness_ns,
    )
    # The controller's book view is the recorded book (the engine's own venue book stays unsubscribed).
    engine.runner.book = tracker
    return ReplayVenueSetup(engine, venue, replay, reference, sequencer, shared)


__all__ = ["QueueName", "ReplayVenueSetup", "build_replay_venue_setup", "queue_model"]
