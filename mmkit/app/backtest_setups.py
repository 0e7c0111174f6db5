"""Setup (a) of a backtest: quote on the recorded venue itself.

Our orders join the recorded book of the venue the data came from and are
filled by a queue model (:mod:`mmkit.sim.queue`) against the recorded trades
and depth changes; the recording itself is never changed by what we do::

    recording ─▶ RecordingReplay ─▶ ReplayBookVenue.on_market_event ─┬─▶ fills of our resting orders (queue model)
                                                                    └─▶ market data (response latency) ─▶ engine
                                                                          book tracker ─▶ fair value = recorded mid

The engine sees the recorded venue exactly as a live connector would show
it (through ``drain()``, with latency), so its own book tracker does the
snapshot buffering and gap checks, and the fair value is that book's mid.
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
from mmkit.backtest.replay import RecordingReplay, ReplayEvent
from mmkit.clock import Clock
from mmkit.connector import VenueRules
from mmkit.model import NS_PER_MS, NS_PER_S
from mmkit.sim.fees import FeeModel
from mmkit.sim.latency import ConstantLatency, LatencyModel
from mmkit.sim.queue import ConservativeQueue, ProbabilisticQueue, QueueModel
from mmkit.sim.venue import ReplayBookVenue
from mmkit.strategy import Controller

QueueName = Literal["conservative", "probabilistic"]


def queue_model(name: QueueName, seed: int = 0) -> QueueModel:
    """The queue model named on the command line or in a test ("conservative" is the default)."""
    if name == "conservative":
        return ConservativeQueue()
    if name == "probabilistic":
        return ProbabilisticQueue(seed=seed)
    raise ValueError(f"unknown queue model {name!r} (conservative, probabilistic)")


@attrs.frozen
class ReplayVenueSetup:
    engine: Engine
    venue: ReplayBookVenue
    replay: RecordingReplay


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
) -> ReplayVenueSetup:
    """Wire replay → ReplayBookVenue → engine on ``clock`` (setup (a)).

    ``rules`` must describe the recorded venue (e.g. ``conf/venues/binance.yml``)
    and ``symbol`` the recorded instrument, since our orders join that book.
    """
    venue = ReplayBookVenue(
        rules,
        lambda: clock.now_ns,
        latency=latency or ConstantLatency(entry=2 * NS_PER_MS, response=2 * NS_PER_MS),
        fees=fees,
        initial_balances=initial_balances,
        queue_model=queue or ConservativeQueue(),
    )
    replay = RecordingReplay(events, sinks=[venue.on_market_event], speed=speed)
    engine = assemble(
        clock,
        venue,
        symbol,
        controller,
        risk=risk,
        pre_iterators=[("replay", replay)],
        staleness_ns=staleness_ns,
    )
    return ReplayVenueSetup(engine, venue, replay)


__all__ = ["QueueName", "ReplayVenueSetup", "build_replay_venue_setup", "queue_model"]
