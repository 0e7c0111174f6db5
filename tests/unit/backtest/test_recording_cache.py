"""The on-disk recording cache: a later read loads what an earlier one parsed, and never a stale or damaged entry.

Small recordings are the first lines of each file of the shared recording,
copied into ``tmp_path``; one test round-trips the whole shared recording.
Each test points ``MMKIT_CACHE_DIR`` at its own directory.
"""

from __future__ import annotations

import gc
import gzip
import os
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from loguru import logger

from mmkit.backtest import binance, recording_cache, tardis
from mmkit.backtest.binance import (
    TopOfBook,
    clear_recording_cache,
    clear_recording_disk_cache,
    read_recording,
    recording_files,
)
from mmkit.backtest.recording_cache import CacheKey, atomic, cache_directory
from mmkit.model import BookDelta, BookSnapshot, ScaledLevels, Side, Trade

pytestmark = pytest.mark.shared_data

#: Lines taken from the start of each shared file: a snapshot (line 8 of the first), diffs, trades, tickers.
SMALL_LINES = 400


@pytest.fixture(autouse=True)
def _fresh_process_cache() -> Iterator[None]:
    clear_recording_cache()
    yield
    clear_recording_cache()


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "cache"
    monkeypatch.setenv("MMKIT_CACHE_DIR", str(directory))
    return directory


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    """The warnings logged (loguru) during the test."""
    messages: list[str] = []
    handler = logger.add(lambda message: messages.append(message.record["message"]), level="WARNING")
    yield messages
    logger.remove(handler)


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[Sequence[Path]]:
    """Every parse the reader starts (its ``_read``); a read served by a cache starts none."""
    calls: list[Sequence[Path]] = []
    real = binance._read

    def counting(paths: Sequence[Path], *args: Any) -> Iterator[binance.RecordingEvent]:
        calls.append(paths)
        return real(paths, *args)

    monkeypatch.setattr(binance, "_read", counting)
    return calls


def _head(source: Path, target: Path, lines: int) -> Path:
    with gzip.open(source, "rb") as handle:
        head = handle.read().split(b"\n")[:lines]
    with gzip.open(target, "wb") as handle:
        handle.write(b"\n".join(head) + b"\n")
    return target


@pytest.fixture
def small(shared_data: Path, tmp_path: Path) -> list[Path]:
    """A two-file recording: the first lines of each shared file."""
    directory = tmp_path / "recording"
    directory.mkdir()
    return [_head(f, directory / f.name, SMALL_LINES) for f in recording_files(shared_data / "binance_spot_btcusdt")]


def _read(paths: Sequence[Path], **options: Any) -> list[Any]:
    """A read as a new process would do it: nothing in the in-process cache."""
    clear_recording_cache()
    return list(read_recording(paths, **options))


def _fresh(paths: Sequence[Path], **options: Any) -> list[Any]:
    """A parse that no cache serves."""
    return _read(paths, disk_cache=False, **options)


def _decimals(events: Sequence[Any]) -> Iterator[Decimal]:
    for event in events:
        if isinstance(event, BookSnapshot | BookDelta):
            for price, qty in event.bids + event.asks:
                yield price
                yield qty
        elif isinstance(event, Trade):
            yield event.price
            yield event.qty
        elif isinstance(event, TopOfBook):
            yield from (event.bid_price, event.bid_qty, event.ask_price, event.ask_qty)


def _assert_same(loaded: Sequence[Any], parsed: Sequence[Any]) -> None:
    """Equal events, of the same classes, with the same ScaledLevels (not part of ==) and Decimal texts."""
    assert loaded == parsed
    assert [type(e) for e in loaded] == [type(e) for e in parsed]
    scaled = [(e.scaled, type(e.scaled)) for e in loaded if isinstance(e, BookSnapshot | BookDelta)]
    assert scaled == [(e.scaled, type(e.scaled)) for e in parsed if isinstance(e, BookSnapshot | BookDelta)]
    # == holds for 1.0 and 1.00; the texts must survive too (a book keys levels by value, a report prints them)
    assert list(map(str, _decimals(loaded))) == list(map(str, _decimals(parsed)))


