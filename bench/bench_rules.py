"""Instrument rules per call: the memoized methods, the plain Decimal rules, and an integer-tick alternative.

The inputs are what controllers and the simulated venue ask on TrueX's
increments (3 price bands): raw prices around a random-walk fair value with
the digits a bps offset and a skew leave (off every tick), sizes off the lot,
and mids for the price band; a tenth of them sit near the 100,000 band edge.
``--short`` rounds the raw prices to 0.01 first (inputs with few digits).
Each figure is ns per call, min / median of 7 passes run interleaved:

* ``rules``: the Decimal rules without memo (``_round_price``, ``_round_qty``,
  ``_static_check`` + the band test): what every call cost before memos;
* ``memo cold``: the public method on a fresh Instrument (every raw price is
  new, so the input memos miss: this is their overhead);
* ``memo warm``: the same stream again on the same Instrument (the memos keep
  the last 4,096 inputs, so a 20,000-call pass still misses mostly);
* ``int``: the same rounding on integer ticks (exact conversion with
  ``as_integer_ratio``, band search and snap on ints, the Decimal result
  built once per grid value): why the Instrument stays Decimal. Converting a
  Decimal exactly costs about what the C-implemented Decimal operations of a
  rounding cost, so behind a Decimal API it is no faster.

Run: ``PYTHONPATH=. .venv/bin/python -m bench bench_rules`` (``python -m bench.bench_rules --short``)
"""

from __future__ import annotations

import random
import sys
import time
from bisect import bisect_right
from collections.abc import Callable
from decimal import Decimal
from statistics import median

from mmkit.connector import load_venue_rules
from mmkit.instrument import Instrument
from mmkit.model import Side, _round_qty

CALLS = 20_000
PASSES = 7
Stream = list[tuple[Decimal, Decimal, Decimal, Side]]


def _stream(seed: int, short: bool) -> Stream:
    rng = random.Random(seed)
    fair = Decimal("98000")
    out = []
    for i in range(CALLS):
        fair += Decimal(rng.randint(-40, 40)) / 10
        centre = Decimal("99990") if i % 10 == 0 else fair  # a tenth near the band edge at 100,000
        bps = Decimal(rng.randint(1, 60))
        side = Side.BUY if i % 2 else Side.SELL
        raw = centre * (1 - side.sign * bps / 10_000) - Decimal(rng.randint(0, 999)) / 7919  # skew: many digits
        if short:
            raw = raw.quantize(Decimal("0.01"))
        qty = Decimal(rng.randint(1, 500_000)) / 1_000_000
        out.append((raw, qty, centre, side))
    return out


