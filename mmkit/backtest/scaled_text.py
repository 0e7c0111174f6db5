"""Decimal text -> exact integer units of a power-of-ten increment, by string operations, once per distinct text.

Why: a recorded book level is two numbers printed as text ("61830.17000000",
"0.21367000"), and the books work in integer ticks and lots. Going through
``Decimal`` for every level (parse, scale, check, convert) was most of a
first read. Here a text is split at its point and joined into an int, which
is exact by construction; a table per read remembers each distinct text (the
shared recording prints 600k numbers with 77k distinct texts), so a level
costs two dict hits, done in C by ``map`` over a message's levels.

Nothing is rounded: a text finer than the increment, negative, a price of
zero, or not a plain decimal number at all raises :class:`ValueError` with
the text and the increment, and the reader turns that into an error naming
the file and line. Exponent forms (``1E+2``), which no recorder here prints,
are converted exactly through ``Decimal`` rather than refused.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

#: The most units a level may hold: the books keep ticks and lots as C ``long long`` (mmkit/_speedups/_levels.pyx).
#: Beyond it the replay crashed at that event (``OverflowError``, exit 4, no file or line named); now the read stops.
MAX_UNITS = 2**63 - 1


def places_of(increment: Decimal) -> int:
    """Decimal places of a power-of-ten increment (0.01 -> 2); ValueError for any other increment."""
    _sign, digits, exponent = increment.normalize().as_tuple()
    if digits != (1,) or not isinstance(exponent, int) or exponent > 0 or increment <= 0:
        raise ValueError(f"increment {increment} is not a power of ten <= 1")
    return -exponent


def to_units(text: object, places: int, what: str, increment: Decimal, positive: bool) -> int:
    """``text`` as an exact multiple of ``10**-places``; ValueError naming ``what`` when it is not one.

    ``positive``: 0 is refused too (a price); otherwise 0 is allowed (a size: 0 deletes a level).
    """
    if type(text) is not str:
        raise ValueError(f"{what} {text!r} is not a quoted decimal number")
    whole, point, frac = text.partition(".")
    if whole.isdigit() and whole.isascii() and (not point or (frac.isdigit() and frac.isascii())):
        if len(frac) > places:
            if frac[places:].strip("0"):
                raise ValueError(f"{what} {text} is finer than the recording's {what} increment {increment}")
            frac = frac[:places]
        units = int(whole + frac.ljust(places, "0"))
    else:
        units = _units_by_value(text, places, what, increment)
    if units < 0 or (positive and units == 0):
        raise ValueError(f"{what} {text} must be {'above' if positive else 'at least'} 0")
    if units > MAX_UNITS:
        raise ValueError(f"{what} {text} is beyond the 64-bit units a book holds ({units} units of {increment})")
    return units


def _units_by_value(text: str, places: int, what: str, increment: Decimal) -> int:
    """The rare forms the string path does not take (exponents, a sign, ``.5``): exactly, through Decimal."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{what} {text!r} is not a decimal number") from None
    if not value.is_finite():
        raise ValueError(f"{what} {text} is not a finite number")
    scaled = value.scaleb(places)
    units = int(scaled)
    if units != scaled:
        raise ValueError(f"{what} {text} is finer than the recording's {what} increment {increment}")
    return units


class DecimalTexts(dict[str, Decimal]):
    """str -> Decimal, each distinct text parsed once per read; equal texts share one Decimal.

    The events' public levels are Decimals that keep the recorded text
    (``str(level[0]) == "61830.17000000"``): reports and the cache print them.
    """

    def __missing__(self, text: str) -> Decimal:
        if type(text) is not str:
            raise ValueError(f"{text!r} is not a quoted decimal number")
        value = self[text] = Decimal(text)
        return value


class TextTable(dict[str, int]):
    """One role's numbers (prices, or sizes) of a read: text -> row, each row a Decimal and its integer units.

    Why rows: a level then costs one dict hit per number (text -> row) and
    two list reads (the row's Decimal, the row's units), all inside C-level
    ``map`` calls, instead of a dict hit per form. A text is converted once,
    on its first sighting (:func:`to_units`, which raises before anything is
    added); its Decimal comes from the read's shared :class:`DecimalTexts`,
    so a price and a size with the same text are one object.
    """

    def __init__(self, increment: Decimal, what: str, positive: bool, decimals: DecimalTexts) -> None:
        super().__init__()
        self.increment = increment
        self.places = places_of(increment)
        self.what = what
        self.positive = positive
        self.shared = decimals
        #: Per row: the Decimal of the text, and its units of ``increment``.
        self.decimals: list[Decimal] = []
        self.units: list[int] = []

    def __missing__(self, text: str) -> int:
        # The common case of :func:`to_units` inline (a first sighting per distinct text: 77k on the shared
        # recording, so the calls saved are a tenth of the parse); anything else goes through it.
        places = self.places
        whole, point, frac = text.partition(".") if type(text) is str else ("", "", "")
        if point and whole.isdigit() and frac.isdigit() and whole.isascii() and frac.isascii() and (
            len(frac) <= places or not frac[places:].strip("0")
        ):
            units = int(whole + frac[:places].ljust(places, "0"))
            if (units == 0 and self.positive) or units > MAX_UNITS:
                units = to_units(text, places, self.what, self.increment, self.positive)  # raises
        else:
            units = to_units(text, places, self.what, self.increment, self.positive)
        shared = self.shared
        decimal = shared.get(text)
        if decimal is None:
            decimal = shared[text] = Decimal(text)
        row = self[text] = len(self.units)
        self.units.append(units)
        self.decimals.append(decimal)
        return row


__all__ = ["MAX_UNITS", "DecimalTexts", "TextTable", "places_of", "to_units"]
