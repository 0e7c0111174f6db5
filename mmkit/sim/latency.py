"""Latency between us and the simulated venue, as two legs.

*Entry*: from our call (``place``/``cancel``/...) until the venue acts on it;
until then the order is not live and cannot fill. *Response*: from the venue
acting until the ack, reject or fill is visible to us in ``drain()``. Keeping
the legs apart matters: a strategy can be filled on an order whose ack it has
not yet seen, and a cancel can arrive after the order was already filled.
"""

from __future__ import annotations

import enum
from typing import Protocol, runtime_checkable

import attrs

__all__ = ["Action", "ConstantLatency", "LatencyModel", "PerActionLatency"]


class Action(enum.Enum):
    """What travels between us and the venue (FILL and MARKET_DATA only use the response leg)."""

    PLACE = "PLACE"
    CANCEL = "CANCEL"
    REPLACE = "REPLACE"
    QUERY = "QUERY"
    FILL = "FILL"
    MARKET_DATA = "MARKET_DATA"


@runtime_checkable
class LatencyModel(Protocol):
    """Both legs in integer nanoseconds; ``ts_ns`` is when the leg starts."""

    def entry_ns(self, action: Action, ts_ns: int) -> int: ...

    def response_ns(self, action: Action, ts_ns: int) -> int: ...


@attrs.frozen(slots=True)
class ConstantLatency:
    """The same entry and response delay for every action."""

    entry: int = 0
    response: int = 0

    def __attrs_post_init__(self) -> None:
        if self.entry < 0 or self.response < 0:
            raise ValueError("latencies cannot be negative")

    def entry_ns(self, action: Action, ts_ns: int) -> int:
        return self.entry

    def response_ns(self, action: Action, ts_ns: int) -> int:
        return self.response


@attrs.frozen(slots=True)
class PerActionLatency:
    """Per-action legs (e.g. cancels on a faster path than new orders); ``default`` for the rest."""

    default: ConstantLatency = ConstantLatency()
    overrides: tuple[tuple[Action, ConstantLatency], ...] = ()

    def _for(self, action: Action) -> ConstantLatency:
        for key, value in self.overrides:
            if key is action:
                return value
        return self.default

    def entry_ns(self, action: Action, ts_ns: int) -> int:
        return self._for(action).entry

    def response_ns(self, action: Action, ts_ns: int) -> int:
        return self._for(action).response
