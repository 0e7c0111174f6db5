"""The compiled Binance reader (mmkit/_speedups/_binance.pyx) against its pure-Python twin, on the same input.

Each compiled step is compared with the pure step it replaces: the line scan
(``scan_text`` vs ``binance_lines._scan``), the book messages (``DepthRows``
vs ``json`` + ``_Parser._rows``, through :func:`parse_lines`, errors
included), the level tuples (``build_sides``), the cache write's columns
(``gather``), and, end to end, the events and the cache file's bytes of the
shared recording with ``MMKIT_PURE_PYTHON`` on and off. A compiled step that
took a line it should have left to the pure path, numbered a text
differently, or wrote one byte differently fails here.
"""

from __future__ import annotations

import gzip
import os
import random
from array import array
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from mmkit._speedups import ENV_PURE
from mmkit.backtest import binance_compiled
from mmkit.backtest.binance import (
    IDENTITY_CORRECTION,
    RecordingFormatError,
    clear_recording_cache,
    read_recording,
    recording_files,
)
from mmkit.backtest.binance_lines import _scan, scan_file
from mmkit.backtest.binance_markets import SPOT, RecordedInstrument, classify_diff
from mmkit.backtest.binance_parse import _Parser, build_sides, parse_lines
from mmkit.model import NS_PER_MS


@pytest.fixture
def compiled() -> ModuleType:
    module = binance_compiled.compiled_binance()
    assert module is not None, "mmkit._speedups._binance is not built (pip install -e . builds it)"
    return module


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    clear_recording_cache()
    yield
    clear_recording_cache()


def _pure(monkeypatch: pytest.MonkeyPatch, pure: bool) -> None:
    monkeypatch.setenv(ENV_PURE, "1" if pure else "0")


def test_pure_switch_selects_the_path(monkeypatch: pytest.MonkeyPatch, compiled: ModuleType) -> None:
    _pure(monkeypatch, True)
    assert binance_compiled.compiled_binance() is None
    assert _Parser("binance", "BTCUSDT", False)._fast is None
    _pure(monkeypatch, False)
    assert binance_compiled.compiled_binance() is compiled
    assert _Parser("binance", "BTCUSDT", False)._fast is not None


# --- the line scan -------------------------------------------------------------------------------------------------

DIFF = (b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255208,"s":"BTCUSDT",'
        b'"U":50093239189,"u":50093239202,"b":[["61737.63000000","0.00000000"]],"a":[["61837.64000000","1.5"]]}}')
TICKER = b'{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT","b":"1.00","B":"2","a":"1.01","A":"3"}}'
TRADE = (b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255300,"s":"BTCUSDT","t":1,"p":"61800.01000000",'
         b'"q":"0.00100000","T":1723161255299,"m":true,"M":true}}')

SCAN_TEXTS = {
    "plain": b"1723161253937085768 " + DIFF + b"\n1723161253937085769 " + TICKER + b"\n",
    "no final newline": b"1 " + TRADE,
    "blank and whitespace lines": b"\n  \n\t\r\n1 " + TRADE + b"\n\n",
    "crlf": b"5 " + DIFF + b"\r\n6 " + TRADE + b"\r\n",
    "E not followed by digits, then one that is": b'7 {"E":"x","a":1,"E":42}\n',
    "E with leading zeros": b'7 {"E":0042}\n',
    "E beyond 64 bits": b'7 {"E":99999999999999999999999}\n',
    "no E at all": b"8 {}\n",
    "stamp of 19 digits at the 64-bit edge": b"9223372036854775807 {}\n",
    "stamp beyond 64 bits": b"9223372036854775808 {}\n",
    "stamp with a sign": b"-5 {}\n",
    "no payload separator": b"12345\n",
    "leading space": b" 1 {}\n",
    "tab before the stamp in a whitespace line": b"\t \t\n3 {}\n",
    "ticker text inside the stamp-less part only": b'4 x@bookTicker"\n',
}


