"""Encoding a recording's events into the cache layout (:mod:`.layout`): events -> (schema, blobs).

Values are interned in tables (distinct Decimal texts, strings, levels with
their integer pairs) and events refer to them by index. Anything the layout
cannot represent exactly raises :class:`UncacheableError` instead of writing
something approximate.
"""

from __future__ import annotations

import itertools
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from operator import attrgetter, is_, itemgetter
from typing import Any

import attrs

from mmkit.backtest.binance_compiled import compiled_binance
from mmkit.backtest.recording_cache.layout import (
    CONSTANT_INDEX,
    INDEX_TYPECODE,
    UncacheableError,
    positional_fields,
    type_name,
)
from mmkit.model import ScaledLevels


def _kind(values: Sequence[object]) -> str:
    """A column's kind, from its first value that is not a constant (every value is checked when encoded)."""
    for value in values:
        if id(value) not in CONSTANT_INDEX:
            kind = _KINDS.get(type(value))
            if kind is None:
                raise UncacheableError(f"no column kind for {type(value).__name__}")
            return kind
    return "c"


_FIRST, _SECOND, _THIRD, _FOURTH = itemgetter(0), itemgetter(1), itemgetter(2), itemgetter(3)

#: Item sizes the compiled gather writes, per array typecode.
_WIDTHS = {"I": 4, "q": 8}

_KINDS: dict[type, str] = {Decimal: "d", int: "i", str: "s", tuple: "L", ScaledLevels: "A"}


def _number(table: dict[Any, int], keys: list[Any]) -> tuple[list[int], int]:
    """Each key's number in ``table``, new keys numbered on from ``len(table)`` in order; and that start.

    One dict operation per key: ``map`` draws ``len(table)`` just before each
    ``setdefault``, so a new key gets the next number and a known one keeps its own.
    """
    start = len(table)
    return list(map(table.setdefault, keys, map(len, itertools.repeat(table)))), start


def _firsts(items: list[Any], numbers: list[int], start: int, end: int) -> list[Any]:
    """One item for each number from ``start`` to ``end`` (the new keys): any will do, equal numbers mean equal keys."""
    by_number = dict(zip(numbers, items, strict=True))
    return list(map(by_number.__getitem__, range(start, end)))


def _only(values: Iterable[object], *allowed: type) -> bool:
    """Whether every value is exactly of one of ``allowed`` (subclasses excluded: they would not round-trip)."""
    return set(map(type, values)) <= set(allowed)


@attrs.frozen
class LevelSource:
    """How a reader built each tuple of levels it handed out, so the encoder need not number their Decimals again.

    Why: numbering every level's two Decimals by identity (a dict operation
    per number, 600k on the shared recording) was most of the cache write,
    and the reader has just looked each text up in its own tables. It keeps
    per role (prices, sizes) a table of rows (the row's Decimal and its
    integer units) and, per tuple of levels it built, the tuple itself, the
    tuple of integer pairs it built with it, and the rows of its prices and
    sizes. The encoder uses an entry only for the very tuples it holds (``is``,
    and the entry keeps them alive, so an ``id`` cannot be reused), and
    numbers the rows' Decimals once per row; anything else takes the
    general path.
    """

    price_decimals: Sequence[Decimal]
    size_decimals: Sequence[Decimal]
    price_units: Sequence[int]
    size_units: Sequence[int]
    #: id(levels tuple) -> (levels tuple, integer pairs tuple, price rows, size rows)
    sides: Mapping[int, tuple[tuple[Any, ...], tuple[Any, ...], list[int], list[int]]]


