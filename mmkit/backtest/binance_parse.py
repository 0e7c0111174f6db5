"""One Binance recording line -> one mmkit event: the JSON payload parser and its per-read caches."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from mmkit.backtest.binance_clock import ClockCorrection
from mmkit.backtest.binance_lines import _DECODE, PRICE_INCREMENT, SIZE_INCREMENT, RecordingFormatError
from mmkit.backtest.binance_markets import SPOT, RecordedInstrument
from mmkit.model import NS_PER_MS, BookDelta, BookSnapshot, Level, ScaledLevels, Side, Trade

_BOOK_TICKER = b'@bookTicker"'


@attrs.frozen(slots=True)
class TopOfBook:
    """One ``bookTicker`` message: the exchange's best bid/ask as of update id ``seq``.

    Useful to cross-check a reconstructed book: after the diff whose last
    update id equals ``seq``, the book's top must equal this record.
    """

    venue: str
    symbol: str
    seq: int
    bid_price: Decimal
    bid_qty: Decimal
    ask_price: Decimal
    ask_qty: Decimal
    ts_recv: int



RecordingEvent = BookSnapshot | BookDelta | Trade | TopOfBook


class _Decimals(dict[str, Decimal]):
    """str -> Decimal, each distinct text parsed once per read.

    Why: a recording repeats its prices and sizes (the shared one prints 600k
    of them with 77k distinct texts, and "0.00000000" is every other size), and
    a dict hit is several times cheaper than ``Decimal(text)``. Equal texts also
    share one immutable Decimal, which costs nothing and saves memory.
    """

    def __missing__(self, text: str) -> Decimal:
        value = self[text] = Decimal(text)
        return value


class _OffGrid(Exception):
    """A text the integer form cannot hold exactly; the event then carries Decimal levels only."""


class _Scaled(dict[str, int]):
    """str -> int in units of a power-of-ten increment, each distinct text converted once per read.

    Why: it lets the reader attach :class:`ScaledLevels` for about one dict
    hit per number, so books on the same grid skip a Decimal conversion per
    level. A miss converts the Decimal the reader has already made for the
    same text (exactly, as :class:`mmkit.book.OrderBook` would). Anything the
    integer form cannot hold (finer than the grid, negative, a price of 0,
    not finite) raises :class:`_OffGrid`, and the event then keeps its
    Decimal levels only, which the book checks as before.
    """

    def __init__(self, decimals: _Decimals, places: int, positive: bool) -> None:
        super().__init__()
        self.decimals = decimals
        self.places = places
        self.positive = positive

    def __missing__(self, text: str) -> int:
        value = self.decimals[text]
        if not value.is_finite():
            raise _OffGrid(text)
        scaled = value.scaleb(self.places)
        as_int = int(scaled)
        if as_int != scaled or as_int < 0 or (self.positive and as_int == 0):
            raise _OffGrid(text)
        self[text] = as_int
        return as_int


def _places(increment: Decimal) -> int | None:
    """Decimal places of a power-of-ten increment (0.01 -> 2), None for any other increment."""
    _sign, digits, exponent = increment.normalize().as_tuple()
    if digits == (1,) and isinstance(exponent, int) and exponent <= 0:
        return -exponent
    return None



class _Parser:
    """Turns one payload into an event; holds the per-read Decimal cache."""

    def __init__(
        self,
        venue: str,
        symbol: str,
        with_tickers: bool,
        price_increment: Decimal = PRICE_INCREMENT,
        size_increment: Decimal = SIZE_INCREMENT,
        recorded: RecordedInstrument | None = None,
    ) -> None:
        self.venue = venue
        self.symbol = symbol
        self.with_tickers = with_tickers
        #: The market and symbol the data declared (first diff); every diff must agree with it.
        self.recorded = recorded or RecordedInstrument(SPOT, symbol)
        self._pu = self.recorded.market.chaining == "pu"
        self.decimals = _Decimals()
        self.price_increment = price_increment
        self.size_increment = size_increment
        price_places, size_places = _places(price_increment), _places(size_increment)
        self._prices = None if price_places is None else _Scaled(self.decimals, price_places, positive=True)
        self._sizes = None if size_places is None else _Scaled(self.decimals, size_places, positive=False)

    def levels(self, raw: list[list[str]]) -> tuple[Level, ...]:
        decimals = self.decimals
        return tuple([(decimals[price], decimals[qty]) for price, qty in raw])

    def scaled(self, bids: list[list[str]], asks: list[list[str]]) -> ScaledLevels | None:
        """The integer form of a message's levels, or None when one of them is off the grid."""
        prices, sizes = self._prices, self._sizes
        if prices is None or sizes is None:
            return None
        try:
            return ScaledLevels(
                self.price_increment, self.size_increment,
                tuple([(prices[p], sizes[q]) for p, q in bids]), tuple([(prices[p], sizes[q]) for p, q in asks]),
            )
        except _OffGrid:
            return None

    def __call__(self, payload: bytes, ts_recv: int) -> RecordingEvent | None:
        venue, symbol, dec = self.venue, self.symbol, self.decimals
        message: dict[str, Any] = _DECODE(payload.decode())
        if "lastUpdateId" in message:
            bids, asks = message["bids"], message["asks"]
            return BookSnapshot(
                venue, symbol, int(message["lastUpdateId"]), self.levels(bids), self.levels(asks), ts_recv, ts_recv,
                scaled=self.scaled(bids, asks),
            )
        stream = message["stream"]
        data = message["data"]
        if "@depth" in stream:
            named = data.get("s")
            if named is not None and named != self.recorded.symbol:
                raise ValueError(f"diff for {named} in a recording of {self.recorded.symbol} (one symbol per run)")
            if self._pu:
                # Futures chain by pu (see mmkit.backtest.binance_markets): the delta covers pu+1..u.
                if "pu" not in data:
                    raise ValueError(f"diff without 'pu' in a {self.recorded.market.description} recording")
                first = int(data["pu"]) + 1
            elif "pu" in data:
                raise ValueError("futures diff (with 'pu') in a spot recording")
            else:
                first = int(data["U"])
            bids, asks = data["b"], data["a"]
            return BookDelta(
                venue, symbol, first, int(data["u"]), self.levels(bids), self.levels(asks),
                int(data["E"]) * NS_PER_MS, ts_recv, scaled=self.scaled(bids, asks),
            )
        if stream.endswith("@trade") or stream.endswith("@aggTrade"):
            return Trade(
                venue, symbol, str(data["t"] if "t" in data else data["a"]), dec[data["p"]], dec[data["q"]],
                # m: the buyer is the maker, so the taker sold.
                Side.SELL if data["m"] else Side.BUY,
                int(data["T"]) * NS_PER_MS, ts_recv,
            )
        if stream.endswith("@bookTicker"):
            if not self.with_tickers:
                return None
            return TopOfBook(
                venue, symbol, int(data["u"]), Decimal(data["b"]), Decimal(data["B"]), Decimal(data["a"]),
                Decimal(data["A"]), ts_recv,
            )
        raise KeyError(f"unknown stream {stream!r}")


def _parse_lines(
    lines: list[tuple[Path, int, int, bytes]], parse: _Parser, correction: ClockCorrection
) -> list[RecordingEvent]:
    correct = correction.correct
    skip_tickers = not parse.with_tickers
    events: list[RecordingEvent] = []
    append = events.append
    for path, number, raw, payload in lines:
        if skip_tickers and _BOOK_TICKER in payload:
            continue  # a stream we do not use: not even decoded (3 of 4 lines in the shared recording)
        try:
            event = parse(payload, correct(raw))
        except (ValueError, KeyError, TypeError, ArithmeticError) as exc:
            raise RecordingFormatError(f"{path}:{number}: {exc!r}") from exc
        if event is not None:
            append(event)
    return events
