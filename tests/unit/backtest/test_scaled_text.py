"""Decimal text -> integer units: exact by string operations, refused (never rounded) when not on the grid."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mmkit.backtest.scaled_text import DecimalTexts, TextTable, places_of, to_units

CENT = Decimal("0.01")


@pytest.mark.parametrize(
    ("text", "units"),
    [("61830.17000000", 6183017), ("61830.1", 6183010), ("61830", 6183000), ("0.01", 1), ("1E+2", 10000),
     (".5", 50), ("1.", 100), ("007.50", 750), ("1_000.25", 100025)],
)
def test_on_the_grid(text: str, units: int) -> None:
    assert to_units(text, 2, "price", CENT, positive=True) == units
    assert Decimal(text).scaleb(2) == units  # the same value as the exact Decimal conversion


@pytest.mark.parametrize(
    ("text", "message"),
    [("61830.175", "finer than the recording's price increment 0.01"), ("1E-3", "finer than"),
     ("-1.00", "must be above 0"), ("0.00", "must be above 0"), ("NaN", "not a finite number"),
     ("Infinity", "not a finite number"), ("12a.5", "not a decimal number"), ("", "not a decimal number"),
     ("1.2.3", "not a decimal number")],
)
def test_off_the_grid_or_malformed_is_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        to_units(text, 2, "price", CENT, positive=True)


def test_a_size_may_be_zero_but_not_negative_nor_unquoted() -> None:
    assert to_units("0.00000000", 8, "size", Decimal("1E-8"), positive=False) == 0
    with pytest.raises(ValueError, match="must be at least 0"):
        to_units("-0.00000001", 8, "size", Decimal("1E-8"), positive=False)
    with pytest.raises(ValueError, match="not a quoted decimal number"):
        to_units(1.5, 8, "size", Decimal("1E-8"), positive=False)


def test_only_powers_of_ten_are_increments() -> None:
    assert places_of(Decimal("0.00000001")) == 8 and places_of(Decimal(1)) == 0 and places_of(Decimal("0.10")) == 1
    for increment in (Decimal("0.05"), Decimal(10), Decimal(0), Decimal("-0.01")):
        with pytest.raises(ValueError, match="not a power of ten"):
            places_of(increment)


def test_a_table_converts_each_text_once_and_shares_decimals_across_roles() -> None:
    shared = DecimalTexts()
    prices = TextTable(CENT, "price", True, shared)
    sizes = TextTable(Decimal("1E-8"), "size", False, shared)
    rows = [prices["1.00000000"], prices["2.5"], prices["1.00000000"]]
    assert rows == [0, 1, 0] and prices.units == [100, 250]
    size_row = sizes["1.00000000"]
    assert sizes.units[size_row] == 100_000_000
    assert sizes.decimals[size_row] is prices.decimals[0]  # one Decimal per text, whatever its role
    assert str(prices.decimals[0]) == "1.00000000"  # the recorded text
    with pytest.raises(ValueError, match="finer than"):
        prices["2.555"]
    assert "2.555" not in prices and len(prices.units) == 2  # nothing half-added