class _Encoder:
    """Builds the value tables and the blobs; columns refer to blobs by index.

    Why the bulk style (``map``, ``zip``, ``set`` over whole columns rather
    than a loop per value): a recording has hundreds of thousands of levels,
    and a Python-level loop over them cost more than the parse it follows.
    Only distinct values (interned tables) are handled one by one.
    """

    def __init__(self, source: LevelSource | None = None) -> None:
        self.source = source
        self._rows: tuple[list[int], list[int]] | None = None  # per role: row -> index in the Decimal table
        self.blobs: list[bytes] = []
        self.decimal_texts: dict[str, int] = {}
        self.decimal_ids: dict[int, int] = {}  # id -> object number; the events keep every Decimal alive meanwhile
        self.object_texts: list[int] = []  # object number -> text index
        self.strings: dict[str, int] = {}

    def blob(self, data: bytes) -> int:
        self.blobs.append(data)
        return len(self.blobs) - 1

    def array(self, typecode: str, values: Iterable[int]) -> int:
        try:
            return self.blob(array(typecode, values).tobytes())
        except (OverflowError, TypeError) as exc:
            raise UncacheableError(f"a value does not fit an integer array: {exc}") from exc

    def texts(self, table: Mapping[str, int]) -> dict[str, int]:
        """A text table: the texts joined by newlines (which none may contain), and how many there are."""
        joined = "\n".join(table)
        if joined.count("\n") != max(len(table) - 1, 0):
            raise UncacheableError("a text holds a newline")
        return {"text": self.blob(joined.encode()), "count": len(table)}

    def decimal_indices(self, values: list[object]) -> list[int]:
        """Indices of the Decimals' texts in the table; equal texts get one index, hence one Decimal on load.

        Objects are numbered by identity first (the reader shares equal
        Decimals, so few are distinct), and only new objects are turned into text.
        """
        numbers, start = _number(self.decimal_ids, list(map(id, values)))
        if len(self.decimal_ids) > start:
            fresh = _firsts(values, numbers, start, len(self.decimal_ids))
            if not _only(fresh, Decimal):
                raise UncacheableError("a Decimal column holds something else")
            self.object_texts += _number(self.decimal_texts, list(map(str, fresh)))[0]
        return list(map(self.object_texts.__getitem__, numbers))

    def type_columns(self, fields: list[str], instances: list[Any]) -> list[dict[str, Any]]:
        values = {name: list(map(attrgetter(name), instances)) for name in fields}
        kinds = {name: _kind(column) for name, column in values.items()}
        scaled: dict[str, list[Any]] = {}  # bids/asks -> per event the aligned integer pairs, or None
        for name, kind in kinds.items():
            if kind != "A":
                continue
            if name != "scaled" or kinds.get("bids") != "L" or kinds.get("asks") != "L":
                raise UncacheableError(f"ScaledLevels in {name!r} without bids and asks to align with")
            if not _only(values[name], ScaledLevels, type(None)):
                raise UncacheableError("a ScaledLevels column holds something else")
            scaled["bids"] = [None if s is None else s.bids for s in values[name]]
            scaled["asks"] = [None if s is None else s.asks for s in values[name]]
        columns = []
        for name in fields:
            kind = kinds[name]
            if kind == "L":
                columns.append(self.levels_column(values[name], scaled.get(name)))
            elif kind == "A":
                columns.append(self.scaled_column(values[name]))
            else:
                columns.append(_SIMPLE_ENCODERS[kind](self, values[name]))
        return columns

    def constants(self, values: list[object]) -> dict[str, Any]:
        try:
            codes = bytes(map(CONSTANT_INDEX.__getitem__, map(id, values)))
        except KeyError as exc:
            raise UncacheableError("a column mixes constants with other values") from exc
        return {"kind": "c", "codes": self.blob(codes)}

    def ints(self, values: list[object]) -> dict[str, Any]:
        if not _only(values, int):
            raise UncacheableError("an int column holds something else")
        return {"kind": "i", "values": self.array("q", values)}  # type: ignore[arg-type]

    def decimals(self, values: list[object]) -> dict[str, Any]:
        return {"kind": "d", "index": self.array(INDEX_TYPECODE, self.decimal_indices(values))}

    def strs(self, values: list[object]) -> dict[str, Any]:
        if not _only(values, str):
            raise UncacheableError("a str column holds something else")
        return {"kind": "s", "index": self.array(INDEX_TYPECODE, _number(self.strings, values)[0])}

    def levels_column(self, values: list[Any], scaled: list[Any] | None) -> dict[str, Any]:
        """Tuples of (Decimal, Decimal) levels: per level a price and a size index into the Decimal table.

        With ``scaled`` (the events' :class:`ScaledLevels` pairs, None where an
        event has none), each level's integer pair too, as two int64 columns
        aligned with the levels ((0, 0) for an event without them).

        Why per level rather than a table of distinct levels: numbering the
        levels by their objects cost more than the parse that made them (a
        dict entry per level, keyed by four numbers); here the only dict work
        is numbering the Decimals, by identity, which the reader shares.
        """
        if self.source is not None:
            known = self.known_levels(values, scaled)
            if known is not None:
                return known
        if not _only(values, tuple):
            raise UncacheableError("a levels column holds something other than tuples")
        lengths = list(map(len, values))
        levels = list(itertools.chain.from_iterable(values))
        if not _only(levels, tuple) or not set(map(len, levels)) <= {2}:
            raise UncacheableError("a level is not a (price, qty) tuple")
        column = {
            "kind": "L",
            "lengths": self.array(INDEX_TYPECODE, lengths),
            "prices": self.array(INDEX_TYPECODE, self.decimal_indices(list(map(_FIRST, levels)))),
            "qtys": self.array(INDEX_TYPECODE, self.decimal_indices(list(map(_SECOND, levels)))),
        }
        if scaled is None or all(pairs is None for pairs in scaled):
            return column
        present = [pairs for pairs in scaled if pairs is not None]
        if not _only(present, tuple) or [len(p) for p in present] != [
            n for n, pairs in zip(lengths, scaled, strict=True) if pairs is not None
        ]:
            raise UncacheableError("ScaledLevels that do not match the Decimal levels one for one")
        pairs = list(itertools.chain.from_iterable(
            (((0, 0),) * n if p is None else p) for n, p in zip(lengths, scaled, strict=True)
        ))
        if not _only(pairs, tuple) or not set(map(len, pairs)) <= {2}:
            raise UncacheableError("a scaled level is not an (int, int) pair")
        scaled_prices, scaled_sizes = list(map(_FIRST, pairs)), list(map(_SECOND, pairs))
        if not _only(scaled_prices, int) or not _only(scaled_sizes, int):
            raise UncacheableError("a scaled level is not an (int, int) pair")
        column["scaled_prices"] = self.array("q", scaled_prices)
        column["scaled_sizes"] = self.array("q", scaled_sizes)
        return column

    def known_levels(self, values: list[Any], scaled: list[Any] | None) -> dict[str, Any] | None:
        """:meth:`levels_column` from the reader's :class:`LevelSource`; None when it does not cover ``values``."""
        source = self.source
        assert source is not None
        entries: list[Any] = list(map(source.sides.get, map(id, values)))
        if None in entries or not all(map(is_, map(_FIRST, entries), values)):
            return None
        if scaled is not None and (None in scaled or not all(map(is_, map(_SECOND, entries), scaled))):
            return None
        if self._rows is None:
            self._rows = (self.decimal_indices(list(source.price_decimals)),
                          self.decimal_indices(list(source.size_decimals)))
        price_rows, size_rows = list(map(_THIRD, entries)), list(map(_FOURTH, entries))
        price_index, size_index = self._rows
        column = {
            "kind": "L",
            "lengths": self.array(INDEX_TYPECODE, map(len, values)),
            "prices": self.gathered(INDEX_TYPECODE, price_index, price_rows),
            "qtys": self.gathered(INDEX_TYPECODE, size_index, size_rows),
        }
        if scaled is not None:
            column["scaled_prices"] = self.gathered("q", list(source.price_units), price_rows)
            column["scaled_sizes"] = self.gathered("q", list(source.size_units), size_rows)
        return column

    def gathered(self, typecode: str, table: list[int], groups: list[list[int]]) -> int:
        """The blob of ``array(typecode, table[row] for every row of every group)``.

        Compiled (``mmkit._speedups._binance.gather``, a C loop into the bytes) when built and selected:
        the pure ``map`` into an ``array`` was a third of the cache write. Same bytes either way.
        """
        compiled = compiled_binance()
        if compiled is not None and array(typecode).itemsize == _WIDTHS.get(typecode):
            try:
                return self.blob(compiled.gather(typecode, table, groups))
            except (OverflowError, TypeError) as exc:
                raise UncacheableError(f"a value does not fit an integer array: {exc}") from exc
        return self.array(typecode, map(table.__getitem__, itertools.chain.from_iterable(groups)))

    def scaled_column(self, values: list[Any]) -> dict[str, Any]:
        """ScaledLevels or None; their pairs went into the columns of ``bids`` and ``asks``."""
        scaled = [value for value in values if value is not None]
        increments = self.decimal_indices(
            list(itertools.chain.from_iterable((s.price_increment, s.size_increment) for s in scaled))
        )
        return {"kind": "A", "present": self.blob(bytes(value is not None for value in values)),
                "increments": self.array(INDEX_TYPECODE, increments), "bids": "bids", "asks": "asks"}


_SIMPLE_ENCODERS: dict[str, Callable[[_Encoder, list[object]], dict[str, Any]]] = {
    "c": _Encoder.constants, "i": _Encoder.ints, "d": _Encoder.decimals, "s": _Encoder.strs,
}


def encode_events(
    events: Sequence[Any], types: Sequence[type], source: LevelSource | None = None
) -> tuple[dict[str, Any], list[bytes]]:
    if len(types) > 255:
        raise UncacheableError("too many event types")
    position = {cls: index for index, cls in enumerate(types)}
    try:
        order = bytes(map(position.__getitem__, map(type, events)))
    except KeyError as exc:
        raise UncacheableError(f"unexpected event type {exc.args[0]!r}") from exc
    encoder = _Encoder(source)
    described = []
    for cls in types:
        instances = [event for event in events if type(event) is cls]
        fields = positional_fields(cls)
        described.append({
            "name": type_name(cls), "count": len(instances), "fields": fields,
            "columns": encoder.type_columns(fields, instances),
        })
    schema = {
        "order": encoder.blob(order),
        "types": described,
        "decimals": encoder.texts(encoder.decimal_texts),
        "strings": encoder.texts(encoder.strings),
    }
    return schema, encoder.blobs
