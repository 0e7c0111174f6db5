"""Facts derived from a recording (file notes, taker fit) cached beside its parse: exact, and never stale.

Each input of a key is changed in turn and must miss: a key that forgot one
would serve a fit or a note computed from something else.
"""

from __future__ import annotations

import gzip
import json
import os
from decimal import Decimal
from pathlib import Path

import attrs
import pytest

from mmkit.app import simulated
from mmkit.app.backtest_cmd import load_events, recording_fit_store, recording_notes, run_backtest
from mmkit.app.simulated import REFERENCE_SIZE, REFERENCE_TICK, fit_recorded_tape
from mmkit.backtest import recording_cache
from mmkit.backtest.binance import detect_instrument
from mmkit.backtest.continuity import describe_files
from mmkit.backtest.recording_cache import atomic
from mmkit.backtest.recording_cache.derived import DERIVED_SUFFIX, DerivedKey, load_derived, store_derived
from mmkit.model import NS_PER_S
from mmkit.sim.calibration import TapeFit, TapePrint, fit_tape
from mmkit.testing.binance_recordings import synthetic_recording
from strategies.simple import SimpleConfig, SimpleController

GRID = (REFERENCE_TICK, REFERENCE_SIZE)


def _key(files: tuple[tuple[str, int, int, int], ...] = (("/r/a.gz", 10, 20, 30),), **changes: object) -> DerivedKey:
    base = DerivedKey("tape_fit", 1, files, {"window": [1, 2]})
    return attrs.evolve(base, **changes)  # type: ignore[arg-type]


def test_a_stored_value_loads_back_and_every_part_of_the_key_misses(tmp_path: Path) -> None:
    key = _key()
    store_derived(tmp_path, key, {"x": [1.5, "0.00098000"]})
    assert load_derived(tmp_path, key) == {"x": [1.5, "0.00098000"]}
    others = [
        _key(kind="file_notes"),
        _key(version=2),
        _key(params={"window": [1, 3]}),
        _key(files=(("/r/b.gz", 10, 20, 30),)),
        _key(files=(("/r/a.gz", 11, 20, 30),)),  # size
        _key(files=(("/r/a.gz", 10, 21, 30),)),  # mtime
        _key(files=(("/r/a.gz", 10, 20, 31),)),  # inode
    ]
    for other in others:
        assert load_derived(tmp_path, other) is None, other
    assert load_derived(None, key) is None and store_derived(None, key, 1) is None  # caching off


def test_a_stale_key_in_the_entry_itself_is_a_miss_even_under_the_same_name(tmp_path: Path) -> None:
    """Same name (paths and params), other stamps: the full key stored inside decides."""
    key, touched = _key(), _key(files=(("/r/a.gz", 10, 99, 30),))
    assert key.identity() == touched.identity()
    store_derived(tmp_path, key, "old")
    assert load_derived(tmp_path, touched) is None
    store_derived(tmp_path, touched, "new")
    assert load_derived(tmp_path, touched) == "new" and load_derived(tmp_path, key) is None


@pytest.mark.parametrize("damage", [b"", b"{not json", b"[1, 2]", b'{"key": {}}'])
def test_a_damaged_entry_is_a_miss_and_is_rewritten(tmp_path: Path, damage: bytes) -> None:
    key = _key()
    (tmp_path / key.identity()).write_bytes(damage)
    assert load_derived(tmp_path, key) is None
    store_derived(tmp_path, key, 7)
    assert load_derived(tmp_path, key) == 7


