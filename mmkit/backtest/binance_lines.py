"""Binance recording files: finding them, reading their lines, naming the market they hold.

A recording is a directory of gzip files (``<local ns> <raw JSON>`` per
line), read in name order. This module decompresses a file in one call,
splits it into numbered lines, and refuses damaged input (missing, not gzip,
truncated, empty, a line without its stamp) with a
:class:`RecordingFormatError` naming the file (and line). It also reads the
first depth diff to say which market and symbol the recording holds
(:mod:`mmkit.backtest.binance_markets`).
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from itertools import pairwise
from pathlib import Path

from mmkit.backtest.binance_compiled import compiled_binance
from mmkit.backtest.binance_markets import SPOT, RecordedInstrument, classify_diff
from mmkit.model import NS_PER_MS

#: Labels of the shared spot recording (the reader itself takes venue and symbol from the data).
VENUE = "binance"
SYMBOL = "BTCUSDT"
#: Finest resolutions seen in the BTCUSDT recording (tick 0.01; sizes are printed with 8 decimals).
PRICE_INCREMENT = Decimal("0.01")
SIZE_INCREMENT = Decimal("0.00000001")


class RecordingFormatError(ValueError):
    """A recording (or one of its lines) could not be understood; names the file (and line)."""



def recording_files(directory: Path) -> list[Path]:
    """The ``*.gz`` files of a recording directory, in the order they follow each other (by name)."""
    files = sorted(directory.glob("*.gz"))
    if not files:
        raise FileNotFoundError(f"{directory}: no *.gz recording files in this directory")
    return files


def _file_lines(path: Path) -> list[bytes]:
    """One file's lines (see :func:`_file_text`)."""
    return _file_text(path).split(b"\n")


def _file_text(path: Path) -> bytes:
    """One file's text, decompressed in one call (every gzip member, CRC and length checked).

    Why not ``for line in gzip.open(...)``: per-line ``readline`` on a gzip
    stream cost more than the decompression itself (~0.7 s per pass over the
    shared recording); one ``decompress`` (not ``gzip.open(...).read()``, which
    decompresses in hundreds of chunks and joins them) is a few hundredths.
    A recording file is tens of MB decompressed, which is fine to hold.
    """
    try:
        data = gzip.decompress(path.read_bytes())
    except FileNotFoundError as exc:
        raise RecordingFormatError(f"{path}: no such recording file") from exc
    except (OSError, EOFError, zlib.error) as exc:  # not gzip, truncated, corrupt
        raise RecordingFormatError(f"{path}: not a readable gzip recording ({_why(exc)})") from exc
    if not data or data.isspace():  # not ``strip()``: that would copy the whole text to test it
        raise RecordingFormatError(f"{path}: empty recording file")
    return data


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



_DECODE = json.JSONDecoder().decode

#: The exchange time of a message (its first ``"E":``), read without decoding the JSON.
EXCHANGE_TIME = re.compile(rb'"E":(\d+)')
#: What marks a ``bookTicker`` line (3 of 4 lines of the shared spot recording).
BOOK_TICKER = b'@bookTicker"'

#: One kept line: (line number, raw local ns, JSON payload).
Line = tuple[int, int, bytes]
#: One clock sample: (raw local ns, raw local ns - exchange ns).
Sample = tuple[int, int]


#: How far back a local receive stamp may step (within a file, or from one file to the next) and still be
#: jitter of the recorder (several streams stamped apart, written by one writer); a longer step is its clock
#: stepped back, or files that overlap, and the read refuses it.
MAX_STEP_BACK_NS = 1_000_000_000