@pytest.mark.parametrize("name", list(SCAN_TEXTS))
@pytest.mark.parametrize("keep_all", [False, True])
def test_scan_text_matches_the_pure_scan(compiled: ModuleType, name: str, keep_all: bool) -> None:
    """Same lines and samples, or None where the pure scan must judge the text (it then raises or agrees)."""
    text = SCAN_TEXTS[name]
    path = Path(f"{name}.gz")
    try:
        expected: Any = _scan(path, enumerate(text.split(b"\n"), start=1), keep_all)
    except RecordingFormatError as exc:
        expected = exc
    got = compiled.scan_text(text, keep_all, NS_PER_MS)
    if isinstance(expected, RecordingFormatError):
        assert got is None, "the compiled scan accepted a line the pure scan refuses"
    elif got is not None:
        assert got == expected
    else:  # declined: numbers outside 64 bits (the pure scan reads them with Python ints), odd blank lines
        assert name in {"E beyond 64 bits", "stamp beyond 64 bits", "tab before the stamp in a whitespace line"}


def test_scan_file_names_a_bad_line_on_the_compiled_path(tmp_path: Path, compiled: ModuleType) -> None:
    path = tmp_path / "bad.gz"
    path.write_bytes(gzip.compress(b"1 " + TRADE + b"\nnot a stamp {}\n"))
    with pytest.raises(RecordingFormatError, match=r"bad\.gz:2: expected '<ns> <json>'"):
        scan_file(path, keep_tickers=False)


# --- book messages ---------------------------------------------------------------------------------------------------

def _diff(b: str = '[["61737.63000000","0.00000000"],["61730.17","1.00000000"]]', a: str = '[["61837.64","1.5"]]',
          symbol: str = "BTCUSDT", extra: str = "", stream: str = "btcusdt@depth@100ms") -> bytes:
    return (f'{{"stream":"{stream}","data":{{"e":"depthUpdate","E":1723161255208,"s":"{symbol}",'
            f'"U":50093239189,"u":50093239202{extra},"b":{b},"a":{a}}}}}').encode()


BOOK_PAYLOADS = {
    "diff": _diff(),
    "empty sides": _diff("[]", "[]"),
    "snapshot": b'{"lastUpdateId":50093239100,"bids":[["61737.63000000","0.5"]],"asks":[["61800.00","2.00000000"]]}',
    "snapshot with empty asks": b'{"lastUpdateId":7,"bids":[["1.00","0.5"]],"asks":[]}',
    "off-grid price": _diff('[["61737.631","1.0"]]'),
    "off-grid size": _diff(a='[["61837.64","0.000000001"]]'),
    "zero price": _diff('[["0.00","1.0"]]'),
    "zero size deletes": _diff('[["5.00","0.00000000"]]'),
    "exponent": _diff('[["6.1E+4","1.0"]]'),
    "leading zeros": _diff('[["0061737.63","01.5"]]'),
    "no fraction": _diff('[["61737","1"]]'),
    "trailing point": _diff('[["61737.","1.0"]]'),
    "leading point": _diff('[[".5","1.0"]]'),
    "two points": _diff('[["1.2.3","1.0"]]'),
    "empty number": _diff('[["","1.0"]]'),
    "negative": _diff('[["-1.00","1.0"]]'),
    "19 digits": _diff('[["1234567890123456.789","1.0"]]'),
    "spaces": _diff('[["1.00", "1.0"]]'),
    "three numbers in a level": _diff('[["1.00","1.0","2"]]'),
    "unquoted number": _diff("[[1.00,1.0]]"),
    "other symbol": _diff(symbol="ETHUSDT"),
    "futures diff in spot": _diff(extra=',"pu":50093239188'),
    "escape in the stream": _diff(stream="btcusdt@depth\\u0040100ms"),
    "not JSON": _diff()[:-1],
    "trailing bytes": _diff() + b" ",
    "trade": TRADE,
}


