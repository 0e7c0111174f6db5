"""The compiled replay loop against the sinks it stands in for, on random recorded streams.

Three runs of the same replay backtest per stream: the pure-Python path (``MMKIT_PURE_PYTHON=1``), the
compiled books and sequencer without the loop, and with it. The state of every part the loop touches must
agree after every tick, the books level for level at the end, and the report and fills exactly. The
streams carry every case the loop hands back to the sinks (tests/replay_loop_support.py), and the test
checks that each was met, so a loop that handled too much (or too little) would show.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from loguru import logger

from mmkit import _speedups
from mmkit.backtest.replay import RecordingReplay, ReplayedReference
from mmkit.backtest.replay_loop import compiled_loop_for
from mmkit.backtest.shared_book import SharedBook
from mmkit.sim.replay_venue import ReplayBookVenue
from tests.replay_loop_support import full_books, random_stream, recording_states, run_maker


@pytest.fixture(autouse=True)
def quiet() -> Any:
    logger.disable("mmkit")
    yield
    logger.enable("mmkit")


def _run(
    events: list[Any], monkeypatch: pytest.MonkeyPatch, *, pure: bool, loop: bool, post_only: bool = True
) -> dict[str, Any]:
    with recording_states(monkeypatch, pure=pure, loop=loop) as seen:
        result = run_maker(events, post_only=post_only)
    replay: RecordingReplay = seen["replay"]
    return {"states": seen["states"], "books": full_books(replay), "loop": replay.compiled_loop,
            "report": json.dumps(result.report, sort_keys=True, default=str),
            "fills": [repr(fill) for fill in result.engine.fills]}


@pytest.mark.parametrize("seed", range(4))
def test_the_loop_leaves_every_part_as_the_sinks_do_after_every_tick(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _speedups.compiled_available(), _speedups.import_error()
    events = random_stream(seed)
    pure = _run(events, monkeypatch, pure=True, loop=False)
    plain = _run(events, monkeypatch, pure=False, loop=False)
    looped = _run(events, monkeypatch, pure=False, loop=True)
    assert pure["loop"] is None and plain["loop"] is None
    loop = looped["loop"]
    assert loop is not None, "the compiled loop did not run"
    for name, other in (("compiled without the loop", plain), ("compiled loop", looped)):
        assert len(other["states"]) == len(pure["states"])
        for tick, (want, got) in enumerate(zip(pure["states"], other["states"], strict=True)):
            assert got == want, f"{name}: state differs after delivery {tick}"
        assert other["books"] == pure["books"], name
        assert other["report"] == pure["report"], name
        assert other["fills"] == pure["fills"], name
    assert pure["fills"], "no fills: the streams would not exercise our resting orders"
    # The loop handled most events and met every case it must hand back.
    assert loop.handled > 0.6 * len(events)
    passed = loop.passed_by
    for reason in ("print reaches our order", "sequencer not following on",
                   "tracker not following on", "levels not pre-scaled on the grid", "snapshot or other type",
                   "diff lists our level"):
        assert passed.get(reason, 0) > 0, (reason, passed)
    assert loop.our_crossings > 0 and loop.reference_crossings > 0  # the rare branches ran inside the loop
    assert loop.advances > 0  # and the venue acted on our due actions from inside it
    assert loop.handled + loop.passed == looped["states"][-1]["index"]  # every delivered event, once


@pytest.mark.parametrize("seed", [0, 6])  # streams in which the walk crosses a quote in flight: it takes
def test_while_our_orders_have_taken_from_the_book_the_loop_hands_diffs_to_the_venue(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Quotes without post-only take from the book the random walk moves through them: the venue's ledger of
    what they took (TakenLiquidity) is read and forgotten level by level in Python, so the loop passes every
    diff while it holds anything, and the runs agree tick by tick."""
    events = random_stream(seed)
    pure = _run(events, monkeypatch, pure=True, loop=False, post_only=False)
    looped = _run(events, monkeypatch, pure=False, loop=True, post_only=False)
    assert any(state["taken"] for state in pure["states"]), "no order took from the book: nothing tested"
    assert any("TAKER" in fill for fill in pure["fills"])
    for tick, (want, got) in enumerate(zip(pure["states"], looped["states"], strict=True)):
        assert got == want, f"state differs after delivery {tick}"
    assert (looped["books"], looped["report"], looped["fills"]) == (pure["books"], pure["report"], pure["fills"])
    assert looped["loop"].passed_by.get("our orders took from the recorded book", 0) > 0


def _setup_sinks(events: list[Any], monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    with recording_states(monkeypatch, pure=False, loop=True) as seen:
        run_maker(events)
    return list(seen["replay"]._sinks)


def test_the_loop_runs_only_in_front_of_the_replay_setups_own_sinks(monkeypatch: pytest.MonkeyPatch) -> None:
    events = random_stream(9, count=300)
    sinks = _setup_sinks(events, monkeypatch)
    (share,) = sinks  # the setup's SharedBook in front of (sequencer, reference)
    assert type(share) is SharedBook
    sequencer, reference = share.sequencer, share.reference
    venue = sequencer._sink.__self__
    assert isinstance(venue, ReplayBookVenue) and type(reference) is ReplayedReference
    assert compiled_loop_for(sinks) is not None
    assert compiled_loop_for([sequencer]) is None
    assert compiled_loop_for([reference, sequencer]) is None
    assert compiled_loop_for([*sinks, print]) is None
    # The pair without its SharedBook: the loop only while the two books are two objects (nothing would
    # fork a shared one, and the loop would apply each diff once for both).
    share.fork()
    assert venue.books["BTCUSDT"] is not reference.tracker.book
    assert compiled_loop_for([sequencer, reference]) is not None
    monkeypatch.setitem(venue.books, "BTCUSDT", reference.tracker.book)
    assert compiled_loop_for([sequencer, reference]) is None
    assert compiled_loop_for(sinks) is not None
    monkeypatch.setenv(_speedups.ENV_PURE, "1")
    assert compiled_loop_for(sinks) is None  # the pure path is the pure path
    monkeypatch.setenv(_speedups.ENV_PURE, "0")
    # A venue on receive time, or one whose class changes a step the loop stands in for: the sinks alone.
    monkeypatch.setattr(venue, "_market_time", "ts_recv")
    assert compiled_loop_for(sinks) is None
    monkeypatch.setattr(venue, "_market_time", "ts_event")

    class Custom(type(venue)):  # type: ignore[misc]
        def _on_trade(self, *args: Any) -> None:
            return None

    monkeypatch.setattr(venue, "__class__", Custom)
    assert compiled_loop_for(sinks) is None


def test_adding_a_sink_drops_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    events = random_stream(10, count=300)
    monkeypatch.setenv(_speedups.ENV_PURE, "0")
    sinks = _setup_sinks(events, monkeypatch)
    replay = RecordingReplay(events, sinks=sinks)
    assert replay.compiled_loop is not None
    seen: list[Any] = []
    replay.add_sink(seen.append)
    assert replay.compiled_loop is None  # three sinks: every event goes through each of them
