"""A fill ledger's money figures, grouped: the one definition behind the live report and ``mmkit history``.

Why one function: the live final report and ``mmkit history`` used to
compute unrealized PnL and spread capture each their own way (the engine's
fair value at each fill vs. the stored PnL snapshots), so the same session
showed two different figures. Both now call :func:`summarize` over the same
inputs: the instance's fills in venue-time order and the marks (fair value)
the run recorded (the store's portfolio PnL snapshots).

Definitions, per group (a session or a UTC day) and (venue, symbol):

* **realized**: every fill replayed in venue time through FIFO books (one per
  venue, quote and hedge apart, carried across groups), each fill's realized
  PnL credited to its group; before fees.
* **unrealized**: the open position of the books after the group's last fill,
  marked at the group's **closing mark**: the last recorded mark before the
  next group's first fill (the last mark of all for the latest group, which
  for a live session is the snapshot written at its stop). With no mark, the
  last fill's price.
* **fees**: per currency as charged, and ``fees_quote``: in the quote
  currency, a fee charged in the base asset converted at its fill price
  (as :class:`mmkit.risk.pnl.PnLTracker` books it).
* **total** = realized − fees_quote + unrealized.
* **inverse contracts** (COIN-M; ``settlements`` names them per (venue,
  symbol)): the books are the engine's inverse books
  (:class:`mmkit.risk.pnl.Book` with the contract size), so realized,
  unrealized, ``fees_quote`` and total are in the **base coin** (``unit``;
  a fee charged in the quote currency is converted at its fill price),
  ``notional`` is ``contracts · contract_size`` and ``total_quote`` converts
  the coin total at the closing mark. Without ``settlements`` every
  instrument is read as linear, as before.
* **spread capture**: quantity-weighted ``side · (mark − price) / mark`` in
  bps over quote fills, with ``mark`` the last recorded mark at or before the
  fill (fills before the first mark are left out). Marks are recorded every
  ``pnl_interval`` (1 s by default), so this is the edge against a fair value
  at most that old.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal

import attrs

from mmkit.model import ZERO, Fill, Liquidity
from mmkit.risk.pnl import Book, unrealized_of
from mmkit.risk.settlement import Settlement

BPS = Decimal(10_000)


@attrs.define
class GroupStats:
    """Activity of one group on one (venue, symbol); Decimals throughout."""

    group: str
    venue: str
    symbol: str
    trades: int = 0
    buy_qty: Decimal = ZERO
    sell_qty: Decimal = ZERO
    notional: Decimal = ZERO
    realized: Decimal = ZERO
    unrealized: Decimal = ZERO
    fees: dict[str, Decimal] = attrs.Factory(dict)
    fees_quote: Decimal = ZERO
    maker: int = 0
    capture_weighted: Decimal = ZERO
    capture_qty: Decimal = ZERO
    last_fill_ts: int = 0
    #: The books' (position, signed cost, inverse contract size) after the group's last fill, per (venue, hedge),
    #: what :func:`mmkit.risk.pnl.unrealized_of` marks at the closing mark.
    open_books: dict[tuple[str, bool], tuple[Decimal, Decimal, Decimal | None]] = attrs.Factory(dict)
    closing_mark: Decimal | None = None
    #: The instrument's settlement when it is an inverse contract (money in its base coin), else None.
    inverse: Settlement | None = None

    @property
    def unit(self) -> str:
        """The currency of realized, unrealized, fees_quote and total: the base coin of an inverse contract."""
        return self.inverse.unit if self.inverse is not None else "quote"

    @property
    def total_in_quote(self) -> Decimal | None:
        """``total`` in the quote currency: itself when linear, at the closing mark for an inverse contract."""
        if self.inverse is None:
            return self.total
        return None if self.closing_mark is None else self.inverse.to_quote(self.total, self.closing_mark)

    @property
    def volume(self) -> Decimal:
        return self.buy_qty + self.sell_qty

    @property
    def capture_bps(self) -> Decimal | None:
        return self.capture_weighted / self.capture_qty if self.capture_qty else None

    @property
    def total(self) -> Decimal:
        return self.realized - self.fees_quote + self.unrealized

    def as_dict(self) -> dict[str, object]:
        """JSON-ready figures with units in the names (money in the quote currency unless a currency is named)."""
        capture = self.capture_bps
        if self.inverse is not None:
            return self._inverse_dict()
        return {
            "group": self.group,
            "venue": self.venue,
            "symbol": self.symbol,
            "trades": self.trades,
            "volume_base": str(self.volume),
            "notional_quote": str(self.notional),
            "realized_quote": str(self.realized),
            "unrealized_quote": str(self.unrealized),
            "fees_quote": str(self.fees_quote),
            "fees_by_currency": {c: str(v) for c, v in sorted(self.fees.items())},
            "total_quote": str(self.total),
            "closing_mark": None if self.closing_mark is None else str(self.closing_mark),
            "maker_share_pct": None if not self.trades else round(100 * self.maker / self.trades, 3),
            "spread_capture_bps": None if capture is None else str(capture.quantize(Decimal("0.0001"))),
        }


    def _inverse_dict(self) -> dict[str, object]:
        """as_dict of an inverse contract: money in the coin (``pnl_unit``), the total also in quote at the mark."""
        capture = self.capture_bps
        in_quote = self.total_in_quote
        return {
            "group": self.group,
            "venue": self.venue,
            "symbol": self.symbol,
            "pnl_unit": self.unit,
            "trades": self.trades,
            "volume_contracts": str(self.volume),
            "notional_quote": str(self.notional),
            "realized": str(self.realized),
            "unrealized": str(self.unrealized),
            "fees": str(self.fees_quote),
            "fees_by_currency": {c: str(v) for c, v in sorted(self.fees.items())},
            "total": str(self.total),
            "total_quote": None if in_quote is None else str(in_quote),
            "closing_mark": None if self.closing_mark is None else str(self.closing_mark),
            "maker_share_pct": None if not self.trades else round(100 * self.maker / self.trades, 3),
            "spread_capture_bps": None if capture is None else str(capture.quantize(Decimal("0.0001"))),
        }


def fee_in_quote(fill: Fill, base_asset: str) -> Decimal:
    """The fill's fee in the quote currency (a base-asset fee converted at the fill price)."""
    return fill.fee * fill.price if fill.fee_currency.upper() == base_asset.upper() else fill.fee


