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
#: How far a message's exchange time may be after its receipt, beyond the recording's usual (the median of
#: the window minima), before the fit refuses it: a message cannot arrive before it was sent, so only the
#: recorder's drift over the recording explains it (a free-running clock: 50 ppm = 30 s a week); more is a
#: corrupt ``E``/``T`` or a message of another recording, which would shift every receive time by as much.
MAX_AHEAD_NS = 60 * NS_PER_S

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
    counts: list[int] = []
    in_order = ReceiveTimeOrder()  # files that go back in time would skew the fit and the replay
    for path in paths:
        lines, file_samples = scan_file(path, keep_tickers=False)
        in_order.add(path, lines)
        samples += file_samples
        counts.append(len(file_samples))
    return fit_correction(samples, paths, min_latency_ns, window_ns, counts)


def fit_correction(
    samples: Sequence[Sample],
    paths: Sequence[Path],
    min_latency_ns: int = DEFAULT_MIN_LATENCY_NS,
    window_ns: int = DEFAULT_WINDOW_NS,
    counts: Sequence[int] | None = None,
) -> ClockCorrection:
    """The correction from ``(raw local ns, raw local - exchange ns)`` samples in file order (``paths`` for errors).

    ``counts``: how many of the samples each of ``paths`` gave, to name the file of a refused one
    (:func:`_refuse_messages_ahead`).
    """
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
    diffs = list(map(_SECOND, samples))
    _refuse_messages_ahead(samples, diffs, sorted(diff for _, diff in points), paths, counts)
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


def _refuse_messages_ahead(
    samples: Sequence[Sample], diffs: list[int], minima: list[int], paths: Sequence[Path], counts: Sequence[int] | None
) -> None:
    """Raise :class:`RecordingFormatError` if a message's exchange time is :data:`MAX_AHEAD_NS` past the usual.

    Why: the fit lowers its line under every sample, so one message claiming
    an exchange time an hour after it was received shifted every receive time
    of the recording by an hour (a feed latency of one hour for every event,
    the report's times an hour late), without a word. ``minima``: the sorted
    window minima of ``diffs`` (receive minus exchange time); their median
    is the recording's usual, which one message cannot move.
    """
    lowest = min(diffs)
    usual = minima[len(minima) // 2]
    if lowest >= usual - MAX_AHEAD_NS:
        return
    index = diffs.index(lowest)
    raw = samples[index][0]
    where = paths[0] if len(paths) == 1 else ", ".join(str(p) for p in paths)
    if counts is not None and len(counts) == len(paths):
        total = 0
        for path, count in zip(paths, counts, strict=True):
            total += count
            if index < total:
                where = path
                break
    from mmkit.backtest.health import utc_text

    raise RecordingFormatError(
        f"{where}: the message received at {raw} (local ns, {utc_text(raw)}) carries an exchange time "
        f"{(usual - lowest) / NS_PER_S:.3f} s after it was received, compared with the rest of the recording "
        f"(more than {MAX_AHEAD_NS / NS_PER_S:g} s): a corrupt exchange time, or a message of another recording. "
        "The clock fit would shift every receive time by as much; remove or fix that line")
