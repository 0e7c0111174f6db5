"""The compiled BookSequencer against the pure one: the same events handed on, the same counters, every event."""

from __future__ import annotations

import random
from decimal import Decimal as D

import pytest
from loguru import logger

from mmkit._speedups import ENV_PURE, compiled_sequencer_class
from mmkit.backtest.sequencing import BookSequencer, SequencedEvent
from mmkit.model import BookDelta, BookSnapshot, Side, Trade


def stream(seed: int, count: int) -> list[SequencedEvent]:
    """Diffs before the snapshot, stale repeats, gaps, snapshots older and newer than the diffs, trades."""
    rng = random.Random(seed)
    events: list[SequencedEvent] = []
    seq, ts = 100, 1_000
    for _ in range(count):
        ts += rng.randrange(0, 3)
        roll = rng.random()
        if roll < 0.25:
            events.append(Trade("v", "S", D(1), D("0.5"), rng.choice((Side.BUY, Side.SELL, None)), ts, ts, "t"))
        elif roll < 0.3:
            events.append(BookSnapshot("v", "S", seq + rng.randrange(-8, 4), bids=((D(1), D(2)),),
                                       asks=((D(2), D(2)),), ts_event=ts, ts_recv=ts))
        else:
            first = seq + 1 + (rng.randrange(1, 4) if rng.random() < 0.05 else 0)  # sometimes a gap
            if rng.random() < 0.05:
                first -= rng.randrange(2, 6)  # a stale or overlapping repeat
            last = first + rng.randrange(0, 5)
            seq = max(seq, last)
            events.append(BookDelta("v", "S", first, last, bids=((D(1), D(rng.randrange(3))),), asks=(),
                                    ts_event=ts, ts_recv=ts + rng.randrange(0, 2)))
    return events


@pytest.mark.parametrize("seed", range(5))
def test_compiled_and_pure_sequencers_agree_after_every_event(seed: int) -> None:
    compiled_class = compiled_sequencer_class()
    assert compiled_class is not None, "the compiled sequencer is not built (pip install -e .)"
    pure_out: list[SequencedEvent] = []
    compiled_out: list[SequencedEvent] = []
    pure = BookSequencer(pure_out.append, pure=True)
    compiled = BookSequencer(compiled_out.append)
    assert type(pure) is BookSequencer and type(compiled) is compiled_class
    lines: list[str] = []
    logged: dict[str, list[str]] = {"pure": [], "compiled": []}
    sink = logger.add(lines.append, level="WARNING", format="{message}")
    try:
        for index, event in enumerate(stream(seed, 2000)):
            for name, sequencer in (("pure", pure), ("compiled", compiled)):
                seen = len(lines)
                sequencer(event)
                logged[name] += lines[seen:]
            assert logged["compiled"] == logged["pure"], f"event {index}"
            check(index, pure, compiled, pure_out, compiled_out)
    finally:
        logger.remove(sink)
    assert pure.gaps > 5 and pure.dropped > 5 and pure.snapshots > 5
    assert len(logged["pure"]) == pure.gaps  # one warning per gap, word for word the same


def check(index: int, pure: BookSequencer, compiled: BookSequencer, pure_out: list[SequencedEvent],
          compiled_out: list[SequencedEvent]) -> None:
    assert compiled_out == pure_out, f"event {index}"
    assert [e.ts_recv for e in compiled_out] == [e.ts_recv for e in pure_out]
    assert (compiled.gaps, compiled.dropped, compiled.snapshots, compiled.synced) == (
        pure.gaps, pure.dropped, pure.snapshots, pure.synced), f"event {index}"


def test_the_env_switch_selects_the_pure_sequencer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_PURE, "1")
    assert type(BookSequencer(lambda event: None)) is BookSequencer
    monkeypatch.setenv(ENV_PURE, "0")
    assert type(BookSequencer(lambda event: None)) is not BookSequencer
