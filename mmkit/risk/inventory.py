"""Net position of one base asset across every venue, and what it allows.

The inventory manager is the single answer to "how long are we?". It is fed
fills only (quote fills and hedge fills alike), never balances: a balance
mixes deposits, fees and other desks' activity, and arrives late, so a
position inferred from it is both wrong and stale.

From the position it derives the three things the rest of the engine acts on:

* a **skew** in ticks that shifts the quotes away from the side that would
  grow the position (positive when long: both quotes move down);
* a **quote mode** per side: quote normally, quote wider once the position
  reaches ``widen_at`` of the limit, stop adding at the limit;
* a **hedge signal** once the exposure (position plus hedges already working)
  passes the hedge threshold, and an **emergency** flag past the hard limit.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

import attrs
from loguru import logger

from mmkit.model import ZERO, Fill, Side, to_decimal
from mmkit.strategy import QuoteMode
from mmkit.validators import non_negative, positive

ONE = Decimal(1)


class _Derived(NamedTuple):
    """What one position implies: see :meth:`InventoryManager._current`."""

    position: Decimal
    #: None until asked for (:meth:`InventoryManager.skew_ticks`): the engine's gates never read it.
    skew: Decimal | None
    bid_mode: QuoteMode
    ask_mode: QuoteMode
    emergency: bool
#: ``Side.BUY`` costs a class attribute lookup through the enum metaclass; quote_mode runs several times a tick.
_BUY = Side.BUY
#: Distinct positions remembered before the memo starts again (a position revisits few values).
_DERIVED_MEMO_SIZE = 1024


@attrs.frozen
class InventoryConfig:
    """Inventory limits (defaults: the TrueX desk spec, in BTC)."""

    #: Hard quoting limit: at |position| >= this, stop quoting the side that adds to it.
    max_position: Decimal = attrs.field(default=Decimal("5"), converter=to_decimal, validator=positive)
    #: Ask for a hedge once |position + in-flight hedges| exceeds this.
    hedge_threshold: Decimal = attrs.field(default=Decimal("2"), converter=to_decimal, validator=non_negative)
    #: Hedge back down to this |position| (0 = flatten).
    hedge_target: Decimal = attrs.field(default=Decimal("0"), converter=to_decimal, validator=non_negative)
    #: Skew at 100 % utilization, in ticks.
    max_skew_ticks: Decimal = attrs.field(default=Decimal("3"), converter=to_decimal, validator=non_negative)
    #: Shape of the skew curve: >1 keeps the skew small for small positions and steep near the limit.
    skew_exponent: Decimal = attrs.field(default=Decimal("1.5"), converter=to_decimal, validator=positive)
    #: Fraction of ``max_position`` from which the accumulating side is quoted wider.
    widen_at: Decimal = attrs.field(default=Decimal("0.8"), converter=to_decimal, validator=positive)
    #: Above this |position| everything is cancelled (the engine's emergency path).
    emergency_position: Decimal = attrs.field(default=Decimal("6"), converter=to_decimal, validator=positive)
    #: How many ticks wider the accumulating side is quoted in WIDEN mode (controllers may use their own).
    widen_ticks: Decimal = attrs.field(default=Decimal("5"), converter=to_decimal, validator=non_negative)

    def __attrs_post_init__(self) -> None:
        if self.widen_at > ONE:
            raise ValueError(f"widen_at is a fraction of max_position and must be <= 1, got {self.widen_at}")
        if self.emergency_position < self.max_position:
            raise ValueError(
                f"emergency_position ({self.emergency_position}) must be >= max_position ({self.max_position})"
            )
        if self.hedge_target >= self.hedge_threshold and self.hedge_threshold > 0:
            raise ValueError(
                f"hedge_target ({self.hedge_target}) must be below hedge_threshold ({self.hedge_threshold})"
            )


@attrs.frozen
class HedgeSignal:
    """A request to reduce exposure on the hedge venue."""

    #: Side to trade on the hedge venue (SELL when we are long).
    side: Side
    #: Positive size still to hedge after the hedges already in flight.
    qty: Decimal
    #: Net position when the signal was made.
    position: Decimal
    reason: str


class InventoryManager:
    """Tracks the net position from fills; implements :class:`mmkit.strategy.InventoryView`.

    ``symbol_base`` filters fills: only fills whose symbol starts with it
    (``BTC-PYUSD``, ``BTC/USD``) move the position, so a misrouted fill of
    another instrument cannot corrupt it. Fills are deduplicated by
    ``(venue, trade_id)`` as a second line of defence against replays after a
    reconnect or restart.
    """

    def __init__(self, config: InventoryConfig, symbol_base: str = "BTC") -> None:
        self.config = config
        self.symbol_base = symbol_base.upper()
        self._position = ZERO
        self._entry_price: Decimal | None = None
        self._seen: set[tuple[str, str]] = set()
        self._fill_count = 0
        #: What the position implies (skew, quote modes, emergency), for the position it was worked out at.
        self._derived: _Derived | None = None
        #: Per position text, what it implies (see :meth:`_current`), for the config ``_memo_config``.
        self._by_text: dict[str, _Derived] = {}
        self._memo_config = config
        self._log = logger.bind(component="inventory", base=self.symbol_base)

    # ----------------------------------------------------------------- state

    @property
    def position(self) -> Decimal:
        """Signed net position in base units (+ long, - short)."""
        return self._position

    @property
    def entry_price(self) -> Decimal | None:
        """VWAP of the currently open position, None when flat."""
        return self._entry_price

    @property
    def max_position(self) -> Decimal:
        return self.config.max_position

    @property
    def fill_count(self) -> int:
        return self._fill_count

    def on_fill(self, fill: Fill) -> None:
        """Apply one fill: buys add, sells subtract; hedge fills count the same."""
        if not fill.symbol.upper().startswith(self.symbol_base):
            self._log.warning("ignoring fill {} of {}: not {}", fill.trade_id, fill.symbol, self.symbol_base)
            return
        key = fill.key
        if key in self._seen:
            self._log.warning("ignoring duplicate fill {} on {}", fill.trade_id, fill.venue)
            return
        if fill.qty <= 0:
            self._log.error("ignoring fill {} with non-positive qty {}", fill.trade_id, fill.qty)
            return
        self._seen.add(key)
        self._fill_count += 1
        old = self._position
        signed = fill.qty * fill.side.sign
        new = old + signed
        if new == 0:
            self._entry_price = None
        elif old == 0 or (old > 0) != (new > 0):
            # Opened from flat or flipped through zero: the remainder was all bought/sold at this price.
            self._entry_price = fill.price
        elif abs(new) > abs(old):
            # Added to the position: volume-weighted average of old entry and this fill.
            assert self._entry_price is not None
            self._entry_price = (self._entry_price * abs(old) + fill.price * fill.qty) / abs(new)
        # else: reduced without flipping; the entry of what remains is unchanged.
        self._position = new
        self._log.debug(
            "fill {} {} {}@{} hedge={} -> position {}",
            fill.trade_id,
            fill.side.value,
            fill.qty,
            fill.price,
            fill.is_hedge,
            new,
        )

    # ------------------------------------------------------------ derived

    def utilization(self) -> Decimal:
        """|position| / max_position (may exceed 1)."""
        return abs(self._position) / self.config.max_position

    def skew_ticks(self) -> Decimal:
        """sign(p) · min(|p|/max, 1)^exponent · max_skew_ticks; positive when long.

        Capped at 100 % utilization: beyond the limit the accumulating side is
        stopped anyway, and an unbounded skew would push the reducing quote
        through the mid.

        Worked out on first request per position (a fractional Decimal power,
        ~100 us) and kept with the rest of what the position implies: a
        controller that never reads the skew never pays for it.
        """
        derived = self._current()
        skew = derived.skew
        if skew is None:
            skew = self._skew(derived.position)
            self._derived = derived = derived._replace(skew=skew)
            self._by_text[str(derived.position)] = derived
        return skew

    def accumulating_side(self) -> Side | None:
        """The side whose fills would grow |position| (None when flat)."""
        if self._position > 0:
            return Side.BUY
        if self._position < 0:
            return Side.SELL
        return None

    def quote_mode(self, side: Side) -> QuoteMode:
        """NORMAL, WIDEN (>= widen_at on the accumulating side) or STOP (>= 100 %); reducing side is NORMAL."""
        derived = self._derived  # _current()'s first check, inline (as in emergency)
        if derived is None or derived.position is not self._position or self._memo_config is not self.config:
            derived = self._current()
        return derived.bid_mode if side is _BUY else derived.ask_mode

    def emergency(self) -> bool:
        """True past the hard limit: the engine should cancel every quote."""
        derived = self._derived  # _current()'s first check, inline: asked every tick, mostly for the same position
        if derived is not None and derived.position is self._position and self._memo_config is self.config:
            return derived.emergency
        return self._current().emergency

    def _current(self) -> _Derived:
        """What the current position implies, worked out once per position value.

        The controller, the inventory gate and the kill switch ask for these
        every tick, while the position moves only on fills, and a fractional
        Decimal power for the skew costs ~100 us. Two levels of memo: the last
        answer, for the position *object* it was worked out at (every fill
        assigns a new one, so nothing has to remember to invalidate it), and
        one answer per position *text* (``str`` keeps the exponent, so an
        equal value written otherwise is worked out apart and the skew's digits
        are exactly what a fresh computation gives): a position that goes back
        to a value it had (flat, one lot long) costs a dict hit. Both are
        dropped when ``config`` is replaced.
        """
        derived = self._derived
        position = self._position
        if derived is not None and derived.position is position and self._memo_config is self.config:
            return derived
        if self._memo_config is not self.config:
            self._by_text.clear()
            self._memo_config = self.config
        text = str(position)
        derived = self._by_text.get(text)
        if derived is None:
            derived = self._derive(position)
            if len(self._by_text) >= _DERIVED_MEMO_SIZE:
                self._by_text.clear()
            self._by_text[text] = derived
        elif derived.position is not position:
            derived = derived._replace(position=position)
        self._derived = derived
        return derived

    def _derive(self, position: Decimal) -> _Derived:
        """Quote modes and emergency flag for ``position`` (the current one): the uncached rules (skew: later)."""
        return _Derived(
            position, None, self._quote_mode(Side.BUY), self._quote_mode(Side.SELL),
            abs(position) > self.config.emergency_position,
        )

    def _skew(self, position: Decimal) -> Decimal:
        """The skew for ``position`` (the current one): the uncached rule of :meth:`skew_ticks`."""
        if position == 0:
            return ZERO
        magnitude = (min(self.utilization(), ONE) ** self.config.skew_exponent) * self.config.max_skew_ticks
        return magnitude if position > 0 else -magnitude

    def _quote_mode(self, side: Side) -> QuoteMode:
        if side is not self.accumulating_side():
            return QuoteMode.NORMAL
        u = self.utilization()
        if u >= ONE:
            return QuoteMode.STOP
        if u >= self.config.widen_at:
            return QuoteMode.WIDEN
        return QuoteMode.NORMAL

    def should_hedge(self, in_flight: Decimal = ZERO) -> HedgeSignal | None:
        """A hedge signal when |position + in_flight| > hedge_threshold, else None.

        ``in_flight`` is the signed size of hedge orders already working
        (+ buying, - selling), so a hedge that is on its way is not asked for twice.
        """
        exposure = self._position + in_flight
        if abs(exposure) <= self.config.hedge_threshold:
            return None
        qty = abs(exposure) - self.config.hedge_target
        if qty <= 0:
            return None
        side = Side.SELL if exposure > 0 else Side.BUY
        reason = (
            f"exposure {exposure} (position {self._position}, in flight {in_flight}) "
            f"beyond threshold {self.config.hedge_threshold}"
        )
        return HedgeSignal(side=side, qty=qty, position=self._position, reason=reason)

    def summary(self) -> dict[str, str]:
        """Printable state for logs, status pages and the final report."""
        return {
            "base": self.symbol_base,
            "position": str(self._position),
            "entry_price": "" if self._entry_price is None else str(self._entry_price),
            "utilization": f"{self.utilization():.4f}",
            "skew_ticks": f"{self.skew_ticks():.4f}",
            "bid_mode": self.quote_mode(Side.BUY).value,
            "ask_mode": self.quote_mode(Side.SELL).value,
            "emergency": str(self.emergency()),
            "fills": str(self._fill_count),
        }
