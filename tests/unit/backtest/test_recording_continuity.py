"""Several files of one recording: each says whether it continues the previous one (by the market's rule)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mmkit.backtest.binance import detect_instrument
from mmkit.backtest.continuity import describe_files, file_at
from mmkit.testing.binance_recordings import synthetic_recording


@pytest.mark.parametrize("market", ["spot", "usdm", "coinm"])
def test_a_file_without_a_snapshot_that_follows_on_continues_the_previous(tmp_path: Path, market: str) -> None:
    paths = synthetic_recording(market, seconds=20).write(tmp_path, parts=2)  # type: ignore[arg-type]
    notes = describe_files(paths, detect_instrument(paths))
    assert [n.has_snapshot for n in notes] == [True, False]
    assert notes[1].continues is True and "continues rec_0.gz" in notes[1].note
    assert notes[0].first_event_ns is not None and notes[1].first_event_ns is not None
    assert file_at(notes, notes[1].first_event_ns + 1) == paths[1]
    assert file_at(notes, notes[0].first_event_ns) == paths[0]


@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_a_file_that_does_not_follow_on_says_the_book_waits(tmp_path: Path, market: str) -> None:
    rec = synthetic_recording(market, seconds=20, gap_after_s=10)  # type: ignore[arg-type]
    cut = rec.gap_lines[0]  # the first line after the lost diff starts the second file
    first, second = tmp_path / "a.gz", tmp_path / "b.gz"
    import gzip

    for path, lines in ((first, rec.lines[:cut]), (second, rec.lines[cut:])):
        with gzip.open(path, "wb") as handle:
            handle.write(b"\n".join(lines) + b"\n")
    notes = describe_files([first, second], detect_instrument([first, second]))
    assert notes[1].continues is False and "waits for a snapshot" in notes[1].note


def test_the_first_file_without_a_snapshot_says_the_book_waits(tmp_path: Path) -> None:
    rec = synthetic_recording("usdm", seconds=5)
    rec.lines = [line for index, line in enumerate(rec.lines) if index not in rec.snapshot_lines]
    paths = rec.write(tmp_path)
    (note,) = describe_files(paths, detect_instrument(paths))
    assert not note.has_snapshot and "the book waits for one" in note.note


def test_files_of_different_markets_are_refused_naming_file_and_line(tmp_path: Path) -> None:
    from mmkit.backtest.binance import IDENTITY_CORRECTION, RecordingFormatError, read_recording

    # Two seconds each, the second file starting after the first ends: only the markets differ.
    later = 1_723_161_270_000_000_000
    futures = synthetic_recording("usdm", seconds=2).write(tmp_path / "a", stem="a")
    spot = synthetic_recording("spot", seconds=2, start_ns=later).write(tmp_path / "b", stem="b")
    with pytest.raises(RecordingFormatError, match=r"b_0\.gz:\d+: .*without 'pu' in a Binance USD-M"):
        list(read_recording([*futures, *spot], correction=IDENTITY_CORRECTION))
    spot = synthetic_recording("spot", seconds=2).write(tmp_path / "c", stem="c")
    futures = synthetic_recording("usdm", seconds=2, start_ns=later).write(tmp_path / "d", stem="d")
    with pytest.raises(RecordingFormatError, match=r"d_0\.gz:\d+: .*with 'pu'\) in a spot recording"):
        list(read_recording([*spot, *futures], correction=IDENTITY_CORRECTION))


def _copy(source: Path, target: Path) -> Path:
    target.write_bytes(source.read_bytes())
    return target


def _readers(paths: list[Path]) -> dict[str, Callable[[], object]]:
    """Every way mmkit reads a recording's files: the backtest's read (parsed, lazy), the clock fit, the live stream."""
    from mmkit.app.streamed_replay import stream_recording
    from mmkit.backtest.binance import IDENTITY_CORRECTION, estimate_clock_correction, read_recording

    return {
        "backtest read": lambda: list(read_recording(paths, disk_cache=False)),
        "lazy read": lambda: list(read_recording(paths, correction=IDENTITY_CORRECTION)),
        "clock fit": lambda: estimate_clock_correction(paths),
        "live stream": lambda: list(stream_recording(paths)),
    }


@pytest.mark.parametrize("reader", ["backtest read", "lazy read", "clock fit", "live stream"])
def test_a_file_that_repeats_an_earlier_one_is_refused_naming_both(tmp_path: Path, reader: str) -> None:
    from mmkit.backtest.binance import RecordingFormatError, clear_recording_cache

    clear_recording_cache()
    first, second = synthetic_recording("spot", seconds=20).write(tmp_path, parts=2)
    repeated = _copy(first, tmp_path / "rec_2.gz")  # the desk copied part 0 in again, after part 1
    with pytest.raises(RecordingFormatError, match=r"rec_2\.gz: starts at .* before rec_1\.gz, read before it, "
                                                   r"ends .*: the files overlap or are out of order"):
        _readers([first, second, repeated])[reader]()
    assert _readers([first, second])[reader]() is not None  # the same files without the copy read fine


@pytest.mark.parametrize("reader", ["backtest read", "lazy read", "clock fit", "live stream"])
def test_files_whose_name_order_is_not_time_order_are_refused(tmp_path: Path, reader: str) -> None:
    from mmkit.backtest.binance import RecordingFormatError, clear_recording_cache, recording_files

    clear_recording_cache()
    early, late = synthetic_recording("usdm", seconds=20).write(tmp_path / "made", parts=2)
    # part10 sorts before part9 by name: the later half is read first.
    _copy(early, tmp_path / "part9.gz")
    _copy(late, tmp_path / "part10.gz")
    paths = recording_files(tmp_path)
    assert [p.name for p in paths] == ["part10.gz", "part9.gz"]
    with pytest.raises(RecordingFormatError, match=r"part9\.gz: starts at .* before part10\.gz.*rename them so that "
                                                   r"name order is time order"):
        _readers(paths)[reader]()


def _stamped_back(lines: list[bytes], at: int, step_ns: int) -> list[bytes]:
    """``lines`` with every local stamp from line index ``at`` on moved back by ``step_ns`` (a clock set back)."""
    out = list(lines[:at])
    for line in lines[at:]:
        stamp, _, payload = line.partition(b" ")
        out.append(str(int(stamp) - step_ns).encode() + b" " + payload)
    return out


@pytest.mark.parametrize("reader", ["backtest read", "lazy read", "clock fit", "live stream"])
def test_a_recorder_clock_set_back_inside_a_file_is_refused_naming_the_line(tmp_path: Path, reader: str) -> None:
    from mmkit.backtest.binance import RecordingFormatError, clear_recording_cache

    clear_recording_cache()
    rec = synthetic_recording("spot", seconds=20)
    middle = len(rec.lines) // 2
    rec.lines = _stamped_back(rec.lines, middle, 5_000_000_000)  # an NTP step of 5 s back
    (path,) = rec.write(tmp_path)
    with pytest.raises(RecordingFormatError, match=rf"rec_0\.gz:{middle + 1}: the local receive time steps back "
                                                   r"4\.9\d\d s, from .* \(line " + str(middle) + r"\) to .*: the "
                                                   "recorder's clock was set back"):
        _readers([path])[reader]()


def test_a_step_back_within_the_jitter_is_read(tmp_path: Path) -> None:
    from mmkit.backtest.binance import clear_recording_cache, read_recording
    from mmkit.backtest.binance_lines import MAX_STEP_BACK_NS

    clear_recording_cache()
    rec = synthetic_recording("spot", seconds=20)
    rec.lines = _stamped_back(rec.lines, len(rec.lines) // 2, MAX_STEP_BACK_NS // 2)
    first, second = rec.write(tmp_path, parts=2)
    assert list(read_recording([first, second], disk_cache=False))  # half a second back: jitter, read
