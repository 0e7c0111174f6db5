"""The last gate before the executor: halt quoting when something is wrong.

The kill switch is evaluated every tick with the state the engine already
has (fair value, total PnL, inventory emergency) and counts rejects as they
arrive. Any active trigger halts; while halted the engine pulls its quotes.

Triggers (each can be disabled by leaving it ``None``; the two PnL limits
both ``None`` only with ``unlimited_loss``, so that running with no loss limit
at all is a choice written down, never a default or a slip):

* **drawdown**: total PnL fell ``max_drawdown`` below its running peak;
* **loss**: total PnL at or below ``-max_loss``;
* **stale**: no reference price, or the fair value is older than ``stale_after_ns``;
* **confidence**: fair-value confidence below ``min_confidence``;
* **rejects**: more than ``max_rejects`` order rejects within ``reject_window_ns``;
* **inventory**: the inventory manager reports an emergency.

Resuming:

* ``manual``: stays halted until :meth:`KillSwitch.reset_by_hand`. A human
  reset re-bases the drawdown peak on the current PnL (the operator has
  accepted that loss) and forgets counted rejects; the absolute loss limit
  is not re-based, so a reset under it trips again on the next evaluation.
* ``auto``: resumes once every trigger has been clear continuously for
  ``cooldown_ns``. PnL triggers rarely clear by themselves while flat, so in
  practice ``auto`` recovers from data and reject problems only.

Units of the PnL limits
-----------------------
``max_loss`` and ``max_drawdown`` are money in ``unit``: ``quote`` (the
default: the quoted instrument's quote currency, USDT for BTCUSDT, USD for
BTCUSD_PERP), ``base`` (its base asset), or the name of one of those two
currencies (``USD``, ``BTC``). The PnL comes in the ledger's unit
(:class:`mmkit.risk.settlement.Settlement`): quote for a linear instrument,
the base coin for an inverse contract (COIN-M). When the two differ the
total is converted at the fair price of the tick (coin × price, or quote /
price), and the drawdown peak is kept in the limits' unit. So a COIN-M run
with ``max_loss: 2000`` halts at a loss worth 2000 USD at the current price,
and with ``unit: BTC`` at a loss of 2000 BTC. A named currency that is
neither the base nor the quote of the quoted instrument is refused
(``ValueError``, reported as a config error of ``risk.kill_switch.unit``):
a config written for BTCUSDT with ``unit: USDT`` that backtests a COIN-M
recording does not get its limits silently read in another currency. Until
the first fair price the PnL triggers of a converting switch stay quiet
(nothing can be converted, and nothing is quoted before a price either).

What the PnL limits read is the ledger's total, which includes the cash
flows booked into it that are not fills (a perpetual's funding payments in
a backtest, :meth:`mmkit.risk.pnl.PnLTracker.book_cash_flow`): a loss that
funding alone pushes past the limit trips it like any other. So that the
reason says so, :attr:`KillSwitch.pnl_note` (set by whoever books them)
is added to a PnL trigger's reason when it has something to say
("of which funding -312.5 USDT ...").

A **ledger halt** (:meth:`KillSwitch.halt_ledger`: a quarantined or
conflicting fill, a venue reporting fills the ledger did not hold) is sticky
whatever ``resume`` says: no cooldown ends it, only a person
(:meth:`KillSwitch.reset_by_hand`), because nothing in the data can show
that the ledger is right again.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from decimal import Decimal
from typing import Literal

import attrs
from loguru import logger

from mmkit.model import NS_PER_S, FairValue
from mmkit.risk.settlement import Settlement
from mmkit.validators import optional_positive


@attrs.frozen
class KillSwitchConfig:
    #: Halt when total PnL falls this much below its running peak (in ``unit``).
    max_drawdown: Decimal | None = attrs.field(default=Decimal(1000), validator=optional_positive)
    #: Halt when total PnL <= -max_loss (in ``unit``).
    max_loss: Decimal | None = attrs.field(default=Decimal(2000), validator=optional_positive)
    #: Halt when the fair value is older than this (ns).
    stale_after_ns: int | None = attrs.field(default=5 * NS_PER_S, validator=optional_positive)
    #: Halt when the fair-value confidence is below this (0 disables).
    min_confidence: float = 0.3
    #: Halt when more than this many rejects arrive within ``reject_window_ns``.
    max_rejects: int | None = attrs.field(default=20, validator=optional_positive)
    reject_window_ns: int = attrs.field(default=60 * NS_PER_S, validator=optional_positive)
    resume: Literal["manual", "auto"] = "manual"
    #: In auto mode: how long every trigger must stay clear before quoting resumes.
    cooldown_ns: int = attrs.field(default=30 * NS_PER_S, validator=optional_positive)
    #: Currency of ``max_loss`` / ``max_drawdown``: ``quote``, ``base`` or a currency name (module docstring).
    unit: str = "quote"
    #: Run with no loss limit at all, on purpose: required when both PnL limits are None, refused otherwise.
    unlimited_loss: bool = False

    def __attrs_post_init__(self) -> None:
        unset = self.max_loss is None and self.max_drawdown is None
        if unset and not self.unlimited_loss:
            raise ValueError("max_loss and max_drawdown are both None: no loss limit at all; set one, or "
                             "unlimited_loss=True to run without one on purpose")
        if self.unlimited_loss and not unset:
            raise ValueError(f"unlimited_loss is set but a loss limit is too (max_loss {self.max_loss}, "
                             f"max_drawdown {self.max_drawdown}): set both to None, or drop unlimited_loss")
        if not self.unit or not self.unit.strip():
            raise ValueError("unit must be 'quote', 'base' or a currency name such as USD or BTC")
        if self.resume not in ("manual", "auto"):
            raise ValueError(f"resume must be 'manual' or 'auto', got {self.resume!r}")
        if not 0 <= self.min_confidence <= 1:
            raise ValueError(f"min_confidence must be in [0, 1], got {self.min_confidence}")


@attrs.frozen
class KillSwitchEvent:
    """A trip (``halted`` True) or a resume (``halted`` False)."""

    halted: bool
    reason: str
    ts_ns: int


KillSwitchListener = Callable[[KillSwitchEvent], None]


class KillSwitch:
    """Evaluates the triggers each tick and holds the halted state."""

    def __init__(self, config: KillSwitchConfig | None = None, settlement: Settlement | None = None) -> None:
        """``settlement``: the quoted instrument's (PnL unit, base, quote); without it the PnL is taken to be in
        the limits' unit, which is only allowed for ``unit: quote``."""
        self.config = config or KillSwitchConfig()
        #: How a PnL total becomes the limits' unit: 1 = as is, "mul" = × price, "div" = / price.
        self._convert, self.unit = _conversion(self.config.unit, settlement)
        #: Reasons name the unit when it is not plainly the linear ledger's own quote currency.
        self._unit_suffix = f" {self.unit}" if settlement is not None and (
            settlement.inverse or self._convert != 1) else ""
        #: Last fair price seen (for the conversion) and the last conversion, kept while its inputs are the same.
        self._price: Decimal | None = None
        self._converted: tuple[Decimal, Decimal, Decimal] | None = None
        self._halted = False
        self._reason = ""
        self._tripped_at: int | None = None
        self._clear_since: int | None = None
        self._peak: Decimal | None = None
        self._rejects: deque[int] = deque()
        self._last_now = 0
        self._on_trip: list[KillSwitchListener] = []
        self._on_resume: list[KillSwitchListener] = []
        self._log = logger.bind(component="kill_switch")
        #: Price triggers (missing, stale, low confidence) arm once a trusted price has been seen.
        self._price_armed = False
        #: (PnL total object, the PnL reasons it gave, the config they were read with): see :meth:`_pnl_reasons`.
        self._pnl_verdict: tuple[Decimal, tuple[str, ...], KillSwitchConfig] | None = None
        #: Why the ledger is in doubt (sticky: see :meth:`halt_ledger`); empty while it is not.
        self._ledger_reasons: list[str] = []
        #: (PnL total, fair price, config) of the last evaluation that found every trigger clear, while
        #: nothing else it read has changed since (see :meth:`evaluate`); None: evaluate in full.
        self._clear: tuple[Decimal, Decimal, KillSwitchConfig] | None = None
        #: What the PnL total holds besides trading, added to a PnL trigger's reason ("" or None: nothing).
        #: Read only when a PnL trigger fires; it must change only with the total (a new total object).
        self.pnl_note: Callable[[], str] | None = None

    @property
    def halted(self) -> bool:
        return self._halted

    @property
    def loss_unlimited(self) -> bool:
        """True when no PnL limit is set (only with ``unlimited_loss``): shown at start and in every status."""
        return self.config.max_loss is None and self.config.max_drawdown is None

    @property
    def ledger_halted(self) -> bool:
        """True while a ledger halt stands (only :meth:`reset_by_hand` clears it)."""
        return bool(self._ledger_reasons)

    @property
    def ledger_reasons(self) -> tuple[str, ...]:
        return tuple(self._ledger_reasons)

    @property
    def reason(self) -> str:
        """Why it is (or last was) halted; empty if it never tripped."""
        return self._reason

    def add_trip_listener(self, listener: KillSwitchListener) -> None:
        self._on_trip.append(listener)

    def add_resume_listener(self, listener: KillSwitchListener) -> None:
        self._on_resume.append(listener)

    def on_reject(self, now_ns: int | None = None) -> None:
        """Count one order reject at ``now_ns`` (default: the time of the last evaluation)."""
        self._clear = None
        self._rejects.append(self._last_now if now_ns is None else now_ns)

    def active_triggers(
        self, now_ns: int, fair: FairValue, pnl_total: Decimal, inventory_emergency: bool = False
    ) -> list[str]:
        """The reasons that would halt right now (also updates the PnL peak and the reject window)."""
        cfg = self.config
        if fair.price is not None:
            self._price = fair.price
        in_unit = self._in_limit_unit(pnl_total)
        reasons = list(self._pnl_reasons(in_unit)) if in_unit is not None else []
        if not self._price_armed and fair.price is not None and fair.confidence >= cfg.min_confidence:
            self._price_armed = True
        if not self._price_armed:
            pass  # start-up: no trusted price yet. Controllers do not quote without one; nothing to trip on.
        elif fair.price is None:
            reasons.append("no reference price")
        elif cfg.stale_after_ns is not None and now_ns - fair.ts > cfg.stale_after_ns:
            reasons.append(f"reference price stale by {(now_ns - fair.ts) / NS_PER_S:.3f}s")
        if self._price_armed and fair.confidence < cfg.min_confidence:
            reasons.append(f"confidence {fair.confidence:.3f} below {cfg.min_confidence}")
        if cfg.max_rejects is not None:
            horizon = now_ns - cfg.reject_window_ns
            while self._rejects and self._rejects[0] <= horizon:
                self._rejects.popleft()
            if len(self._rejects) > cfg.max_rejects:
                reasons.append(f"{len(self._rejects)} rejects within {cfg.reject_window_ns / NS_PER_S:.0f}s")
        if inventory_emergency:
            reasons.append("inventory emergency")
        if self._ledger_reasons:
            reasons.append(f"ledger halt: {self._ledger_reasons[0]}")
        return reasons

    def _pnl_reasons(self, pnl_total: Decimal) -> tuple[str, ...]:
        """Drawdown and loss triggers; raises the running peak to ``pnl_total``.

        Evaluated every tick with a total that mostly is the very object of
        the last tick (the PnL tracker memoizes it). Then the peak already
        includes it and the verdict is the one of last tick (under the same
        config: a replaced one gives a new verdict), so it is kept;
        :meth:`reset_by_hand` (which re-bases the peak) drops it.
        """
        verdict = self._pnl_verdict
        cfg = self.config
        if verdict is not None and verdict[0] is pnl_total and verdict[2] is cfg:
            return verdict[1]
        reasons: list[str] = []
        self._peak = pnl_total if self._peak is None else max(self._peak, pnl_total)
        unit = self._unit_suffix
        if cfg.max_drawdown is not None and self._peak - pnl_total >= cfg.max_drawdown:
            reasons.append(f"drawdown {self._peak - pnl_total}{unit} from peak {self._peak}{unit} >= "
                           f"{cfg.max_drawdown}{unit}")
        if cfg.max_loss is not None and pnl_total <= -cfg.max_loss:
            reasons.append(f"loss {pnl_total}{unit} beyond max loss {cfg.max_loss}{unit}")
        note = self.pnl_note() if reasons and self.pnl_note is not None else ""
        if note:
            reasons = [f"{reason} ({note})" for reason in reasons]
        self._pnl_verdict = (pnl_total, tuple(reasons), cfg)
        return self._pnl_verdict[1]

    def evaluate(self, now_ns: int, fair: FairValue, pnl_total: Decimal, inventory_emergency: bool = False) -> bool:
        """Check every trigger; return True while quoting must stay halted.

        Runs every tick, and on most ticks every trigger was clear last time and
        nothing they read has changed: the same PnL total and fair price objects
        (so the same PnL verdict and, for a converting switch, the same converted
        total), the same config, no reject, trip (a ledger halt trips) or reset
        since (each of those drops the memo; the memo is only set while not
        halted), no inventory emergency. Then only what
        moves with time is checked again (the fair value's age and confidence),
        and the answer is "clear" without building the reasons. The reject
        window is not pruned on such a tick: its count can only fall with time,
        and the next full evaluation prunes it before counting.
        """
        self._last_now = now_ns
        clear = self._clear
        if clear is not None and clear[0] is pnl_total and clear[1] is fair.price and not inventory_emergency:
            cfg = clear[2]
            if (
                cfg is self.config
                and fair.confidence >= cfg.min_confidence
                and (cfg.stale_after_ns is None or now_ns - fair.ts <= cfg.stale_after_ns)
            ):
                return False
        self._clear = None
        reasons = self.active_triggers(now_ns, fair, pnl_total, inventory_emergency)
        if not reasons and not self._halted and self._price_armed and fair.price is not None:
            self._clear = (pnl_total, fair.price, self.config)
        if reasons:
            self._clear_since = None
            if not self._halted:
                self._trip(now_ns, "; ".join(reasons))
            return True
        if not self._halted:
            return False
        if self.config.resume == "auto":
            if self._clear_since is None:
                self._clear_since = now_ns
            if now_ns - self._clear_since >= self.config.cooldown_ns:
                self._resume(now_ns, f"clear for {(now_ns - self._clear_since) / NS_PER_S:.1f}s")
                return False
        return True

    def trip(self, now_ns: int, reason: str) -> None:
        """Halt from outside (operator command, engine fault)."""
        if not self._halted:
            self._trip(now_ns, reason)

    def halt_ledger(self, now_ns: int, reason: str) -> None:
        """Halt because the ledger is in doubt; sticky even with ``resume: auto`` (see the module docstring).

        Each distinct reason is kept (the first names the halt); if the switch
        was already halted for something else, the ledger reason is added to
        what it reports.
        """
        if reason in self._ledger_reasons:
            return
        self._ledger_reasons.append(reason)
        self._clear_since = None
        if not self._halted:
            self._trip(now_ns, f"ledger halt: {reason}")
        else:
            self._reason = f"{self._reason}; ledger halt: {reason}"
            self._log.error("KILL SWITCH ledger halt (already halted): {}", reason)

    def reset_by_hand(self, now_ns: int | None = None, pnl_total: Decimal | None = None) -> None:
        """Operator reset: resume now; re-base the drawdown peak and forget counted rejects.

        The next :meth:`evaluate` trips again if a trigger is still active.
        """
        self._peak = None if pnl_total is None else self._in_limit_unit(pnl_total)
        self._pnl_verdict = None
        self._clear = None
        self._rejects.clear()
        if self._ledger_reasons:
            self._log.warning("ledger halt cleared by hand; was: {}", "; ".join(self._ledger_reasons))
        self._ledger_reasons.clear()
        self._clear_since = None
        if self._halted:
            self._resume(self._last_now if now_ns is None else now_ns, "reset by hand")

    # ------------------------------------------------------------ internals

    def _in_limit_unit(self, pnl_total: Decimal) -> Decimal | None:
        """``pnl_total`` (the ledger's unit) in the limits' unit; None when that needs a price not yet seen.

        The same object comes back while the total and the price objects are unchanged, so the PnL verdict
        memo (:meth:`_pnl_reasons`) keeps working on ticks where nothing moved.
        """
        if self._convert == 1:
            return pnl_total
        price = self._price
        if price is None:
            return None
        last = self._converted
        if last is not None and last[0] is pnl_total and last[1] is price:
            return last[2]
        value = pnl_total * price if self._convert == "mul" else pnl_total / price
        self._converted = (pnl_total, price, value)
        return value

    def _trip(self, now_ns: int, reason: str) -> None:
        self._clear = None
        self._halted = True
        self._reason = reason
        self._tripped_at = now_ns
        self._log.error("KILL SWITCH tripped: {}", reason)
        self._notify(self._on_trip, KillSwitchEvent(True, reason, now_ns))

    def _resume(self, now_ns: int, why: str) -> None:
        self._halted = False
        self._clear_since = None
        self._log.warning("kill switch resumed ({}); was: {}", why, self._reason)
        self._notify(self._on_resume, KillSwitchEvent(False, why, now_ns))

    def _notify(self, listeners: list[KillSwitchListener], event: KillSwitchEvent) -> None:
        for listener in listeners:
            try:
                listener(event)
            except Exception:  # a broken listener must not keep the switch from switching
                self._log.exception("kill switch listener failed")


