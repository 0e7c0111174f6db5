"""Reader for Binance recordings (``<local ns> <raw JSON>`` per line, gzip): spot, USD-M and COIN-M futures.

It turns the raw websocket/REST messages into mmkit events -- ``BookSnapshot``,
``BookDelta`` (``first_seq=U``, ``seq=u``), ``Trade`` and, on request, a
:class:`TopOfBook` for each ``bookTicker`` -- lazily, file after file, in file
order. Which market the recording comes from, its symbol and how its diffs
chain are read from the data (:mod:`mmkit.backtest.binance_markets`): events
carry the market's venue name (``binance``, ``binance_usdm``,
``binance_coinm``, each with its rules in ``conf/venues/``) and the recorded
symbol. It does not reorder or filter diffs: the snapshot in these recordings
arrives *after* the first diffs, and sorting that out is the job of
:class:`mmkit.book.OrderBookTracker`, exactly as it is live.

Time. ``ts_event`` is the exchange's time (``E`` for diffs, ``T`` for trades;
ms -> ns). The recorder's clock ran about 1.27 s behind the exchange and drifted
a few ms over the recording, so the raw local stamp would give negative feed
latency. :func:`estimate_clock_correction` fits the *lower envelope* of
``raw_local - exchange_time`` (the fastest messages, whose latency is close to
the floor): it takes the minimum in each time window, fits a line through those
minima (offset + drift), lowers the line until no message lies below it, and
sets it so the smallest latency in the whole recording equals
``min_latency_ns``. Corrected ``ts_recv`` is then never earlier than
``ts_event + min_latency_ns`` for any message with an exchange time, and stays
in file order (the correction is increasing in the raw time). The REST
snapshot and bookTicker carry no exchange time: their ``ts_event`` is their
corrected receive time.
"""

from __future__ import annotations

import gzip
import itertools
import json
import re
import zlib
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
from loguru import logger

from mmkit.backtest import recording_cache
from mmkit.backtest.binance_markets import SPOT, RecordedInstrument, classify_diff
from mmkit.gc_policy import gc_paused
from mmkit.model import NS_PER_MS, NS_PER_S, BookDelta, BookSnapshot, Level, ScaledLevels, Side, Trade

#: Labels of the shared spot recording (the reader itself takes venue and symbol from the data).
VENUE = "binance"
SYMBOL = "BTCUSDT"
#: Finest resolutions seen in the BTCUSDT recording (tick 0.01; sizes are printed with 8 decimals).
PRICE_INCREMENT = Decimal("0.01")
SIZE_INCREMENT = Decimal("0.00000001")

#: Assumed smallest one-way latency from exchange to recorder, applied by the clock correction.
DEFAULT_MIN_LATENCY_NS = NS_PER_MS
#: Width of the windows whose minima define the lower envelope.
DEFAULT_WINDOW_NS = 30 * NS_PER_S

_EXCHANGE_TIME = re.compile(rb'"E":(\d+)')
_BOOK_TICKER = b'@bookTicker"'


class RecordingFormatError(ValueError):
    """A recording (or one of its lines) could not be understood; names the file (and line)."""


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


@attrs.frozen(slots=True)
class ClockCorrection:
    """``corrected = raw + offset_ns + drift * (raw - ref_ns)``: maps recorder time onto exchange time."""

    offset_ns: int
    drift: float
    ref_ns: int

    def correct(self, raw_ns: int) -> int:
        return raw_ns + self.offset_ns + round(self.drift * (raw_ns - self.ref_ns))


#: No correction (for recordings made with a disciplined clock).
IDENTITY_CORRECTION = ClockCorrection(offset_ns=0, drift=0.0, ref_ns=0)

RecordingEvent = BookSnapshot | BookDelta | Trade | TopOfBook


def recording_files(directory: Path) -> list[Path]:
    """The ``*.gz`` files of a recording directory, in the order they follow each other (by name)."""
    files = sorted(directory.glob("*.gz"))
    if not files:
        raise FileNotFoundError(f"{directory}: no *.gz recording files in this directory")
    return files


def _file_lines(path: Path) -> list[bytes]:
    """One file's lines, decompressed in one call.

    Why not ``for line in gzip.open(...)``: per-line ``readline`` on a gzip
    stream cost more than the decompression itself (~0.7 s per pass over the
    shared recording); one ``decompress`` plus ``split`` is a few hundredths.
    A recording file is tens of MB decompressed, which is fine to hold.
    """
    try:
        with gzip.open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError as exc:
        raise RecordingFormatError(f"{path}: no such recording file") from exc
    except (OSError, EOFError, zlib.error) as exc:  # not gzip, truncated, corrupt
        raise RecordingFormatError(f"{path}: not a readable gzip recording ({_why(exc)})") from exc
    if not data.strip():
        raise RecordingFormatError(f"{path}: empty recording file")
    return data.split(b"\n")