def test_a_failed_write_keeps_the_old_entry_and_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dying disk mid-write: the entry a later run trusts is the old one, whole, or none."""
    key = _key()
    store_derived(tmp_path, key, "old")

    def crash(source: object, target: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", crash)
    assert store_derived(tmp_path, key, "new") is None  # logged, not raised: the run goes on
    monkeypatch.undo()
    assert load_derived(tmp_path, key) == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == [key.identity()]


def test_remove_entries_removes_derived_entries_too(tmp_path: Path) -> None:
    store_derived(tmp_path, _key(), 1)
    (tmp_path / "unrelated.json").write_text("{}")
    assert recording_cache.remove_entries(tmp_path) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["unrelated.json"]
    assert not any(p.name.endswith(DERIVED_SUFFIX) for p in tmp_path.iterdir())


def test_a_tape_fit_round_trips_exactly_through_json() -> None:
    prints = [TapePrint(i, Decimal("100.01") + Decimal(i % 7) / 100, Decimal(f"0.{i + 1:08d}"), i % 3 == 0,
                        Decimal("100.035")) for i in range(200)]
    fit = fit_tape(prints, 7 * NS_PER_S, without_mid=3, without_side=2)
    back = TapeFit.from_json(json.loads(json.dumps(fit.to_json())))
    assert back == fit
    for mine, theirs in zip(back.buckets, fit.buckets, strict=True):  # same digits and exponents, same floats
        assert [str(s) for _, _, s in mine.samples] == [str(s) for _, _, s in theirs.samples]
        assert [repr(d) for _, d, _ in mine.samples] == [repr(d) for _, d, _ in theirs.samples]
        assert [str(q) for q in mine.size_q] == [str(q) for q in theirs.size_q]
    bad = fit.to_json()
    bad["buckets"][0]["trades"] += 1
    with pytest.raises(ValueError, match="samples for"):
        TapeFit.from_json(bad)


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    directory = tmp_path / "rec"
    synthetic_recording("spot", seconds=40).write(directory, parts=2)
    return directory


def _fresh_fit(events: list, window: tuple[int, int]) -> TapeFit:
    return simulated._fit_recorded_tape(events, window, GRID)


def test_a_stored_fit_is_the_fit_and_each_input_of_its_key_misses(recording: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    events = load_events(recording)
    window = (events[0].ts_recv, events[-1].ts_recv)
    store = recording_fit_store(recording, None, cache)
    fresh = _fresh_fit(events, window)
    assert fresh.trades > 50
    assert fit_recorded_tape(events, window, GRID, store=store) == fresh  # computed and stored
    assert store.load(window, GRID) == fresh  # and loads back equal
    moved = (window[0] + NS_PER_S, window[1])
    misses = {
        "window start": (store, moved, GRID),
        "window end": (store, (window[0], window[1] - 1), GRID),
        "tick": (store, window, (Decimal("0.1"), REFERENCE_SIZE)),
        "lot": (store, window, (REFERENCE_TICK, Decimal("0.001"))),
        "end_ns of the read": (recording_fit_store(recording, window[1] - NS_PER_S, cache), window, GRID),
        "reader version": (attrs.evolve(store, read={**store.read, "reader_version": -1}), window, GRID),
        "reader": (attrs.evolve(store, read={**store.read, "reader": "tardis"}), window, GRID),
        "files": (attrs.evolve(store, files=store.files[:1]), window, GRID),
    }
    for what, (other, other_window, grid) in misses.items():
        assert other.load(other_window, grid) is None, what


def test_the_fit_version_is_in_the_key(recording: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events = load_events(recording)
    window = (events[0].ts_recv, events[-1].ts_recv)
    store = recording_fit_store(recording, None, tmp_path / "cache")
    store.store(window, GRID, _fresh_fit(events, window))
    monkeypatch.setattr(simulated, "FIT_VERSION", simulated.FIT_VERSION + 1)
    assert store.load(window, GRID) is None


def test_a_rewritten_recording_file_misses(recording: Path, tmp_path: Path) -> None:
    events = load_events(recording)
    window = (events[0].ts_recv, events[-1].ts_recv)
    store = recording_fit_store(recording, None, tmp_path / "cache")
    store.store(window, GRID, _fresh_fit(events, window))
    second = sorted(recording.iterdir())[1]
    data = gzip.decompress(second.read_bytes())
    second.write_bytes(gzip.compress(data[: len(data) // 2].rpartition(b"\n")[0] + b"\n"))
    os.utime(second, ns=(1, 1))
    assert recording_fit_store(recording, None, tmp_path / "cache").load(window, GRID) is None


def test_the_fit_is_served_from_disk_to_a_new_process_and_the_report_is_the_same(
    recording: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A later process (the in-process memo cleared) loads the stored fit: same report, no book rebuilt."""
    events = load_events(recording)
    store = recording_fit_store(recording, None, tmp_path / "cache")

    def run() -> str:
        controller = SimpleController(SimpleConfig(half_spread_bps=Decimal("0.5"), order_size=Decimal("0.01")))
        report = run_backtest(controller, events, setup="sim", fit_store=store).report
        return json.dumps(report["taker_flow"], sort_keys=True) + json.dumps(report["pnl"], sort_keys=True)

    first = run()
    simulated._FITS.clear()
    rebuilt: list[int] = []
    real = simulated._fit_recorded_tape
    monkeypatch.setattr(simulated, "_fit_recorded_tape", lambda *a: rebuilt.append(1) or real(*a))
    assert run() == first
    assert rebuilt == []
    (entry,) = [p for p in (tmp_path / "cache").iterdir() if '"kind":"tape_fit"' in p.read_text()]
    entry.write_text("damaged")
    simulated._FITS.clear()
    assert run() == first and rebuilt == [1]  # a damaged entry is fitted again


