"""One Binance recording line -> one mmkit event: the JSON payload parser and its per-read caches."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from mmkit.backtest.binance_clock import ClockCorrection
from mmkit.backtest.binance_lines import _DECODE, PRICE_INCREMENT, SIZE_INCREMENT, Line, RecordingFormatError
from mmkit.backtest.binance_markets import SPOT, RecordedInstrument
from mmkit.backtest.recording_cache import LevelSource
from mmkit.backtest.scaled_text import DecimalTexts, TextTable
from mmkit.model import NS_PER_MS, BookDelta, BookSnapshot, Level, ScaledLevels, Side, Trade


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


class _Parser:
    """Turns one payload into an event; holds the per-read number tables.

    Book levels go straight from text to integers on the recording's grid
    (:mod:`mmkit.backtest.scaled_text`): every snapshot and diff carries
    :class:`ScaledLevels`, and a level off the grid (or not a number) stops
    the read with the file and line. The public Decimal levels come from the
    same texts, one Decimal per distinct text. Per message the work is a few
    C-level ``map``/``zip`` calls over its levels, no Python loop per level.
    """

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
        self.decimals = DecimalTexts()
        self.price_increment = price_increment
        self.size_increment = size_increment
        self._prices = TextTable(price_increment, "price", True, self.decimals)
        self._sizes = TextTable(size_increment, "size", False, self.decimals)
        #: Every tuple of levels handed out, for :meth:`level_source` (the empty side is one shared tuple).
        self._sides: dict[int, tuple[tuple[Any, ...], tuple[Any, ...], list[int], list[int]]] = {
            id(()): ((), (), [], [])
        }
        # Bound once: they are called through ``map`` for every level of every message.
        self._price_row, self._size_row = self._prices.__getitem__, self._sizes.__getitem__
        self._price_decimal, self._size_decimal = self._prices.decimals.__getitem__, self._sizes.decimals.__getitem__
        self._price_units, self._size_units = self._prices.units.__getitem__, self._sizes.units.__getitem__

    def levels(self, raw: list[list[str]]) -> tuple[tuple[Level, ...], tuple[tuple[int, int], ...]]:
        """One side's levels: as (Decimal, Decimal) pairs and as (ticks, lots) pairs.

        ``zip(*raw)`` splits the JSON pairs into the prices and the sizes in C;
        every step after that is a ``map`` or ``zip`` over the side's levels.
        """
        if type(raw) is not list or not set(map(type, raw)) <= _LIST or not set(map(len, raw)) <= _PAIR:
            raise ValueError(f"levels must be a list of [price, size] pairs, got {str(raw)[:80]}")
        if not raw:
            return (), ()
        prices, sizes = zip(*raw, strict=True)
        price_rows = list(map(self._price_row, prices))
        size_rows = list(map(self._size_row, sizes))
        levels = tuple(zip(map(self._price_decimal, price_rows), map(self._size_decimal, size_rows), strict=True))
        pairs = tuple(zip(map(self._price_units, price_rows), map(self._size_units, size_rows), strict=True))
        self._sides[id(levels)] = (levels, pairs, price_rows, size_rows)
        return levels, pairs

    def level_source(self) -> LevelSource:
        """What the on-disk cache needs to write these levels without numbering them again."""
        prices, sizes = self._prices, self._sizes
        return LevelSource(prices.decimals, sizes.decimals, prices.units, sizes.units, self._sides)

    def book(self, bids_raw: list[list[str]], asks_raw: list[list[str]]) -> tuple[
        tuple[Level, ...], tuple[Level, ...], ScaledLevels
    ]:
        bids, scaled_bids = self.levels(bids_raw)
        asks, scaled_asks = self.levels(asks_raw)
        return bids, asks, ScaledLevels(self.price_increment, self.size_increment, scaled_bids, scaled_asks)

    def __call__(self, payload: bytes, ts_recv: int) -> RecordingEvent | None:
        venue, symbol, dec = self.venue, self.symbol, self.decimals
        text = payload.decode()
        trade = _TRADE(text)
        if trade is not None and "@depth" not in trade[1]:
            stream, trade_id, price, qty, ts_trade, maker = trade.groups()
            return Trade(venue, symbol, trade_id, dec[price], dec[qty], Side.SELL if maker == "true" else Side.BUY,
                         int(ts_trade) * NS_PER_MS, ts_recv)
        message: dict[str, Any] = _DECODE(text)
        if "lastUpdateId" in message:
            bids, asks, scaled = self.book(message["bids"], message["asks"])
            return BookSnapshot(
                venue, symbol, int(message["lastUpdateId"]), bids, asks, ts_recv, ts_recv, scaled=scaled
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
            bids, asks, scaled = self.book(data["b"], data["a"])
            return BookDelta(
                venue, symbol, first, int(data["u"]), bids, asks, int(data["E"]) * NS_PER_MS, ts_recv, scaled=scaled
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


_LIST = {list}
_PAIR = {2}

# A trade line exactly as Binance writes it (three lines in four that are parsed), matched instead of decoded:
# a JSON string without escapes or control characters reads as its text, an integer as its digits, so the
# event is the one the JSON path makes. Any other shape (spaces, other fields, aggTrade) takes the JSON path.
_STRING = r'[^"\\\x00-\x1f]*'
_INTEGER = r"(?:0|[1-9][0-9]*)"
_TRADE = re.compile(
    rf'\{{"stream":"({_STRING}@trade)","data":\{{"e":"trade","E":{_INTEGER},"s":"{_STRING}","t":({_INTEGER}),'
    rf'"p":"({_STRING})","q":"({_STRING})","T":({_INTEGER}),"m":(true|false),"M":(?:true|false)\}}\}}'
).fullmatch


def parse_lines(path: Path, lines: list[Line], parse: _Parser, correction: ClockCorrection) -> list[RecordingEvent]:
    """The events of one file's kept lines (:func:`~mmkit.backtest.binance_lines.scan_file`), in order.

    Any line that cannot be parsed raises :class:`RecordingFormatError` naming the file and line.
    """
    correct = correction.correct
    events: list[RecordingEvent] = []
    append = events.append
    for number, raw, payload in lines:
        try:
            event = parse(payload, correct(raw))
        except (ValueError, KeyError, TypeError, ArithmeticError) as exc:
            raise RecordingFormatError(f"{path}:{number}: {exc!r}") from exc
        if event is not None:
            append(event)
    return events