def _why(exc: BaseException) -> str:
    """A short reason for a damaged file, without the exception's own noise."""
    if isinstance(exc, EOFError):
        return "truncated: the file ends before its compressed stream does"
    return str(exc) or type(exc).__name__


def detect_instrument(paths: Sequence[Path]) -> RecordedInstrument:
    """The market and symbol of a recording, from its first depth diff (see :mod:`.binance_markets`).

    Reads lines only until that diff (usually the first few). A recording
    without any depth diff cannot be backtested as a book and is refused.
    """
    fallback: RecordedInstrument | None = None
    for path in paths:
        try:
            with gzip.open(path, "rb") as handle:
                for number, line in enumerate(handle, start=1):
                    if b"@depth" in line:
                        _raw, payload = _split(path, number, line.rstrip(b"\n"))
                        try:
                            message = _DECODE(payload.decode())
                            return classify_diff(message["data"], str(message["stream"]))
                        except (ValueError, KeyError, TypeError) as exc:
                            raise RecordingFormatError(f"{path}:{number}: {exc!r}") from exc
                    if fallback is None and line.strip():
                        fallback = _instrument_without_diff(path, number, line.rstrip(b"\n"))
        except FileNotFoundError as exc:
            raise RecordingFormatError(f"{path}: no such recording file") from exc
        except (OSError, EOFError, zlib.error) as exc:
            raise RecordingFormatError(f"{path}: not a readable gzip recording ({_why(exc)})") from exc
    if fallback is None:
        raise RecordingFormatError(f"{', '.join(str(p) for p in paths)}: no message names the recorded market")
    return fallback


def _instrument_without_diff(path: Path, number: int, line: bytes) -> RecordedInstrument | None:
    """For a recording without a diff: the stream name (``btcusdt@trade``) or a futures snapshot names it."""
    _raw, payload = _split(path, number, line)
    try:
        message = _DECODE(payload.decode())
    except ValueError as exc:
        raise RecordingFormatError(f"{path}:{number}: {exc!r}") from exc
    if not isinstance(message, dict):
        raise RecordingFormatError(f"{path}:{number}: expected a JSON object, got {payload[:40]!r}")
    if "stream" in message:
        symbol = str(message["stream"]).split("@", 1)[0].upper()
        futures = isinstance(message.get("data"), dict) and "E" in message["data"] and "T" in message["data"] \
            and str(message["stream"]).endswith("@bookTicker")
        return classify_diff({"s": symbol, **({"pu": 0} if futures else {})})
    if "lastUpdateId" in message:
        if "T" in message:  # only the futures REST snapshot carries a transaction time
            return classify_diff({"s": str(message.get("symbol", SYMBOL)), "pu": 0})
        return RecordedInstrument(SPOT, SYMBOL)
    return None


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


def estimate_clock_correction(
    paths: Sequence[Path],
    min_latency_ns: int = DEFAULT_MIN_LATENCY_NS,
    window_ns: int = DEFAULT_WINDOW_NS,
) -> ClockCorrection:
    """Fit the recorder's clock error from the data (see the module docstring for the method).

    One cheap pass: only the local stamp and ``"E":`` are read, with no JSON parsing.
    """
    return _estimate(_split_lines(paths), paths, min_latency_ns, window_ns)


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
    logger.bind(venue=VENUE).info(
        "clock correction: offset {:.3f} ms, drift {:.2f} ppm over {} samples",
        correction.offset_ns / NS_PER_MS,
        correction.drift * 1e6,
        len(samples),
    )
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


