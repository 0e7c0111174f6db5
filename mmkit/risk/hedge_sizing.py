"""How big and at what price a hedge order goes out: protective limit, market bound, lot clips, venue rate.

Why its own module: these are the hedger's arithmetic, each rule with its
reason, kept apart from the order bookkeeping so each can be read (and
checked) alone:

* the first try is a limit that crosses the touch by at most ``protection_bps``,
  rounded toward passive: it fills like a market order in a normal book but
  cannot sweep a thin one;
* a market fallback is funded as if it could trade :data:`MARKET_WORST` past
  the touch, and on a venue without market orders it is an IOC limit there;
* a quantity is cut down to a whole number of the venue's lots at its price;
* one more order action is sent only while every one of the venue's rate
  limits has room (:class:`RateWindow`): a reject loop is a rate-limit ban.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from decimal import ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING

from mmkit.model import Side

if TYPE_CHECKING:
    from mmkit.connector import RateLimit
    from mmkit.instrument import Instrument

#: Price of the touch we would trade against: best bid for a SELL, best ask for a BUY.
TouchSource = Callable[[Side], Decimal | None]

#: How far past the touch a market order may trade, at worst (what its funding is measured at).
MARKET_WORST = Decimal("0.05")


def protective_limit(instrument: Instrument, side: Side, touch: Decimal, protection_bps: Decimal) -> Decimal:
    """The marketable limit price: ``protection_bps`` through the touch, rounded toward passive."""
    sign = Decimal(side.sign)
    raw = touch * (1 + sign * protection_bps / Decimal(10_000))
    return instrument.round_price(raw, side)  # rounds toward passive: never past the protection


def market_worst(side: Side, touch: Decimal) -> Decimal:
    """What a market order may cost, at worst: :data:`MARKET_WORST` through the touch."""
    return touch * (1 + Decimal(side.sign) * MARKET_WORST)


def clip_to_lot(instrument: Instrument, qty: Decimal, price: Decimal) -> Decimal:
    """``qty`` cut down to a whole number of the instrument's lots at ``price``."""
    lot = instrument.lot_for(price)
    return (qty / lot).to_integral_value(rounding=ROUND_FLOOR) * lot


def touch_mid(touch: TouchSource) -> Decimal | None:
    """The hedge venue's mid (what a hedge's cost is measured against), None without both sides."""
    bid, ask = touch(Side.SELL), touch(Side.BUY)
    if bid is None or ask is None or bid <= 0 or ask <= 0:
        return None
    return (bid + ask) / 2


class RateWindow:
    """The times of our recent order actions on the hedge venue, against its rate limits."""

    def __init__(self) -> None:
        self._actions: deque[int] = deque()

    def note(self, ts_ns: int) -> None:
        """One order action (place or cancel) at ``ts_ns``."""
        self._actions.append(ts_ns)

    def ok(self, ts_ns: int, limits: Sequence[RateLimit]) -> bool:
        """True if one more order action stays within every one of the venue's rate limits."""
        if not limits:
            return True
        longest = max(limit.window_ns for limit in limits)
        while self._actions and ts_ns - self._actions[0] >= longest:
            self._actions.popleft()
        for limit in limits:
            recent = sum(1 for t in self._actions if ts_ns - t < limit.window_ns)
            if recent >= limit.max_count:
                return False
        return True
