"""Replay the real Binance BTCUSDT recording through the reader and the OrderBookTracker.

The recording holds both traps named in ../shared/data/README.md: the snapshot
arrives after the first diffs, and the recorder's clock ran ~1.27 s behind the
exchange. These tests prove the tracker and the reader handle them, and that
the first trap is real (naive application crosses the book).
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pathlib import Path

import attrs
import pytest

from mmkit.backtest.binance import (
    IDENTITY_CORRECTION,
    PRICE_INCREMENT,
    SIZE_INCREMENT,
    SYMBOL,
    VENUE,
    TopOfBook,
    estimate_clock_correction,
    load_int_recording,
    read_recording,
    recording_files,
)
from mmkit.book import OrderBook, OrderBookTracker
from mmkit.model import NS_PER_MS, BookDelta, BookSnapshot, Side, Trade

pytestmark = pytest.mark.shared_data

LOW, HIGH = Decimal("61556"), Decimal("61861")  # price range over the span, from the data README


@attrs.define
class Replay:
    tracker: OrderBookTracker
    resync_reasons: list[str]
    counts: Counter[str]
    deltas_in_file: int
    #: Top of book (bid px, bid qty, ask px, ask qty) after each applied diff, by its last update id.
    tops: dict[int, tuple[Decimal, Decimal, Decimal, Decimal]]
    tickers: dict[int, TopOfBook]
    trade_qty: Decimal
    sells: int
    buys: int
    min_latency_ns: int
    recv_in_order: bool


@pytest.fixture(scope="module")
def files(shared_data: Path) -> list[Path]:
    return recording_files(shared_data / "binance_spot_btcusdt")


@pytest.fixture(scope="module")
def replay(files: list[Path]) -> Replay:
    reasons: list[str] = []
    tracker = OrderBookTracker(VENUE, SYMBOL, PRICE_INCREMENT, SIZE_INCREMENT, request_resync=reasons.append)
    counts: Counter[str] = Counter()
    tops: dict[int, tuple[Decimal, Decimal, Decimal, Decimal]] = {}
    tickers: dict[int, TopOfBook] = {}
    trade_qty = Decimal(0)
    sells = buys = 0
    min_latency = None
    last_recv = 0
    in_order = True
    for event in read_recording(files, with_tickers=True):
        counts[type(event).__name__] += 1
        if event.ts_recv < last_recv:
            in_order = False
        last_recv = event.ts_recv
        if isinstance(event, (BookDelta, Trade)):
            latency = event.ts_recv - event.ts_event
            min_latency = latency if min_latency is None else min(min_latency, latency)
        if isinstance(event, BookSnapshot):
            tracker.on_snapshot(event)
        elif isinstance(event, BookDelta):
            applied_before = tracker.deltas_applied
            tracker.on_delta(event)
            if tracker.deltas_applied > applied_before:
                bid, ask = tracker.book.best_bid(), tracker.book.best_ask()
                assert bid is not None and ask is not None
                tops[event.seq] = (bid[0], bid[1], ask[0], ask[1])
        elif isinstance(event, Trade):
            trade_qty += event.qty
            sells += event.aggressor is Side.SELL
            buys += event.aggressor is Side.BUY
        else:
            tickers[event.seq] = event
    assert min_latency is not None
    return Replay(
        tracker=tracker,
        resync_reasons=reasons,
        counts=counts,
        deltas_in_file=counts["BookDelta"],
        tops=tops,
        tickers=tickers,
        trade_qty=trade_qty,
        sells=sells,
        buys=buys,
        min_latency_ns=min_latency,
        recv_in_order=in_order,
    )


def test_reader_yields_every_message(replay: Replay) -> None:
    assert replay.counts == Counter({"TopOfBook": 73_174, "Trade": 19_904, "BookDelta": 6_495, "BookSnapshot": 1})


def test_whole_recording_replays_without_gap_or_cross(replay: Replay) -> None:
    tracker = replay.tracker
    assert tracker.is_valid
    assert (tracker.gaps, tracker.crossed, tracker.checksum_failures, tracker.resyncs) == (0, 0, 0, 0)
    assert replay.resync_reasons == []
    # The snapshot came after 3 diffs: 2 were covered by it, the 3rd bridged it; every other diff applied.
    assert tracker.deltas_dropped == 2
    assert tracker.deltas_applied == replay.deltas_in_file - 2 == 6_493
    assert tracker.buffered == 0


def test_final_book_is_sane(replay: Replay) -> None:
    book = replay.tracker.book
    bid, ask = book.best_bid(), book.best_ask()
    assert bid is not None and ask is not None
    assert LOW <= bid[0] < ask[0] <= HIGH
    assert ask[0] - bid[0] < Decimal("1")  # BTCUSDT trades at a 1-tick spread most of the time
    assert book.bid_count > 900 and book.ask_count > 900


def test_book_top_matches_every_book_ticker_with_the_same_update_id(replay: Replay) -> None:
    """After the diff ending at update id u, the book's top is the exchange's top at u (bookTicker u)."""
    checked = 0
    for seq, top in replay.tops.items():
        ticker = replay.tickers.get(seq)
        if ticker is None:
            continue
        checked += 1
        assert top == (ticker.bid_price, ticker.bid_qty, ticker.ask_price, ticker.ask_qty), seq
    assert checked > 1_000  # a real cross-check, not a vacuous one


def test_every_top_of_book_within_the_recorded_range(replay: Replay) -> None:
    assert all(LOW <= bid <= ask <= HIGH for bid, _, ask, _ in replay.tops.values())


def test_trades(replay: Replay) -> None:
    assert abs(replay.trade_qty - Decimal("437.9")) < Decimal("0.05")
    assert replay.sells > 0 and replay.buys > 0
    assert replay.sells + replay.buys == 19_904


def test_corrected_receive_time_is_never_before_exchange_time(replay: Replay) -> None:
    # The floor the correction promises (1 ms), and small: trades are stamped with T <= E, so a bit above it.
    assert NS_PER_MS <= replay.min_latency_ns < 5 * NS_PER_MS
    assert replay.recv_in_order


def test_clock_correction_estimates_about_1_27_s(files: list[Path]) -> None:
    correction = estimate_clock_correction(files)
    assert 1_250 * NS_PER_MS < correction.offset_ns < 1_300 * NS_PER_MS
    assert abs(correction.drift) < 1e-4  # a few ppm: a slow clock, not a broken fit


def test_raw_local_time_would_give_negative_latency(files: list[Path]) -> None:
    """The clock trap is real: without correction the recorder saw diffs before the exchange sent them."""
    for event in read_recording(files, correction=IDENTITY_CORRECTION):
        if isinstance(event, BookDelta):
            assert event.ts_recv - event.ts_event < -1_000 * NS_PER_MS
            break
    else:
        pytest.fail("no diff in the recording")


def test_naive_file_order_application_crosses(files: list[Path]) -> None:
    """Without the tracker's buffering, the diffs before the snapshot are lost and the book crosses."""
    book = OrderBook(PRICE_INCREMENT, SIZE_INCREMENT)
    crossed = 0
    for event in read_recording(files, correction=IDENTITY_CORRECTION):
        if isinstance(event, BookSnapshot):
            book.apply_snapshot(event)
        elif isinstance(event, BookDelta):
            book.apply_delta(event)
            crossed += book.is_crossed()
            if crossed > 1_000:  # "thousands of times" per the README; no need to read on
                break
    assert crossed > 1_000


def test_int_fast_path_builds_the_same_book(files: list[Path], replay: Replay) -> None:
    recording = load_int_recording(files)
    assert len(recording.diffs) == replay.tracker.deltas_applied
    book = OrderBook(recording.price_increment, recording.size_increment)
    book.set_snapshot_int(recording.snapshot_bids, recording.snapshot_asks, recording.snapshot_seq)
    for _first, seq, bids, asks in recording.diffs:
        book.apply_levels_int(bids, asks, seq)
    tracked = replay.tracker.book
    assert book.seq == tracked.seq
    assert book.levels_int(Side.BUY) == tracked.levels_int(Side.BUY)
    assert book.levels_int(Side.SELL) == tracked.levels_int(Side.SELL)
