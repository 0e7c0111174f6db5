"""A live session's money over every book it traded: the quoted instrument and the hedge venue.

Why one place: the final report used to take this session's row of the
quoted (venue, symbol) only. With hedging on, the hedge leg's PnL and its
fees (a taker hedge pays the fee; maker quotes may pay none) were left out
of ``total_pnl`` and ``fees``, while the report's position and PnL per hour
included them: a demo session read "total_pnl 1.20, fees 0" beside "PnL per
hour -35.67" for a session that had lost 0.20. The session is every fill the
instance made in it, so its figures are the sum of its books' rows, each
computed by :mod:`mmkit.analytics.ledger` as ``mmkit history`` computes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from mmkit.analytics.ledger import GroupStats

BPS_PLACES = Decimal("0.0001")


def session_money(rows: Sequence[GroupStats], quoted: tuple[str, str]) -> dict[str, Any]:
    """The final report's money keys from this session's rows (one per (venue, symbol) it traded).

    Realized, unrealized, fees and total are the sums over the books, in the
    quote currency (each hedge book's quote currency taken at par, as the
    engine's PnLTracker takes it). When the books' money is in different units
    (an inverse contract's coin beside a linear book) they cannot be added:
    those keys are None, ``pnl_unit`` says "mixed" and ``total_pnl_quote``
    sums each book's total converted at its closing mark. Spread capture and
    the closing mark are the quoted book's (hedges capture no spread).
    ``books`` lists every row as ``mmkit history`` shows it.
    """
    if not rows:
        raise ValueError("session_money needs at least one row")
    quoted_row = next((row for row in rows if (row.venue, row.symbol) == quoted), None)
    capture = quoted_row.capture_bps if quoted_row is not None else None
    closing = quoted_row.closing_mark if quoted_row is not None else None
    scope = "this session's rows of `mmkit history`, every book it traded" if len(rows) > 1 else (
        "this session's row of `mmkit history`")
    money: dict[str, Any] = {"figures_source": f"store: {scope} (mmkit.analytics.ledger)"}
    units = {row.unit for row in rows}
    in_quote = [row.total_in_quote for row in rows]
    total_in_quote = None if any(value is None for value in in_quote) else sum(
        (value for value in in_quote if value is not None), Decimal(0))
    if len(units) == 1:
        fees_by_currency: dict[str, Decimal] = {}
        for row in rows:
            for currency, fee in row.fees.items():
                fees_by_currency[currency] = fees_by_currency.get(currency, Decimal(0)) + fee
        money.update({
            "realized_pnl": str(sum((row.realized for row in rows), Decimal(0))),
            "unrealized_pnl": str(sum((row.unrealized for row in rows), Decimal(0))),
            "fees": str(sum((row.fees_quote for row in rows), Decimal(0))),
            "fees_by_currency": {c: str(v) for c, v in sorted(fees_by_currency.items())},
            "total_pnl": str(sum((row.total for row in rows), Decimal(0))),
        })
        (unit,) = units
        if unit != "quote":  # COIN-M: the money above is in the coin; the total also in quote
            money["pnl_unit"] = unit
            money["total_pnl_quote"] = None if total_in_quote is None else str(total_in_quote)
    else:
        money.update({"realized_pnl": None, "unrealized_pnl": None, "fees": None, "fees_by_currency": None,
                      "total_pnl": None, "pnl_unit": "mixed",
                      "total_pnl_quote": None if total_in_quote is None else str(total_in_quote)})
    money["avg_spread_capture_bps"] = None if capture is None else str(capture.quantize(BPS_PLACES))
    money["closing_mark"] = None if closing is None else str(closing)
    money["books"] = [row.as_dict() for row in rows]
    return money


__all__ = ["session_money"]
