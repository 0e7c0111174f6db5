"""A recording that falls silent in the middle: the silence is time without a valid book, and the run says so.

Before (2026-12-08): only the span before a recording's first book event
and after its last counted as uncovered. Ten minutes without any message in
the middle of a recording (a recorder suspended, a frozen feed, a file of a
later hour next to this one, its update ids following on) counted as a valid
book: the engine's own reference went stale after 2 s and the kill switch
tripped on confidence 0, yet the report said 0.01 % invalid and the run
exited 0, every per-hour figure divided by the silent time too.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from mmkit.app import cli
from mmkit.app.outcome import EXIT_DATA_UNHEALTHY
from mmkit.app.simulated import REFERENCE_SIZE, REFERENCE_TICK
from mmkit.backtest.health import BookHealth, InvalidSpell, silences
from mmkit.book.tracker import OrderBookTracker
from mmkit.model import NS_PER_S

SILENCE_S = 600


def _shifted(line: bytes, seconds: int) -> bytes:
    """``line`` as if it arrived ``seconds`` later: its local stamp and its exchange times (E, T) moved."""
    stamp, payload = line.split(b" ", 1)
    payload = re.sub(rb'"(E|T)":(\d+)', lambda m: b'"%s":%d' % (m.group(1), int(m.group(2)) + seconds * 1000), payload)
    return b"%d %s" % (int(stamp) + seconds * NS_PER_S, payload)


def test_silences_are_the_stretches_between_book_events_longer_than_the_staleness() -> None:
    s = NS_PER_S
    stamps = [0, 1 * s, 2 * s, 10 * s, 11 * s, 40 * s]
    spells = silences(stamps, 0, 40 * s, 2 * s)
    assert [(spell.start_ns, spell.end_ns) for spell in spells] == [(4 * s, 10 * s), (13 * s, 40 * s)]
    assert spells[0].reason.startswith("recording silent: no book event for 8.000 s after 1970-01-01T00:00:02.000Z")
    # Only inside the span asked for, and a pause up to the staleness is not a silence.
    assert [(x.start_ns, x.end_ns) for x in silences(stamps, 12 * s, 20 * s, 2 * s)] == [(13 * s, 40 * s)]
    assert silences([0, 2 * s, 4 * s], 0, 4 * s, 2 * s) == []


def test_a_silence_counts_once_with_an_invalid_book_it_overlaps() -> None:
    tracker = OrderBookTracker("binance", "BTCUSDT", REFERENCE_TICK, REFERENCE_SIZE, request_resync=lambda reason: None)
    health = BookHealth(tracker)
    health.observe(0, False)  # no snapshot for the first 5 s
    health.observe(5 * NS_PER_S, True)
    outside = [InvalidSpell(3 * NS_PER_S, 8 * NS_PER_S, "recording silent: ...")]
    summary = health.summary(0, 10 * NS_PER_S, outside)
    assert summary["invalid_ns"] == 8 * NS_PER_S and summary["first_gap_reason"] == "recording silent: ..."


def test_a_silent_stretch_in_a_slice_of_the_shared_recording_exits_7_naming_it(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with gzip.open(shared_data / "binance_spot_btcusdt" / "spot_btcusdt_20240808.gz", "rb") as handle:
        lines = [handle.readline().rstrip(b"\n") for _ in range(6000)]
    half = len(lines) // 2
    data = tmp_path / "recording"
    data.mkdir()
    for name, part in (("part1.gz", lines[:half]), ("part2.gz", [_shifted(line, SILENCE_S) for line in lines[half:]])):
        with gzip.open(data / name, "wb") as handle:
            handle.write(b"\n".join(part) + b"\n")
    out = tmp_path / "out"
    code = cli.main(["backtest", "strategies/layered_example.yml", "--data", str(data), "--setup", "replay",
                     "--no-progress", "--out", str(out)])
    err = capsys.readouterr().err
    health = json.loads((out / "report.json").read_text())["data_health"]["binance:BTCUSDT"]
    assert health["gaps"] == 0  # the update ids follow on: nothing but the time says the feed was silent
    assert health["invalid_ns"] > (SILENCE_S - 2) * NS_PER_S
    assert health["first_gap_reason"].startswith("recording silent: no book event for 600.")
    assert code == EXIT_DATA_UNHEALTHY
    assert "data unhealthy" in err and "recording silent" in err
