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

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from loguru import logger

from mmkit.backtest import recording_cache
from mmkit.backtest.binance_clock import (
    DEFAULT_MIN_LATENCY_NS,
    DEFAULT_WINDOW_NS,
    IDENTITY_CORRECTION,
    ClockCorrection,
    estimate_clock_correction,
    fit_correction,
)
from mmkit.backtest.binance_ints import IntLevels, IntRecording, load_int_recording
from mmkit.backtest.binance_lines import (
    PRICE_INCREMENT,
    SIZE_INCREMENT,
    SYMBOL,
    VENUE,
    Line,
    ReceiveTimeOrder,
    RecordingFormatError,
    detect_instrument,
    recording_files,
    scan_file,
)
from mmkit.backtest.binance_markets import SPOT, RecordedInstrument
from mmkit.backtest.binance_parse import RecordingEvent, TopOfBook, _Parser, parse_lines
from mmkit.gc_policy import gc_paused
from mmkit.model import BookDelta, BookSnapshot, Trade

__all__ = [
    "DEFAULT_MIN_LATENCY_NS",
    "DEFAULT_WINDOW_NS",
    "IDENTITY_CORRECTION",
    "PRICE_INCREMENT",
    "READER_VERSION",
    "SIZE_INCREMENT",
    "SYMBOL",
    "VENUE",
    "ClockCorrection",
    "IntLevels",
    "IntRecording",
    "RecordingEvent",
    "RecordingFormatError",
    "TopOfBook",
    "clear_recording_cache",
    "clear_recording_disk_cache",
    "detect_instrument",
    "estimate_clock_correction",
    "load_int_recording",
    "read_recording",
    "recording_files",
]


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
    parsers: list[_Parser] = []  # the parse's parser, whose level tables the cache write reuses
    for event in recording_cache.read_through(
        recording_cache.cache_directory(disk_cache),
        _disk_key(key, venue, symbol, with_tickers),
        _EVENT_TYPES,
        lambda: _read(paths, None, with_tickers, venue, symbol, freeze, recorded, parsers),
        freeze=freeze,
        source=lambda: parsers[0].level_source() if parsers else None,
    ):
        events.append(event)
        yield event
    _remember(key, events)  # only a recording read to its end gets here, so only that is kept


#: Bump whenever the parse changes the events a recording yields (fields, values, interning, clock fit):
#: it is part of the on-disk cache key, so entries written by an older reader are never served.
READER_VERSION = 5
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
    parsers: list[_Parser] | None = None,
) -> Iterator[RecordingEvent]:
    files: Iterable[tuple[Path, list[Line]]]
    if correction is None:
        # Decompressed and scanned once: the clock samples for the fit, the lines for the parse.
        with gc_paused(freeze=freeze):
            scanned = [(path, scan_file(path, with_tickers)) for path in paths]
        in_order = ReceiveTimeOrder()
        for path, (lines, _) in scanned:
            in_order.add(path, lines)  # before the clock fit: overlapping files would also skew it
        samples = [sample for _, (_, file_samples) in scanned for sample in file_samples]
        counts = [len(file_samples) for _, (_, file_samples) in scanned]
        correction = fit_correction(samples, paths, DEFAULT_MIN_LATENCY_NS, DEFAULT_WINDOW_NS, counts)
        files = [(path, lines) for path, (lines, _) in scanned]
    else:
        files = _in_order((path, scan_file(path, with_tickers)[0]) for path in paths)
    parse = _Parser(venue, symbol, with_tickers, recorded=recorded)
    if parsers is not None:
        parsers.append(parse)
    for path, lines in files:
        with gc_paused(freeze=freeze):
            events = parse_lines(path, lines, parse, correction)
            del lines  # the file's text is not needed once parsed
        yield from events


def _in_order(files: Iterable[tuple[Path, list[Line]]]) -> Iterator[tuple[Path, list[Line]]]:
    """``files`` as they are read, each checked to follow the previous in time (:class:`ReceiveTimeOrder`)."""
    in_order = ReceiveTimeOrder()
    for path, lines in files:
        in_order.add(path, lines)
        yield path, lines
