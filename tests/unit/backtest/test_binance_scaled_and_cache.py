"""The Binance reader's pre-scaled integer levels and its in-process cache of parsed recordings."""

from __future__ import annotations

import gzip
import os
from collections.abc import Generator, Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from mmkit.backtest.binance import (
    IDENTITY_CORRECTION,
    PRICE_INCREMENT,
    SIZE_INCREMENT,
    RecordingFormatError,
    clear_recording_cache,
    read_recording,
)
from mmkit.model import BookDelta, BookSnapshot, ScaledLevels

DELTA = (
    b'1000000000 {"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":999,"s":"BTCUSDT","U":5,"u":7,'
    b'"b":[["100.01000000","1.50000000"],["99.99000000","0.00000001"]],"a":[["100.02000000","0.00000000"]]}}'
)
SNAPSHOT = b'1000000200 {"lastUpdateId":6,"bids":[["100.00000000","1.00000000"]],"asks":[["100.03","2"]]}'


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    clear_recording_cache()
    yield
    clear_recording_cache()


def _write(path: Path, lines: list[bytes]) -> Path:
    with gzip.open(path, "wb") as handle:
        handle.write(b"\n".join(lines) + b"\n")
    return path


def _book_events(path: Path) -> list[BookDelta | BookSnapshot]:
    events = list(read_recording([path], correction=IDENTITY_CORRECTION))
    return [e for e in events if isinstance(e, BookDelta | BookSnapshot)]


def _as_ints(levels: tuple[tuple[Decimal, Decimal], ...]) -> tuple[tuple[int, int], ...]:
    return tuple((int(p / PRICE_INCREMENT), int(q / SIZE_INCREMENT)) for p, q in levels)


def test_scaled_levels_match_the_decimal_levels(tmp_path: Path) -> None:
    for event in _book_events(_write(tmp_path / "rec.gz", [DELTA, SNAPSHOT])):
        scaled = event.scaled
        assert scaled is not None
        assert (scaled.price_increment, scaled.size_increment) == (PRICE_INCREMENT, SIZE_INCREMENT)
        assert scaled.bids == _as_ints(event.bids) and scaled.asks == _as_ints(event.asks)
    delta = _book_events(tmp_path / "rec.gz")[0]
    assert delta.scaled is not None and delta.scaled.bids == ((10001, 150_000_000), (9999, 1))


@pytest.mark.parametrize(
    ("price", "size", "reason"),
    [
        ("100.015", "1.0", r"price 100\.015 is finer than the recording's price increment 0\.01"),
        ("100.01", "0.000000001", r"size 0\.000000001 is finer than the recording's size increment 1E-8"),
        ("100.01", "-1.0", r"size -1\.0 must be at least 0"),
        ("0.00", "1.0", r"price 0\.00 must be above 0"),
        ("NaN", "1.0", r"price NaN is not a finite number"),
        ("abc", "1.0", r"price 'abc' is not a decimal number"),
    ],
)
def test_anything_off_the_grid_or_malformed_stops_the_read_naming_file_and_line(
    tmp_path: Path, price: str, size: str, reason: str
) -> None:
    """The books replay on the recording's grid: a level off it (or not a number) is refused, never rounded."""
    line = (
        b'1 {"stream":"btcusdt@depth@100ms","data":{"E":1,"U":1,"u":1,"b":[["'
        + price.encode() + b'","' + size.encode() + b'"]],"a":[]}}'
    )
    path = _write(tmp_path / "rec.gz", [DELTA, line])
    with pytest.raises(RecordingFormatError, match=r"rec\.gz:2: .*" + reason):
        _book_events(path)


def test_a_number_must_be_quoted_and_a_level_a_pair(tmp_path: Path) -> None:
    for levels in (b'[["100.01", 1.5]]', b'[["100.01"]]', b'[["100.01","1","2"]]', b'["100.01"]', b'{}'):
        line = b'1 {"stream":"btcusdt@depth@100ms","data":{"E":1,"U":1,"u":1,"b":' + levels + b',"a":[]}}'
        with pytest.raises(RecordingFormatError, match=r"rec\.gz:1: "):
            _book_events(_write(tmp_path / "rec.gz", [line]))


def test_exponent_notation_is_scaled_by_value(tmp_path: Path) -> None:
    line = b'1 {"stream":"btcusdt@depth@100ms","data":{"E":1,"U":1,"u":1,"b":[["1E+2","5E-8"]],"a":[]}}'
    (delta,) = _book_events(_write(tmp_path / "rec.gz", [line]))
    assert delta.scaled is not None and delta.scaled.bids == ((10000, 5),)


def test_scaled_levels_are_not_part_of_equality() -> None:
    plain = BookDelta("v", "S", 1, 1, ((Decimal(1), Decimal(2)),), (), 0, 0)
    scaled = BookDelta("v", "S", 1, 1, ((Decimal(1), Decimal(2)),), (), 0, 0,
                       scaled=ScaledLevels(Decimal("0.01"), Decimal(1), ((100, 2),), ()))
    assert plain == scaled and hash(plain) == hash(scaled)
    assert "scaled" not in repr(scaled)


def test_second_read_is_served_from_the_cache(tmp_path: Path) -> None:
    path = _write(tmp_path / "rec.gz", [DELTA, SNAPSHOT])
    first = list(read_recording([path]))
    second = list(read_recording([path]))
    assert first == second
    assert all(a is b for a, b in zip(first, second, strict=True))  # not parsed again


def test_a_rewritten_file_is_parsed_again(tmp_path: Path) -> None:
    path = _write(tmp_path / "rec.gz", [DELTA, SNAPSHOT])
    first = list(read_recording([path]))
    _write(path, [DELTA])
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # even within one mtime tick
    second = list(read_recording([path]))
    assert len(first) == 2 and len(second) == 1


def test_an_explicit_correction_or_a_partial_read_is_not_cached(tmp_path: Path) -> None:
    path = _write(tmp_path / "rec.gz", [DELTA, SNAPSHOT])
    reader = read_recording([path])
    assert isinstance(reader, Generator)
    first = next(reader)
    reader.close()  # stopped early: nothing kept
    again = list(read_recording([path]))
    assert again[0] == first and again[0] is not first
    fixed = list(read_recording([path], correction=IDENTITY_CORRECTION))
    assert fixed[0] is not again[0]
