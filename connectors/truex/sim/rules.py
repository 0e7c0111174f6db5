"""The venue-side rule checks of the local TrueX exchange, as small testable pieces.

Each check answers with a :class:`VenueReject` (TrueX's code and text), the
same vocabulary the client maps back to a RejectReason, so a rule enforced
here is guaranteed to surface on the client with the right reason.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Sequence
from decimal import Decimal

from connectors.truex.rejects import VenueReject
from mmkit.connector import RateLimit
from mmkit.instrument import Instrument
from mmkit.model import MAX_CLIENT_ID_LEN, RejectReason

_STATIC_REJECTS = {
    RejectReason.INVALID_PRICE: VenueReject.TICK,
    RejectReason.INVALID_QTY: VenueReject.LOT,
    RejectReason.MIN_NOTIONAL: VenueReject.MIN_NOTIONAL,
    RejectReason.PRICE_BAND: VenueReject.PRICE_BAND,
}


class SlidingWindowLimiter:
    """Every limit (e.g. 10/1 s and 300/60 s) must hold over any window; refused actions do not count."""

    def __init__(self, limits: Sequence[RateLimit]) -> None:
        self._windows = [(limit, deque[int]()) for limit in limits]

    def allow(self, ts_ns: int) -> bool:
        for limit, stamps in self._windows:
            while stamps and stamps[0] <= ts_ns - limit.window_ns:
                stamps.popleft()
        if any(len(stamps) >= limit.max_count for limit, stamps in self._windows):
            return False
        for _, stamps in self._windows:
            stamps.append(ts_ns)
        return True


class DuplicateGuard:
    """Refuse an order identical (side, price, qty) to one from the same owner less than ``window_ns`` ago."""

    def __init__(self, window_ns: int) -> None:
        self._window_ns = window_ns
        self._last: dict[Hashable, int] = {}

    def is_duplicate(self, key: Hashable, ts_ns: int) -> bool:
        if self._window_ns <= 0:
            return False
        previous = self._last.get(key)
        self._last[key] = ts_ns
        if len(self._last) > 50_000:  # bounded: forget entries older than the window
            cutoff = ts_ns - self._window_ns
            self._last = {k: v for k, v in self._last.items() if v > cutoff}
        return previous is not None and ts_ns - previous < self._window_ns


def check_clordid(client_id: str) -> VenueReject | None:
    if not client_id or len(client_id) > MAX_CLIENT_ID_LEN:
        return VenueReject.CLORDID_LENGTH
    return None


def check_static(instrument: Instrument, price: Decimal, qty: Decimal, mid: Decimal | None) -> VenueReject | None:
    """Tick for the price bucket, lot, min notional, and the ±band around ``mid``."""
    reason = instrument.check_order(price, qty, mid)
    if reason is None:
        return None
    return _STATIC_REJECTS.get(reason, VenueReject.UNSUPPORTED)
