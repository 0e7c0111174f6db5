"""Write-ahead journal: what durability costs per fill and per tick (mmkit.store.journal).

* ``append_fill`` / ``append_order``: one JSON line and one ``write(2)`` on the
  engine thread, per fill and per order state change (SIGKILL-safe from here).
* the per-tick gate (``Persistence.gate`` -> ``Journal.sync``): one
  ``fdatasync`` before the strategy step when anything was appended that tick,
  nothing at all otherwise (most ticks).
* a busy tick: 1 fill + 4 order state changes appended, then the sync.

The journal lives in a temp dir on the machine's disk (``TMPDIR``): fsync
latency is the disk's, so quote the figures with the disk they ran on.
"""

from __future__ import annotations

import tempfile
import time
from decimal import Decimal
from pathlib import Path

from mmkit.model import Fill, Liquidity, Side
from mmkit.store.journal import Journal, read_journal
from mmkit.store.records import OrderRecord

N_APPENDS = 20_000
N_TICKS = 2_000


def _fill(i: int) -> Fill:
    return Fill(
        venue="truex", trade_id=f"T{i}", client_id=f"C{i % 500}", symbol="BTC-PYUSD",
        side=Side.BUY if i % 2 else Side.SELL, price=Decimal("100000.01") + i % 7, qty=Decimal("0.00012345"),
        fee=Decimal("-0.0000031"), fee_currency="PYUSD", liquidity=Liquidity.MAKER,
        ts_event=1_700_000_000_000_000_000 + i, ts_recv=1_700_000_000_000_001_000 + i, venue_order_id=f"V{i % 500}",
    )


def _order(i: int) -> OrderRecord:
    return OrderRecord(
        f"C{i}", "truex", "BTC-PYUSD", "BUY", Decimal("100000.01"), Decimal("0.01"), Decimal("0.004"),
        "PARTIALLY_FILLED", f"V{i}", 1_700_000_000_000_000_000 + i, "fill T1",
    )


def _pct(values: list[int], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] / 1000


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        journal = Journal(Path(tmp) / "bench.journal")
        journal.open()
        fills = [_fill(i) for i in range(N_APPENDS)]
        orders = [_order(i) for i in range(N_APPENDS)]

        samples: list[int] = []
        for fill in fills:
            began = time.perf_counter_ns()
            journal.append_fill(fill)
            samples.append(time.perf_counter_ns() - began)
        print(f"   append_fill (per fill, write(2), no fsync): p50={_pct(samples, 0.5):.1f} us "
              f"p99={_pct(samples, 0.99):.1f} us")
        samples = []
        for order in orders:
            began = time.perf_counter_ns()
            journal.append_order(order)
            samples.append(time.perf_counter_ns() - began)
        print(f"   append_order (per order state change): p50={_pct(samples, 0.5):.1f} us "
              f"p99={_pct(samples, 0.99):.1f} us")
        journal.sync()

        idle: list[int] = []
        for _ in range(N_TICKS):
            began = time.perf_counter_ns()
            journal.sync()
            idle.append(time.perf_counter_ns() - began)
        print(f"   gate on a tick with nothing appended: p50={_pct(idle, 0.5) * 1000:.0f} ns "
              f"p99={_pct(idle, 0.99) * 1000:.0f} ns")

        busy: list[int] = []
        synced: list[int] = []
        for i in range(N_TICKS):
            began = time.perf_counter_ns()
            journal.append_fill(fills[i])
            for k in range(4):
                journal.append_order(orders[4 * i + k])
            before_sync = time.perf_counter_ns()
            journal.sync()
            done = time.perf_counter_ns()
            busy.append(done - began)
            synced.append(done - before_sync)
        print(f"   busy tick (1 fill + 4 order changes + fdatasync): p50={_pct(busy, 0.5):.0f} us "
              f"p99={_pct(busy, 0.99):.0f} us; of which fdatasync p50={_pct(synced, 0.5):.0f} us "
              f"p99={_pct(synced, 0.99):.0f} us")
        journal.close()
        size = (Path(tmp) / "bench.journal").stat().st_size
        began = time.perf_counter_ns()
        contents = read_journal(Path(tmp) / "bench.journal")
        read_ms = (time.perf_counter_ns() - began) / 1e6
        print(f"   journal {size / 1e6:.1f} MB, {contents.records} records: read back (recovery) in {read_ms:.0f} ms")


if __name__ == "__main__":
    main()
