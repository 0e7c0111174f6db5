"""The live report's money over every book of the session (mmkit.app.session_money), from the ledger's own rows."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from mmkit.analytics.ledger import GroupStats, summarize
from mmkit.app.session_money import session_money
from mmkit.instrument import IncrementBand, Instrument
from mmkit.model import Fill, Liquidity, Side
from mmkit.risk.settlement import Settlement

QUOTED = ("truex", "BTC-PYUSD")


def fill(venue: str, symbol: str, n: int, side: Side, price: str, qty: str, fee: str, currency: str,
         liquidity: Liquidity = Liquidity.MAKER, hedge: bool = False) -> Fill:
    return Fill(venue, f"t{n}", f"c{n}", symbol, side, D(price), D(qty), D(fee), currency, liquidity, n, n,
                is_hedge=hedge)


def rows(fills: list[Fill], settlements: dict | None = None) -> list[GroupStats]:
    return summarize(fills, lambda i, f: "s1", [(100, D(61726))], settlements=settlements)


# The demo session that showed the fault: quoted fills on TrueX (no maker fee), then the flatten on Kraken (taker).
DEMO = [
    fill("truex", "BTC-PYUSD", 1, Side.SELL, "61978.6", "0.002", "0", "PYUSD"),
    fill("truex", "BTC-PYUSD", 2, Side.BUY, "61673.2", "0.010", "0", "PYUSD"),
    fill("kraken", "BTC/USD", 3, Side.SELL, "61711.3", "0.008", "1.28359504", "USD", Liquidity.TAKER, hedge=True),
]


def test_the_hedge_leg_and_its_fee_are_in_the_session_total() -> None:
    books = rows(DEMO)
    money = session_money(books, QUOTED)
    truex, kraken = books
    assert money["total_pnl"] == str(truex.total + kraken.total)
    assert D(money["fees"]) == D("1.28359504")
    assert money["fees_by_currency"] == {"PYUSD": "0", "USD": "1.28359504"}
    # Flat over both books: what is left is realized on TrueX, the 0.008 carried at the mark on both, the fee.
    expected = (D("61978.6") - D("61673.2")) * D("0.002") + D("0.008") * (D("61711.3") - D("61673.2")) - D("1.28359504")
    assert D(money["total_pnl"]) == expected
    assert [b["venue"] for b in money["books"]] == ["truex", "kraken"]
    assert money["figures_source"].startswith("store: this session's rows")
    assert money["avg_spread_capture_bps"] == (None if truex.capture_bps is None
                                               else str(truex.capture_bps.quantize(D("0.0001"))))


def test_one_book_reads_as_its_own_row() -> None:
    (truex,) = rows(DEMO[:2])
    money = session_money([truex], QUOTED)
    assert money["total_pnl"] == str(truex.total) and money["realized_pnl"] == str(truex.realized)
    assert money["closing_mark"] == "61726" and len(money["books"]) == 1
    assert money["figures_source"].startswith("store: this session's row ")


def test_books_in_different_units_are_not_added() -> None:
    coinm = Instrument("binance_coinm", "BTCUSD_PERP", "BTC", "USD", (IncrementBand(D(0), D("0.1"), D(1)),),
                       contract_size=D(100), inverse=True)
    settlements = {("binance_coinm", "BTCUSD_PERP"): Settlement.of(coinm)}
    fills = [fill("binance_coinm", "BTCUSD_PERP", 1, Side.BUY, "60000", "10", "0", "BTC"),
             fill("kraken", "BTC/USD", 2, Side.SELL, "61000", "0.01", "0.5", "USD", Liquidity.TAKER, hedge=True)]
    books = rows(fills, settlements)
    money = session_money(books, ("binance_coinm", "BTCUSD_PERP"))
    assert money["pnl_unit"] == "mixed"
    assert money["total_pnl"] is None and money["fees"] is None
    in_quote = [b.total_in_quote for b in books]
    assert None not in in_quote
    assert money["total_pnl_quote"] == str(sum((v for v in in_quote if v is not None), D(0)))


def test_no_row_is_a_caller_error() -> None:
    with pytest.raises(ValueError):
        session_money([], QUOTED)


def test_the_printed_report_shows_one_line_per_book() -> None:
    from mmkit.app.report import format_report

    text = format_report({"fills": 3, **session_money(rows(DEMO), QUOTED)})
    book_lines = [line.strip() for line in text.splitlines() if line.strip().startswith("book ")]
    assert len(book_lines) == 2
    assert book_lines[1].endswith("kraken BTC/USD: 1 trades, total -1.40119504, fees 1.28359504")
