"""Profit and loss from the fill ledger, never from balances.

Balances mix deposits, transfers, fees charged in other assets and other
desks' activity, and they arrive late; a PnL inferred from them is wrong in
ways nobody can audit (Hummingbot #8099). Here every number is derived from
our own fills, so it can be recomputed from the audit trail at any time.

Model
-----
* Each venue has two books: the **quote** book (fills of our market-making
  orders) and the **hedge** book (``fill.is_hedge``). Hedging PnL is kept
  apart so that the quoting edge is not hidden by the cost of hedging.
* A book is a FIFO queue of open lots. A fill first closes lots on the
  other side, oldest first (partially if needed), realizing
  ``(exit - entry) · qty`` for longs and ``(entry - exit) · qty`` for shorts;
  whatever is left opens a new lot, so a long can flip to a short in one fill.
* Fees come from ``fill.fee`` and are booked per venue and per liquidity
  (maker/taker). A fee charged in the base asset is converted at the fill
  price; a negative fee is a rebate.
* Unrealized PnL marks every open lot at the last ``mark(price, ts_ns)``
  (one mark price for the base asset, normally the fair value).
* ``total = realized - fees + unrealized + cash_flows``, where ``cash_flows``
  is realized cash that is not a fill (a perpetual's funding payments),
  booked by :meth:`PnLTracker.book_cash_flow`. Until the first one is booked
  the total is computed exactly as before (no ``+ 0``, which could change how
  a Decimal is written), so a run without cash flows reports the same digits.

Units: linear and inverse instruments
-------------------------------------
The money of the ledger is in the instrument's **PnL unit**
(:class:`mmkit.risk.settlement.Settlement`, from ``PnLConfig.for_instrument``):
the quote currency for a linear instrument (spot, USD-M), the **base coin** for
an inverse contract (Binance COIN-M, sized in contracts of ``contract_size``
quote units). For an inverse book a closed lot realizes
``n · contract_size · (1/entry − 1/exit)`` coin (long; the negative for a
short), open lots are marked the same way, and a fee charged in the quote
currency is converted to coin at the fill price (``fee / price``). Sizes
(position, ``volume_base``) stay in contracts; ``volume_quote`` is
``n · contract_size``. :meth:`PnLTracker.to_quote` converts a figure for
reading, at the mark. The event thresholds and the drawdown are in the PnL
unit too.

Session statistics
------------------
* Spread capture per quote fill is ``side.sign · (mid - price) / mid`` in bps
  (positive when we bought below or sold above the mid), with the mid given
  explicitly to :meth:`PnLTracker.on_fill` or else the last mark; the session
  figure is the quantity-weighted average.
* Sharpe: ``tick(now_ns)`` samples the total PnL every ``sample_period_ns``
  (default 60 s). With the sample changes ``d_i``, Sharpe =
  ``mean(d) / stdev(d) · sqrt(periods per year)`` where a year is 365 days
  (crypto trades every day). It is an estimate for comparing runs, not a
  figure to report to investors; None until three samples exist.
* Max drawdown: the largest fall of the total PnL from its running peak,
  checked after every fill and every mark.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from decimal import Decimal

import attrs
from loguru import logger

from mmkit.instrument import Instrument
from mmkit.model import NS_PER_S, ZERO, Fill, Liquidity, Side
from mmkit.risk.settlement import Settlement

BPS = Decimal(10_000)
SECONDS_PER_YEAR = 365 * 24 * 3600


def unrealized_of(position: Decimal, signed_cost: Decimal, mark: Decimal, inverse_size: Decimal | None) -> Decimal:
    """Unrealized PnL of open lots summed as (position, signed cost), marked at ``mark``: the one definition.

    Linear: ``mark·position − Σ price·qty·sign`` (quote). Inverse: ``size·(Σ qty·sign/price − position/mark)``
    (coin), i.e. ``n·size·(1/entry − 1/mark)`` for a long.
    """
    if inverse_size is None:
        return mark * position - signed_cost
    return inverse_size * (signed_cost - position / mark)


@attrs.define(slots=True)
class Lot:
    """An open piece of position: ``qty`` > 0 bought (``side`` BUY) or sold at ``price``."""

    side: Side
    qty: Decimal
    price: Decimal


@attrs.define(slots=True)
class Book:
    """FIFO lots, realized PnL and fees of one (venue, quote|hedge) book."""

    venue: str
    hedge: bool
    lots: deque[Lot] = attrs.field(factory=deque)
    realized: Decimal = ZERO
    fees: Decimal = ZERO
    trades: int = 0
    volume_base: Decimal = ZERO
    volume_quote: Decimal = ZERO
    #: Running sums over the open lots (exact), so position and unrealized PnL are O(1) per tick:
    #: position = Σ qty·sign, signed cost = Σ price·qty·sign, unrealized = mark·position − signed cost.
    _position: Decimal = ZERO
    _signed_cost: Decimal = ZERO
    #: Quote value of one contract when the book is of an inverse instrument (PnL in the base coin): then
    #: the signed cost is Σ qty·sign/price and lots realize qty·size·(1/entry − 1/exit) (module docstring).
    inverse_size: Decimal | None = None

    @property
    def position(self) -> Decimal:
        return self._position

    @property
    def signed_cost(self) -> Decimal:
        return self._signed_cost

    def unrealized(self, mark: Decimal | None) -> Decimal:
        if mark is None or not self.lots:
            return ZERO
        return unrealized_of(self._position, self._signed_cost, mark, self.inverse_size)

    def apply(self, side: Side, qty: Decimal, price: Decimal) -> Decimal:
        """Match against opposite lots FIFO, open the remainder; return the PnL realized by this fill."""
        size = self.inverse_size
        realized = ZERO
        remaining = qty
        while remaining > 0 and self.lots and self.lots[0].side is not side:
            lot = self.lots[0]
            matched = min(lot.qty, remaining)
            # A long lot (BUY) gains when we sell above its price; a short lot gains when we buy below.
            if size is None:
                realized += (price - lot.price) * matched * lot.side.sign
                self._signed_cost -= lot.price * matched * lot.side.sign
            else:  # inverse: the same sign rule on 1/price, one division (a round trip at one price is 0)
                realized += (price - lot.price) * matched * size / (lot.price * price) * lot.side.sign
                self._signed_cost -= matched / lot.price * lot.side.sign
            lot.qty -= matched
            remaining -= matched
            self._position -= matched * lot.side.sign
            if lot.qty == 0:
                self.lots.popleft()
        if remaining > 0:
            self.lots.append(Lot(side=side, qty=remaining, price=price))
            self._position += remaining * side.sign
            self._signed_cost += (price * remaining if size is None else remaining / price) * side.sign
        elif size is not None and not self.lots:
            self._signed_cost = ZERO  # Σ of rounded 1/price terms: flat means exactly nothing left
        self.realized += realized
        return realized


@attrs.frozen(slots=True)
class PnLFigures:
    """The session PnL over every book (quote and hedge) at one moment: what ``realized()`` & co. return.

    ``total`` is ``realized - fees + unrealized`` (``+ cash_flows`` once one is booked), computed in
    that order, so it is the very value :meth:`PnLTracker.total` returns.
    """

    realized: Decimal
    fees: Decimal
    unrealized: Decimal
    total: Decimal
    #: Realized cash that is not a fill (funding), in the PnL unit (:meth:`PnLTracker.book_cash_flow`).
    cash_flows: Decimal = ZERO


@attrs.frozen
class PnLEvent:
    """A notable PnL change: ``kind`` is ``change``, ``new_high`` or ``new_low``."""

    kind: str
    total: Decimal
    reference: Decimal
    ts_ns: int


@attrs.frozen
class PnLConfig:
    #: Emit a ``change`` event when the total moved this much since the last one.
    change_threshold: Decimal = Decimal(100)
    #: Emit ``new_high``/``new_low`` when the session extreme extends this far past the last one announced.
    extreme_step: Decimal = Decimal(10)
    #: Period of the PnL samples behind the Sharpe estimate.
    sample_period_ns: int = 60 * NS_PER_S
    #: Period of the summary log line written by ``tick``.
    log_period_ns: int = 30 * NS_PER_S
    #: Symbol of the base asset (fees charged in it are converted at the fill price).
    base_asset: str = "BTC"
    #: Name of the quote currency ("" = not named; :meth:`for_instrument` sets it).
    quote_asset: str = ""
    #: Quote value of one contract of an inverse instrument: the ledger is then in the base coin.
    inverse_contract_size: Decimal | None = None

    @property
    def settlement(self) -> Settlement:
        return Settlement(self.base_asset, self.quote_asset, self.inverse_contract_size)

    def for_instrument(self, instrument: Instrument) -> PnLConfig:
        """This config for ``instrument``: its base and quote, and its contract size when it is inverse."""
        settlement = Settlement.of(instrument)
        return attrs.evolve(self, base_asset=settlement.base, quote_asset=settlement.quote,
                            inverse_contract_size=settlement.inverse_size)

    def __attrs_post_init__(self) -> None:
        if self.change_threshold <= 0 or self.extreme_step <= 0:
            raise ValueError("change_threshold and extreme_step must be positive")
        if self.sample_period_ns <= 0 or self.log_period_ns <= 0:
            raise ValueError("sample_period_ns and log_period_ns must be positive")


PnLListener = Callable[[PnLEvent], None]


class PnLTracker:
    """The fill ledger of one instrument across venues, with session statistics."""

    def __init__(self, config: PnLConfig | None = None) -> None:
        self._config = config or PnLConfig()
        self._settlement = self._config.settlement
        self._books: dict[tuple[str, bool], Book] = {}
        self._fees_by: dict[tuple[str, Liquidity], Decimal] = {}
        self._seen: set[tuple[str, str]] = set()
        self._mark: Decimal | None = None
        self._mark_ts = 0
        self._listeners: list[PnLListener] = []
        self._capture_weighted = ZERO
        self._capture_qty = ZERO
        self._peak: Decimal = ZERO
        self._trough: Decimal = ZERO
        self._max_drawdown = ZERO
        self._last_change_ref = ZERO
        self._announced_high = ZERO
        self._announced_low = ZERO
        self._samples: list[Decimal] = []
        self._next_sample_ns: int | None = None
        self._next_log_ns: int | None = None
        self._log = logger.bind(component="pnl")
        #: Fills booked so far; the ledger (lots, realized, fees) changes only when this moves.
        self._fills_booked = 0
        #: :meth:`figures` memo; dropped (None) by the only writers of what it sums: a booked fill
        #: (:meth:`on_fill`), a new mark object (:meth:`mark`) and a cash flow (:meth:`book_cash_flow`).
        self._figures: PnLFigures | None = None
        #: The total the last :meth:`_after_change` worked on (None before the first).
        self._last_total: Decimal | None = None
        #: Cash flows that are not fills, by kind ("funding"), and how many were booked (0: the total is
        #: summed without them, digit for digit as before they existed).
        self._cash: dict[str, Decimal] = {}
        self._cash_total = ZERO
        self._cash_booked = 0

    @property
    def config(self) -> PnLConfig:
        return self._config

    @config.setter
    def config(self, config: PnLConfig) -> None:
        """Replace the settings (the app sets its log period after assembly); the settlement follows."""
        if self._fills_booked and config.settlement != self._settlement:
            raise ValueError("cannot change the instrument's settlement of a PnL ledger that has fills")
        self._config = config
        self._settlement = config.settlement

    # ------------------------------------------------------------- inputs

    def add_listener(self, listener: PnLListener) -> None:
        self._listeners.append(listener)

    def on_fill(self, fill: Fill, mid: Decimal | None = None) -> None:
        """Book one fill (deduplicated by venue and trade id); ``mid`` at fill time for spread capture."""
        fill_key = fill.key
        if fill_key in self._seen:
            self._log.warning("ignoring duplicate fill {} on {}", fill.trade_id, fill.venue)
            return
        self._seen.add(fill_key)
        self._figures = None  # the books change below
        book = self._book(fill.venue, fill.is_hedge)
        book.apply(fill.side, fill.qty, fill.price)
        settlement = self._settlement
        if settlement.inverse:
            fee = settlement.fee_in_unit(fill.fee, fill.fee_currency, fill.price)
            notional = settlement.notional_quote(fill.price, fill.qty)
        else:  # linear: as it always was (a base-asset fee converted at the fill price)
            fee = fill.fee * fill.price if fill.fee_currency.upper() == self._config.base_asset.upper() else fill.fee
            notional = fill.notional
        book.fees += fee
        key = (fill.venue, fill.liquidity)
        self._fees_by[key] = self._fees_by.get(key, ZERO) + fee
        book.trades += 1
        book.volume_base += fill.qty
        book.volume_quote += notional
        self._fills_booked += 1
        reference_mid = mid if mid is not None else self._mark
        if not fill.is_hedge and reference_mid is not None and reference_mid > 0:
            capture_bps = fill.side.sign * (reference_mid - fill.price) / reference_mid * BPS
            self._capture_weighted += capture_bps * fill.qty
            self._capture_qty += fill.qty
        self._after_change(max(fill.ts_event, self._mark_ts))

    def book_cash_flow(self, amount: Decimal, ts_ns: int, kind: str) -> None:
        """Book realized cash that is not a fill: ``amount`` (PnL unit; negative: paid) of ``kind`` at ``ts_ns``.

        Why here and not as a fill: a perpetual's funding payment moves the
        account's money but no position and no lot, and every reader of the
        PnL (the kill switch's loss and drawdown limits, the drawdown and the
        Sharpe samples here, the backtest's equity curve) must see it the
        moment it is paid, through the one total they already read. It goes
        into the total (and the quote book's total), not into ``realized``,
        which stays the trading PnL of the fills.
        """
        if not amount.is_finite():
            raise ValueError(f"a {kind} cash flow must be a finite amount, got {amount}")
        self._figures = None  # the total changes below
        self._cash[kind] = self._cash.get(kind, ZERO) + amount
        self._cash_total += amount
        self._cash_booked += 1
        self._after_change(max(ts_ns, self._mark_ts))

    def cash_flows(self) -> dict[str, Decimal]:
        """The cash flows booked so far (:meth:`book_cash_flow`), summed by kind."""
        return dict(self._cash)

    def mark(self, price: Decimal, ts_ns: int) -> None:
        """Set the mark price for unrealized PnL (normally the fair value)."""
        if price is self._mark:
            # The engine marks every tick, mostly with the very same fair price. Nothing to revalue: the
            # last _after_change already saw this mark and every fill booked since.
            self._mark_ts = ts_ns
            return
        if price <= 0:
            raise ValueError(f"mark price must be positive, got {price}")
        self._figures = None  # unrealized PnL is marked at the new object
        self._mark = price
        self._mark_ts = ts_ns
        self._after_change(ts_ns)

    def tick(self, now_ns: int) -> str | None:
        """Sample for the Sharpe estimate and write the periodic summary; returns the line when logged."""
        if self._next_sample_ns is None:
            self._next_sample_ns = now_ns
        while now_ns >= self._next_sample_ns:
            self._samples.append(self.total())
            self._next_sample_ns += self.config.sample_period_ns
        if self._next_log_ns is None:
            self._next_log_ns = now_ns + self.config.log_period_ns
            return None
        if now_ns >= self._next_log_ns:
            while now_ns >= self._next_log_ns:
                self._next_log_ns += self.config.log_period_ns
            line = self.summary_line()
            self._log.info(line)
            return line
        return None

    # ------------------------------------------------------------- figures

    @property
    def mark_price(self) -> Decimal | None:
        return self._mark

    @property
    def settlement(self) -> Settlement:
        """Linear or inverse, and the PnL unit (:attr:`Settlement.unit`) every money figure here is in."""
        return self._settlement

    @property
    def unit(self) -> str:
        return self._settlement.unit

    def to_quote(self, amount: Decimal, price: Decimal | None = None) -> Decimal | None:
        """``amount`` (PnL unit) in the quote currency at ``price`` (default the mark); None without a price.

        The identity for a linear instrument; ``amount · price`` for an inverse one (coin → quote).
        """
        if not self._settlement.inverse:
            return amount
        at = self._mark if price is None else price
        return None if at is None else self._settlement.to_quote(amount, at)

    def books(self) -> list[Book]:
        return list(self._books.values())

    def position(self, hedge: bool | None = None) -> Decimal:
        return sum((b.position for b in self._select(hedge)), ZERO)

    def figures(self) -> PnLFigures:
        """Realized, fees, unrealized and total over every book, memoized.

        The engine asks for these several times a tick (mark → drawdown check,
        kill switch, sampler) and most ticks change neither the ledger nor the
        mark. The memo is dropped where those change, so that reading it is
        one attribute test: by :meth:`on_fill` (the only thing that changes
        lots, realized PnL and fees), by :meth:`book_cash_flow` (funding) and by :meth:`mark` given another mark
        *object*: identity, not equality, because ``Decimal("1.0") ==
        Decimal("1.00")`` yet the two give differently written results (a new
        mark object that happens to be equal just recomputes). The books are
        changed only by :meth:`on_fill`; ``books()`` hands them out for reading.
        """
        figures = self._figures
        if figures is not None:
            return figures
        mark = self._mark
        # Three sums from ZERO in book order, as sum(..., ZERO) would give them (the same additions in the
        # same order, so the same digits), in one pass without three generators: a mark asks again.
        realized = fees = unrealized = ZERO
        for book in self._books.values():
            realized = realized + book.realized
            fees = fees + book.fees
            unrealized = unrealized + book.unrealized(mark)
        total = realized - fees + unrealized
        if self._cash_booked:  # only then: a run without cash flows keeps its total's digits
            total = total + self._cash_total
            figures = PnLFigures(realized, fees, unrealized, total, self._cash_total)
        else:
            figures = PnLFigures(realized, fees, unrealized, total)
        self._figures = figures
        return figures

    def realized(self, hedge: bool | None = None) -> Decimal:
        """Realized trading PnL before fees; ``hedge`` None = both books, True/False = one kind."""
        if hedge is None:
            return self.figures().realized
        return sum((b.realized for b in self._select(hedge)), ZERO)

    def fees(self, hedge: bool | None = None) -> Decimal:
        if hedge is None:
            return self.figures().fees
        return sum((b.fees for b in self._select(hedge)), ZERO)

    def unrealized(self, hedge: bool | None = None) -> Decimal:
        if hedge is None:
            return self.figures().unrealized
        return sum((b.unrealized(self._mark) for b in self._select(hedge)), ZERO)

    def total(self, hedge: bool | None = None) -> Decimal:
        """realized - fees + unrealized (+ the cash flows, which belong to the quote book: funding is paid on
        the quoted contract's position)."""
        if hedge is None:
            return self.figures().total
        total = self.realized(hedge) - self.fees(hedge) + self.unrealized(hedge)
        return total + self._cash_total if self._cash_booked and not hedge else total

    def fees_by(self, venue: str, liquidity: Liquidity) -> Decimal:
        return self._fees_by.get((venue, liquidity), ZERO)

    def by_venue(self) -> dict[str, dict[str, Decimal]]:
        """Per-venue breakdown: quote and hedge books of each venue, net of fees."""
        out: dict[str, dict[str, Decimal]] = {}
        for (venue, hedge), book in sorted(self._books.items()):
            prefix = "hedge" if hedge else "quote"
            row = out.setdefault(venue, {})
            row[f"{prefix}_position"] = book.position
            row[f"{prefix}_realized"] = book.realized
            row[f"{prefix}_fees"] = book.fees
            row[f"{prefix}_unrealized"] = book.unrealized(self._mark)
            row[f"{prefix}_total"] = book.realized - book.fees + book.unrealized(self._mark)
        return out

    def trade_count(self, hedge: bool | None = None) -> int:
        return sum(b.trades for b in self._select(hedge))

    def volume_base(self, hedge: bool | None = None) -> Decimal:
        return sum((b.volume_base for b in self._select(hedge)), ZERO)

    def volume_quote(self, hedge: bool | None = None) -> Decimal:
        return sum((b.volume_quote for b in self._select(hedge)), ZERO)

    def avg_spread_capture_bps(self) -> Decimal | None:
        """Quantity-weighted spread capture of quote fills, None when no fill had a mid."""
        if self._capture_qty == 0:
            return None
        return self._capture_weighted / self._capture_qty

    @property
    def max_drawdown(self) -> Decimal:
        return self._max_drawdown

    @property
    def peak(self) -> Decimal:
        return self._peak

    def sharpe(self) -> float | None:
        """Annualized Sharpe of the sampled PnL changes (see the module docstring)."""
        if len(self._samples) < 3:
            return None
        diffs = [float(b - a) for a, b in zip(self._samples, self._samples[1:], strict=False)]
        mean = sum(diffs) / len(diffs)
        var = sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1)
        if var <= 0:
            return None
        periods_per_year = SECONDS_PER_YEAR * NS_PER_S / self.config.sample_period_ns
        return mean / math.sqrt(var) * math.sqrt(periods_per_year)

    def summary(self) -> dict[str, str]:
        """Figures as text: money with 2 places (8 for a base-coin ledger of an inverse contract)."""
        capture = self.avg_spread_capture_bps()
        sharpe = self.sharpe()
        m = ".8f" if self._settlement.inverse else ".2f"
        return {
            "total": f"{self.total():{m}}",
            "quote_total": f"{self.total(hedge=False):{m}}",
            "hedge_total": f"{self.total(hedge=True):{m}}",
            "realized": f"{self.realized():{m}}",
            "unrealized": f"{self.unrealized():{m}}",
            "fees": f"{self.fees():{m}}",
            "position": str(self.position()),
            "trades": str(self.trade_count()),
            "volume_base": str(self.volume_base()),
            "volume_quote": f"{self.volume_quote():.2f}",
            "avg_capture_bps": "" if capture is None else f"{capture:.2f}",
            "sharpe": "" if sharpe is None else f"{sharpe:.2f}",
            "max_drawdown": f"{self._max_drawdown:{m}}",
            **({"cash_flows": f"{self._cash_total:{m}}"} if self._cash_booked else {}),
        }

    def summary_line(self) -> str:
        s = self.summary()
        return (
            f"PnL total={s['total']} (quote={s['quote_total']} hedge={s['hedge_total']}) "
            f"realized={s['realized']} unrealized={s['unrealized']} fees={s['fees']} pos={s['position']} "
            f"trades={s['trades']} vol={s['volume_base']}/{s['volume_quote']} "
            f"capture={s['avg_capture_bps'] or '-'}bps sharpe={s['sharpe'] or '-'} maxdd={s['max_drawdown']}"
            + (f" cash_flows={s['cash_flows']}" if "cash_flows" in s else "")
        )

    # ------------------------------------------------------------- internals

    def _book(self, venue: str, hedge: bool) -> Book:
        key = (venue, hedge)
        book = self._books.get(key)
        if book is None:
            book = self._books[key] = Book(venue=venue, hedge=hedge, inverse_size=self._settlement.inverse_size)
        return book

    def _select(self, hedge: bool | None) -> list[Book]:
        return [b for b in self._books.values() if hedge is None or b.hedge is hedge]

    def _after_change(self, ts_ns: int) -> None:
        total = self.figures().total
        if total == self._last_total:
            # Nothing below can change: peak, trough and drawdown already include this value, and each
            # announcement either fired for it last time (its reference is now this total) or did not
            # (and the same comparison still fails). Most marks leave the total where it was.
            return
        self._last_total = total
        # A tie keeps the value held (max and min return their first argument on a tie).
        self._peak = max(self._peak, total)
        self._trough = min(self._trough, total)
        drawdown = self._peak - total
        self._max_drawdown = max(self._max_drawdown, drawdown)
        config = self._config
        events: list[PnLEvent] = []
        if abs(total - self._last_change_ref) >= config.change_threshold:
            events.append(PnLEvent("change", total, self._last_change_ref, ts_ns))
            self._last_change_ref = total
        if total >= self._announced_high + config.extreme_step:
            events.append(PnLEvent("new_high", total, self._announced_high, ts_ns))
            self._announced_high = total
        if total <= self._announced_low - config.extreme_step:
            events.append(PnLEvent("new_low", total, self._announced_low, ts_ns))
            self._announced_low = total
        for event in events:
            self._log.info("pnl {}: {:.2f} (from {:.2f})", event.kind, event.total, event.reference)
            for listener in self._listeners:
                try:
                    listener(event)
                except Exception:  # a broken listener must not stop the ledger
                    self._log.exception("pnl listener failed")
