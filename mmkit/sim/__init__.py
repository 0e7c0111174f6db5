"""The simulated venue: matching engine, queue/latency/fee models and Connector implementations.

See docs/simulator.md for what is and is not modelled.

The replay venue and its queue models load on first use (PEP 562): a
setup-sim backtest, which imports ``mmkit.sim.exchange_venue`` and so this
package, does not use them (issue 16: nothing imported that the run does not use).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mmkit.sim.base_venue import OUR_OWNER, SimulatedVenue
from mmkit.sim.exchange_venue import ExchangeVenue
from mmkit.sim.fees import FeeModel
from mmkit.sim.latency import Action, ConstantLatency, LatencyModel, PerActionLatency
from mmkit.sim.matching import Execution, MatchingEngine, MatchResult, RestingOrder, SimOrder

if TYPE_CHECKING:
    from mmkit.sim.queue import ConservativeQueue, ProbabilisticQueue, QueueModel, QueuePosition
    from mmkit.sim.replay_venue import ReplayBookVenue

_QUEUE_NAMES = frozenset({"ConservativeQueue", "ProbabilisticQueue", "QueueModel", "QueuePosition"})


def __getattr__(name: str) -> Any:
    if name == "ReplayBookVenue":
        from mmkit.sim.replay_venue import ReplayBookVenue

        return ReplayBookVenue
    if name in _QUEUE_NAMES:
        from mmkit.sim import queue

        return getattr(queue, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "OUR_OWNER",
    "Action",
    "ConservativeQueue",
    "ConstantLatency",
    "ExchangeVenue",
    "Execution",
    "FeeModel",
    "LatencyModel",
    "MatchResult",
    "MatchingEngine",
    "PerActionLatency",
    "ProbabilisticQueue",
    "QueueModel",
    "QueuePosition",
    "ReplayBookVenue",
    "RestingOrder",
    "SimOrder",
    "SimulatedVenue",
]