def _run(payload: bytes, pure: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    _pure(monkeypatch, pure)
    parser = _Parser("binance", "BTCUSDT", False, recorded=classify_diff({"s": "BTCUSDT"}))
    assert (parser._fast is None) == pure
    try:
        outcome: Any = parse_lines(Path("rec.gz"), [(3, 1_000, payload)], parser, IDENTITY_CORRECTION)
    except RecordingFormatError as exc:
        outcome = str(exc)
    tables = [(dict(t), list(t.units), list(map(str, t.decimals))) for t in (parser._prices, parser._sizes)]
    return outcome, tables


@pytest.mark.parametrize("name", list(BOOK_PAYLOADS))
def test_book_messages_parse_as_the_json_path_does(monkeypatch: pytest.MonkeyPatch, compiled: ModuleType,
                                                   name: str) -> None:
    """Same events (levels, integer pairs, texts) or the same error naming the file and line; same tables."""
    pure_outcome, pure_tables = _run(BOOK_PAYLOADS[name], True, monkeypatch)
    fast_outcome, fast_tables = _run(BOOK_PAYLOADS[name], False, monkeypatch)
    assert fast_outcome == pure_outcome
    if isinstance(pure_outcome, list):
        for ours, theirs in zip(fast_outcome, pure_outcome, strict=True):
            assert getattr(ours, "scaled", None) == getattr(theirs, "scaled", None)
        assert fast_tables == pure_tables
    else:
        assert pure_outcome.startswith("rec.gz:3: ")


def test_fast_path_takes_what_it_should(compiled: ModuleType) -> None:
    """The shapes the recorder writes are taken in C (else this speed-up would silently do nothing)."""
    parser = _Parser("binance", "BTCUSDT", False, recorded=RecordedInstrument(SPOT, "BTCUSDT"))
    assert parser._fast is not None
    for name in ("diff", "empty sides", "snapshot", "snapshot with empty asks", "off-grid price"):
        if name == "off-grid price":
            with pytest.raises(ValueError, match="finer than"):
                parser._fast(BOOK_PAYLOADS[name], 1)
        else:
            assert parser._fast(BOOK_PAYLOADS[name], 1) is not None, name
    for name in ("exponent", "spaces", "other symbol", "futures diff in spot", "trade", "not JSON"):
        assert parser._fast(BOOK_PAYLOADS[name], 1) is None, name


# --- level tuples and the cache's columns ------------------------------------------------------------------------

def test_build_sides_matches_the_pure_slices(compiled: ModuleType) -> None:
    rng = random.Random(7)
    decimals = [Decimal(f"{i}.{i % 100:02d}") for i in range(500)]
    units = [i * 100 + i % 100 for i in range(500)]
    lengths = [rng.choice([0, 0, 1, 3, 40]) for _ in range(300)]
    rows = [rng.randrange(500) for _ in range(sum(lengths))]
    sizes = [rng.randrange(500) for _ in rows]
    ours = compiled.build_sides(rows, sizes, lengths, decimals, decimals, units, units)
    theirs = build_sides(rows, sizes, lengths, decimals, decimals, units, units)
    assert ours == theirs
    empty = ()
    assert all(side is empty for side, n in zip(ours[0], lengths, strict=True) if n == 0)  # the shared empty tuple
    with pytest.raises(ValueError, match="do not match"):
        compiled.build_sides(rows, sizes, [*lengths, 1], decimals, decimals, units, units)


@pytest.mark.parametrize("typecode", ["I", "q"])
def test_gather_writes_the_bytes_array_writes(compiled: ModuleType, typecode: str) -> None:
    table = [5, 0, 2**31, 7] if typecode == "I" else [-(2**63), 2**63 - 1, 0, 3]
    groups = [[0, 1], [], [3, 2, 2], [1]]
    expected = array(typecode, (table[r] for g in groups for r in g)).tobytes()
    assert compiled.gather(typecode, table, groups) == expected


@pytest.mark.parametrize(("typecode", "value"), [("I", -1), ("I", 2**32), ("q", 2**63), ("q", -(2**63) - 1)])
def test_gather_refuses_what_array_refuses(compiled: ModuleType, typecode: str, value: int) -> None:
    with pytest.raises(OverflowError):
        array(typecode, [value])
    with pytest.raises(OverflowError):
        compiled.gather(typecode, [1, value], [[0, 1]])


# --- end to end on the shared recording --------------------------------------------------------------------------

@pytest.mark.shared_data
def test_shared_recording_same_events_and_cache_bytes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                      shared_data: Path, compiled: ModuleType) -> None:
    """Pure and compiled first reads: equal events, equal ScaledLevels, byte-identical cache entries."""
    paths = recording_files(shared_data / "binance_spot_btcusdt")
    results = {}
    for pure in (True, False):
        _pure(monkeypatch, pure)
        clear_recording_cache()
        cache = tmp_path / ("pure" if pure else "compiled")
        events = list(read_recording(paths, disk_cache=cache))
        (entry,) = cache.iterdir()
        results[pure] = (events, entry.read_bytes())
    (pure_events, pure_bytes), (fast_events, fast_bytes) = results[True], results[False]
    assert fast_events == pure_events
    assert [getattr(e, "scaled", None) for e in fast_events] == [getattr(e, "scaled", None) for e in pure_events]
    assert fast_bytes == pure_bytes
    assert os.environ[ENV_PURE] == "0"
