"""The recorder's clock error, fitted from a Binance recording (see :mod:`mmkit.backtest.binance`, "Time")."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import repeat
from operator import add, itemgetter, sub
from pathlib import Path

import attrs
from loguru import logger

from mmkit.backtest.binance_lines import VENUE, ReceiveTimeOrder, RecordingFormatError, Sample, scan_file
from mmkit.model import NS_PER_MS, NS_PER_S

#: Assumed smallest one-way latency from exchange to recorder, applied by the clock correction.
DEFAULT_MIN_LATENCY_NS = NS_PER_MS
#: Width of the windows whose minima define the lower envelope.
DEFAULT_WINDOW_NS = 30 * NS_PER_S

@attrs.frozen(slots=True)
class ClockCorrection:
    """``corrected = raw + offset_ns + drift * (raw - ref_ns)``: maps recorder time onto exchange time."""

    offset_ns: int
    drift: float
    ref_ns: int

    def correct(self, raw_ns: int) -> int:
        return raw_ns + self.offset_ns + round(self.drift * (raw_ns - self.ref_ns))

    def correct_all(self, raws: Iterable[int]) -> list[int]:
        """:meth:`correct` of each stamp, in bulk (``map``: no Python call per line); same products, same roundings."""
        stamps = list(raws)
        drifted = map(round, map(self.drift.__mul__, map(sub, stamps, repeat(self.ref_ns))))
        return list(map(add, map(add, stamps, repeat(self.offset_ns)), drifted))


_FIRST, _SECOND = itemgetter(0), itemgetter(1)

#: No correction (for recordings made with a disciplined clock).
IDENTITY_CORRECTION = ClockCorrection(offset_ns=0, drift=0.0, ref_ns=0)


def estimate_clock_correction(
    paths: Sequence[Path],
    min_latency_ns: int = DEFAULT_MIN_LATENCY_NS,
    window_ns: int = DEFAULT_WINDOW_NS,
) -> ClockCorrection:
    """Fit the recorder's clock error from the data (see the module docstring for the method).

    One cheap pass: only the local stamp and ``"E":`` are read, with no JSON parsing.
    """
    samples: list[Sample] = []
    in_order = ReceiveTimeOrder()  # files that go back in time would skew the fit and the replay
    for path in paths:
        lines, file_samples = scan_file(path, keep_tickers=False)
        in_order.add(path, lines)
        samples += file_samples
    return fit_correction(samples, paths, min_latency_ns, window_ns)


def fit_correction(
    samples: Sequence[Sample],
    paths: Sequence[Path],
    min_latency_ns: int = DEFAULT_MIN_LATENCY_NS,
    window_ns: int = DEFAULT_WINDOW_NS,
) -> ClockCorrection:
    """The correction from ``(raw local ns, raw local - exchange ns)`` samples in file order (``paths`` for errors)."""
    if not samples:
        raise RecordingFormatError(f"no message with an exchange time in {[str(p) for p in paths]}")
    ref = samples[0][0]
    # Lower envelope: the fastest message of each window.
    minima: dict[int, tuple[int, int]] = {}
    for raw, diff in samples:
        key = (raw - ref) // window_ns
        if key not in minima or diff < minima[key][1]:
            minima[key] = (raw, diff)
    points = list(minima.values())
    drift = 0.0
    if len(points) >= 3:
        xs = [float(raw - ref) for raw, _ in points]
        ys = [float(diff) for _, diff in points]
        mean_x = sum(xs) / len(xs)
        mean_y = sum(ys) / len(ys)
        var_x = sum((x - mean_x) ** 2 for x in xs)
        if var_x > 0:
            drift = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / var_x
    # Lower the line under every sample, then lift it to the assumed latency floor.
    # corrected - exchange = diff + offset + drift*(raw-ref) must be >= min_latency for every sample.
    # In bulk (``map`` over columns; a generator calling a method per sample cost ~0.1 s on the shared
    # recording), with the same float products and roundings as the per-sample expressions.
    since = list(map(sub, map(_FIRST, samples), repeat(ref)))
    diffs = list(map(_SECOND, samples))
    lowest = min(map(sub, diffs, map(round, map(float(drift).__mul__, since))))
    # drift describes how (local - exchange) grows with time, so the correction subtracts it.
    correction = ClockCorrection(offset_ns=min_latency_ns - lowest, drift=-drift, ref_ns=ref)
    # Recheck with the exact rounding of ``correct`` so the promise holds for every sample:
    # correct(raw) - (raw - diff) = offset + round(drift' * (raw - ref)) + diff, in integers.
    worst = correction.offset_ns + min(map(add, map(round, map(float(correction.drift).__mul__, since)), diffs))
    if worst < min_latency_ns:
        correction = attrs.evolve(correction, offset_ns=correction.offset_ns + (min_latency_ns - worst))
    logger.bind(venue=VENUE).info(
        "clock correction: offset {:.3f} ms, drift {:.2f} ppm over {} samples",
        correction.offset_ns / NS_PER_MS,
        correction.drift * 1e6,
        len(samples),
    )
    return correction
