"""A message whose exchange time is far after its receipt: the clock fit refuses it, not shift every event by it.

Before (2026-12-08): the fit lowers its line under every sample, so one
print with ``E``/``T`` an hour ahead (a corrupt field, a message of another
recording) moved the correction by an hour: every event of the recording got
a feed latency of one hour (median 3,600,001 ms instead of 3.8 ms), the
report's times an hour late, and the backtest exited 0.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from loguru import logger

from mmkit.backtest.binance import RecordingFormatError, estimate_clock_correction, read_recording
from mmkit.backtest.binance_clock import MAX_AHEAD_NS
from mmkit.model import NS_PER_S, Trade
from mmkit.testing.binance_recordings import synthetic_recording


@pytest.fixture(autouse=True)
def _quiet() -> None:
    logger.remove()


def _with_a_print_ahead(tmp_path: Path, seconds: int) -> tuple[Path, bytes]:
    rec = synthetic_recording("spot", seconds=60)
    at = next(i for i, line in enumerate(rec.lines) if b"@trade" in line and i > len(rec.lines) // 2)
    rec.lines[at] = re.sub(rb'"(E|T)":(\d+)', lambda m: b'"%s":%d' % (m.group(1), int(m.group(2)) + seconds * 1000),
                           rec.lines[at])
    (path,) = rec.write(tmp_path)
    return path, rec.lines[at].split(b" ", 1)[0]


def test_a_message_an_hour_ahead_of_its_receipt_is_refused_naming_its_stamp(tmp_path: Path) -> None:
    path, stamp = _with_a_print_ahead(tmp_path, 3600)
    with pytest.raises(RecordingFormatError, match=(
        rf"rec_0\.gz: the message received at {stamp.decode()} \(local ns, .*Z\) carries an exchange time "
        r"(3599|3600)\.\d+ s after it was received, compared with the rest of the recording")):
        list(read_recording([path], disk_cache=False))
    with pytest.raises(RecordingFormatError, match=r"carries an exchange time (3599|3600)"):
        estimate_clock_correction([path])


def test_a_message_ahead_by_less_than_the_bound_is_read(tmp_path: Path) -> None:
    """Within the bound it is what a drifting recorder clock could explain: read (the fit absorbs it)."""
    path, _ = _with_a_print_ahead(tmp_path, MAX_AHEAD_NS // NS_PER_S // 3)
    assert any(isinstance(e, Trade) for e in read_recording([path], disk_cache=False))


def test_the_file_of_a_message_ahead_is_named_among_several(tmp_path: Path) -> None:
    rec = synthetic_recording("spot", seconds=60)
    at = next(i for i, line in enumerate(rec.lines) if b"@trade" in line and i > len(rec.lines) * 3 // 4)
    rec.lines[at] = re.sub(rb'"(E|T)":(\d+)', lambda m: b'"%s":%d' % (m.group(1), int(m.group(2)) + 7_200_000),
                           rec.lines[at])
    paths = rec.write(tmp_path, parts=2)
    with pytest.raises(RecordingFormatError, match=r"rec_1\.gz: the message received at .* (7199|7200)\.\d+ s after"):
        list(read_recording(paths, disk_cache=False))


def test_the_shared_recording_is_far_inside_the_bound(shared_data: Path) -> None:
    from mmkit.backtest.binance import recording_files

    correction = estimate_clock_correction(recording_files(shared_data / "binance_spot_btcusdt"))
    assert 1.2 * NS_PER_S < correction.offset_ns < 1.35 * NS_PER_S  # the recorder's ~1.27 s behind, as documented