def _assert_shared(events: Sequence[Any]) -> None:
    """Equal Decimal texts are one object, as the parser makes them."""
    by_text: dict[str, int] = {}
    for value in _decimals(events):
        assert by_text.setdefault(str(value), id(value)) == id(value), f"{value} is not shared"


def _entry(directory: Path) -> Path:
    (entry,) = directory.glob("*" + recording_cache.SUFFIX)
    return entry


# --------------------------------------------------------------------------
# Hits, misses and invalidation
# --------------------------------------------------------------------------


def test_second_read_is_loaded_from_disk_and_equals_a_fresh_parse(
    small: list[Path], cache_dir: Path, parses: list[Sequence[Path]]
) -> None:
    first = _read(small)
    assert len(parses) == 1
    entry = _entry(cache_dir)
    second = _read(small)
    assert len(parses) == 1, "the second read parsed again"
    assert all(a is not b for a, b in zip(first, second, strict=True))  # rebuilt, not the in-process objects
    fresh = _fresh(small)
    assert {type(e) for e in fresh} == {BookSnapshot, BookDelta, Trade}
    _assert_same(second, fresh)
    _assert_shared(second)
    assert _entry(cache_dir) == entry and entry.stat().st_size > 0


def _collected(events: Sequence[Any]) -> list[Any]:
    """Those of ``events`` that the cyclic collector would still walk (frozen objects are in no generation)."""
    walked = {id(obj) for obj in gc.get_objects()}
    return [event for event in events if id(event) in walked]


def test_events_are_frozen_out_of_the_collector_only_when_asked(small: list[Path], cache_dir: Path) -> None:
    try:
        gc.unfreeze()
        plain = _read(small)  # a parse, which writes the entry; nothing frozen by default
        assert gc.get_freeze_count() == 0 and _collected(plain)
        parsed = _read(small, disk_cache=False, freeze=True)
        assert parsed and not _collected(parsed), "parsed events left for the collector to walk"
        gc.unfreeze()
        assert _collected(parsed)  # the check above can fail
        loaded = _read(small, freeze=True)  # from disk
        assert all(a is not b for a, b in zip(parsed, loaded, strict=True))
        assert not _collected(loaded), "loaded events left for the collector to walk"
        gc.unfreeze()
        assert _read(small) == loaded and gc.get_freeze_count() == 0  # a plain disk load freezes nothing
    finally:
        gc.unfreeze()


def test_a_later_read_returns_what_the_entry_holds(small: list[Path], cache_dir: Path) -> None:
    """Prove the second read uses the file: loaded from a planted entry for the same key, it returns its events."""
    _read(small)
    clear_recording_cache()
    other = [BookDelta("binance", "BTCUSDT", 1, 2, ((Decimal("1.00"), Decimal("2")),), (), 3, 4)]
    key = binance._disk_key(binance._cache_key(small, binance.VENUE, binance.SYMBOL, False),
                            binance.VENUE, binance.SYMBOL, False)
    assert recording_cache.store(cache_dir, key, other, binance._EVENT_TYPES) == _entry(cache_dir)
    assert _read(small) == other


def test_whole_shared_recording_round_trips(shared_data: Path, cache_dir: Path, parses: list[Sequence[Path]]) -> None:
    files = recording_files(shared_data / "binance_spot_btcusdt")
    parsed = _read(files)
    loaded = _read(files)
    assert len(parses) == 1
    assert len(loaded) > 20_000
    _assert_same(loaded, parsed)
    _assert_shared(loaded)


