"""Simulated-venue setups: a strategy quoting on mmkit.sim, priced off a replayed recording.

One function builds the whole thing for any clock, so the demo (REALTIME,
replay sped up), ``mmkit start`` with ``venue.connector: sim`` and the
backtest (BACKTEST) run the same assembly:

    recording ─▶ RecordingReplay ─┬─▶ ReplayedReference (real OrderBookTracker) ─▶ fair value ─▶ controller
                                  └─▶ SyntheticMarket (makers + takers) ─▶ ExchangeVenue ◀─▶ engine

The synthetic takers are fitted on the recording's own trade tape before the
run (:func:`fit_recorded_tape`: rate, side, size and distance from the
recorded mid per distance bucket, over the run's window) and drawn from that
fit as the run goes (:mod:`mmkit.sim.taker_model`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
from loguru import logger

from mmkit.app.assembly import RiskSettings, assemble
from mmkit.app.engine import Engine
from mmkit.backtest.recording_cache.derived import DerivedKey, load_derived, store_derived
from mmkit.backtest.recording_cache.layout import FileStamp
from mmkit.backtest.replay import RecordingReplay, ReplayedReference, ReplayEvent
from mmkit.book.tracker import OrderBookTracker
from mmkit.clock import Clock
from mmkit.connector import VenueRules
from mmkit.model import NS_PER_S, BookSnapshot, Side, Trade
from mmkit.sim.calibration import TapeFit, TapePrint, fit_tape
from mmkit.sim.exchange_venue import ExchangeVenue
from mmkit.sim.flow import FlowConfig, SyntheticMarket
from mmkit.sim.latency import DEFAULT_BACKTEST_LATENCY, LatencyModel
from mmkit.strategy import Controller

#: Increments of the reference recording (Binance BTCUSDT: 0.01 tick, 1e-8 size resolution).
REFERENCE_TICK = Decimal("0.01")
REFERENCE_SIZE = Decimal("0.00000001")


@attrs.frozen
class SimSetup:
    engine: Engine
    venue: ExchangeVenue
    replay: RecordingReplay
    reference: ReplayedReference
    market: SyntheticMarket


def build_sim_setup(
    clock: Clock,
    controller: Controller,
    events: Iterable[ReplayEvent],
    rules: VenueRules,
    symbol: str,
    *,
    risk: RiskSettings | None = None,
    latency: LatencyModel | None = None,
    flow: FlowConfig | None = None,
    speed: float = 1.0,
    staleness_ns: int = 2 * NS_PER_S,
    initial_balances: Mapping[str, Decimal] | None = None,
    reference_increments: tuple[Decimal, Decimal] = (REFERENCE_TICK, REFERENCE_SIZE),
    fit_window: tuple[int, int] | None = None,
    fit_store: FitStore | None = None,
) -> SimSetup:
    """Wire replay → reference book → synthetic market → ExchangeVenue → engine on ``clock``.

    The takers are fitted on the recorded trades received within ``fit_window``
    (recorded ns, both ends included; default: the whole recording), which a
    backtest sets to its own time window. ``fit_store``: where fits of these
    events are kept across processes (see :class:`FitStore`).
    """
    latency = latency or DEFAULT_BACKTEST_LATENCY
    venue = ExchangeVenue(rules, lambda: clock.now_ns, latency=latency, initial_balances=initial_balances)
    events = events if isinstance(events, list) else list(events)
    if fit_window is None:
        fit_window = (events[0].ts_recv, events[-1].ts_recv) if events else (0, 1)
    fit = fit_recorded_tape(events, fit_window, reference_increments, store=fit_store)
    replay = RecordingReplay(events, speed=speed)
    first = next(iter(replay_events_peek(replay)), None)
    ref_venue, ref_symbol = (first.venue, first.symbol) if first is not None else ("reference", "REF")
    tracker = OrderBookTracker(
        ref_venue,
        ref_symbol,
        reference_increments[0],
        reference_increments[1],
        request_resync=lambda reason: None,  # a recording cannot resend: the book stays invalid until its next snapshot
    )
    reference = ReplayedReference(tracker, staleness_ns)
    reference.bind(replay)
    market = SyntheticMarket(venue, symbol, flow, fit=fit, start_ns=fit_window[0], recorded_now=replay.recorded_now)
    # The mid's recorded time, so that takers due before a move trade at the mid they saw.
    reference.on_mid(lambda mid: market.on_reference_mid(mid, reference.last_update_ns))
    replay.add_sink(reference)
    engine = assemble(
        clock,
        venue,
        symbol,
        controller,
        fair_source=reference,
        risk=risk,
        pre_iterators=[("replay", replay), ("takers", market)],
        staleness_ns=staleness_ns,
    )
    return SimSetup(engine, venue, replay, reference, market)


#: Bump whenever :func:`_fit_recorded_tape` or :func:`~mmkit.sim.calibration.fit_tape` would fit other values:
#: part of the on-disk key, so a fit stored by an older version is never served.
FIT_VERSION = 1


@attrs.frozen
class FitStore:
    """Where the fits of one recording's events are kept on disk, and what those events are.

    Why: the fit rebuilds the recorded book over the whole window (about
    0.1 s CPU of a 1.2 s default backtest), for the same result every run of
    the same recording. The CLI, which read the events itself, says what they
    are: ``files`` (:func:`mmkit.backtest.recording_cache.file_stamps` of the
    recording's files) and ``read`` (every option of the read that shapes the
    events: reader and its version, the ``end_ns`` it stopped at...). The
    caller vouches that the events it passes are that read's; a key then
    adds the fit's window, increments and :data:`FIT_VERSION`.
    ``directory`` None: nothing kept.
    """

    directory: Path | None
    files: tuple[FileStamp, ...]
    read: Mapping[str, Any]

    def key(self, window: tuple[int, int], increments: tuple[Decimal, Decimal]) -> DerivedKey:
        params = {"read": dict(self.read), "window": list(window), "increments": [str(i) for i in increments]}
        return DerivedKey("tape_fit", FIT_VERSION, self.files, params)

    def load(self, window: tuple[int, int], increments: tuple[Decimal, Decimal]) -> TapeFit | None:
        stored = load_derived(self.directory, self.key(window, increments))
        if stored is None:
            return None
        try:
            return TapeFit.from_json(stored)
        except (KeyError, TypeError, ValueError) as exc:
            logger.warning("recording cache: a stored taker fit is unreadable ({!r}); fitting again", exc)
            return None

    def store(self, window: tuple[int, int], increments: tuple[Decimal, Decimal], fit: TapeFit) -> None:
        store_derived(self.directory, self.key(window, increments), fit.to_json())


#: Recent fits: (id of the events, their count, window, increments) -> (those very events, fit).
_FITS: dict[tuple[int, int, tuple[int, int], tuple[Decimal, Decimal]], tuple[Sequence[ReplayEvent], TapeFit]] = {}
_FITS_KEPT = 4


def fit_recorded_tape(
    events: Sequence[ReplayEvent], window: tuple[int, int], increments: tuple[Decimal, Decimal],
    *, store: FitStore | None = None,
) -> TapeFit:
    """Fit the takers on the recorded trades received in ``window``, each against the recorded mid of its time.

    The recorded book is rebuilt through a real :class:`OrderBookTracker` (as
    the run's reference does); a trade counts only while that book is valid,
    the others are counted apart (``without_mid``), as are trades without an
    aggressor side.

    Rebuilding the book costs about a tenth of a second on the shared
    recording, so the last few fits are kept for runs on the very same event
    list (a sweep's trials, the bench): the memo holds the list itself, so its
    id cannot be reused by another list while the entry lives, and a different
    list, window or grid is fitted anew. Behind it, ``store`` (given by a
    caller that knows which recording the events are) keeps fits on disk for
    later processes.
    """
    key = (id(events), len(events), window, increments)
    kept = _FITS.get(key)
    if kept is not None and kept[0] is events:
        return kept[1]
    fit = store.load(window, increments) if store is not None else None
    if fit is None:
        fit = _fit_recorded_tape(events, window, increments)
        if store is not None:
            store.store(window, increments, fit)
    _FITS[key] = (events, fit)
    while len(_FITS) > _FITS_KEPT:
        del _FITS[next(iter(_FITS))]
    return fit


def _fit_recorded_tape(
    events: Sequence[ReplayEvent], window: tuple[int, int], increments: tuple[Decimal, Decimal]
) -> TapeFit:
    start, end = window
    tracker: OrderBookTracker | None = None
    prints: list[TapePrint] = []
    without_mid = without_side = 0
    last_top: tuple[int | None, int | None] | None = None
    mid: Decimal | None = None
    for event in events:
        ts = event.ts_recv
        if ts > end:
            break
        if isinstance(event, Trade):
            if ts < start:
                continue
            if event.aggressor is None:
                without_side += 1
            elif tracker is None or not tracker.is_valid:
                without_mid += 1
            else:
                book = tracker.book
                top = (book.best_bid_int(), book.best_ask_int())
                if top != last_top:  # most prints follow one another at an unchanged top
                    last_top, mid = top, book.mid()
                if mid is None:
                    without_mid += 1
                else:
                    prints.append(TapePrint(ts, event.price, event.qty, event.aggressor is Side.BUY, mid))
            continue
        if tracker is None:
            tracker = OrderBookTracker(event.venue, event.symbol, increments[0], increments[1],
                                       request_resync=lambda reason: None)
        if isinstance(event, BookSnapshot):
            tracker.on_snapshot(event)
        else:
            tracker.on_delta(event)
    return fit_tape(prints, max(1, end - start), without_mid=without_mid, without_side=without_side)


def replay_events_peek(replay: RecordingReplay) -> list[ReplayEvent]:
    """The first recorded event, to name the reference venue and symbol."""
    return replay.peek(1)


__all__ = ["FIT_VERSION", "FitStore", "SimSetup", "build_sim_setup", "fit_recorded_tape"]
