"""One Binance recording line -> one mmkit event: the JSON payload parser and its per-read caches."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from decimal import Decimal
from operator import itemgetter
from pathlib import Path
from typing import Any

import attrs

from mmkit.backtest.binance_clock import ClockCorrection
from mmkit.backtest.binance_compiled import compiled_binance
from mmkit.backtest.binance_lines import (
    _DECODE,
    PRICE_INCREMENT,
    SIZE_INCREMENT,
    Line,
    RecordingFormatError,
)
from mmkit.backtest.binance_markets import SPOT, RecordedInstrument
from mmkit.backtest.binance_trades import TradeIds
from mmkit.backtest.recording_cache import LevelSource
from mmkit.backtest.scaled_text import DecimalTexts, TextTable, to_units
from mmkit.model import NS_PER_MS, BookDelta, BookSnapshot, ScaledLevels, Side, Trade


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

#: A book event parsed but not yet built: (class, first seq, seq, ts_event, ts_recv); see :meth:`_Parser.build`.
Pending = tuple[type, int, int, int, int]


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
        #: Trade price and size texts already checked by :meth:`_check_trade` (one set: both must be above 0).
        self._checked_trade_texts: set[str] = set()
        #: The trade stream of this read (``@trade`` or ``@aggTrade``): the first one seen, the only one allowed.
        self._trade_kind: str | None = None
        #: The read's recent trade ids: a print read twice stops the read (:func:`parse_lines`).
        self.trade_ids = TradeIds()
        self.price_increment = price_increment
        self.size_increment = size_increment
        self._prices = TextTable(price_increment, "price", True, self.decimals)
        self._sizes = TextTable(size_increment, "size", False, self.decimals)
        #: The current file's book levels as rows, and each side's count of them (bids, asks, bids, ...).
        self._price_rows: list[int] = []
        self._size_rows: list[int] = []
        self._lengths: list[int] = []
        #: Every tuple of levels handed out, for :meth:`level_source` (the empty side is one shared tuple).
        self._sides: dict[int, tuple[tuple[Any, ...], tuple[Any, ...], list[int], list[int]]] = {
            id(()): ((), (), [], [])
        }
        # Bound once: they are called through ``map`` for every level of every message.
        self._price_row, self._size_row = self._prices.__getitem__, self._sizes.__getitem__
        self._price_decimal, self._size_decimal = self._prices.decimals.__getitem__, self._sizes.decimals.__getitem__
        self._price_units, self._size_units = self._prices.units.__getitem__, self._sizes.units.__getitem__
        # The compiled twins of the level work (mmkit/_speedups/_binance.pyx), unless the pure path is asked for.
        compiled = compiled_binance()
        self._build_sides: Callable[..., SideParts] = build_sides if compiled is None else compiled.build_sides
        self._fast: Callable[[bytes, int], Pending | None] | None = None
        if compiled is not None and not self._pu:
            self._fast = compiled.DepthRows(
                self._prices, self._sizes, self._price_rows, self._size_rows, self._lengths, self.recorded.symbol,
                BookDelta, BookSnapshot, NS_PER_MS,
            )

    def _rows(self, raw: list[list[str]]) -> None:
        """One side's levels, as rows of the price and size tables, onto the file's flat row lists.

        ``zip(*raw)`` splits the JSON pairs into prices and sizes in C, and the
        lookups run in ``map``; the level tuples are built for the whole file
        at once by :meth:`build`.
        """
        if type(raw) is not list or not set(map(type, raw)) <= _LIST:
            raise ValueError(f"levels must be a list of [price, size] pairs, got {str(raw)[:80]}")
        if not raw:
            self._lengths.append(0)
            return
        try:
            prices, sizes = zip(*raw, strict=True)
        except ValueError:
            raise ValueError(f"levels must be a list of [price, size] pairs, got {str(raw)[:80]}") from None
        self._price_rows.extend(map(self._price_row, prices))
        self._size_rows.extend(map(self._size_row, sizes))
        self._lengths.append(len(prices))

    def build(self, pending: list[Pending]) -> list[BookSnapshot | BookDelta]:
        """The book events of one file, from the rows :meth:`_rows` gathered, in the order of ``pending``.

        The level tuples of the whole file are built at once (:func:`build_sides`).
        """
        price_rows, size_rows = self._price_rows, self._size_rows
        side_levels, side_pairs, price_slices, size_slices = self._build_sides(
            price_rows, size_rows, self._lengths, self._prices.decimals, self._sizes.decimals,
            self._prices.units, self._sizes.units,
        )
        self._sides.update(zip(map(id, side_levels), zip(
            side_levels, side_pairs, price_slices, size_slices, strict=True,
        ), strict=True))
        price_rows.clear()
        size_rows.clear()
        self._lengths.clear()
        venue, symbol, tick, lot = self.venue, self.symbol, self.price_increment, self.size_increment
        events: list[BookSnapshot | BookDelta] = []
        append = events.append
        for (kind, first, seq, ts_event, ts_recv), bids, asks, scaled_bids, scaled_asks in zip(
            pending, side_levels[0::2], side_levels[1::2], side_pairs[0::2], side_pairs[1::2], strict=True
        ):
            scaled = ScaledLevels(tick, lot, scaled_bids, scaled_asks)
            if kind is BookDelta:
                append(BookDelta(venue, symbol, first, seq, bids, asks, ts_event, ts_recv, scaled=scaled))
            else:
                append(BookSnapshot(venue, symbol, seq, bids, asks, ts_event, ts_recv, scaled=scaled))
        return events

    def level_source(self) -> LevelSource:
        """What the on-disk cache needs to write these levels without numbering them again."""
        prices, sizes = self._prices, self._sizes
        return LevelSource(prices.decimals, sizes.decimals, prices.units, sizes.units, self._sides)

    def __call__(self, payload: bytes, ts_recv: int) -> RecordingEvent | Pending | None:
        """The event of one line; for a book event, its header (:data:`Pending`), built later by :meth:`build`."""
        fast = self._fast
        if fast is not None:
            pending = fast(payload, ts_recv)  # a book message in Binance's own shape, else None
            if pending is not None:
                return pending
        venue, symbol, dec = self.venue, self.symbol, self.decimals
        text = payload.decode()
        trade = _TRADE(text)
        if trade is not None and "@depth" not in trade[1]:
            stream, named, trade_id, price, qty, ts_trade, maker = trade.groups()
            self._check_trade(named, "@trade", price, qty)
            return Trade(venue, symbol, trade_id, dec[price], dec[qty], Side.SELL if maker == "true" else Side.BUY,
                         int(ts_trade) * NS_PER_MS, ts_recv)
        message: dict[str, Any] = _DECODE(text)
        if "lastUpdateId" in message:
            seq = int(message["lastUpdateId"])
            self._rows(message["bids"])
            self._rows(message["asks"])
            return (BookSnapshot, seq, seq, ts_recv, ts_recv)
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
            seq, ts_event = int(data["u"]), int(data["E"]) * NS_PER_MS
            self._rows(data["b"])
            self._rows(data["a"])
            return (BookDelta, first, seq, ts_event, ts_recv)
        if stream.endswith("@trade") or stream.endswith("@aggTrade"):
            self._check_trade(data.get("s"), stream[stream.rindex("@"):], data["p"], data["q"])
            return Trade(
                venue, symbol, str(data["t"] if "t" in data else data["a"]), dec[data["p"]], dec[data["q"]],
                # m: the buyer is the maker, so the taker sold.
                Side.SELL if data["m"] else Side.BUY,
                int(data["T"]) * NS_PER_MS, ts_recv,
            )
        if stream.endswith("@bookTicker"):
            if not self.with_tickers:
                return None
            named = data.get("s")
            if named is not None and named != self.recorded.symbol:
                raise ValueError(f"bookTicker of {named} in a recording of {self.recorded.symbol} (one symbol per run)")
            return TopOfBook(
                venue, symbol, int(data["u"]), Decimal(data["b"]), Decimal(data["B"]), Decimal(data["a"]),
                Decimal(data["A"]), ts_recv,
            )
        raise KeyError(f"unknown stream {stream!r}")

    def _check_trade(self, named: object, kind: str, price: object, qty: object) -> None:
        """Refuse a print that is not one of this recording's: another symbol, another trade stream, a bad number.

        Why here, at the read: the venue fills our orders from every print it
        is handed, so a print of another symbol (ETHUSDT at 2600 in a BTCUSDT
        recording), a negative or zero price, a zero size, NaN or a price off
        the tick grid made fills, or crashed the run mid-way, with nothing
        naming the line. ``@trade`` and ``@aggTrade`` of one symbol in one
        recording are the same prints twice (an aggTrade sums trades), so the
        first kind seen is the only one read. Each distinct number text is
        checked once per read (:func:`to_units`, as book levels are).
        """
        if named is not None and named != self.recorded.symbol:
            raise ValueError(f"trade of {named} in a recording of {self.recorded.symbol} (one symbol per run)")
        if kind != self._trade_kind:
            if self._trade_kind is not None:
                raise ValueError(
                    f"{kind} print in a recording whose prints so far came from {self._trade_kind}: one trade "
                    "stream per recording (an aggTrade sums @trade prints, so both would deliver each print twice)")
            self._trade_kind = kind
        checked = self._checked_trade_texts
        if price not in checked:
            to_units(price, self._prices.places, "trade price", self.price_increment, True)
            checked.add(price)  # type: ignore[arg-type]  # to_units refused anything but a str
        if qty not in checked:
            to_units(qty, self._sizes.places, "trade size", self.size_increment, True)
            checked.add(qty)  # type: ignore[arg-type]


#: Per side of a file's book messages: its levels tuple, integer pairs tuple, price rows, size rows.
SideParts = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[list[int]], list[list[int]]]


def build_sides(
    price_rows: list[int], size_rows: list[int], lengths: list[int], price_decimals: list[Decimal],
    size_decimals: list[Decimal], price_units: list[int], size_units: list[int],
) -> SideParts:
    """The file's rows cut into sides: levels ``(Decimal, Decimal)``, pairs ``(int, int)``, and their rows.

    Why at once: building every level tuple of the file in one ``zip``, then
    cutting them per side by slices (as the cache decoder does), cost a third
    less than building them message by message. The compiled twin
    (``mmkit._speedups._binance.build_sides``) builds the same tuples in C.
    """
    levels = list(zip(map(price_decimals.__getitem__, price_rows), map(size_decimals.__getitem__, size_rows),
                      strict=True))
    pairs = list(zip(map(price_units.__getitem__, price_rows), map(size_units.__getitem__, size_rows), strict=True))
    ends = list(itertools.accumulate(lengths))
    slices = list(map(slice, [0, *ends[:-1]], ends))
    return (list(map(tuple, map(levels.__getitem__, slices))), list(map(tuple, map(pairs.__getitem__, slices))),
            list(map(price_rows.__getitem__, slices)), list(map(size_rows.__getitem__, slices)))


_LIST = {list}
_PAIR = {2}

# A trade line exactly as Binance writes it (three lines in four that are parsed), matched instead of decoded:
# a JSON string without escapes or control characters reads as its text, an integer as its digits, so the
# event is the one the JSON path makes. Any other shape (spaces, other fields, aggTrade) takes the JSON path.
_STRING = r'[^"\\\x00-\x1f]*'
_INTEGER = r"(?:0|[1-9][0-9]*)"
_TRADE = re.compile(
    rf'\{{"stream":"({_STRING}@trade)","data":\{{"e":"trade","E":{_INTEGER},"s":"({_STRING})","t":({_INTEGER}),'
    rf'"p":"({_STRING})","q":"({_STRING})","T":({_INTEGER}),"m":(true|false),"M":(?:true|false)\}}\}}'
).fullmatch


_RAW = itemgetter(1)


def parse_lines(path: Path, lines: list[Line], parse: _Parser, correction: ClockCorrection) -> list[RecordingEvent]:
    """The events of one file's kept lines (:func:`~mmkit.backtest.binance_lines.scan_file`), in order.

    Any line that cannot be parsed raises :class:`RecordingFormatError` naming
    the file and line. Book events are built for the whole file at the end
    (:meth:`_Parser.build`) and put back in their places.
    """
    events: list[Any] = []
    append = events.append
    places: list[int] = []
    pending: list[Pending] = []
    received = correction.correct_all(map(_RAW, lines))
    for (number, _raw, payload), ts_recv in zip(lines, received, strict=True):
        try:
            event = parse(payload, ts_recv)
            if type(event) is Trade:
                parse.trade_ids.add(event.trade_id, path, number)
        except (ValueError, KeyError, TypeError, ArithmeticError) as exc:
            raise RecordingFormatError(f"{path}:{number}: {exc!r}") from exc
        if event is None:
            continue
        if type(event) is tuple:
            places.append(len(events))
            pending.append(event)
        append(event)
    for place, book in zip(places, parse.build(pending), strict=True):
        events[place] = book
    return events