class _IntTicks:
    """Integer-tick rounding for one instrument (price unit 0.01, size unit 1e-6 on TrueX's increments)."""

    def __init__(self, inst: Instrument) -> None:
        self.price_unit, self.size_unit = 100, 1_000_000
        self.lookup = [-(10**30), *(int(b.min_price * self.price_unit) for b in inst.increments[1:])]
        self.ticks = [int(b.tick * self.price_unit) for b in inst.increments]
        self.tick_out = [(b.tick.as_tuple().exponent, 10 ** (2 + int(b.tick.as_tuple().exponent)))
                         for b in inst.increments]  # fmt: skip
        self.lots = [int(b.lot * self.size_unit) for b in inst.increments]
        self.lot_out = [(b.lot.as_tuple().exponent, 10 ** (6 + int(b.lot.as_tuple().exponent)))
                        for b in inst.increments]  # fmt: skip
        self.prices: dict[int, Decimal] = {}
        self.sizes: dict[tuple[int, int], Decimal] = {}

    def round_price(self, price: Decimal, down: bool) -> Decimal:
        num, den = price.as_integer_ratio()
        num *= self.price_unit
        floor = num // den
        tick = self.ticks[bisect_right(self.lookup, floor) - 1]
        if down:
            snapped = floor // tick * tick
        elif floor * den == num:
            snapped = -(-floor // tick) * tick
        else:
            snapped = (floor // tick + 1) * tick
        band = bisect_right(self.lookup, snapped) - 1
        if self.ticks[band] != tick:
            tick = self.ticks[band]
            snapped = (snapped // tick if down else -(-snapped // tick)) * tick
            band = bisect_right(self.lookup, snapped) - 1
        result = self.prices.get(snapped)
        if result is None:
            exponent, unit = self.tick_out[band]
            result = self.prices[snapped] = Decimal(snapped // unit).scaleb(int(exponent))
        return result

    def round_qty(self, qty: Decimal, price: Decimal) -> Decimal:
        num, den = qty.as_integer_ratio()
        pnum, pden = price.as_integer_ratio()
        band = bisect_right(self.lookup, pnum * self.price_unit // pden) - 1
        lot = self.lots[band]
        units = num * self.size_unit // den // lot * lot
        result = self.sizes.get((units, band))
        if result is None:
            exponent, unit = self.lot_out[band]
            result = self.sizes[units, band] = Decimal(units // unit).scaleb(int(exponent))
        return result


def _interleaved(runs: list[Callable[[], Callable[[], object]]]) -> list[list[float]]:
    """ns per call of each run (a factory giving a fresh pass), one pass of each in turn, PASSES times."""
    figures: list[list[float]] = [[] for _ in runs]
    for make in runs:
        make()()  # warm the code paths
    for _ in range(PASSES):
        for make, out in zip(runs, figures, strict=True):
            run = make()
            began = time.perf_counter_ns()
            run()
            out.append((time.perf_counter_ns() - began) / CALLS)
    return figures


def main() -> None:
    short = "--short" in sys.argv[1:]
    base = load_venue_rules("truex").instruments[0]

    def fresh() -> Instrument:
        return Instrument(base.venue, base.symbol, base.base, base.quote, base.increments, base.min_notional,
                          base.min_qty, base.max_qty, base.price_band)  # fmt: skip

    stream = _stream(7, short)
    ref = fresh()
    orders = [(ref._round_price(raw, side), qty, mid) for raw, qty, mid, side in stream]
    orders = [(price, ref.round_qty(qty, price), mid) for price, qty, mid in orders]
    warm = fresh()
    buy = Side.BUY

    def price_rules() -> Callable[[], object]:
        inst = fresh()
        return lambda: [inst._round_price(raw, side) for raw, _, _, side in stream]

    def price_memo(inst: Instrument | None = None) -> Callable[[], object]:
        use = inst or fresh()
        return lambda: [use.round_price(raw, side) for raw, _, _, side in stream]

    def price_int() -> Callable[[], object]:
        ticks = _IntTicks(fresh())
        return lambda: [ticks.round_price(raw, side is buy) for raw, _, _, side in stream]

    def qty_rules() -> Callable[[], object]:
        inst = fresh()
        return lambda: [_round_qty(qty, inst.band_for(raw).lot) for raw, qty, _, _ in stream]

    def qty_memo(inst: Instrument | None = None) -> Callable[[], object]:
        use = inst or fresh()
        return lambda: [use.round_qty(qty, raw) for raw, qty, _, _ in stream]

    def qty_int() -> Callable[[], object]:
        ticks = _IntTicks(fresh())
        return lambda: [ticks.round_qty(qty, raw) for raw, qty, _, _ in stream]

    def check_rules() -> Callable[[], object]:
        inst = fresh()
        band = inst.price_band
        assert band is not None
        return lambda: [inst._static_check(p, q) or abs(p - m) > m * band for p, q, m in orders]

    def check_memo(inst: Instrument | None = None) -> Callable[[], object]:
        use = inst or fresh()
        return lambda: [use.check_order(p, q, m) for p, q, m in orders]

    inputs = "raw prices rounded to 0.01" if short else "raw prices with up to 28 digits"
    print(f"   TrueX increments, {inputs}, {CALLS:,} calls a pass; ns per call, min / median of {PASSES} "
          "interleaved passes (ratio: rules median / this median)")
    cases: list[tuple[str, list[Callable[[], Callable[[], object]]]]] = [
        ("round_price", [price_rules, price_memo, lambda: price_memo(warm), price_int]),
        ("round_qty", [qty_rules, qty_memo, lambda: qty_memo(warm), qty_int]),
        ("check_order + band", [check_rules, check_memo, lambda: check_memo(warm)]),
    ]
    for label, runs in cases:
        figures = _interleaved(runs)
        ref_median = median(figures[0])
        cells = [f"{name} {min(f):5.0f} / {median(f):5.0f} ({ref_median / median(f):.2f}x)"
                 for name, f in zip(("rules", "memo cold", "memo warm", "int"), figures, strict=False)]  # fmt: skip
        print(f"   {label:19s} " + "   ".join(cells))


if __name__ == "__main__":
    main()
