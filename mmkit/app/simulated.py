"""Simulated-venue setups: a strategy quoting on mmkit.sim, priced off a replayed recording.

One function builds the whole thing for any clock, so the demo (REALTIME,
replay sped up), ``mmkit start`` with ``venue.connector: sim`` and the
backtest (BACKTEST) run the same assembly:

    recording ─▶ RecordingReplay ─┬─▶ ReplayedReference (real OrderBookTracker) ─▶ fair value ─▶ controller
                                  └─▶ SyntheticMarket (makers + takers) ─▶ ExchangeVenue ◀─▶ engine
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

import attrs

from mmkit.app.assembly import RiskSettings, assemble
from mmkit.app.engine import Engine
from mmkit.backtest.replay import RecordingReplay, ReplayedReference, ReplayEvent
from mmkit.book.tracker import OrderBookTracker
from mmkit.clock import Clock
from mmkit.connector import VenueRules
from mmkit.model import NS_PER_MS, NS_PER_S
from mmkit.sim.exchange_venue import ExchangeVenue
from mmkit.sim.flow import FlowConfig, SyntheticMarket
from mmkit.sim.latency import ConstantLatency, LatencyModel
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
) -> SimSetup:
    """Wire replay → reference book → synthetic market → ExchangeVenue → engine on ``clock``."""
    latency = latency or ConstantLatency(entry=2 * NS_PER_MS, response=2 * NS_PER_MS)
    venue = ExchangeVenue(rules, lambda: clock.now_ns, latency=latency, initial_balances=initial_balances)
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
    market = SyntheticMarket(venue, symbol, flow)
    reference.on_mid(market.on_reference_mid)
    reference.on_trade(market.on_reference_trade)
    replay.add_sink(reference)
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
    return SimSetup(engine, venue, replay, reference, market)


def replay_events_peek(replay: RecordingReplay) -> list[ReplayEvent]:
    """The first recorded event, to name the reference venue and symbol."""
    return replay.peek(1)


__all__ = ["SimSetup", "build_sim_setup"]
