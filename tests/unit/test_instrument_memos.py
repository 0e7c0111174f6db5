"""The memoized instrument rules give exactly what the rules give without memos, whatever was asked before.

Why: round_price, round_qty and check_order answer from value-keyed memos
(per side, per price band, per mid), and backtest reports must stay
byte-identical. The unmemoized rules (``_round_price``, ``_round_qty``,
``_static_check``) are the reference: for many seeded random prices and
sizes, on and off the grid, written with various exponents, at and around
TrueX's price-level band edges, one long-lived instrument must give the same
value *and* the same text (the exponent a report prints) as the reference.
"""

from __future__ import annotations

import random
from decimal import Decimal, InvalidOperation

import pytest

from mmkit.instrument import IncrementBand, Instrument, _round_qty
from mmkit.model import RejectReason, Side

D = Decimal
SEED_CASES = 4000


def _truex() -> Instrument:
    return Instrument(
        "truex", "BTC-PYUSD", "BTC", "PYUSD",
        (IncrementBand(0, "0.10", "0.0001"), IncrementBand(100000, "0.50", "0.00001"),
         IncrementBand(500000, 1, "0.000001")),
        min_notional=D(1), price_band=D("0.025"),
    )  # fmt: skip


def _odd() -> Instrument:
    """Ticks that are not powers of ten, a start between ticks, a coarse top band, fine min_notional."""
    return Instrument(
        "x", "ODD", "O", "D",
        (IncrementBand("0.5", "0.25", "0.002"), IncrementBand("1000.3", "0.1", "0.5"),
         IncrementBand(20000, "1E+1", 3)),
        min_notional=D("2.0001"), min_qty=D("0.004"), max_qty=D("750.5"), price_band=D("0.1"),
    )  # fmt: skip


def _binance() -> Instrument:
    return Instrument("binance", "BTCUSDT", "BTC", "USDT", (IncrementBand(0, "0.01", "0.00001"),),
                      min_notional=D(5))  # fmt: skip


INSTRUMENTS = {"truex": _truex, "odd": _odd, "binance": _binance}


def _random_value(rng: random.Random, edges: list[Decimal], top: int) -> Decimal:
    """A price or size: near a band edge or anywhere, on a coarse grid or with up to 12 extra decimals."""
    kind = rng.random()
    if kind < 0.4 and edges:
        base = rng.choice(edges)
        value = base + D(rng.randint(-3000, 3000)).scaleb(-rng.randint(0, 6))
    else:
        value = D(rng.randint(0, top * 1000)).scaleb(-3)
    if rng.random() < 0.5:
        value += D(rng.randint(-999, 999)).scaleb(-rng.randint(4, 12))  # off every tick and lot
    if rng.random() < 0.1:
        value = value.quantize(D(1).scaleb(-rng.randint(0, 9)))  # other exponents for equal values
    return value


@pytest.mark.parametrize("name", sorted(INSTRUMENTS))
def test_round_price_equals_the_decimal_rules(name: str) -> None:
    inst = INSTRUMENTS[name]()
    rng = random.Random(f"price-{name}")
    edges = [band.min_price for band in inst.increments]
    for _ in range(SEED_CASES):
        price = _random_value(rng, edges, 700_000)
        for side in (Side.BUY, Side.SELL):
            expected = inst._round_price(price, side)
            got = inst.round_price(price, side)
            assert (str(got), got) == (str(expected), expected), (price, side)


@pytest.mark.parametrize("name", sorted(INSTRUMENTS))
def test_round_qty_equals_the_decimal_rules(name: str) -> None:
    inst = INSTRUMENTS[name]()
    rng = random.Random(f"qty-{name}")
    edges = [band.min_price for band in inst.increments]
    for _ in range(SEED_CASES):
        price = _random_value(rng, edges, 700_000)
        qty = _random_value(rng, [], 50)
        expected = _round_qty(qty, inst.band_for(price).lot)
        got = inst.round_qty(qty, price)
        assert str(got) == str(expected), (qty, price)


