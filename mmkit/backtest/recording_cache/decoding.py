"""Decoding a cache entry back into events: bytes -> events.

Every inconsistency raises (:class:`CorruptEntryError` or another error); the
caller treats any failure as a miss and parses the recording again.
"""

from __future__ import annotations

import itertools
import json
import zlib
from array import array
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from types import MemberDescriptorType
from typing import Any

import attrs

from mmkit.backtest.recording_cache.layout import (
    CONSTANTS,
    INDEX_TYPECODE,
    MAGIC,
    PREFIX,
    CorruptEntryError,
    canonical,
    positional_fields,
    type_name,
)
from mmkit.model import ScaledLevels


class _Decoder:
    """Rebuilds the tables, then each column, with C-level loops (map/zip) wherever possible."""

    def __init__(self, blobs: list[memoryview], schema: Mapping[str, Any]) -> None:
        self.blobs = blobs
        self.decimals = list(map(Decimal, self.texts(schema["decimals"])))
        self.strings = self.texts(schema["strings"])
        #: per decoded ``L`` column: each event's slice of its levels, and the levels' integer pairs (if stored)
        self.slices: dict[str, list[slice]] = {}
        self.pairs: dict[str, list[tuple[int, int]]] = {}

    def ints(self, blob: int, typecode: str = INDEX_TYPECODE) -> list[int]:
        values = array(typecode)
        values.frombytes(self.blobs[blob])
        return values.tolist()

    def texts(self, spec: Mapping[str, int]) -> list[str]:
        count = spec["count"]
        texts = str(self.blobs[spec["text"]], "utf-8").split("\n") if count else []
        if len(texts) != count:
            raise CorruptEntryError("a text table holds the wrong number of texts")
        return texts

    def column(self, name: str, spec: Mapping[str, Any], count: int) -> list[Any]:
        kind = spec["kind"]
        values: list[Any]
        if kind == "c":
            values = list(map(CONSTANTS.__getitem__, self.blobs[spec["codes"]]))
        elif kind == "i":
            values = self.ints(spec["values"], "q")
        elif kind == "d":
            values = list(map(self.decimals.__getitem__, self.ints(spec["index"])))
        elif kind == "s":
            values = list(map(self.strings.__getitem__, self.ints(spec["index"])))
        elif kind == "L":
            values = self.levels(name, spec)
        elif kind == "A":
            values = self.scaled(spec, count)
        else:
            raise CorruptEntryError(f"unknown column kind {kind!r}")
        if len(values) != count:
            raise CorruptEntryError(f"column {name!r} holds {len(values)} values for {count} events")
        return values

    def levels(self, name: str, spec: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Per event, its tuple of (Decimal, Decimal) levels; keeps the slices and integer pairs for ``A``."""
        ends = list(itertools.accumulate(self.ints(spec["lengths"])))
        total = ends[-1] if ends else 0
        prices, qtys = self.ints(spec["prices"]), self.ints(spec["qtys"])
        if len(prices) != total or len(qtys) != total:
            raise CorruptEntryError("level columns do not add up")
        decimal = self.decimals.__getitem__
        levels = list(zip(map(decimal, prices), map(decimal, qtys), strict=True))
        slices = self.slices[name] = list(map(slice, [0, *ends], ends))
        if "scaled_prices" in spec:
            pairs = self.pairs[name] = list(zip(
                self.ints(spec["scaled_prices"], "q"), self.ints(spec["scaled_sizes"], "q"), strict=True
            ))
            if len(pairs) != total:
                raise CorruptEntryError("scaled level columns do not add up")
        return _grouped(levels, slices)

    def scaled(self, spec: Mapping[str, Any], count: int) -> list[ScaledLevels | None]:
        present = self.blobs[spec["present"]]
        increments = list(map(self.decimals.__getitem__, self.ints(spec["increments"])))
        bids, asks = self.slices[spec["bids"]], self.slices[spec["asks"]]
        if not len(present) == len(bids) == len(asks) == count or len(increments) != 2 * sum(present):
            raise CorruptEntryError("scaled levels do not add up")
        if not increments:
            return [None] * count
        bid_pairs, ask_pairs = self.pairs.get(spec["bids"]), self.pairs.get(spec["asks"])
        if bid_pairs is None or ask_pairs is None:
            raise CorruptEntryError("scaled levels without their integer pairs")
        all_present = len(increments) == 2 * count
        if not all_present:
            bids, asks = list(itertools.compress(bids, present)), list(itertools.compress(asks, present))
        columns: list[list[Any]] = [
            increments[0::2], increments[1::2], _grouped(bid_pairs, bids), _grouped(ask_pairs, asks)
        ]
        built = _instances(ScaledLevels, columns, len(bids))
        if all_present:
            return built
        rest = iter(built)
        return [next(rest) if flag else None for flag in present]


def _grouped(items: list[Any], slices: list[slice]) -> list[tuple[Any, ...]]:
    """Per slice, the tuple of the items it covers."""
    return list(map(tuple, map(items.__getitem__, slices)))


def decode_events(data: bytes, key: Mapping[str, Any], types: Sequence[type]) -> list[Any]:
    view = memoryview(data)
    start = len(MAGIC) + PREFIX.size
    if len(data) < start or view[: len(MAGIC)] != MAGIC:
        raise CorruptEntryError("not a recording cache file")
    header_length, crc = PREFIX.unpack_from(view, len(MAGIC))
    if zlib.crc32(view[start:]) != crc:  # first: nothing of a damaged file is trusted, its header included
        raise CorruptEntryError("truncated or damaged (CRC-32 mismatch)")
    header = json.loads(str(view[start : start + header_length], "utf-8"))
    stored = header.get("key")
    if canonical(stored) != canonical(key):
        raise CorruptEntryError(f"stale entry ({_difference(stored, key)} changed)")
    offset = start + header_length
    if offset + sum(header["sizes"]) != len(data):
        raise CorruptEntryError(f"{len(data)} bytes, not the {offset + sum(header['sizes'])} its header promises")
    blobs = []
    for size in header["sizes"]:
        blobs.append(view[offset : offset + size])
        offset += size
    schema = header["schema"]
    if [t["name"] for t in schema["types"]] != [type_name(cls) for cls in types]:
        raise CorruptEntryError("written for other event types")
    decoder = _Decoder(blobs, schema)
    built: list[list[Any]] = []
    for cls, described in zip(types, schema["types"], strict=True):
        fields = described["fields"]
        if fields != positional_fields(cls):
            raise CorruptEntryError(f"the fields of {type_name(cls)} changed")
        count, specs = described["count"], described["columns"]
        decoder.slices.clear()
        decoder.pairs.clear()
        columns: dict[str, list[Any]] = {}
        for name, spec in sorted(zip(fields, specs, strict=True), key=lambda field: field[1]["kind"] == "A"):
            columns[name] = decoder.column(name, spec, count)  # ``A`` columns last: they reuse ``L`` entries
        built.append(_instances(cls, [columns[name] for name in fields], count))
    order = decoder.blobs[schema["order"]].tobytes()
    if len(order) != sum(map(len, built)) or any(order.count(n) != len(events) for n, events in enumerate(built)):
        raise CorruptEntryError("the event order does not match the event counts")
    cursors = [iter(instances) for instances in built]
    return list(map(next, map(cursors.__getitem__, order)))


def _slot_setters(cls: type) -> list[Callable[[Any, Any], None]] | None:
    """Setters of the slots behind ``cls``'s fields, when instances may be rebuilt without ``__init__``.

    Why: the attrs ``__init__`` is Python code, and a recording has tens of
    thousands of events; creating the instances with ``object.__new__`` and
    filling each slot with one C-level ``map`` per field is several times
    cheaper. It is what pickle does with attrs instances (``__new__``, then
    set the state), and it is only done where it cannot differ from calling
    ``__init__``: no validators, converters, pre/post-init hooks or cached
    hash, and every field a plain slot. Otherwise, None: use the constructor.
    """
    if cls.__new__ is not object.__new__ or any(
        hasattr(cls, hook) for hook in ("__attrs_pre_init__", "__attrs_post_init__", "_attrs_cached_hash")
    ):
        return None
    setters = []
    for field in attrs.fields(cls):
        slot = getattr(cls, field.name, None)
        if field.validator is not None or field.converter is not None or type(slot) is not MemberDescriptorType:
            return None
        setters.append(slot.__set__)
    return setters


def _instances(cls: type, columns: list[list[Any]], count: int) -> list[Any]:
    """``count`` instances of ``cls`` whose fields take their values from ``columns`` (in field order)."""
    setters = _slot_setters(cls)
    if setters is None:
        return list(map(cls, *columns)) if columns else [cls() for _ in range(count)]
    instances: list[Any] = list(map(object.__new__, itertools.repeat(cls, count)))
    for setter, column in zip(setters, columns, strict=True):
        deque(map(setter, instances, column), maxlen=0)  # consumes the map at C speed
    return instances


def _difference(stored: object, key: Mapping[str, Any]) -> str:
    """Which parts of the key differ, for the log line of a stale entry."""
    if not isinstance(stored, dict):
        return "the key"
    changed = [name for name in key if stored.get(name) != key[name]]
    return ", ".join(changed) or "the key"