def _conversion(unit: str, settlement: Settlement | None) -> tuple[int | str, str]:
    """(how to convert the ledger's PnL into the limits' unit, the limits' unit as shown in reasons).

    Raises ValueError (shown as a config error of ``risk.kill_switch.unit``) for a unit that names neither
    currency of the instrument, or that cannot be checked without one.
    """
    named = unit.strip()
    if settlement is None:
        if named.lower() != "quote":
            raise ValueError(f"risk.kill_switch.unit {named!r} needs the quoted instrument to be known")
        return 1, "quote"
    if named.lower() == "quote" or (settlement.quote and named.upper() == settlement.quote.upper()):
        target = "quote"
    elif named.lower() == "base" or named.upper() == settlement.base.upper():
        target = "base"
    else:
        raise ValueError(
            f"risk.kill_switch.unit {named!r} is neither the base ({settlement.base}) nor the quote "
            f"({settlement.quote_name}) of the quoted instrument: say 'quote', 'base' or one of those two"
        )
    shown = settlement.quote_name if target == "quote" else settlement.base
    ledger = "base" if settlement.inverse else "quote"
    if target == ledger:
        return 1, shown
    return ("mul" if ledger == "base" else "div"), shown


def limits_unit(config: KillSwitchConfig, settlement: Settlement) -> str:
    """The currency ``config``'s PnL limits are read in for this instrument; ValueError when ``unit`` fits not."""
    return _conversion(config.unit, settlement)[1]
