"""The on-disk layout of a recording cache entry, shared by the encoder and the decoder.

A file is ``MAGIC``, then ``PREFIX`` (the header's length and the CRC-32 of
everything after the prefix), then a canonical JSON header (the key, the
schema, the blob sizes), then the blobs: flat arrays of integers and UTF-8
text. Column kinds (per field of one event type):

* ``c``: constants (None, booleans, Side), one byte each, an index into ``CONSTANTS``;
* ``i``: int64 values;
* ``d``: Decimals, as indices into the table of distinct Decimal texts;
* ``s``: str, as indices into the table of distinct strings;
* ``L``: tuples of (Decimal, Decimal) levels: per event a length, then per level a price and a
  size index into the Decimal table and, when the events carry ScaledLevels, the level's integer
  pair as two int64 columns;
* ``A``: ScaledLevels or None, aligned with the event's ``bids`` and ``asks``: their increments;
  their pairs are those stored with the levels of those columns.
"""

from __future__ import annotations

import json
import struct
from array import array

import attrs

from mmkit.model import Side

MAGIC = b"mmkit-recording\x00"
#: After the magic: the header's length and the CRC-32 of everything after them (header and payload).
PREFIX = struct.Struct("<II")
#: Array typecode of table indices: 4 bytes, unsigned.
INDEX_TYPECODE = "I" if array("I").itemsize == 4 else "L"
#: Singletons a column may hold, stored by position (append only; bump FORMAT_VERSION on any change).
CONSTANTS: tuple[object, ...] = (None, False, True, Side.BUY, Side.SELL)
CONSTANT_INDEX = {id(value): index for index, value in enumerate(CONSTANTS)}


class UncacheableError(ValueError):
    """The events hold something the format cannot represent exactly; they are not cached."""


class CorruptEntryError(ValueError):
    """A cache file is truncated, damaged, or was written for other files, options or versions."""


def canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def type_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def positional_fields(cls: type) -> list[str]:
    """Field names in constructor order; a class that cannot be rebuilt positionally is refused."""
    if not attrs.has(cls):
        raise UncacheableError(f"{type_name(cls)} is not an attrs class")
    fields = attrs.fields(cls)
    if any(not f.init or f.kw_only for f in fields):
        raise UncacheableError(f"{type_name(cls)} has fields its constructor does not take positionally")
    return [f.name for f in fields]


#: A source file as a cache key sees it: resolved path, size, mtime_ns, inode, and the sha256 of its bytes
#: (:func:`mmkit.backtest.recording_cache.file_stamps`).
FileStamp = tuple[str, int, int, int, str]