class ReceiveTimeOrder:
    """Checks, file after file, that a recording goes forward in time (local receive stamps), as it is read.

    Why: everything after the read assumes receive-time order (the replay
    delivers each event when the clock reaches its stamp, the clock fit
    takes the stamps as a line, ``load_events`` stops at the first event
    past ``--to``). Two ways it went back, both silent before:

    * files that overlap: the same file copied in twice, or ``part10.gz``
      sorted before ``part9.gz`` (a directory is read in name order). The
      replay ran to the last file's end and never delivered the events in
      between; the backtest reported a shorter run, exit 0;
    * the recorder's clock stepped back inside a file (an NTP step, a
      restored VM): the events after the step were delivered in a burst, the
      book jumping over the stepped time, and the clock fit, a line through
      the fastest messages, was pulled by the step for the whole recording.

    A step back of up to :data:`MAX_STEP_BACK_NS` is jitter and passes; a
    longer one is refused with :class:`RecordingFormatError` naming the
    file (and line, or the file read before it) and both times, before
    anything runs.
    """

    def __init__(self) -> None:
        self._previous: tuple[Path, int] | None = None

    def add(self, path: Path, lines: Sequence[Line]) -> None:
        """The next file in reading order (its kept lines); raises :class:`RecordingFormatError` if it goes back."""
        if not lines:
            return  # nothing that the replay plays: it cannot break the order
        first = lines[0][1]
        if self._previous is not None:
            earlier, ended = self._previous
            if first < ended - MAX_STEP_BACK_NS:
                raise RecordingFormatError(
                    f"{path}: starts at {_utc(first)} (local receive time), before {earlier.name}, read before it, "
                    f"ends ({_utc(ended)}): the files overlap or are out of order. A recording's files are read "
                    "in name order as one stream: rename them so that name order is time order (part02 before "
                    "part10), and remove any file that repeats another")
        stamps = [line[1] for line in lines]
        floor = MAX_STEP_BACK_NS
        in_order = stamps == sorted(stamps)  # the usual case, at C speed (timsort on a sorted list is one pass)
        if not in_order and any(later < earlier - floor for earlier, later in pairwise(stamps)):
            at = next(i for i in range(1, len(stamps)) if stamps[i] < stamps[i - 1] - floor)
            raise RecordingFormatError(
                f"{path}:{lines[at][0]}: the local receive time steps back "
                f"{(stamps[at - 1] - stamps[at]) / 1e9:.3f} s, from {_utc(stamps[at - 1])} (line {lines[at - 1][0]}) "
                f"to {_utc(stamps[at])}: the recorder's clock was set back while it recorded, and the replay "
                "cannot tell when these messages arrived. Cut the file at that line, or record again")
        self._previous = (path, stamps[-1] if in_order else max(stamps))  # within the jitter, the latest


def _utc(ns: int) -> str:
    """:func:`mmkit.backtest.health.utc_text`, imported only when a refusal is worded (not on every read)."""
    from mmkit.backtest.health import utc_text

    return utc_text(ns)


def scan_file(path: Path, keep_tickers: bool) -> tuple[list[Line], list[Sample]]:
    """One file's lines to parse, and its clock samples, in file order, from one decompression.

    Every non-blank line must be ``<ns> <json>`` (else :class:`RecordingFormatError`
    naming the line). ``bookTicker`` lines are dropped unless ``keep_tickers``
    (their JSON is never decoded then); every line with an ``"E":`` gives a
    sample for the clock fit, tickers included, whether kept or not.

    Why one plain loop: this runs once per line of a recording (100k lines in
    the shared one, three quarters of them tickers), so it does only a
    partition, a digit check and two substring tests per line; building a
    tuple per line through generators cost a quarter of the whole first read.
    (Checking the tickers in bulk with C-level ``map`` measured no faster.)
    The compiled twin (``mmkit._speedups._binance.scan_text``) goes further:
    it walks the text without a bytes object per line, so a dropped ticker
    line is never copied.
    """
    data = _file_text(path)
    compiled = compiled_binance()
    if compiled is not None:
        scanned: tuple[list[Line], list[Sample]] | None = compiled.scan_text(data, keep_tickers, NS_PER_MS)
        if scanned is not None:  # None: a line it does not take, for the pure scan to judge (and name)
            return scanned
    return _scan(path, enumerate(data.split(b"\n"), start=1), keep_all=keep_tickers)


def _scan(path: Path, numbered: Iterable[tuple[int, bytes]], keep_all: bool) -> tuple[list[Line], list[Sample]]:
    """The per-line loop of :func:`scan_file` over ``(number, line)``; ``keep_all`` False drops tickers."""
    kept: list[Line] = []
    samples: list[Sample] = []
    keep, sample = kept.append, samples.append
    search = EXCHANGE_TIME.search
    ticker, exchange_time = BOOK_TICKER, b'"E":'
    for number, line in numbered:
        stamp, sep, payload = line.partition(b" ")
        if not sep or not stamp.isdigit():
            if line.strip():
                raise RecordingFormatError(f"{path}:{number}: expected '<ns> <json>', got {line[:80]!r}")
            continue
        raw = int(stamp)
        if exchange_time in payload:
            match = search(payload)
            if match is not None:
                sample((raw, raw - int(match.group(1)) * NS_PER_MS))
        if keep_all or ticker not in payload:
            keep((number, raw, payload))
    return kept, samples
