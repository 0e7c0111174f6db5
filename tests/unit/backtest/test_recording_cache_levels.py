"""The cache write with the reader's level rows (LevelSource): the same entry content as without, or no use of it."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from mmkit.backtest import binance, recording_cache
from mmkit.backtest.binance import clear_recording_cache, read_recording
from mmkit.backtest.binance_parse import _Parser
from mmkit.backtest.recording_cache import CacheKey, LevelSource
from mmkit.backtest.recording_cache.encoding import _Encoder
from mmkit.model import BookDelta, ScaledLevels, Trade
from mmkit.testing.binance_recordings import synthetic_recording

TYPES = binance._EVENT_TYPES
KEY = CacheKey(files=(("/nowhere", 1, 2, 3),), options={"reader": "test"}, reader_version=1)


def _parsed(tmp_path: Path) -> tuple[list[Any], _Parser]:
    paths = synthetic_recording("spot", seconds=20).write(tmp_path / "rec", parts=2)
    parsers: list[_Parser] = []
    events = list(binance._read(paths, None, False, "binance", "BTCUSDT", False, None, parsers))
    return events, parsers[0]


def test_the_reader_s_rows_give_the_same_columns_as_numbering_the_levels(tmp_path: Path) -> None:
    events, parser = _parsed(tmp_path)
    # The Decimal table may be numbered in another order: compare what each entry decodes to.
    directory = tmp_path / "cache"
    directory.mkdir()
    for index, source in enumerate((parser.level_source(), None)):
        key = CacheKey(files=(("/nowhere", 1, 2, index),), options={"reader": "test", "n": index}, reader_version=1)
        assert recording_cache.store(directory, key, events, TYPES, source) is not None
        loaded = recording_cache.load(directory, key, TYPES)
        assert loaded == events
        scaled = [e.scaled for e in loaded if isinstance(e, BookDelta)]
        assert scaled == [e.scaled for e in events if isinstance(e, BookDelta)]
        assert [str(p) for e in loaded if isinstance(e, BookDelta) for p, _ in e.bids] == [
            str(p) for e in events if isinstance(e, BookDelta) for p, _ in e.bids
        ]


def test_rows_are_used_for_the_very_tuples_they_describe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A levels tuple equal to one the reader made, but another object, takes the general path."""
    events, parser = _parsed(tmp_path)
    used: list[bool] = []
    real = _Encoder.known_levels

    def counting(self: _Encoder, values: list[Any], scaled: list[Any] | None) -> dict[str, Any] | None:
        column = real(self, values, scaled)
        used.append(column is not None)
        return column

    monkeypatch.setattr(_Encoder, "known_levels", counting)
    recording_cache.encoding.encode_events(events, TYPES, parser.level_source())
    assert used and all(used)
    used.clear()
    delta = next(e for e in events if isinstance(e, BookDelta) and e.bids)
    copy = BookDelta(delta.venue, delta.symbol, delta.first_seq, delta.seq, tuple(list(delta.bids)), delta.asks,
                     delta.ts_event, delta.ts_recv, scaled=delta.scaled)
    assert copy == delta and copy.bids is not delta.bids
    changed = [copy if e is delta else e for e in events]
    directory = tmp_path / "cache"
    assert recording_cache.store(directory, KEY, changed, TYPES, parser.level_source()) is not None
    assert used == [True, True, False, True]  # snapshot bids, asks; delta bids: not the reader's tuple; delta asks
    assert recording_cache.load(directory, KEY, TYPES) == changed


def test_rows_that_lie_are_not_trusted_for_other_pairs(tmp_path: Path) -> None:
    """ScaledLevels pairs that are not the ones the reader made with the levels: the general path keeps them."""
    events, parser = _parsed(tmp_path)
    delta = next(e for e in events if isinstance(e, BookDelta) and e.bids and e.scaled is not None)
    assert delta.scaled is not None
    other = ScaledLevels(delta.scaled.price_increment, delta.scaled.size_increment,
                         tuple((p + 1, q) for p, q in delta.scaled.bids), delta.scaled.asks)
    forged = BookDelta(delta.venue, delta.symbol, delta.first_seq, delta.seq, delta.bids, delta.asks,
                       delta.ts_event, delta.ts_recv, scaled=other)
    changed = [forged if e is delta else e for e in events]
    directory = tmp_path / "cache"
    assert recording_cache.store(directory, KEY, changed, TYPES, parser.level_source()) is not None
    loaded = recording_cache.load(directory, KEY, TYPES)
    assert loaded is not None
    back = loaded[changed.index(forged)]
    assert back.scaled == other  # what the event held, not what the rows would say


def test_a_read_writes_the_entry_through_the_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = synthetic_recording("usdm", seconds=10).write(tmp_path / "rec")
    sources: list[LevelSource | None] = []
    real = recording_cache.store

    def recording(*args: Any) -> Any:
        sources.append(args[4] if len(args) > 4 else None)
        return real(*args)

    monkeypatch.setattr(recording_cache, "store", recording)
    clear_recording_cache()
    first = list(read_recording(paths, disk_cache=tmp_path / "cache"))
    assert len(sources) == 1 and isinstance(sources[0], LevelSource)
    clear_recording_cache()
    again = list(read_recording(paths, disk_cache=tmp_path / "cache"))
    assert again == first and len(sources) == 1  # loaded, not parsed and written again
    assert any(isinstance(e, Trade) for e in again)
    assert all(e.scaled is not None for e in again if isinstance(e, BookDelta))
    assert all(isinstance(p, Decimal) for e in again if isinstance(e, BookDelta) for p, _ in e.bids)


def test_an_entry_under_a_reused_id_is_not_trusted(tmp_path: Path) -> None:
    """Rows found under a tuple's id but made for another tuple (an id reused) are ignored, not written.

    The event here holds the other tuple's integer pairs, so only the check on the levels tuple itself
    stands between the entry and a write of the wrong Decimal levels.
    """
    events, parser = _parsed(tmp_path)
    source = parser.level_source()
    deltas = [e for e in events if isinstance(e, BookDelta) and e.scaled is not None and len(e.bids) > 1]
    victim = deltas[0]
    other = next(e for e in deltas[1:] if len(e.bids) == len(victim.bids) and e.bids != victim.bids)
    assert victim.scaled is not None and other.scaled is not None
    scaled = ScaledLevels(victim.scaled.price_increment, victim.scaled.size_increment, other.scaled.bids,
                          victim.scaled.asks)
    copy = BookDelta(victim.venue, victim.symbol, victim.first_seq, victim.seq, tuple(list(victim.bids)),
                     victim.asks, victim.ts_event, victim.ts_recv, scaled=scaled)
    sides = dict(source.sides)
    sides[id(copy.bids)] = sides[id(other.bids)]  # as if the id had been the other tuple's
    lying = LevelSource(source.price_decimals, source.size_decimals, source.price_units, source.size_units, sides)
    changed = [copy if e is victim else e for e in events]
    directory = tmp_path / "cache"
    assert recording_cache.store(directory, KEY, changed, TYPES, lying) is not None
    loaded = recording_cache.load(directory, KEY, TYPES)
    assert loaded == changed
    back = loaded[changed.index(copy)]
    assert back.bids == victim.bids and back.scaled == scaled
