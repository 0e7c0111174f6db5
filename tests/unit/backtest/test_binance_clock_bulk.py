"""The clock fit's bulk minima equal the per-sample expressions they replaced, on awkward samples."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from mmkit.backtest.binance_clock import ClockCorrection, fit_correction


def _per_sample(samples: list[tuple[int, int]], drift: float, ref: int, min_latency_ns: int) -> ClockCorrection:
    """The fit's last step as it was written before, one expression per sample."""
    lowest = min(diff - round(drift * (raw - ref)) for raw, diff in samples)
    correction = ClockCorrection(offset_ns=min_latency_ns - lowest, drift=-drift, ref_ns=ref)
    worst = min(correction.correct(raw) - (raw - diff) for raw, diff in samples)
    if worst < min_latency_ns:
        correction = ClockCorrection(correction.offset_ns + (min_latency_ns - worst), correction.drift, ref)
    return correction


@pytest.mark.parametrize("seed", range(6))
def test_bulk_fit_matches_the_per_sample_fit(seed: int) -> None:
    rng = random.Random(seed)
    start = 1_723_161_253_937_085_768
    raws = sorted(start + rng.randrange(0, 3_600 * 10**9) for _ in range(2_000))
    # ~1.27 s behind, a drift of a few ppm, jitter: some products land on .5 and test the rounding too
    samples = [(raw, 1_270_000_000 + (raw - start) // 250_000 + rng.randrange(0, 5_000_000)) for raw in raws]
    fitted = fit_correction(samples, [Path("x.gz")])
    assert fitted == _per_sample(samples, -fitted.drift, fitted.ref_ns, 1_000_000)
    for raw, diff in samples:
        assert fitted.correct(raw) - (raw - diff) >= 1_000_000


@pytest.mark.parametrize("drift", [0.0, -3.7e-6, 2.5e-9, 0.5, -0.5])
def test_correct_all_is_correct_per_stamp(drift: float) -> None:
    rng = random.Random(3)
    ref = 1_723_161_253_937_085_768
    correction = ClockCorrection(offset_ns=1_270_123_457, drift=drift, ref_ns=ref)
    raws = [ref + rng.randrange(-10**12, 10**13) for _ in range(3_000)] + [ref, ref + 1, ref - 1, ref + 3, ref - 5]
    assert correction.correct_all(iter(raws)) == [correction.correct(raw) for raw in raws]