def read_recording(
    paths: Sequence[Path],
    correction: ClockCorrection | None = None,
    with_tickers: bool = False,
    venue: str | None = None,
    symbol: str | None = None,
    disk_cache: bool | Path = True,
    freeze: bool = False,
) -> Iterator[RecordingEvent]:
    """Yield the recording's events lazily, in file order.

    ``correction`` None estimates it first (over the same decompressed lines,
    which are then kept for the parse); pass :data:`IDENTITY_CORRECTION` to
    keep the raw local stamps. bookTicker lines are skipped unless
    ``with_tickers`` (then only their stamp is checked: their JSON is not
    decoded). A line that cannot be parsed raises
    :class:`RecordingFormatError` naming the file and line: a backtest on
    silently damaged data is worse than none.

    Caches, with ``correction`` None only. A recording read to its end is
    kept in an in-process cache keyed by each file's path, size, mtime and
    inode and the options (events are immutable, so they are shared): a
    second backtest of the same files in one process skips the parse
    (:func:`clear_recording_cache` forgets them). Behind it, the parse is also
    written to the on-disk cache of :mod:`mmkit.backtest.recording_cache`, so
    a later process loads it instead of parsing: ``disk_cache`` True puts it
    where the environment says (``MMKIT_CACHE_DIR``, ``off`` to disable),
    False disables it, a path puts it there.

    ``freeze`` True: the events are frozen out of the garbage collector as
    they are built (see :func:`mmkit.gc_policy.gc_paused`), for a caller about
    to run them under :func:`mmkit.gc_policy.long_run_gc`.

    ``venue``/``symbol`` None: those the data declares (:func:`detect_instrument`:
    ``binance`` / ``binance_usdm`` / ``binance_coinm`` and the diffs' symbol);
    given, they only relabel the events (the chaining rule is always the data's).
    """
    recorded = detect_instrument(paths)
    venue = recorded.venue if venue is None else venue
    symbol = recorded.symbol if symbol is None else symbol
    if correction is not None:
        yield from _read(paths, correction, with_tickers, venue, symbol, freeze, recorded)
        return
    key = _cache_key(paths, venue, symbol, with_tickers, recorded)
    cached = _CACHE.get(key)
    if cached is not None:
        logger.bind(venue=venue).debug("recording served from the in-process cache ({} events)", len(cached))
        yield from cached
        return
    events: list[RecordingEvent] = []
    for event in recording_cache.read_through(
        recording_cache.cache_directory(disk_cache),
        _disk_key(key, venue, symbol, with_tickers),
        _EVENT_TYPES,
        lambda: _read(paths, None, with_tickers, venue, symbol, freeze, recorded),
        freeze=freeze,
    ):
        events.append(event)
        yield event
    _remember(key, events)  # only a recording read to its end gets here, so only that is kept


#: Bump whenever the parse changes the events a recording yields (fields, values, interning, clock fit):
#: it is part of the on-disk cache key, so entries written by an older reader are never served.
READER_VERSION = 2
#: Every class :func:`read_recording` yields, in the order the on-disk cache numbers them.
_EVENT_TYPES: tuple[type, ...] = (BookSnapshot, BookDelta, Trade, TopOfBook)

#: Parsed recordings kept per process, newest last; bounded because a recording's events take tens of MB.
_CACHE: dict[tuple[object, ...], list[RecordingEvent]] = {}
_CACHE_SIZE = 2


def _cache_key(
    paths: Sequence[Path], venue: str, symbol: str, with_tickers: bool, recorded: RecordedInstrument | None = None
) -> tuple[object, ...]:
    """Identity of a read: each file's resolved path, size, mtime and inode, plus the reader's options.

    A file rewritten in place changes its mtime (ns) or size, so a stale parse is never served.
    The market the data declared is part of it (it decides how diffs are numbered).
    """
    market = (recorded or RecordedInstrument(SPOT, symbol)).market.name
    return (recording_cache.file_stamps(paths), venue, symbol, with_tickers, market)


def _disk_key(key: tuple[object, ...], venue: str, symbol: str, with_tickers: bool) -> recording_cache.CacheKey:
    """The on-disk form of :func:`_cache_key`: the same stamps, every option that shapes the parse, the version."""
    stamps = key[0]
    assert isinstance(stamps, tuple)
    return recording_cache.CacheKey(
        files=stamps,
        options={
            "reader": "binance",
            "market": str(key[4]) if len(key) > 4 else "spot",
            "venue": venue,
            "symbol": symbol,
            "with_tickers": with_tickers,
            "price_increment": str(PRICE_INCREMENT),
            "size_increment": str(SIZE_INCREMENT),
            "min_latency_ns": DEFAULT_MIN_LATENCY_NS,
            "window_ns": DEFAULT_WINDOW_NS,
        },
        reader_version=READER_VERSION,
    )


def _remember(key: tuple[object, ...], events: list[RecordingEvent]) -> None:
    _CACHE.pop(key, None)
    _CACHE[key] = events
    while len(_CACHE) > _CACHE_SIZE:
        del _CACHE[next(iter(_CACHE))]


def clear_recording_cache() -> None:
    """Forget every parsed recording held in this process (tests, or to measure a cold read).

    The on-disk cache is left alone: :func:`clear_recording_disk_cache` removes its entries.
    """
    _CACHE.clear()


def clear_recording_disk_cache(directory: Path | None = None) -> int:
    """Delete the on-disk cache's entries (default: the directory the environment names); returns how many."""
    return recording_cache.remove_entries(directory)


