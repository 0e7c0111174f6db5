"""The charts' fast time axis gives the text of ``utc_iso`` for every sample (the tearsheet stays byte-identical)."""

from __future__ import annotations

import random

from mmkit.backtest.plots import iso_times
from mmkit.backtest.report import utc_iso


def test_iso_times_is_utc_iso_point_by_point() -> None:
    rng = random.Random(3)
    start = 1_723_161_253_000_000_000
    ts = [start + i * 100_000_000 for i in range(3000)]  # 100 ms ticks across 300 s
    ts += [rng.randrange(0, 4_102_444_800 * 10**9) for _ in range(3000)]  # anywhere up to 2100, any ns
    ts += [0, 999_999, 1_000_000, 59_999_999_999, 951_782_400 * 10**9 - 1, 951_782_400 * 10**9, -1_500_000]
    idx = list(range(len(ts)))
    assert iso_times(ts, idx) == [utc_iso(t) for t in ts]
    assert iso_times(ts, idx[::7]) == [utc_iso(ts[i]) for i in idx[::7]]
