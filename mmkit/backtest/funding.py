"""Funding payments of a backtest on a perpetual futures contract: booked from published rates, or said to be missing.

Why: a perpetual's holders pay or receive funding at every settlement
(Binance: every 8 hours at 00:00, 08:00 and 16:00 UTC for most contracts;
longs pay shorts when the rate is positive). A market maker that carries
inventory across a settlement pays or earns position × mark × rate, which
over a day of a skewed book can be as large as the spread it captured. A
backtest of a USD-M or COIN-M perpetual that leaves it out reports a PnL
that no account would have had, and nothing said so. Now:

* with ``mmkit backtest --funding FILE`` (the exchange's own published
  history: Binance's monthly ``fundingRate`` CSV from data.binance.vision,
  ``calc_time,funding_interval_hours,last_funding_rate``, or the JSON list
  of ``GET /fapi/v1/fundingRate`` / ``/dapi/v1/fundingRate``), each
  settlement inside the run is paid into the PnL DURING the run, on the tick
  that reaches it (:mod:`mmkit.backtest.funding_settler`): on the position
  the venue held at that instant (our fills with venue time at or before
  it), priced at the file's mark price when it has one, else at the
  recorded mid of the last tick at or before it. The kill switch's loss and
  drawdown limits and the equity curve see it from that tick on: a loss
  limit crossed by funding halts quoting, and the reason names funding.
  ``report["pnl"]["total"]`` includes it and ``report["pnl"]["funding"]``
  says how much; ``report["funding"]`` lists every settlement as booked.
  The same figures are computed again after the run from the engine's fills
  and the sampled mids (:func:`funding_section`, as this module did before)
  and compared (:func:`cross_check`): a disagreement beyond the report's
  rounding is an engine failure (exit 4, both figures in the report and on
  the terminal), never one of them printed silently;
* without it, ``report["funding"]`` says the payments are NOT in the PnL,
  how many standard settlements the run crossed holding a position, and
  the largest such position; the terminal prints it with ``!!``. Nothing is
  booked and the run is the one it always was.

A linear contract (USD-M) pays ``-position × price × rate`` in the quote
currency; an inverse one (COIN-M, ``contract_size`` quote units a
contract) pays ``-contracts × contract_size / price × rate`` in the coin.
"""

from __future__ import annotations

import csv
import io
import json
import math
from bisect import bisect_right
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from pathlib import Path
from typing import Any

import attrs

from mmkit.backtest.report import utc_iso
from mmkit.model import ZERO, Fill, Side
from mmkit.risk.settlement import Settlement

NS_PER_MS = 1_000_000
NS_PER_HOUR = 3_600 * 1_000_000_000
#: Binance's standard settlement interval (00:00, 08:00, 16:00 UTC); some contracts settle every 4 or 1 hours.
STANDARD_INTERVAL_NS = 8 * NS_PER_HOUR
#: A funding rate beyond this (100 % a settlement) is a corrupt file, not a market.
MAX_ABS_RATE = Decimal(1)
#: Where the report rounds funding figures (the sum is taken over the exact payments first).
_REPORT_QUANTUM = Decimal("0.00000001")


class FundingFormatError(ValueError):
    """A funding file that cannot be trusted: the message names the file, the line and the reason."""


@attrs.frozen
class FundingRate:
    """One published settlement: when, the rate, and the mark price it was settled at (when the source says)."""

    ts_ns: int
    rate: Decimal
    mark: Decimal | None = None
    #: Hours to the next settlement, when the source says (Binance's CSV does).
    interval_hours: int | None = None


def is_perpetual(venue: str, symbol: str) -> bool:
    """True for the perpetual contracts of the recorded futures venues (their delivery contracts carry a date).

    USD-M: ``BTCUSDT`` is perpetual, ``BTCUSDT_240927`` a quarterly; COIN-M: ``BTCUSD_PERP`` against
    ``BTCUSD_240927``.
    """
    if venue == "binance_usdm":
        return "_" not in symbol
    if venue == "binance_coinm":
        return symbol.endswith("_PERP")
    return False


