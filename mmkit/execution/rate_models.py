"""Venue rate-limit models beyond sliding windows: Kraken's decaying per-pair order counter.

Why a model of its own: Kraken does not count orders per window. Each pair
has a counter that every order adds to, that a cancel or amend of a *young*
order adds more to (the younger, the more: +8 for a cancel within 5 s), and
that decays at a fixed rate per account tier. The venue refuses, with
``EOrder:Rate limit exceeded``, anything that would take it past the tier's
maximum. A window limiter cannot express that: quoting that re-prices often
(cancelling young orders) hits Kraken's limit at a fraction of the order
count a window would allow.

:class:`DecayingOrderCounter` keeps our copy of that counter. The
:class:`~mmkit.execution.rate_limiter.RateLimiter` asks it before granting an
action, so the limiter never sends what the venue would refuse:

* our decay runs slower than the venue's (``decay_margin``): we stamp actions
  at tick time, the venue at arrival, and our copy must never think the
  counter lower than the venue does;
* places and replaces may fill the counter only up to ``max_count`` less a
  reserve kept for cancels (the dearest action, and the one we must always be
  able to send), as the window limiter does;
* an action whose order age is unknown is charged as if the order were
  brand new (the largest penalty).

Coinbase and Gemini publish plain per-second / per-minute request limits;
their ``rate_limits`` windows in ``conf/venues/*.yml`` express them.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from mmkit.connector import OrderRateCounterConfig, PenaltyStep, VenueRules
from mmkit.model import NS_PER_MS, NS_PER_S

#: Kind names as the limiter's ActionKind values (kept as strings: this module must not import the limiter).
PLACE, CANCEL, REPLACE = "PLACE", "CANCEL", "REPLACE"


def penalty(steps: Sequence[PenaltyStep], age_ns: int | None) -> Decimal:
    """The cost step for an order of ``age_ns`` (unknown age: the youngest step, the largest cost)."""
    if not steps:
        return Decimal(0)
    if age_ns is None:
        return max(step.cost for step in steps)
    for step in sorted(steps, key=lambda s: s.max_age_ms):
        if age_ns < step.max_age_ms * NS_PER_MS:
            return step.cost
    return Decimal(0)


class DecayingOrderCounter:
    """Our copy of a venue's decaying order-rate counter for one pair. Time is ns, non-decreasing."""

    def __init__(
        self,
        config: OrderRateCounterConfig,
        *,
        cancel_reserve: Decimal = Decimal("0.2"),
        decay_margin: Decimal = Decimal("0.9"),
    ) -> None:
        self.config = config
        self.max_count = config.max_count
        #: Places and replaces stop here; cancels may go up to ``max_count``.
        self.place_cap = config.max_count * (1 - cancel_reserve)
        self._decay_per_ns = config.decay_per_s * decay_margin / NS_PER_S
        self.value = Decimal(0)
        self._at_ns: int | None = None
        self.charged = 0
        self.refused = 0

    def cost(self, kind: str, age_ns: int | None) -> Decimal:
        if kind == PLACE:
            return self.config.place_cost
        if kind == CANCEL:
            return penalty(self.config.cancel_penalties, age_ns)
        return self.config.replace_cost + penalty(self.config.replace_penalties, age_ns)

    def level(self, now_ns: int) -> Decimal:
        """The counter as we believe it stands at ``now_ns``, after decay."""
        if self._at_ns is not None and now_ns > self._at_ns:
            decayed = self.value - self._decay_per_ns * (now_ns - self._at_ns)
            self.value = decayed if decayed > 0 else Decimal(0)
            self._at_ns = now_ns
        elif self._at_ns is None:
            self._at_ns = now_ns
        return self.value

    def allows(self, now_ns: int, kind: str, age_ns: int | None) -> bool:
        cap = self.max_count if kind == CANCEL else self.place_cap
        if self.level(now_ns) + self.cost(kind, age_ns) > cap:
            self.refused += 1
            return False
        return True

    def charge(self, now_ns: int, kind: str, age_ns: int | None) -> None:
        self.level(now_ns)
        self.value += self.cost(kind, age_ns)
        self.charged += 1

    def seconds_until(self, now_ns: int, kind: str, age_ns: int | None) -> float:
        """How long until an action of ``kind`` fits (0 when it fits now): for status pages and logs."""
        cap = self.max_count if kind == CANCEL else self.place_cap
        over = self.level(now_ns) + self.cost(kind, age_ns) - cap
        if over <= 0 or self._decay_per_ns <= 0:
            return 0.0
        return float(over / (self._decay_per_ns * NS_PER_S))


def model_for(rules: VenueRules, cancel_reserve: Decimal = Decimal("0.2")) -> DecayingOrderCounter | None:
    """The extra rate model a venue's rules call for (None: its windows say everything)."""
    if rules.order_rate_counter is None:
        return None
    return DecayingOrderCounter(rules.order_rate_counter, cancel_reserve=cancel_reserve)
