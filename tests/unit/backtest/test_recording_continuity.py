"""Several files of one recording: each says whether it continues the previous one (by the market's rule)."""

from __future__ import annotations

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

    futures = synthetic_recording("usdm", seconds=2).write(tmp_path / "a", stem="a")
    spot = synthetic_recording("spot", seconds=2).write(tmp_path / "b", stem="b")
    with pytest.raises(RecordingFormatError, match=r"b_0\.gz:\d+: .*without 'pu' in a Binance USD-M"):
        list(read_recording([*futures, *spot], correction=IDENTITY_CORRECTION))
    with pytest.raises(RecordingFormatError, match=r"a_0\.gz:\d+: .*with 'pu'\) in a spot recording"):
        list(read_recording([*spot, *futures], correction=IDENTITY_CORRECTION))
