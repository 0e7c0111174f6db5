"""The records the store persists, and one exact JSON encoding shared by every sink.

Orders belong to the engine's ClientOrder state machine, hedges and PnL to the
risk layer; the store takes *plain fields* so that it does not depend on how
those modules model them (they change more often than the tables do). Fills
are persisted as :class:`mmkit.model.Fill` itself, the one venue-neutral type.

Every value here is frozen: a record is built on the engine thread, handed to
the writer thread through the recorder's queue, and never mutated on the way.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs

from mmkit.model import Fill, Side, to_decimal

#: Order states after which an order can never be live again. Any other state
#: (including ones this module has never heard of) counts as possibly open, so
#: that restart recovery asks the venue about it instead of forgetting it.
TERMINAL_ORDER_STATES: frozenset[str] = frozenset(
    {"FILLED", "CANCELED", "CANCELLED", "REJECTED", "EXPIRED", "REPLACED", "FAILED"}
)


def _side_value(value: Side | str) -> str:
    side = value.value if isinstance(value, Side) else str(value).upper()
    if side not in ("BUY", "SELL"):
        raise ValueError(f"side must be BUY or SELL, got {value!r}")
    return side


def _opt_decimal(value: Decimal | str | int | None) -> Decimal | None:
    return None if value is None else to_decimal(value)


@attrs.frozen(slots=True)
class OrderRecord:
    """One state change of one of our orders, exactly as the engine saw it."""

    client_id: str
    venue: str
    symbol: str
    side: str = attrs.field(converter=_side_value)
    price: Decimal | None = attrs.field(converter=_opt_decimal)
    qty: Decimal = attrs.field(converter=to_decimal)
    filled_qty: Decimal = attrs.field(converter=to_decimal)
    state: str
    venue_order_id: str
    ts_ns: int
    reason: str = ""

    @property
    def is_open(self) -> bool:
        return self.state.upper() not in TERMINAL_ORDER_STATES


@attrs.frozen(slots=True)
class HedgeRecord:
    """A hedge order's state change; ``ref`` names what triggered it (e.g. the maker fill's trade id)."""

    hedge_id: str
    venue: str
    symbol: str
    side: str = attrs.field(converter=_side_value)
    qty: Decimal = attrs.field(converter=to_decimal)
    price: Decimal | None = attrs.field(converter=_opt_decimal)
    state: str
    ts_ns: int
    ref: str = ""
    reason: str = ""


@attrs.frozen(slots=True)
class PnLRecord:
    """A PnL snapshot for one (venue, symbol); ``venue="*"`` is the portfolio total by convention."""

    venue: str
    symbol: str
    position: Decimal = attrs.field(converter=to_decimal)
    realized: Decimal = attrs.field(converter=to_decimal)
    unrealized: Decimal = attrs.field(converter=to_decimal)
    fees: Decimal = attrs.field(converter=to_decimal)
    ts_ns: int
    mark: Decimal | None = attrs.field(default=None, converter=_opt_decimal)
    avg_price: Decimal | None = attrs.field(default=None, converter=_opt_decimal)


@attrs.frozen(slots=True)
class TopOfBookRecord:
    """A sampled best bid/ask (either side may be missing on a one-sided book)."""

    venue: str
    symbol: str
    bid: Decimal | None = attrs.field(converter=_opt_decimal)
    bid_qty: Decimal | None = attrs.field(converter=_opt_decimal)
    ask: Decimal | None = attrs.field(converter=_opt_decimal)
    ask_qty: Decimal | None = attrs.field(converter=_opt_decimal)
    ts_ns: int


@attrs.frozen(slots=True)
class SessionStart:
    """Marks the start of one engine run; every other record carries its ``session_id``."""

    session_id: str
    instance: str
    ts_ns: int


@attrs.frozen(slots=True)
class SessionStop:
    session_id: str
    ts_ns: int


@attrs.frozen(slots=True)
class QuarantinedFillRecord:
    """A fill that failed validation (mmkit.orders.validation): stored apart, never booked."""

    fill: Fill
    kind: str
    reason: str


Record = (
    OrderRecord | Fill | HedgeRecord | PnLRecord | TopOfBookRecord | SessionStart | SessionStop | QuarantinedFillRecord
)


def to_jsonable(value: Any) -> Any:
    """Turn records, events and mappings into JSON-safe data without losing exactness.

    Decimals become their exact positional string (``"0.00000001"``, never
    ``1e-08`` as a float), enums their value, attrs instances a dict of their fields.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Decimal):
        return format(value, "f")  # positional: "0.00000001", same value and scale as the Decimal
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, float):
        return value  # confidences and ratios, never money (money is Decimal by contract)
    if attrs.has(type(value)):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in attrs.fields(type(value))}
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    return str(value)
