"""Latency between us and the simulated venue, as two legs.

*Entry*: from our call (``place``/``cancel``/...) until the venue acts on it;
until then the order is not live and cannot fill. *Response*: from the venue
acting until the ack, reject or fill is visible to us in ``drain()``. Keeping
the legs apart matters: a strategy can be filled on an order whose ack it has
not yet seen, and a cancel can arrive after the order was already filled.
"""

from __future__ import annotations

import enum
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol, runtime_checkable

import attrs

from mmkit.model import NS_PER_MS

__all__ = [
    "DEFAULT_BACKTEST_LATENCY", "Action", "ConstantLatency", "LatencyModel", "PerActionLatency", "describe_latency",
    "parse_latency_ms",
]


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


#: What a backtest assumes unless told otherwise (``mmkit backtest --latency-ms``): 2 ms each way, a client
#: next to the venue. Most are further away; the report states the latency it ran with (``latency_ms``).
DEFAULT_BACKTEST_LATENCY = ConstantLatency(entry=2 * NS_PER_MS, response=2 * NS_PER_MS)

#: A latency beyond this is a typo (an hour each way), not a network.
_MAX_LATENCY_MS = Decimal(3_600_000)


def parse_latency_ms(text: str) -> ConstantLatency:
    """``"5"`` (5 ms each way) or ``"5,20"`` (entry, response), in milliseconds, to whole nanoseconds.

    Raises ValueError saying what is wrong: not a number, negative, not finite, absurdly large, or finer
    than a nanosecond (the venue's clock counts whole nanoseconds; a silent rounding would change fills).
    """
    parts = [part.strip() for part in text.split(",")]
    if len(parts) not in (1, 2) or not all(parts):
        raise ValueError(f"{text!r}: give one latency in ms for both legs, or two (entry,response)")
    legs: list[int] = []
    for part in parts:
        try:
            ms = Decimal(part)
        except InvalidOperation:
            raise ValueError(f"{part!r} is not a number of milliseconds") from None
        if not ms.is_finite() or ms < 0 or ms > _MAX_LATENCY_MS:
            raise ValueError(f"{part} ms: a latency must be a finite number of ms from 0 to {_MAX_LATENCY_MS}")
        ns = ms * NS_PER_MS
        if ns != ns.to_integral_value():
            raise ValueError(f"{part} ms is finer than a nanosecond")
        legs.append(int(ns))
    return ConstantLatency(entry=legs[0], response=legs[-1])


def _ms(ns: int) -> float:
    return ns / NS_PER_MS


def describe_latency(model: LatencyModel) -> dict[str, Any]:
    """The latency a run assumed, for its report: each leg in ms (per action when they differ)."""
    if isinstance(model, ConstantLatency):
        return {"entry_ms": _ms(model.entry), "response_ms": _ms(model.response), "jitter": False}
    if isinstance(model, PerActionLatency):
        return {"entry_ms": _ms(model.default.entry), "response_ms": _ms(model.default.response), "jitter": False,
                "by_action": {action.value: {"entry_ms": _ms(leg.entry), "response_ms": _ms(leg.response)}
                              for action, leg in model.overrides}}
    return {"model": type(model).__name__}
