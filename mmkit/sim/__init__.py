"""The simulated venue: matching engine, queue/latency/fee models and Connector implementations.

See docs/simulator.md for what is and is not modelled.
"""

from mmkit.sim.base_venue import OUR_OWNER, SimulatedVenue
from mmkit.sim.exchange_venue import ExchangeVenue
from mmkit.sim.fees import FeeModel
from mmkit.sim.latency import Action, ConstantLatency, LatencyModel, PerActionLatency
from mmkit.sim.matching import Execution, MatchingEngine, MatchResult, RestingOrder, SimOrder
from mmkit.sim.queue import ConservativeQueue, ProbabilisticQueue, QueueModel, QueuePosition
from mmkit.sim.replay_venue import ReplayBookVenue

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
