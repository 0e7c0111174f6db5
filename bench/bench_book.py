"""How fast the L2 book applies the recorded Binance BTCUSDT diff stream.

The recording is parsed into integer tuples first (untimed) so that the figure
is the book's, not JSON's. The timed loop applies every diff after the
snapshot through ``OrderBook.apply_levels_int`` and reads the best bid and ask
after each one, as a tracker and a controller would. For comparison the same
loop runs on a plain sortedcontainers book, the obvious alternative design.

Run: ``PYTHONPATH=. .venv/bin/python -m bench bench_book``
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from sortedcontainers import SortedDict

from mmkit.backtest.binance import IntRecording, load_int_recording, recording_files
from mmkit.book import OrderBook

TARGET_LEVELS_PER_S = 2_000_000
RUNS = 7

#: Timers: wall time, and this process's CPU time (less disturbed by other jobs on a shared machine).
_CLOCKS = (("wall", time.perf_counter), ("cpu", time.process_time))


def _data_dir() -> Path:
    default = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
    return Path(os.environ.get("MMKIT_SHARED_DATA", default)) / "binance_spot_btcusdt"


Timing = dict[str, float]


def _elapsed(start: Timing) -> Timing:
    return {name: clock() - start[name] for name, clock in _CLOCKS}


def _now() -> Timing:
    return {name: clock() for name, clock in _CLOCKS}


def _run_book(rec: IntRecording) -> tuple[Timing, int | None, int | None]:
    book = OrderBook(rec.price_increment, rec.size_increment)
    book.set_snapshot_int(rec.snapshot_bids, rec.snapshot_asks, rec.snapshot_seq)
    apply = book.apply_levels_int
    best_bid = book.best_bid_int
    best_ask = book.best_ask_int
    bid = ask = None
    began = _now()
    for _first, seq, bids, asks in rec.diffs:
        apply(bids, asks, seq)
        bid = best_bid()
        ask = best_ask()
    return _elapsed(began), bid, ask


def _run_sorted(rec: IntRecording) -> tuple[Timing, int | None, int | None]:
    bids_book: SortedDict = SortedDict({p: q for p, q in rec.snapshot_bids})
    asks_book: SortedDict = SortedDict({p: q for p, q in rec.snapshot_asks})
    bid = ask = None
    began = _now()
    for _first, _seq, bids, asks in rec.diffs:
        for price, size in bids:
            if size:
                bids_book[price] = size
            else:
                bids_book.pop(price, None)
        for price, size in asks:
            if size:
                asks_book[price] = size
            else:
                asks_book.pop(price, None)
        bid = bids_book.peekitem(-1)[0] if bids_book else None
        ask = asks_book.peekitem(0)[0] if asks_book else None
    return _elapsed(began), bid, ask


def main() -> None:
    began = time.perf_counter()
    rec = load_int_recording(recording_files(_data_dir()))
    updates = rec.level_updates
    diffs = len(rec.diffs)
    print(f"   pre-parsed {diffs:,} diffs / {updates:,} level updates in {time.perf_counter() - began:.2f} s (untimed)")
    results = {}
    for name, runner in (("OrderBook (dict + lazy heaps)", _run_book), ("SortedDict baseline", _run_sorted)):
        runs = [runner(rec) for _ in range(RUNS)]
        results[name] = {(bid, ask) for _, bid, ask in runs}
        for clock_name, _clock in _CLOCKS:
            best = min(timing[clock_name] for timing, _, _ in runs)
            print(
                f"   {name:30s} {clock_name:4s} {updates / best / 1e6:6.2f} M level updates/s"
                f"  {diffs / best / 1e3:7.1f} k diffs/s  ({best * 1e3:.1f} ms, best of {RUNS})"
            )
    tops = set().union(*results.values())
    if len(tops) != 1:
        raise AssertionError(f"books disagree on the final top of book: {results}")
    ((bid, ask),) = tops
    print(f"   final best bid/ask (ticks): {bid} / {ask}")
    print(f"   target: {TARGET_LEVELS_PER_S / 1e6:.1f} M level updates/s")


if __name__ == "__main__":
    main()