def summarize(
    fills: Sequence[Fill],
    group_of: Callable[[int, Fill], str],
    marks: Sequence[tuple[int, Decimal]] = (),
    base_asset: str = "BTC",
    settlements: Mapping[tuple[str, str], Settlement] | None = None,
) -> list[GroupStats]:
    """Group stats in first-seen order of the groups (``fills`` in venue-time order; ``group_of(index, fill)``).

    ``settlements``: per (venue, symbol), the instruments' settlement; an inverse one is booked in its coin.
    """
    inverse = {key: s for key, s in (settlements or {}).items() if s.inverse}
    books: dict[tuple[str, bool], Book] = {}
    groups: dict[tuple[str, str, str], GroupStats] = {}
    first_fill_of_label: dict[str, int] = {}
    mark_ts = [ts for ts, _ in marks]
    for index, f in enumerate(fills):
        label = group_of(index, f)
        first_fill_of_label.setdefault(label, f.ts_event)
        settlement = inverse.get((f.venue, f.symbol))
        stats = groups.setdefault((label, f.venue, f.symbol),
                                  GroupStats(label, f.venue, f.symbol, inverse=settlement))
        book_key = (f.venue, f.is_hedge)
        book = books.get(book_key)
        if book is None:
            size = settlement.inverse_size if settlement is not None else None
            book = books[book_key] = Book(f.venue, f.is_hedge, inverse_size=size)
        stats.realized += book.apply(f.side, f.qty, f.price)
        stats.trades += 1
        if f.side.sign > 0:
            stats.buy_qty += f.qty
        else:
            stats.sell_qty += f.qty
        stats.fees[f.fee_currency] = stats.fees.get(f.fee_currency, ZERO) + f.fee
        if settlement is None:
            stats.notional += f.notional
            stats.fees_quote += fee_in_quote(f, base_asset)
        else:
            stats.notional += settlement.notional_quote(f.price, f.qty)
            stats.fees_quote += settlement.fee_in_unit(f.fee, f.fee_currency, f.price)
        stats.maker += f.liquidity is Liquidity.MAKER
        stats.last_fill_ts = f.ts_event
        stats.open_books = {key: (b.position, b.signed_cost, b.inverse_size) for key, b in books.items()}
        i = bisect.bisect_right(mark_ts, f.ts_event) - 1
        mark = marks[i][1] if i >= 0 and marks[i][1] > 0 else None
        if mark is not None and not f.is_hedge:
            stats.capture_weighted += f.side.sign * (mark - f.price) / mark * BPS * f.qty
            stats.capture_qty += f.qty
    labels = list(first_fill_of_label)
    for stats in groups.values():
        position = labels.index(stats.group)
        following = labels[position + 1] if position + 1 < len(labels) else None
        end = first_fill_of_label[following] if following is not None else None
        j = (bisect.bisect_left(mark_ts, end) if end is not None else len(mark_ts)) - 1
        mark = marks[j][1] if j >= 0 and marks[j][1] > 0 else None
        stats.closing_mark = mark
        stats.unrealized = ZERO
        for (venue, _hedge), (pos, cost, size) in stats.open_books.items():
            if venue != stats.venue or pos == 0:
                continue
            at = mark if mark is not None else _last_price(fills, stats)
            if size is not None and at <= 0:
                continue  # an inverse position cannot be marked without a price
            stats.unrealized += unrealized_of(pos, cost, at, size)
    return list(groups.values())


def _last_price(fills: Sequence[Fill], stats: GroupStats) -> Decimal:
    for f in reversed(fills):
        if f.venue == stats.venue and f.ts_event <= stats.last_fill_ts:
            return f.price
    return ZERO


def fees_by_venue(fills: Sequence[Fill]) -> dict[tuple[str, str], Decimal]:
    """Fees per (venue, currency), as charged."""
    totals: dict[tuple[str, str], Decimal] = {}
    for f in fills:
        key = (f.venue, f.fee_currency)
        totals[key] = totals.get(key, ZERO) + f.fee
    return totals