def test_file_notes_are_cached_and_a_changed_file_is_described_again(recording: Path, tmp_path: Path) -> None:
    tmp_path = tmp_path / "cache"
    paths = sorted(recording.iterdir())
    fresh = describe_files(paths, detect_instrument(paths))
    assert recording_notes(recording, tmp_path) == fresh  # computed, stored
    assert any(p.name.endswith(DERIVED_SUFFIX) for p in tmp_path.iterdir())
    assert recording_notes(recording, tmp_path) == fresh  # loaded
    first = paths[0]  # the second file no longer continues the first once the first loses its end
    data = gzip.decompress(first.read_bytes())
    first.write_bytes(gzip.compress(data[: len(data) // 2].rpartition(b"\n")[0] + b"\n"))
    changed = describe_files(paths, detect_instrument(paths))
    assert changed != fresh
    assert recording_notes(recording, tmp_path) == changed
    assert recording_notes(recording, False) == changed  # caching off: described directly


@pytest.mark.parametrize(
    ("name", "value"),
    [("READER_VERSION", -1), ("PRICE_INCREMENT", Decimal("0.1")), ("SIZE_INCREMENT", Decimal("0.001")),
     ("DEFAULT_MIN_LATENCY_NS", 7), ("DEFAULT_WINDOW_NS", 7)],
)
def test_each_option_of_the_binance_read_is_in_the_fit_key(
    recording: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: object
) -> None:
    """What the parse's own cache key names: a change of any of them is a read of other events."""
    from mmkit.backtest import binance

    events = load_events(recording)
    window = (events[0].ts_recv, events[-1].ts_recv)
    recording_fit_store(recording, None, tmp_path / "cache").store(window, GRID, _fresh_fit(events, window))
    monkeypatch.setattr(binance, name, value)
    assert recording_fit_store(recording, None, tmp_path / "cache").load(window, GRID) is None


def test_a_tardis_read_names_its_files_and_reader(tmp_path: Path) -> None:
    book, trades = tmp_path / "x_incremental_book_L2.csv", tmp_path / "x_trades.csv"
    book.write_text("b")
    trades.write_text("t")
    store = recording_fit_store(tmp_path, 5, tmp_path / "cache")
    assert [stamp[0] for stamp in store.files] == [str(book.resolve()), str(trades.resolve())]
    assert store.read["reader"] == "tardis" and store.read["end_ns"] == 5
    assert recording_fit_store(book, 5, tmp_path / "cache").files == store.files[:1]
