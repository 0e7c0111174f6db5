"""RateLimiter: stay inside the venue's order-rate windows, always able to cancel.

Three jobs, all driven by ``conf/venues/*.yml`` (``rate_limits``,
``duplicate_order_window_ms``):

* **Sliding windows.** Every action (place, cancel, replace) counts against
  every window; an action is allowed only if no window would exceed its
  ``max_count`` within any ``window_ms``.
* **Headroom for cancels.** Places and replaces may use only
  ``max_count - reserve`` of each window; the reserve (default 20 %) is kept
  for cancels, because being unable to pull a quote is worse than being
  unable to post one.
* **Reactive backoff** (Hummingbot #1291). A RATE_LIMIT reject means our
  count and the venue's disagree: places/replaces stop for an exponentially
  growing pause (cancels still go, within the windows); the level resets
  after a quiet period without such rejects.

Also the **duplicate-order guard**: the same side+price+qty placed again
within ``duplicate_order_window_ns`` is refused locally (venues like TrueX
reject it and count the reject against us).
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterable, Sequence
from decimal import Decimal

from loguru import logger

from mmkit.connector import RateLimit, VenueRules
from mmkit.execution.rate_models import DecayingOrderCounter, model_for
from mmkit.model import NS_PER_MS, NS_PER_S, Side


class ActionKind(enum.Enum):
    PLACE = "PLACE"
    CANCEL = "CANCEL"
    REPLACE = "REPLACE"


#: Looked up once (an enum member access goes through the enum metaclass; every action asks the limiter).
_CANCEL = ActionKind.CANCEL
#: Later than any clock time (and more room than any window holds).
_NEVER = 1 << 62


class RateLimiter:
    """Sliding-window limiter with cancel headroom, duplicate guard and backoff. Time is ns, non-decreasing."""

    def __init__(
        self,
        limits: Sequence[RateLimit],
        *,
        cancel_reserve: Decimal = Decimal("0.2"),
        duplicate_window_ns: int = 0,
        backoff_base_ns: int = NS_PER_S,
        backoff_max_ns: int = 60 * NS_PER_S,
        backoff_reset_ns: int = 60 * NS_PER_S,
        window_guard_ns: int = 100 * NS_PER_MS,
        counter: DecayingOrderCounter | None = None,
    ) -> None:
        self.limits = tuple(limits)
        #: A venue's decaying order counter (Kraken), asked after the windows: see mmkit.execution.rate_models.
        self.counter = counter
        #: Extra width added to every window: we stamp actions at tick time, the venue at arrival,
        #: so two bursts exactly one window apart on our clock can land inside one window on theirs.
        self.window_guard_ns = window_guard_ns
        self._windows: list[deque[int]] = [deque() for _ in self.limits]
        reserves = [int(limit.max_count * cancel_reserve) for limit in self.limits]
        # Per window, worked out once from the (fixed) limits: its length, and how many actions it
        # holds for cancels and for places/replaces (which leave the reserve to cancels). Paired with
        # the window's deque (mutated in place, never replaced) so that a call allocates no zip.
        self._spans = tuple(limit.window_ns for limit in self.limits)
        self._span_windows = tuple(zip(self._spans, self._windows, strict=True))
        self._cancel_caps = tuple(zip((limit.max_count for limit in self.limits), self._windows, strict=True))
        self._place_caps = tuple(
            zip((limit.max_count - reserve for limit, reserve in zip(self.limits, reserves, strict=True)),
                self._windows, strict=True)
        )
        self._shortest_ns = min(self._spans, default=0) + window_guard_ns
        #: No counted action leaves a window before this time (a lower bound): until then pruning is a
        #: no-op and is skipped. Lowered on every append, recomputed by every prune, reset by seed().
        self._next_expiry_ns = _NEVER
        self.duplicate_window_ns = duplicate_window_ns
        self._recent_places: deque[tuple[int, Side, Decimal, Decimal]] = deque()
        self.backoff_base_ns = backoff_base_ns
        self.backoff_max_ns = backoff_max_ns
        self.backoff_reset_ns = backoff_reset_ns
        self.backoff_level = 0
        self.blocked_until_ns = 0
        self._last_rate_reject_ns: int | None = None
        self._last_ns = 0
        self.granted = 0
        self.denied = 0
        self.duplicates_blocked = 0

    @classmethod
    def from_rules(cls, rules: VenueRules, **kwargs: object) -> RateLimiter:
        counter = model_for(rules)
        return cls(rules.rate_limits, duplicate_window_ns=rules.duplicate_order_window_ns, counter=counter, **kwargs)  # type: ignore[arg-type]

    # -- windows ----------------------------------------------------------

    def _now(self, now_ns: int) -> int:
        # A clock that steps back must not let old timestamps fall out of a window early.
        if now_ns < self._last_ns:
            return self._last_ns
        self._last_ns = now_ns
        return now_ns

    def _prune(self, now_ns: int) -> None:
        if now_ns >= self._next_expiry_ns:
            guard = self.window_guard_ns
            expiry = _NEVER
            for span, window in self._span_windows:
                cutoff = now_ns - span - guard
                while window and window[0] <= cutoff:
                    window.popleft()
                if window and window[0] + span + guard < expiry:
                    expiry = window[0] + span + guard
            self._next_expiry_ns = expiry
        if self._last_rate_reject_ns is not None and now_ns - self._last_rate_reject_ns >= self.backoff_reset_ns:
            self.backoff_level = 0
            self._last_rate_reject_ns = None

    def headroom(self, now_ns: int, kind: ActionKind) -> int:
        """How many more actions of ``kind`` the windows allow right now (ignores backoff)."""
        now = self._now(now_ns)
        self._prune(now)
        return self._room(kind)

    def _room(self, kind: ActionKind) -> int:
        """:meth:`headroom` of windows already pruned to now."""
        room = _NEVER
        for cap, window in self._cancel_caps if kind is _CANCEL else self._place_caps:
            left = cap - len(window)
            room = min(room, left)
        return room if room > 0 else 0

    def in_backoff(self, now_ns: int) -> bool:
        return now_ns < self.blocked_until_ns

    def try_acquire(self, now_ns: int, kind: ActionKind, age_ns: int | None = None) -> bool:
        """Take one slot for an action of ``kind`` at ``now_ns`` if allowed.

        ``age_ns`` is the age of the order a cancel or replace acts on (a venue
        counter may charge young orders more; unknown counts as brand new).
        """
        # _now() inlined: every action of every decision asks here.
        if now_ns < self._last_ns:
            now = self._last_ns
        else:
            now = self._last_ns = now_ns
        if kind is not _CANCEL and now < self.blocked_until_ns:
            self.denied += 1
            return False
        if now >= self._next_expiry_ns or self._last_rate_reject_ns is not None:
            self._prune(now)
        for cap, window in self._cancel_caps if kind is _CANCEL else self._place_caps:
            if len(window) >= cap:  # no room left in this window (what _room() <= 0 says)
                self.denied += 1
                return False
        counter = self.counter
        if counter is not None:
            if not counter.allows(now, kind.value, age_ns):
                self.denied += 1
                return False
            counter.charge(now, kind.value, age_ns)
        for window in self._windows:
            window.append(now)
        expiry = now + self._shortest_ns
        self._next_expiry_ns = min(self._next_expiry_ns, expiry)
        self.granted += 1
        return True

    # -- restarts (issue 11, case 6) ---------------------------------------

    def action_times(self) -> list[int]:
        """Timestamps of the actions still counted, from the longest window (journaled across restarts)."""
        if not self._windows:
            return []
        longest = max(range(len(self._spans)), key=self._spans.__getitem__)
        return list(self._windows[longest])

    def seed(self, times_ns: Iterable[int], now_ns: int | None = None) -> int:
        """Count actions a previous process sent (journaled) so a restart cannot exceed the venue's windows.

        Times are the same clock as ``now_ns`` (wall clock in a live run); ones
        already outside every window are ignored. Returns how many were counted.

        With ``now_ns``: a journaled time after it (the clock went back since, or the journal is corrupt)
        is counted as sent *now*, and said once. Trusting it would be wrong both ways: it became the
        limiter's "now" (``_now`` never goes back), so the real recent actions fell outside the window
        (the restart could send a whole window again) and every later action was stamped in the future,
        so the window never emptied (placing blocked until the wall clock caught up). Counting it at now
        keeps the limiter conservative: never more than the venue's limit in any window.
        """
        times = sorted(times_ns)
        if not times or not self._spans:
            return 0
        if now_ns is not None and times[-1] > now_ns:
            future = [t for t in times if t > now_ns]
            logger.warning(
                "rate limiter: {} journaled action time(s) after now (up to {:.1f} s ahead: the clock went "
                "back, or the journal is corrupt): counted as sent now", len(future), (future[-1] - now_ns) / NS_PER_S,
            )
            times = [min(t, now_ns) for t in times]
        horizon = max(self._spans) + self.window_guard_ns
        newest = max(times[-1] if now_ns is None else now_ns, self._last_ns)
        kept = [t for t in times if t > newest - horizon]
        for span, window in zip(self._spans, self._windows, strict=True):
            merged = sorted([*window, *(t for t in kept if t > newest - span - self.window_guard_ns)])
            window.clear()
            window.extend(merged)
        self._last_ns = max(self._last_ns, kept[-1]) if kept else self._last_ns
        self._next_expiry_ns = 0  # older actions came in: prune at the next call
        return len(kept)

    # -- duplicate guard --------------------------------------------------

    def is_duplicate(self, now_ns: int, side: Side, price: Decimal, qty: Decimal) -> bool:
        """True if the same side+price+qty was placed within the duplicate window."""
        if self.duplicate_window_ns <= 0:
            return False
        cutoff = self._now(now_ns) - self.duplicate_window_ns
        recent = self._recent_places
        while recent and recent[0][0] <= cutoff:
            recent.popleft()
        for _, r_side, r_price, r_qty in recent:
            if r_side is side and r_price == price and r_qty == qty:
                self.duplicates_blocked += 1
                return True
        return False

    def record_place(self, now_ns: int, side: Side, price: Decimal, qty: Decimal) -> None:
        if self.duplicate_window_ns > 0:
            self._recent_places.append((self._now(now_ns), side, price, qty))

    # -- reactive backoff -------------------------------------------------

    def on_rate_limit_reject(self, now_ns: int) -> None:
        """The venue said we were too fast: pause places/replaces, twice as long each time."""
        now = self._now(now_ns)
        if now < self.blocked_until_ns:
            # More rejects of actions sent before the pause began: the same burst, not a new offence.
            self._last_rate_reject_ns = now
            return
        self.backoff_level += 1
        pause = min(self.backoff_base_ns * 2 ** (self.backoff_level - 1), self.backoff_max_ns)
        self.blocked_until_ns = max(self.blocked_until_ns, now + pause)
        self._last_rate_reject_ns = now
        logger.warning("rate-limit reject: placing paused {} ms (level {})", pause // 1_000_000, self.backoff_level)
