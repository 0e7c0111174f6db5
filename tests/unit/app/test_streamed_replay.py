"""A live run's streamed replay: the same events as the whole-recording reader, delivered as the list replay does."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from mmkit.app import streamed_replay
from mmkit.app.streamed_replay import StreamedReplay, stream_recording
from mmkit.backtest.binance import RecordingFormatError, read_recording, recording_files
from mmkit.backtest.replay import RecordingReplay, ReplayEvent
from mmkit.clock import Clock, ClockMode
from mmkit.model import BookDelta, BookSnapshot, Trade


def _replayable(paths: list[Path]) -> list[ReplayEvent]:
    return [e for e in read_recording(paths, disk_cache=False) if isinstance(e, BookSnapshot | BookDelta | Trade)]


def test_shared_recording_streams_the_events_the_reader_yields(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = recording_files(shared_data / "binance_spot_btcusdt")
    monkeypatch.setattr(streamed_replay, "BLOCK_BYTES", 100_003)  # many blocks, lines cut across them
    streamed = list(stream_recording(paths))
    expected = _replayable(paths)
    assert len(streamed) == len(expected) > 20_000
    assert streamed == expected


def _write(path: Path, lines: list[bytes]) -> Path:
    with gzip.open(path, "wb") as handle:
        handle.write(b"\n".join(lines) + b"\n")
    return path


DIFF = (b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":%d,"s":"BTCUSDT","U":%d,"u":%d,'
        b'"b":[["100.01000000","1.50000000"]],"a":[["100.02000000","0.00000000"]]}}')


def _diffs(count: int) -> list[bytes]:
    return [b"%d " % (1_000_000_000 + i * 1_000_000) + DIFF % (999 + i, 5 + i, 5 + i) for i in range(count)]


def test_bad_line_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "rec.gz", [*_diffs(3), b"", b'1003000000 {"stream":"btcusdt@depth@100ms","data":{}}'])
    good = _write(tmp_path / "good.gz", _diffs(3))
    assert [type(e) for e in stream_recording([good])] == [BookDelta] * 3
    with pytest.raises(RecordingFormatError, match=r"rec\.gz:5"):  # raised while replaying, naming the line
        list(stream_recording([path]))


def test_not_gzip_fails_before_anything_is_replayed(tmp_path: Path) -> None:
    path = tmp_path / "rec.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(RecordingFormatError, match=r"rec\.gz"):
        next(stream_recording([path]))


def test_delivers_like_the_list_replay_and_drops_what_it_delivered(tmp_path: Path) -> None:
    path = _write(tmp_path / "rec.gz", _diffs(50))
    events = list(stream_recording([path]))
    got_list: list[ReplayEvent] = []
    got_stream: list[ReplayEvent] = []
    listed = RecordingReplay(events, [got_list.append], speed=2.0)
    streamed = StreamedReplay(iter(events), [got_stream.append], speed=2.0)
    assert streamed.first_ts == listed.first_ts and streamed.peek(3) == listed.peek(3)
    clock = Clock(ClockMode.REALTIME, tick_ns=100_000_000, start_ns=0)
    for replay in (listed, streamed):
        replay.start(clock, 5_000)
    for now in range(5_000, 40_000_000, 3_333_333):
        assert streamed.recorded_now(now) == listed.recorded_now(now)
        assert streamed.deliver_until(streamed.recorded_now(now)) == listed.deliver_until(listed.recorded_now(now))
        assert got_stream == got_list
        held = list(streamed._ahead)  # what it holds is never delivered yet, and at most what was peeked
        assert len(held) <= 3 and all(e.ts_recv > streamed.recorded_now(now) for e in held)
    assert streamed.delivered == listed.delivered > 0
    streamed.deliver_until(10**20)
    listed.deliver_until(10**20)
    assert got_stream == got_list == events
    assert streamed.finished and listed.finished


def test_rejects_a_speed_that_is_not_positive() -> None:
    with pytest.raises(ValueError, match="speed"):
        StreamedReplay(iter(()), speed=0)
