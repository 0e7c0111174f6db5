"""The Binance reader's parse as it was before levels went straight to integers: the oracle of the equivalence tests.

A frozen copy of the old per-level Decimal parse (``_Decimals``, ``_Scaled``,
``_Parser``) and of the old clock fit over split lines, kept only so that
tests can prove the new reader yields the same events (same Decimal levels
with the same texts, same integer levels, same times). Not used by mmkit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from mmkit.backtest.binance import (
    DEFAULT_MIN_LATENCY_NS,
    DEFAULT_WINDOW_NS,
    PRICE_INCREMENT,
    SIZE_INCREMENT,
    ClockCorrection,
    RecordingEvent,
    RecordingFormatError,
    TopOfBook,
    detect_instrument,
)
from mmkit.backtest.binance_lines import _file_lines
from mmkit.backtest.binance_markets import SPOT, RecordedInstrument
from mmkit.model import NS_PER_MS, BookDelta, BookSnapshot, Level, ScaledLevels, Side, Trade

_EXCHANGE_TIME = re.compile(rb'"E":(\d+)')
_BOOK_TICKER = b'@bookTicker"'
_DECODE = json.JSONDecoder().decode


def _numbered(path: Path, lines: list[bytes]) -> Iterator[tuple[Path, int, bytes]]:
    for number, line in enumerate(lines, start=1):
        if line.strip():
            yield path, number, line


def _lines(paths: Iterable[Path]) -> Iterator[tuple[Path, int, bytes]]:
    for path in paths:
        yield from _numbered(path, _file_lines(path))


def _split(path: Path, number: int, line: bytes) -> tuple[int, bytes]:
    stamp, sep, payload = line.partition(b" ")
    if not sep or not stamp.isdigit():
        raise RecordingFormatError(f"{path}:{number}: expected '<ns> <json>', got {line[:80]!r}")
    return int(stamp), payload


def _split_lines(paths: Iterable[Path]) -> Iterator[tuple[Path, int, int, bytes]]:
    """(path, line number, raw local ns, payload) for every non-blank line."""
    for path, number, line in _lines(paths):
        raw, payload = _split(path, number, line)
        yield path, number, raw, payload


def _estimate(
    lines: Iterable[tuple[Path, int, int, bytes]],
    paths: Sequence[Path],
    min_latency_ns: int,
    window_ns: int,
) -> ClockCorrection:
    samples: list[tuple[int, int]] = []  # (raw local ns, raw local - exchange ns)
    search = _EXCHANGE_TIME.search
    for _path, _number, raw, payload in lines:
        match = search(payload)
        if match is not None:
            samples.append((raw, raw - int(match.group(1)) * NS_PER_MS))
    if not samples:
        raise RecordingFormatError(f"no message with an exchange time in {[str(p) for p in paths]}")
    ref = samples[0][0]
    # Lower envelope: the fastest message of each window.
    minima: dict[int, tuple[int, int]] = {}
    for raw, diff in samples:
        key = (raw - ref) // window_ns
        if key not in minima or diff < minima[key][1]:
            minima[key] = (raw, diff)
    points = list(minima.values())
    drift = 0.0
    if len(points) >= 3:
        xs = [float(raw - ref) for raw, _ in points]
        ys = [float(diff) for _, diff in points]
        mean_x = sum(xs) / len(xs)
        mean_y = sum(ys) / len(ys)
        var_x = sum((x - mean_x) ** 2 for x in xs)
        if var_x > 0:
            drift = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / var_x
    # Lower the line under every sample, then lift it to the assumed latency floor.
    # corrected - exchange = diff + offset + drift*(raw-ref) must be >= min_latency for every sample.
    lowest = min(diff - round(drift * (raw - ref)) for raw, diff in samples)
    # drift describes how (local - exchange) grows with time, so the correction subtracts it.
    correction = ClockCorrection(offset_ns=min_latency_ns - lowest, drift=-drift, ref_ns=ref)
    # Recheck with the exact rounding of ``correct`` so the promise holds for every sample.
    worst = min(correction.correct(raw) - (raw - diff) for raw, diff in samples)
    if worst < min_latency_ns:
        correction = attrs.evolve(correction, offset_ns=correction.offset_ns + (min_latency_ns - worst))
    return correction


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


_DECODE = json.JSONDecoder().decode


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


def read_reference(
    paths: Sequence[Path], correction: ClockCorrection | None = None, with_tickers: bool = False
) -> list[RecordingEvent]:
    """Every event of a recording as the old reader parsed it (venue and symbol from the data, as it did)."""
    recorded = detect_instrument(paths)
    lines = list(_split_lines(paths))
    if correction is None:
        correction = _estimate(lines, paths, DEFAULT_MIN_LATENCY_NS, DEFAULT_WINDOW_NS)
    return _parse_lines(lines, _Parser(recorded.venue, recorded.symbol, with_tickers, recorded=recorded), correction)