def load_funding(path: Path, symbol: str | None) -> list[FundingRate]:
    """The settlements in ``path`` (Binance's fundingRate CSV or the REST JSON list), oldest first.

    Refused with :class:`FundingFormatError` (file, line, reason): an unreadable file, a header or key
    missing, a rate that is not a finite number or is beyond ±100 %, a time that does not increase, a JSON
    row of another symbol (``symbol`` None: not checked yet, as when a sweep file is read), no settlement.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FundingFormatError(f"{path}: cannot read the funding file ({exc})") from exc
    stripped = text.lstrip()
    if not stripped:
        raise FundingFormatError(f"{path}: no funding settlement in the file (it is empty)")
    rates = _from_json(path, stripped, symbol) if stripped[0] in "[{" else _from_csv(path, text)
    if not rates:
        raise FundingFormatError(f"{path}: no funding settlement in the file")
    for before, after in pairwise(rates):
        if after.ts_ns <= before.ts_ns:
            raise FundingFormatError(f"{path}: settlement times must increase: {utc_iso(after.ts_ns)} follows "
                                     f"{utc_iso(before.ts_ns)}")
    return rates


def _rate(path: Path, where: str, text: object) -> Decimal:
    try:
        rate = Decimal(str(text).strip())
    except InvalidOperation:
        raise FundingFormatError(f"{path}:{where}: funding rate {text!r} is not a number") from None
    if not rate.is_finite() or abs(rate) > MAX_ABS_RATE:
        raise FundingFormatError(f"{path}:{where}: funding rate {text!r} is not a plausible rate (|rate| <= 1)")
    return rate


def _ms(path: Path, where: str, text: object) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise FundingFormatError(f"{path}:{where}: time {text!r} is not whole milliseconds since the epoch") from None
    if value <= 0:
        raise FundingFormatError(f"{path}:{where}: time {text!r} is not a time")
    return value * NS_PER_MS


def _from_csv(path: Path, text: str) -> list[FundingRate]:
    reader = csv.DictReader(io.StringIO(text))
    needed = {"calc_time", "last_funding_rate"}
    if reader.fieldnames is None or not needed <= set(reader.fieldnames):
        raise FundingFormatError(f"{path}:1: a funding CSV needs the columns calc_time and last_funding_rate "
                                 f"(Binance's fundingRate files); the header is {reader.fieldnames}")
    rates = []
    for row in reader:
        where = str(reader.line_num)
        interval = row.get("funding_interval_hours")
        hours: int | None = None
        if interval not in (None, ""):
            try:
                hours = int(str(interval))
            except ValueError:
                raise FundingFormatError(f"{path}:{where}: funding_interval_hours {interval!r} is not whole hours"
                                         ) from None
        rates.append(FundingRate(_ms(path, where, row["calc_time"]), _rate(path, where, row["last_funding_rate"]),
                                 None, hours))
    return rates


def _from_json(path: Path, text: str, symbol: str | None) -> list[FundingRate]:
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FundingFormatError(f"{path}:{exc.lineno}: not JSON ({exc.msg})") from None
    if not isinstance(rows, list):
        raise FundingFormatError(f"{path}: a funding JSON file is a list of settlements")
    rates = []
    for index, row in enumerate(rows):
        where = f"[{index}]"
        if not isinstance(row, dict) or "fundingTime" not in row or "fundingRate" not in row:
            raise FundingFormatError(f"{path}{where}: each settlement needs fundingTime and fundingRate")
        if symbol is not None and row.get("symbol") not in (None, symbol):
            raise FundingFormatError(f"{path}{where}: a settlement of {row['symbol']}, not of {symbol}")
        mark: Decimal | None = None
        if row.get("markPrice") not in (None, ""):
            try:
                mark = Decimal(str(row["markPrice"]))
            except InvalidOperation:
                mark = None
            if mark is None or not mark.is_finite() or mark <= 0:
                raise FundingFormatError(f"{path}{where}: markPrice {row['markPrice']!r} is not a price")
        rates.append(FundingRate(_ms(path, where, row["fundingTime"]), _rate(path, where, row["fundingRate"]), mark))
    return rates


def check_covers(rates: Sequence[FundingRate], start_ns: int, end_ns: int, source: str) -> None:
    """Refuse a file that does not cover the run: one settlement at or before its start and one at or after its end.

    And none missing in between: consecutive settlements no further apart than the interval the file states
    (else the standard 8 hours). Why: a settlement absent from the file would be booked as nothing paid.
    """
    first, last = rates[0].ts_ns, rates[-1].ts_ns
    if first > start_ns or last < end_ns:
        raise FundingFormatError(
            f"{source}: covers {utc_iso(first)} .. {utc_iso(last)}, the run spans {utc_iso(start_ns)} .. "
            f"{utc_iso(end_ns)}: give a file with a settlement at or before the start and one at or after the end")
    for before, after in pairwise(rates):
        if after.ts_ns <= start_ns or before.ts_ns >= end_ns:
            continue
        interval = (before.interval_hours or 8) * NS_PER_HOUR
        if after.ts_ns - before.ts_ns > interval:
            raise FundingFormatError(f"{source}: no settlement between {utc_iso(before.ts_ns)} and "
                                     f"{utc_iso(after.ts_ns)} ({interval // NS_PER_HOUR} h apart at most)")


def standard_settlements(start_ns: int, end_ns: int) -> list[int]:
    """Binance's standard settlement times (every 8 h from 00:00 UTC) in ``(start_ns, end_ns]``."""
    first = (start_ns // STANDARD_INTERVAL_NS + 1) * STANDARD_INTERVAL_NS
    return list(range(first, end_ns + 1, STANDARD_INTERVAL_NS))


def positions_at(fills: Sequence[Fill], times: Sequence[int]) -> list[Decimal]:
    """Our position at the venue at each of ``times`` (sorted): the signed sum of our fills dated at or before it."""
    ordered = sorted((f for f in fills if not f.is_hedge), key=lambda f: f.ts_event)
    positions = []
    position, index = ZERO, 0
    for ts in times:
        while index < len(ordered) and ordered[index].ts_event <= ts:
            fill = ordered[index]
            position += fill.qty if fill.side is Side.BUY else -fill.qty
            index += 1
        positions.append(position)
    return positions


def recorded_mid_at(ticks: Sequence[int], mids: Sequence[float], ts_ns: int) -> Decimal | None:
    """The sampled mid of the last tick at or before ``ts_ns`` (None when there is none, or no mid then)."""
    index = bisect_right(ticks, ts_ns) - 1
    if index < 0 or math.isnan(mids[index]):
        return None
    return Decimal(repr(mids[index]))


def payment(position: Decimal, price: Decimal, rate: Decimal, settlement: Settlement) -> Decimal:
    """What the holder of ``position`` receives at one settlement (negative: pays), in the PnL's unit."""
    if settlement.inverse_size is not None:
        return -position * settlement.inverse_size / price * rate
    return -position * price * rate


def funding_section(
    rates: Sequence[FundingRate] | None,
    source: str | None,
    fills: Sequence[Fill],
    ticks: Sequence[int],
    mids: Sequence[float],
    settlement: Settlement,
    start_ns: int,
    end_ns: int,
    pnl_total: Decimal,
) -> dict[str, Any]:
    """``report["funding"]`` of a perpetual's run: the settlements booked, or what is missing without a file."""
    unit = settlement.unit
    if rates is None:
        times = standard_settlements(start_ns, end_ns)
        held = [(ts, p) for ts, p in zip(times, positions_at(fills, times), strict=True) if p != 0]
        largest = max((abs(p) for _, p in held), default=ZERO)
        note = (f"funding payments are NOT in this PnL: the run crossed {len(times)} standard settlement(s) "
                f"(every 8 h from 00:00 UTC), {len(held)} of them holding a position (up to {largest}); "
                "pass --funding FILE (Binance's fundingRate CSV or /fapi/v1/fundingRate JSON) to book them"
                if held else
                f"funding is not modelled (no --funding file); the run crossed {len(times)} standard settlement(s), "
                "none of them holding a position, so nothing is missing from the PnL")
        return {"modelled": False, "settlements_crossed": len(times), "with_position": len(held),
                "max_abs_position_at_settlement": str(largest), "unit": unit, "note": note,
                "missing_from_pnl": bool(held)}
    inside = [r for r in rates if start_ns < r.ts_ns <= end_ns]
    positions = positions_at(fills, [r.ts_ns for r in inside])
    rows, total, unpriced = [], ZERO, 0
    for rate, position in zip(inside, positions, strict=True):
        price = rate.mark if rate.mark is not None else recorded_mid_at(ticks, mids, rate.ts_ns)
        row: dict[str, Any] = {"ts_ns": rate.ts_ns, "utc": utc_iso(rate.ts_ns), "rate": str(rate.rate),
                               "position": str(position), "price": None if price is None else str(price),
                               "price_source": "mark" if rate.mark is not None else "recorded mid"}
        if position == 0:
            row["payment"] = "0"
        elif price is None:
            unpriced += 1
            row["payment"] = None
        else:
            paid = payment(position, price, rate.rate, settlement)
            total += paid
            row["payment"] = str(paid.quantize(_REPORT_QUANTUM))
        rows.append(row)
    section: dict[str, Any] = {
        "modelled": True, "source": source, "settlements": len(rows),
        "with_position": sum(1 for p in positions if p != 0), "unit": unit,
        "total": str(total.quantize(_REPORT_QUANTUM)),
        "pnl_total_with_funding": str((pnl_total + total).quantize(_REPORT_QUANTUM)),
        "unpriced": unpriced, "rows": rows,
        "note": ("computed after the run from the engine's fills and the sampled mids: the independent "
                 "cross-check of the settlements booked during the run (mmkit.backtest.funding_settler)"),
    }
    return section


def in_run_section(bookings: Sequence[Any], source: str, settlement: Settlement, pnl_total: Decimal,
                   post_run: dict[str, Any]) -> dict[str, Any]:
    """``report["funding"]`` of a run that booked its settlements as it went (``FundingSettler.bookings``).

    ``post_run``: :func:`funding_section` of the same run, computed after it from the engine's fills; its
    total is kept as ``cross_check`` (see :func:`cross_check`). ``pnl_total`` already includes the funding.
    """
    rows, total, unpriced = [], ZERO, 0
    for b in bookings:
        row: dict[str, Any] = {"ts_ns": b.rate.ts_ns, "utc": utc_iso(b.rate.ts_ns), "rate": str(b.rate.rate),
                               "position": str(b.position), "price": None if b.price is None else str(b.price),
                               "price_source": b.price_source, "booked_ns": b.booked_ns,
                               "late_fills": b.late_fills}
        if b.payment is None:
            unpriced += 1
            row["payment"] = None
        else:
            total += b.payment
            row["payment"] = "0" if b.position == 0 else str(b.payment.quantize(_REPORT_QUANTUM))
        rows.append(row)
    problem = cross_check(rows, total, post_run)
    return {
        "modelled": True, "source": source, "settlements": len(rows),
        "with_position": sum(1 for b in bookings if b.position != 0), "unit": settlement.unit,
        "total": str(total.quantize(_REPORT_QUANTUM)),
        # Deprecated: report["pnl"]["total"] includes funding now; kept (the same figure) for sweep objectives.
        "pnl_total_with_funding": str(pnl_total.quantize(_REPORT_QUANTUM)),
        "unpriced": unpriced, "rows": rows,
        "booked": "during the run",
        "cross_check": {"post_run_total": post_run["total"], "agrees": problem is None,
                        **({"problem": problem} if problem else {})},
        "note": ("paid into the PnL during the run at each settlement, on the venue's position then: in "
                 "pnl.total, seen by the kill switch and the equity curve from the tick that booked it"),
    }


def cross_check(rows: Sequence[dict[str, Any]], total: Decimal, post_run: dict[str, Any]) -> str | None:
    """Why the in-run bookings and the post-run computation disagree, or None when they agree.

    Agree: the same settlements, the same position at each, and payments and total equal within the
    report's rounding (one quantum a settlement: the post-run price is the sampled mid, a float written
    back as a Decimal, which may differ from the exact fair price in its last digits).
    """
    theirs = post_run["rows"]
    if [r["ts_ns"] for r in rows] != [r["ts_ns"] for r in theirs]:
        return (f"in-run booked settlements {[r['utc'] for r in rows]}, the post-run computation "
                f"{[r['utc'] for r in theirs]}")
    tolerance = _REPORT_QUANTUM * max(1, len(rows))
    for mine, other in zip(rows, theirs, strict=True):
        if Decimal(mine["position"]) != Decimal(other["position"]):
            return (f"settlement {mine['utc']}: in-run position {mine['position']}, post-run (from the engine's "
                    f"fills) {other['position']}")
        if (mine["payment"] is None) != (other["payment"] is None) or (
                mine["payment"] is not None
                and abs(Decimal(mine["payment"]) - Decimal(other["payment"])) > tolerance):
            return (f"settlement {mine['utc']}: in-run payment {mine['payment']} at {mine['price']}, post-run "
                    f"{other['payment']} at {other['price']}")
    if abs(total - Decimal(post_run["total"])) > tolerance:
        return f"in-run funding total {total.quantize(_REPORT_QUANTUM)}, post-run {post_run['total']}"
    return None


def funding_lines(section: dict[str, Any]) -> list[str]:
    """The terminal's lines for ``report["funding"]`` (``!!`` when payments are missing from the PnL)."""
    if not section["modelled"]:
        return [("!! " if section["missing_from_pnl"] else "  ") + section["note"]]
    lines = [f"  {'funding'.ljust(31)}  {section['total']} {section['unit']} over {section['settlements']} "
             f"settlement(s) ({section['with_position']} holding a position), paid into the PnL during the run "
             "(in PnL total above; the kill switch and the equity curve saw it)"]
    check = section.get("cross_check") or {}
    if check and not check["agrees"]:
        lines.append(f"!! funding cross-check FAILED: in-run {section['total']}, post-run {check['post_run_total']} "
                     f"{section['unit']}: {check['problem']}")
    if section.get("kill_switch"):
        lines.append(f"!! the kill switch halted quoting after funding was paid: {section['kill_switch']}")
    if section["unpriced"]:
        lines.append(f"!! {section['unpriced']} settlement(s) held a position with no price to settle it at "
                     "(no mark in the file, no recorded mid before it): not booked")
    return lines


@attrs.frozen
class FundingInput:
    """Funding settlements handed to a backtest, and the file they came from (named in the report)."""

    rates: tuple[FundingRate, ...]
    source: str

    @classmethod
    def load(cls, path: Path, symbol: str) -> FundingInput:
        return cls(tuple(load_funding(path, symbol)), str(path))

    def check(self, venue: str, symbol: str, start_ns: int, end_ns: int) -> None:
        """Refuse funding for a contract that has none, or a file that does not cover the run (FundingFormatError)."""
        if not is_perpetual(venue, symbol):
            raise FundingFormatError(f"{self.source}: funding given, but {venue}:{symbol} is not a perpetual contract "
                                     "(funding applies to Binance USD-M and COIN-M perpetuals)")
        check_covers(self.rates, start_ns, end_ns, self.source)