def test_in_process_cache_stays_in_front(small: list[Path], cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = list(read_recording(small))

    def no_disk(*args: object) -> None:
        raise AssertionError("the disk was asked although the process holds the recording")

    monkeypatch.setattr(recording_cache, "load", no_disk)
    second = list(read_recording(small))
    assert all(a is b for a, b in zip(first, second, strict=True))


def test_rewritten_source_file_is_parsed_again(
    small: list[Path], cache_dir: Path, parses: list[Sequence[Path]], warnings: list[str]
) -> None:
    _read(small)
    _head(small[1], small[1], SMALL_LINES // 2)  # same name, other content
    stat = small[1].stat()
    os.utime(small[1], ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # even within one mtime tick
    again = _read(small)
    assert len(parses) == 2
    assert any("stale" in w for w in warnings)
    _assert_same(again, _fresh(small))
    _read(small)  # the entry was rewritten for the new content
    assert len(parses) == 3  # (the one above was _fresh)


def test_touched_source_file_is_parsed_again(
    small: list[Path], cache_dir: Path, parses: list[Sequence[Path]]
) -> None:
    _read(small)
    stat = small[0].stat()
    os.utime(small[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))  # content unchanged, mtime 1 ns later
    _read(small)
    assert len(parses) == 2


def test_file_replaced_by_a_copy_is_parsed_again(
    small: list[Path], cache_dir: Path, parses: list[Sequence[Path]], tmp_path: Path
) -> None:
    _read(small)
    copy = tmp_path / "copy.gz"
    copy.write_bytes(small[0].read_bytes())
    stat = small[0].stat()
    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size and mtime, other inode
    os.replace(copy, small[0])
    _read(small)
    assert len(parses) == 2


@pytest.mark.parametrize("constant", ["READER_VERSION", "FORMAT_VERSION"])
def test_version_bump_invalidates(
    small: list[Path], cache_dir: Path, parses: list[Sequence[Path]], warnings: list[str],
    monkeypatch: pytest.MonkeyPatch, constant: str,
) -> None:
    _read(small)
    module = binance if constant == "READER_VERSION" else recording_cache
    monkeypatch.setattr(module, constant, getattr(module, constant) + 1)
    again = _read(small)
    assert len(parses) == 2
    assert any("stale" in w and ("reader_version" in w or "format" in w) for w in warnings)
    _assert_same(again, _fresh(small))
    _read(small)
    assert len(parses) == 3  # rewritten under the new version: _fresh was the third parse, this read none


def test_options_get_their_own_entries(small: list[Path], cache_dir: Path, parses: list[Sequence[Path]]) -> None:
    plain = _read(small)
    tickers = _read(small, with_tickers=True)
    other_symbol = _read(small, symbol="ETHUSDT")
    assert len(list(cache_dir.glob("*" + recording_cache.SUFFIX))) == 3
    assert len(parses) == 3
    assert _read(small) == plain
    loaded = _read(small, with_tickers=True)
    assert any(isinstance(e, TopOfBook) for e in loaded)
    _assert_same(loaded, tickers)
    assert _read(small, symbol="ETHUSDT") == other_symbol
    assert len(parses) == 3


def test_explicit_correction_is_never_cached(small: list[Path], cache_dir: Path) -> None:
    _read(small, correction=binance.IDENTITY_CORRECTION)
    assert not cache_dir.exists()


# --------------------------------------------------------------------------
# Damaged entries
# --------------------------------------------------------------------------


def _flip(at: Callable[[bytes], int]) -> Callable[[bytes], bytes]:
    def damage(data: bytes) -> bytes:
        position = at(data)
        return data[:position] + bytes([data[position] ^ 0x01]) + data[position + 1 :]

    return damage


DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "truncated": lambda data: data[: len(data) // 2],
    "last byte cut": lambda data: data[:-1],
    "empty": lambda data: b"",
    "not an entry": lambda data: b"hello, not a cache entry",
    "bit flipped in the payload": _flip(lambda data: len(data) - 100),
    "bit flipped in the header": _flip(lambda data: 60),
    "bit flipped in the header length": _flip(lambda data: 16),
    "appended garbage": lambda data: data + b"\x00",
}


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_damaged_entry_is_ignored_and_rewritten(
    small: list[Path], cache_dir: Path, parses: list[Sequence[Path]], warnings: list[str],
    damage: Callable[[bytes], bytes],
) -> None:
    _read(small)
    entry = _entry(cache_dir)
    entry.write_bytes(damage(entry.read_bytes()))
    again = _read(small)
    assert len(parses) == 2
    assert any("ignoring" in w for w in warnings)
    _assert_same(again, _fresh(small))
    warnings.clear()
    assert _read(small) == again and len(parses) == 3  # _fresh was the third parse; this one loaded the rewrite
    assert not warnings


def test_decoding_error_is_a_miss(
    small: list[Path], cache_dir: Path, parses: list[Sequence[Path]], warnings: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whatever goes wrong while rebuilding events, the read goes on with a parse."""
    _read(small)

    def broken(*args: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(recording_cache.decoding._Decoder, "column", broken)
    _assert_same(_read(small), _fresh(small))
    assert len(parses) == 3
    assert any("ignoring" in w and "a bug" in w for w in warnings)


def test_encoding_error_does_not_fail_the_read(
    small: list[Path], cache_dir: Path, warnings: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(recording_cache, "encode_events", broken)
    _assert_same(_read(small), _fresh(small))
    assert any("not caching" in w and "a bug" in w for w in warnings)
    assert not cache_dir.exists()


# --------------------------------------------------------------------------
# Where it writes, and when it does not
# --------------------------------------------------------------------------


def test_unwritable_cache_dir_still_returns_correct_events(
    small: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, warnings: list[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("MMKIT_CACHE_DIR", str(blocker / "cache"))  # cannot be created, even by root
    events = _read(small)
    _assert_same(events, _fresh(small))
    assert any("cannot write" in w for w in warnings)
    assert blocker.read_text() == "not a directory"


def test_failed_write_leaves_no_temporary(
    small: list[Path], cache_dir: Path, monkeypatch: pytest.MonkeyPatch, warnings: list[str]
) -> None:
    def crash(source: object, target: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", crash)  # the one writer of entries and derived facts
    _assert_same(_read(small), _fresh(small))
    assert any("disk full" in w for w in warnings)
    assert list(cache_dir.iterdir()) == []


@pytest.mark.parametrize("value", ["off", "OFF", "0", "false", "none"])
def test_disabled_cache_writes_nothing(
    small: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parses: list[Sequence[Path]], value: str
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("MMKIT_CACHE_DIR", value)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "xdg"))
    _read(small)
    _read(small)
    assert len(parses) == 2
    assert list(home.iterdir()) == []


def test_disabled_by_parameter_writes_nothing(small: list[Path], cache_dir: Path) -> None:
    _read(small, disk_cache=False)
    assert not cache_dir.exists()


def test_explicit_directory_parameter(small: list[Path], cache_dir: Path, tmp_path: Path) -> None:
    _read(small, disk_cache=tmp_path / "elsewhere")
    assert _entry(tmp_path / "elsewhere")
    assert not cache_dir.exists()


def test_cache_directory_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MMKIT_CACHE_DIR", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_directory() == tmp_path / "mine"
    monkeypatch.setenv("MMKIT_CACHE_DIR", "")
    assert cache_directory() == tmp_path / "xdg" / "mmkit" / "recordings"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")  # ignored, as the XDG spec says
    assert cache_directory() == tmp_path / "home" / ".cache" / "mmkit" / "recordings"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.delenv("MMKIT_CACHE_DIR")
    assert cache_directory() == tmp_path / "home" / ".cache" / "mmkit" / "recordings"
    assert cache_directory(False) is None
    assert cache_directory(tmp_path / "given") == tmp_path / "given"


def test_the_test_suite_never_caches_under_home(recording_cache_dir: Path) -> None:
    assert cache_directory() == recording_cache_dir
    assert Path.home() not in recording_cache_dir.parents


def test_directory_is_private_and_entries_atomic(small: list[Path], cache_dir: Path) -> None:
    _read(small)
    assert cache_dir.stat().st_mode & 0o077 == 0
    assert [p.name for p in cache_dir.iterdir()] == [_entry(cache_dir).name]  # no temporary left


def test_clear_disk_cache_removes_entries_only(small: list[Path], cache_dir: Path) -> None:
    _read(small)
    _read(small, with_tickers=True)
    (cache_dir / "notes.txt").write_text("mine")
    assert clear_recording_disk_cache() == 2
    assert [p.name for p in cache_dir.iterdir()] == ["notes.txt"]
    assert clear_recording_disk_cache(cache_dir / "missing") == 0


# --------------------------------------------------------------------------
# The format on its own: exact round trips, and refusing what it cannot hold
# --------------------------------------------------------------------------

TYPES = (BookSnapshot, BookDelta, Trade, TopOfBook)
KEY = CacheKey(files=(("/nowhere", 1, 2, 3),), options={"reader": "test"}, reader_version=1)
SCALED = ScaledLevels(Decimal("0.01"), Decimal("1"), ((10000, 2),), ())


def _round_trip(tmp_path: Path, events: list[Any]) -> list[Any] | None:
    assert recording_cache.store(tmp_path, KEY, events, TYPES) is not None
    return recording_cache.load(tmp_path, KEY, TYPES)


def test_format_round_trips_mixed_events_exactly(tmp_path: Path) -> None:
    one, one_again = Decimal("1.0"), Decimal("1.00")  # equal, but different texts
    events: list[Any] = [
        BookDelta("v", "S", 1, 2, ((Decimal(100), one),), (), 5, 6, scaled=SCALED),
        BookDelta("v", "S", 3, 3, ((Decimal(100), one_again),), ((Decimal("1E+2"), Decimal("-0")),), 7, 8),
        Trade("v", "S", "t-1", one, one_again, None, 9, 10),
        Trade("v", "S", "", Decimal("-Infinity"), Decimal("0E-8"), Side.BUY, -(2**63), 2**63 - 1),
        BookSnapshot("v", "S", 9, (), (), 11, 12, checksum=None),
        TopOfBook("w", "S2", 4, one, one, one_again, Decimal(0), 13),
        BookDelta("v", "S", 4, 4, (), (), 14, 15, scaled=ScaledLevels(Decimal("0.01"), Decimal(1), (), ())),
    ]
    loaded = _round_trip(tmp_path, events)
    assert loaded is not None
    _assert_same(loaded, events)
    assert [str(p) for e in loaded[:2] for p, _ in e.bids] == ["100", "100"]


def test_nan_keeps_its_text(tmp_path: Path) -> None:
    loaded = _round_trip(tmp_path, [Trade("v", "S", "1", Decimal("NaN"), Decimal("-sNaN1"), None, 0, 0)])
    assert loaded is not None
    assert (str(loaded[0].price), str(loaded[0].qty)) == ("NaN", "-sNaN1")


def test_empty_recording_round_trips(tmp_path: Path) -> None:
    assert _round_trip(tmp_path, []) == []


@pytest.mark.parametrize(
    "event",
    [
        BookDelta("v", "S", 1, 2**64, (), (), 0, 0),  # beyond 64 bits
        BookDelta("v", "S", 1, 2, [(Decimal(1), Decimal(1))], (), 0, 0),  # type: ignore[arg-type]  # list
        BookDelta("v", "S", 1, 2, ((1.5, Decimal(1)),), (), 0, 0),  # type: ignore[arg-type]  # float
        BookDelta("v", "S", 1, 2, ((Decimal(1), Decimal(1)),), (), 0, 0,  # scaled does not match the levels
                  scaled=ScaledLevels(Decimal("0.01"), Decimal(1), (), ())),
        Trade("v", "S", "a\nb", Decimal(1), Decimal(1), None, 0, 0),  # newline in a text
        Trade("v", "S", "1", Decimal(1), Decimal(1), "BUY", 0, 0),  # type: ignore[arg-type]  # str among constants
        "not an event",
    ],
)
def test_what_the_format_cannot_hold_is_not_written(tmp_path: Path, event: Any, warnings: list[str]) -> None:
    good = Trade("v", "S", "1", Decimal(1), Decimal(1), None, 0, 0)
    assert recording_cache.store(tmp_path, KEY, [good, event], TYPES) is None
    assert any("not caching" in w for w in warnings)
    assert list(tmp_path.iterdir()) == []


def test_other_key_or_types_do_not_load(tmp_path: Path) -> None:
    events = [Trade("v", "S", "1", Decimal(1), Decimal(1), None, 0, 0)]
    assert recording_cache.store(tmp_path, KEY, events, TYPES) is not None
    assert recording_cache.load(tmp_path, KEY, TYPES) == events
    assert recording_cache.load(tmp_path, KEY, (BookSnapshot, BookDelta, Trade)) is None
    touched = CacheKey(files=(("/nowhere", 1, 2, 4),), options=KEY.options, reader_version=1)
    assert touched.identity() == KEY.identity()  # the same entry, found stale
    assert recording_cache.load(tmp_path, touched, TYPES) is None


# --------------------------------------------------------------------------
# Tardis CSV uses the same cache
# --------------------------------------------------------------------------

TARDIS_BOOK = """exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount
binance,BTCUSDT,1000,1500,true,ask,100.2,1
binance,BTCUSDT,1000,1500,true,bid,99.9,3
binance,BTCUSDT,2000,2600,false,bid,99.90,0
binance,BTCUSDT,2000,2600,false,bid,99.95,1.5
"""
TARDIS_TRADES = """exchange,symbol,timestamp,local_timestamp,id,side,price,amount
binance,BTCUSDT,1900,2000,t1,sell,99.9,0.4
binance,BTCUSDT,3300,3400,t2,unknown,100.2,0.1
"""


@pytest.fixture
def tardis_files(tmp_path: Path) -> tuple[Path, Path]:
    book, trades = tmp_path / "incremental_book_L2.csv", tmp_path / "trades.csv.gz"
    book.write_text(TARDIS_BOOK)
    with gzip.open(trades, "wt", encoding="utf-8") as handle:
        handle.write(TARDIS_TRADES)
    return book, trades


def test_tardis_second_read_is_loaded_from_disk(
    tardis_files: tuple[Path, Path], cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    book, trades = tardis_files
    first = list(tardis.read_tardis(book, trades))
    assert {type(e) for e in first} == {BookSnapshot, BookDelta, Trade}
    assert _entry(cache_dir)

    def no_parse(path: Path) -> None:
        raise AssertionError("parsed again")

    monkeypatch.setattr(tardis, "read_tardis_book", no_parse)
    monkeypatch.setattr(tardis, "read_tardis_trades", no_parse)
    second = list(tardis.read_tardis(book, trades))
    _assert_same(second, first)
    delta = next(e for e in second if isinstance(e, BookDelta))
    assert str(delta.bids[0][0]) == "99.90"  # the text, not just the value
    with pytest.raises(AssertionError, match="parsed again"):  # the book alone is another entry
        list(tardis.read_tardis(book))


def test_tardis_changed_file_is_parsed_again(tardis_files: tuple[Path, Path], cache_dir: Path) -> None:
    book, trades = tardis_files
    list(tardis.read_tardis(book, trades))
    book.write_text(TARDIS_BOOK + "binance,BTCUSDT,4000,4600,false,ask,100.2,0\n")
    again = list(tardis.read_tardis(book, trades))
    _assert_same(again, list(tardis.read_tardis(book, trades, disk_cache=False)))
    assert len(again) == 5


def test_tardis_partial_read_is_not_cached(tardis_files: tuple[Path, Path], cache_dir: Path) -> None:
    reader = tardis.read_tardis(*tardis_files)
    next(reader)
    assert not cache_dir.exists()


def test_instances_skip_init_only_where_init_could_not_differ(tmp_path: Path) -> None:
    """Plain attrs slots classes are rebuilt without ``__init__``; a converter or hook means the constructor."""

    def tenths(value: Decimal) -> Decimal:
        return value.quantize(Decimal("0.1"))

    @attrs.frozen
    class Converted:
        qty: Decimal = attrs.field(converter=tenths)

    @attrs.frozen
    class Hooked:
        qty: Decimal

        def __attrs_post_init__(self) -> None:
            calls.append(self.qty)

    calls: list[Decimal] = []
    assert recording_cache.decoding._slot_setters(Trade) is not None
    assert recording_cache.decoding._slot_setters(Converted) is None
    assert recording_cache.decoding._slot_setters(Hooked) is None
    for cls in (Converted, Hooked):
        events = [cls(Decimal("1.0")), cls(Decimal("2.0"))]
        assert recording_cache.store(tmp_path, KEY, events, (cls,)) is not None
        assert recording_cache.load(tmp_path, KEY, (cls,)) == events
    assert calls == [Decimal("1.0"), Decimal("2.0")] * 2  # built, then rebuilt through __init__


def test_a_read_stopped_early_writes_no_entry(small: list[Path], cache_dir: Path) -> None:
    clear_recording_cache()
    events = read_recording(small)
    first = [next(events) for _ in range(5)]
    events.close()  # as load_events does when --to is reached
    assert len(first) == 5
    assert not cache_dir.exists() or not list(cache_dir.glob("*" + recording_cache.SUFFIX))
    assert len(_read(small)) > 5  # the whole read then writes it
    assert list(cache_dir.glob("*" + recording_cache.SUFFIX))