@pytest.mark.parametrize("name", sorted(INSTRUMENTS))
def test_check_order_equals_the_decimal_rules(name: str) -> None:
    inst = INSTRUMENTS[name]()
    rng = random.Random(f"check-{name}")
    edges = [band.min_price for band in inst.increments]
    reasons = set()
    for _ in range(SEED_CASES):
        raw = _random_value(rng, edges, 700_000)
        side = rng.choice((Side.BUY, Side.SELL))
        # Mostly valid-looking orders (snapped), so that the later checks are reached too.
        price = inst._round_price(raw, side) if rng.random() < 0.7 else raw
        qty = _random_value(rng, [], 50)
        if rng.random() < 0.6:
            qty = _round_qty(qty, inst.band_for(price).lot)
        expected = inst._static_check(price, qty)
        assert inst.check_order(price, qty) == expected, (price, qty)
        mid = price + D(rng.randint(-20000, 20000)).scaleb(-rng.randint(0, 4))
        band_expected = expected
        if expected is None and inst.price_band is not None and mid > 0 and abs(price - mid) > mid * inst.price_band:
            band_expected = RejectReason.PRICE_BAND
        assert inst.check_order(price, qty, mid) == band_expected, (price, qty, mid)
        reasons.add(band_expected)
    # The random cases reach every outcome, so each memoized outcome was compared.
    wanted = {None, RejectReason.INVALID_PRICE, RejectReason.INVALID_QTY, RejectReason.MIN_NOTIONAL}
    if inst.price_band is not None:
        wanted.add(RejectReason.PRICE_BAND)
    assert wanted <= reasons


@pytest.mark.parametrize(
    ("price", "side", "expected"),
    [
        # Off the grid by far less than a tick: the floor/ceil must go the right way.
        ("98000.0000001", Side.BUY, "98000.00"),
        ("98000.0000001", Side.SELL, "98000.10"),
        ("98000.0999999", Side.BUY, "98000.00"),
        ("98000.0999999", Side.SELL, "98000.10"),
        ("98000.10", Side.SELL, "98000.10"),
        ("98000.10", Side.BUY, "98000.10"),
        # Band edge at 100000 (tick 0.10 below, 0.50 from it).
        ("99999.9000001", Side.SELL, "100000.00"),
        ("99999.9999999", Side.BUY, "99999.90"),
        ("100000.0000001", Side.BUY, "100000.00"),
        ("100000.0000001", Side.SELL, "100000.50"),
        ("499999.75", Side.SELL, "500000"),
        ("499999.75", Side.BUY, "499999.50"),
        ("0.05", Side.BUY, "0.00"),
    ],
)
def test_rounding_direction_and_exponent_are_pinned(price: str, side: Side, expected: str) -> None:
    inst = _truex()
    assert str(inst.round_price(D(price), side)) == expected
    assert str(inst.round_price(D(price), side)) == expected  # and again, from the memo


def test_zero_and_negative_inputs_are_not_served_from_the_memo() -> None:
    """0 and -0 are one memo key but the rules round them to results of different signs."""
    inst = _truex()
    assert str(inst.round_price(D("0.05"), Side.SELL)) == "0.10"
    assert str(inst.round_price(D("0"), Side.SELL)) == "0.00"
    assert str(inst.round_price(D("-0"), Side.SELL)) == "-0.00"
    assert str(inst.round_price(D("-0.05"), Side.SELL)) == "-0.00"
    assert str(inst.round_qty(D("0"), D(98000))) == "0.0000"
    assert str(inst.round_qty(D("-0"), D(98000))) == "-0.0000"
    assert inst.check_order(D(0), D(1)) is RejectReason.INVALID_PRICE
    assert inst.check_order(D(100), D("-1")) is RejectReason.INVALID_QTY
    with pytest.raises(InvalidOperation):
        inst.round_price(D("NaN"), Side.BUY)


def test_round_qty_memo_keys_on_the_band_not_only_the_size() -> None:
    """The same size at prices in two bands rounds to two lots (a memo keyed on the size alone would not)."""
    inst = _truex()
    assert str(inst.round_qty(D("0.1234567"), D(98000))) == "0.1234"
    assert str(inst.round_qty(D("0.1234567"), D(200000))) == "0.12345"
    assert str(inst.round_qty(D("0.1234567"), D(600000))) == "0.123456"
    assert str(inst.round_qty(D("0.1234567"), D(98000))) == "0.1234"


def test_price_band_limit_is_worked_out_again_for_a_new_mid() -> None:
    """check_order keeps ``mid * price_band`` for the last mid: another mid must not reuse it."""
    inst = _truex()
    price, qty = D("98000.00"), D("0.01")
    assert inst.check_order(price, qty, D(98000)) is None
    assert inst.check_order(price, qty, D(80000)) is RejectReason.PRICE_BAND
    assert inst.check_order(price, qty, D(98000)) is None
    far = D(120000)
    assert inst.check_order(price, qty, far) is RejectReason.PRICE_BAND
    assert inst.check_order(D("117000.00"), qty, far) is None


def test_round_price_memo_is_per_side() -> None:
    inst = _truex()
    assert str(inst.round_price(D("98000.05"), Side.BUY)) == "98000.00"
    assert str(inst.round_price(D("98000.05"), Side.SELL)) == "98000.10"
    assert str(inst.round_price(D("98000.050"), Side.BUY)) == "98000.00"