def _read(
    paths: Sequence[Path],
    correction: ClockCorrection | None,
    with_tickers: bool,
    venue: str,
    symbol: str,
    freeze: bool,
    recorded: RecordedInstrument | None = None,
) -> Iterator[RecordingEvent]:
    files: Iterable[tuple[Path, list[tuple[Path, int, int, bytes]]]]
    if correction is None:
        # Decompressed and split once, read twice (the estimate, then the parse).
        loaded = [(path, list(_split_lines([path]))) for path in paths]
        correction = _estimate(
            (line for _, lines in loaded for line in lines), paths, DEFAULT_MIN_LATENCY_NS, DEFAULT_WINDOW_NS
        )
        files = loaded
    else:
        files = ((path, list(_split_lines([path]))) for path in paths)
    parse = _Parser(venue, symbol, with_tickers, recorded=recorded)
    for _path, lines in files:
        with gc_paused(freeze=freeze):
            events = _parse_lines(lines, parse, correction)
        yield from events


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


# --------------------------------------------------------------------------
# Fast path for benchmarks: the whole recording as integers
# --------------------------------------------------------------------------

IntLevels = list[tuple[int, int]]


@attrs.frozen(slots=True)
class IntRecording:
    """A snapshot and the diffs to apply after it, in ticks/lots, already sequenced.

    ``diffs`` are ``(first_seq, seq, bids, asks)``: those covered by the
    snapshot are gone, the first bridges it and each next one follows on.
    """

    price_increment: Decimal
    size_increment: Decimal
    snapshot_seq: int
    snapshot_bids: IntLevels
    snapshot_asks: IntLevels
    diffs: list[tuple[int, int, IntLevels, IntLevels]]

    @property
    def level_updates(self) -> int:
        return sum(len(bids) + len(asks) for _, _, bids, asks in self.diffs)


def _int_scaler(increment: Decimal) -> Any:
    """str -> int in units of ``increment``; string surgery for powers of ten, exact Decimal otherwise."""
    digits = increment.normalize().as_tuple()
    if digits.digits == (1,) and isinstance(digits.exponent, int) and digits.exponent <= 0:
        places = -digits.exponent

        def by_string(text: str) -> int:
            whole, _, frac = text.partition(".")
            if frac[places:].strip("0"):
                raise ValueError(f"{text} is finer than {increment}")
            return int(whole + frac[:places].ljust(places, "0"))

        return by_string

    def by_decimal(text: str) -> int:
        scaled = Decimal(text) / increment
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{text} is not a multiple of {increment}")
        return int(scaled)

    return by_decimal


def load_int_recording(
    paths: Sequence[Path],
    price_increment: Decimal = PRICE_INCREMENT,
    size_increment: Decimal = SIZE_INCREMENT,
) -> IntRecording:
    """Parse a whole recording into integers and sequence its diffs after the (first) snapshot.

    Raises :class:`RecordingFormatError` if the recording has no snapshot or the
    diffs do not follow on from it: a benchmark on a broken stream measures nothing.
    """
    price, size = _int_scaler(price_increment), _int_scaler(size_increment)
    snapshot: dict[str, Any] | None = None
    diffs: list[tuple[int, int, IntLevels, IntLevels]] = []
    for path, number, line in _lines(paths):
        _raw, payload = _split(path, number, line)
        if b"depthUpdate" in payload:
            data = json.loads(payload)["data"]
            diffs.append(
                (
                    int(data["U"]),
                    int(data["u"]),
                    [(price(p), size(q)) for p, q in data["b"]],
                    [(price(p), size(q)) for p, q in data["a"]],
                )
            )
        elif snapshot is None and b"lastUpdateId" in payload:
            snapshot = json.loads(payload)
    if snapshot is None:
        raise RecordingFormatError("recording has no depth snapshot")
    seq = int(snapshot["lastUpdateId"])
    sequenced = [d for d in diffs if d[1] > seq]
    if not sequenced or not sequenced[0][0] <= seq + 1 <= sequenced[0][1]:
        raise RecordingFormatError(f"no diff bridges the snapshot at {seq}")
    for previous, current in itertools.pairwise(sequenced):
        if current[0] != previous[1] + 1:
            raise RecordingFormatError(f"gap between diffs {previous[1]} and {current[0]}")
    return IntRecording(
        price_increment=price_increment,
        size_increment=size_increment,
        snapshot_seq=seq,
        snapshot_bids=[(price(p), size(q)) for p, q in snapshot["bids"]],
        snapshot_asks=[(price(p), size(q)) for p, q in snapshot["asks"]],
        diffs=sequenced,
    )
