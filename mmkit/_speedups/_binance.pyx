# cython: language_level=3, boundscheck=False, wraparound=False
"""Compiled twins of the Binance reader's per-line and per-level steps (:mod:`mmkit.backtest.binance_parse`).

Why: on a first read of the shared recording (parse + cache write), the
line scan, decoding each depth message with ``json`` into lists of strings,
looking every price and size up in the read's tables from Python, numbering
the 77k distinct texts, building the 600k level and pair tuples and
gathering the cache's columns took most of the time (issue 16: the first
read must not take longer than hftbacktest's conversion of the same files).

Each function is the twin of a pure-Python step, which stays the reference
(``MMKIT_PURE_PYTHON=1``, or a missing or stale build, runs it; see
:mod:`mmkit.backtest.binance_compiled`):

* :func:`scan_text` is ``binance_lines._scan`` over a whole decompressed
  file, without a bytes object per line; it declines (None) any file with a
  line it does not take, and the pure scan judges it.
* :class:`DepthRows` takes a diff or REST snapshot payload *exactly* in the
  shape Binance writes it (no spaces, fields in their usual order, numbers as
  quoted plain decimals) and does what ``json`` + ``_Parser._rows`` do for
  it: the same table lookups, in the same order (a side's prices, then its
  sizes; bids, then asks), so a malformed or off-grid number raises the same
  ``ValueError`` from the same text. A new text takes the common case of
  ``TextTable.__missing__`` in C and anything else through that method.
  Any other shape (whitespace, another field, an escape, a number outside
  64 bits, a futures or other-symbol diff) returns None and the caller takes
  the JSON path, which is what decides every case this one does not take.
* :func:`build_sides` cuts the file's rows into each side's level tuples,
  integer pairs and row lists, as ``_Parser.build`` does with slices.
* :func:`gather` writes the cache's per-level index and unit columns, as
  ``array(typecode, map(...))`` does in ``recording_cache.encoding``.

tests/unit/backtest/test_binance_compiled.py compares each with its pure twin
on crafted input (every shape, every error) and, end to end, the events and
the cache entry's bytes of the shared recording.
"""

cdef extern from *:
    const char *MMKIT_SOURCE_SHA  # defined by setup.py: the sha256 of this file when it was compiled

#: The digest of the .pyx this module was built from (mmkit._speedups compares it with the file beside it).
SOURCE_SHA = MMKIT_SOURCE_SHA.decode("ascii")

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.dict cimport PyDict_GetItem, PyDict_SetItem
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.list cimport PyList_Append, PyList_GET_ITEM, PyList_GET_SIZE
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM
from libc.limits cimport LLONG_MAX
from libc.string cimport memchr, memcpy, strlen

cdef extern from "Python.h":
    object PyUnicode_New(Py_ssize_t size, Py_UCS4 maxchar)
    void *PyUnicode_DATA(object text)

cdef extern from "string.h":
    void *memmem(const void *haystack, size_t haystacklen, const void *needle, size_t needlelen) nogil

cimport cython

from decimal import Decimal

# Most levels one side of a message may carry on this path (a REST snapshot holds up to 5,000 a side).
cdef enum:
    MAX_LEVELS = 20000

cdef void *_alloc(size_t size) except NULL:
    cdef void *memory = PyMem_Malloc(size)
    if memory is NULL:
        raise MemoryError()
    return memory


cdef void _free(void *memory) noexcept:
    PyMem_Free(memory)


cdef const char *DIFF_HEAD = b'{"stream":"'
cdef const char *DIFF_DATA = b'","data":{"e":"depthUpdate","E":'
cdef const char *SNAPSHOT_HEAD = b'{"lastUpdateId":'


cdef inline bint _at(const char *buf, Py_ssize_t pos, Py_ssize_t end, const char *lit, Py_ssize_t n) noexcept:
    """Whether ``lit`` (``n`` bytes) is at ``pos``."""
    cdef Py_ssize_t i
    if pos + n > end:
        return False
    for i in range(n):
        if buf[pos + i] != lit[i]:
            return False
    return True


cdef inline Py_ssize_t _int(const char *buf, Py_ssize_t pos, Py_ssize_t end, long long *out) noexcept:
    """A JSON integer (``0`` or no leading zero) of at most 18 digits at ``pos``: its end, or -1."""
    cdef Py_ssize_t start = pos
    cdef long long value = 0
    while pos < end and b'0' <= buf[pos] <= b'9':
        value = value * 10 + (buf[pos] - 48)
        pos += 1
        if pos - start > 18:
            return -1
    if pos == start or (buf[start] == b'0' and pos - start > 1):
        return -1
    out[0] = value
    return pos


cdef inline Py_ssize_t _name(const char *buf, Py_ssize_t pos, Py_ssize_t end) noexcept:
    """A JSON string body of printable ASCII without quote or backslash at ``pos``: the closing quote's place, or -1."""
    cdef char c
    while pos < end:
        c = buf[pos]
        if c == b'"':
            return pos
        if c < 32 or c > 126 or c == b'\\':
            return -1
        pos += 1
    return -1


cdef Py_ssize_t _levels(const char *buf, Py_ssize_t pos, Py_ssize_t end, Py_ssize_t *spans, Py_ssize_t *count) noexcept:
    """``[["p","q"],...]`` at ``pos`` (the ``[``): each number's (start, end) into ``spans``; the end, or -1.

    Numbers must be made of digits and points only (what else they hold is the JSON path's business).
    """
    cdef Py_ssize_t n = 0, k, start
    cdef char c
    if pos >= end or buf[pos] != b'[':
        return -1
    pos += 1
    if pos < end and buf[pos] == b']':
        count[0] = 0
        return pos + 1
    while True:
        if n >= MAX_LEVELS or pos + 2 > end or buf[pos] != b'[' or buf[pos + 1] != b'"':
            return -1
        pos += 2
        for k in range(2):
            start = pos
            while pos < end:
                c = buf[pos]
                if c == b'"':
                    break
                if not (b'0' <= c <= b'9' or c == b'.'):
                    return -1
                pos += 1
            if pos >= end:
                return -1
            spans[4 * n + 2 * k] = start
            spans[4 * n + 2 * k + 1] = pos
            if k == 0:
                if not _at(buf, pos, end, b'","', 3):
                    return -1
                pos += 3
            else:
                if not _at(buf, pos, end, b'"]', 2):
                    return -1
                pos += 2
        n += 1
        if pos < end and buf[pos] == b',':
            pos += 1
            continue
        if pos < end and buf[pos] == b']':
            count[0] = n
            return pos + 1
        return -1


cdef object _new_row(object table, object text, const char *buf, Py_ssize_t start, Py_ssize_t stop):
    """``TextTable.__missing__`` for its common case (``digits.digits`` on the grid, in 64 bits); else the method."""
    cdef Py_ssize_t places = table.places, point = -1, i, digits = 0
    cdef long long units = 0
    cdef char c
    for i in range(start, stop):
        if buf[i] == b'.':
            if point >= 0:
                return table.__missing__(text)
            point = i
    if point <= start or point >= stop - 1:  # no point, nothing before it, or nothing after it
        return table.__missing__(text)
    for i in range(start, stop):
        c = buf[i]
        if c == b'.':
            continue
        if i > point + places:
            if c != b'0':
                return table.__missing__(text)  # finer than the increment: it raises
            continue
        units = units * 10 + (c - 48)
        digits += 1
        if digits > 18:
            return table.__missing__(text)
    for i in range(stop - 1 - point, places):
        units = units * 10
        digits += 1
        if digits > 18:
            return table.__missing__(text)
    if units == 0 and table.positive:
        return table.__missing__(text)  # raises
    shared = table.shared
    cdef PyObject *found = PyDict_GetItem(shared, text)
    if found is NULL:
        decimal = Decimal(text)
        PyDict_SetItem(shared, text, decimal)
    else:
        decimal = <object>found
    units_list = table.units
    row = len(units_list)
    PyDict_SetItem(table, text, row)
    PyList_Append(units_list, units)
    PyList_Append(table.decimals, decimal)
    return row


cdef class DepthRows:
    """One read's fast path for book messages: payload -> the pending header, rows appended (see the module doc)."""

    cdef object prices, sizes, price_rows, size_rows, lengths, delta, snapshot, symbol
    cdef long long ns_per_ms
    cdef Py_ssize_t *spans

    def __cinit__(self):
        self.spans = NULL

    def __init__(self, prices, sizes, list price_rows, list size_rows, list lengths, str symbol,
                 delta, snapshot, long long ns_per_ms):
        self.prices, self.sizes = prices, sizes
        self.price_rows, self.size_rows, self.lengths = price_rows, size_rows, lengths
        self.symbol = symbol.encode("ascii") if symbol.isascii() else None
        self.delta, self.snapshot, self.ns_per_ms = delta, snapshot, ns_per_ms
        self.spans = <Py_ssize_t *>_alloc(2 * 4 * MAX_LEVELS * sizeof(Py_ssize_t))

    def __dealloc__(self):
        _free(self.spans)

    def __call__(self, bytes payload not None, ts_recv):
        """``(class, first, seq, ts_event, ts_recv)`` with the levels' rows appended, or None: not this shape."""
        cdef const char *buf = payload
        cdef Py_ssize_t end = len(payload), pos, name_end, nb = 0, na = 0
        cdef long long first = 0, seq = 0, exchange_ms = 0
        cdef Py_ssize_t *bids = self.spans
        cdef Py_ssize_t *asks = self.spans + 4 * MAX_LEVELS
        cdef bint diff
        if _at(buf, 0, end, DIFF_HEAD, strlen(DIFF_HEAD)):
            diff = True
            if self.symbol is None:
                return None
            pos = _name(buf, strlen(DIFF_HEAD), end)
            if pos < 0 or payload.find(b"@depth", strlen(DIFF_HEAD), pos) < 0:
                return None
            if not _at(buf, pos, end, DIFF_DATA, strlen(DIFF_DATA)):
                return None
            pos = _int(buf, pos + strlen(DIFF_DATA), end, &exchange_ms)
            if pos < 0 or not _at(buf, pos, end, b',"s":"', 6):
                return None
            name_end = _name(buf, pos + 6, end)
            if name_end < 0 or payload[pos + 6:name_end] != self.symbol:
                return None  # another symbol: the JSON path says why it is refused
            pos = name_end
            if not _at(buf, pos, end, b'","U":', 6):
                return None
            pos = _int(buf, pos + 6, end, &first)
            if pos < 0 or not _at(buf, pos, end, b',"u":', 5):
                return None
            pos = _int(buf, pos + 5, end, &seq)
            if pos < 0 or not _at(buf, pos, end, b',"b":', 5):
                return None
            pos = _levels(buf, pos + 5, end, bids, &nb)
            if pos < 0 or not _at(buf, pos, end, b',"a":', 5):
                return None
            pos = _levels(buf, pos + 5, end, asks, &na)
            if pos < 0 or pos + 2 != end or buf[pos] != b'}' or buf[pos + 1] != b'}':
                return None
        elif _at(buf, 0, end, SNAPSHOT_HEAD, strlen(SNAPSHOT_HEAD)):
            diff = False
            pos = _int(buf, strlen(SNAPSHOT_HEAD), end, &seq)
            if pos < 0 or not _at(buf, pos, end, b',"bids":', 8):
                return None
            pos = _levels(buf, pos + 8, end, bids, &nb)
            if pos < 0 or not _at(buf, pos, end, b',"asks":', 8):
                return None
            pos = _levels(buf, pos + 8, end, asks, &na)
            if pos < 0 or pos + 1 != end or buf[pos] != b'}':
                return None
        else:
            return None
        self._side(buf, bids, nb)
        self._side(buf, asks, na)
        if diff:
            return (self.delta, first, seq, exchange_ms * self.ns_per_ms, ts_recv)
        return (self.snapshot, seq, seq, ts_recv, ts_recv)

    cdef _side(self, const char *buf, Py_ssize_t *spans, Py_ssize_t n):
        """Like ``_Parser._rows``: every price's row, then every size's, then the count."""
        _look(self.prices, self.price_rows, buf, spans, n, 0)
        _look(self.sizes, self.size_rows, buf, spans, n, 2)
        PyList_Append(self.lengths, n)


cdef inline str _ascii(const char *chars, Py_ssize_t n):
    """A str of ``n`` ASCII bytes (digits and points, already checked): no decoder, one copy."""
    cdef str text = PyUnicode_New(n, 127)
    memcpy(PyUnicode_DATA(text), chars, n)
    return text


cdef _look(object table, list rows, const char *buf, Py_ssize_t *spans, Py_ssize_t n, Py_ssize_t offset):
    cdef Py_ssize_t i, start, stop
    cdef PyObject *found
    for i in range(n):
        start = spans[4 * i + offset]
        stop = spans[4 * i + offset + 1]
        text = _ascii(buf + start, stop - start)
        found = PyDict_GetItem(table, text)
        if found is NULL:
            PyList_Append(rows, _new_row(table, text, buf, start, stop))
        else:
            PyList_Append(rows, <object>found)


@cython.boundscheck(True)
@cython.wraparound(False)
def build_sides(list price_rows, list size_rows, list lengths, list price_decimals, list size_decimals,
                list price_units, list size_units):
    """Per side (in ``lengths`` order): its levels tuple, integer pairs tuple, price rows and size rows.

    What ``_Parser.build`` makes with ``zip`` and slices: levels ``(Decimal, Decimal)``, pairs
    ``(int, int)``, both from the rows' table entries; an empty side is the empty tuple.
    """
    cdef Py_ssize_t side, i, k, n, at = 0, total = PyList_GET_SIZE(price_rows)
    cdef Py_ssize_t sides = PyList_GET_SIZE(lengths)
    cdef Py_ssize_t pr, sr
    if PyList_GET_SIZE(size_rows) != total or sum(lengths) != total:
        raise ValueError("rows and lengths do not match")
    levels_out = [None] * sides
    pairs_out = [None] * sides
    price_out = [None] * sides
    size_out = [None] * sides
    for side in range(sides):
        n = lengths[side]
        levels = PyTuple_New(n)
        pairs = PyTuple_New(n)
        for k in range(n):
            i = at + k
            pr = <object>PyList_GET_ITEM(price_rows, i)
            sr = <object>PyList_GET_ITEM(size_rows, i)
            level = (price_decimals[pr], size_decimals[sr])
            pair = (price_units[pr], size_units[sr])
            Py_INCREF(level)
            PyTuple_SET_ITEM(levels, k, level)
            Py_INCREF(pair)
            PyTuple_SET_ITEM(pairs, k, pair)
        levels_out[side] = levels
        pairs_out[side] = pairs
        price_out[side] = price_rows[at:at + n]
        size_out[side] = size_rows[at:at + n]
        at += n
    return levels_out, pairs_out, price_out, size_out


cdef inline bint _blank(char c) noexcept:
    """Whitespace as ``bytes.strip`` sees it."""
    return c == b' ' or c == b'\t' or c == b'\n' or c == b'\r' or c == b'\x0b' or c == b'\x0c'


cdef const char *TICKER = b'@bookTicker"'
cdef const char *EXCHANGE_TIME = b'"E":'


def scan_text(bytes data not None, bint keep_all, long long ns_per_ms):
    """``binance_lines._scan`` over a whole decompressed file: (kept lines, clock samples), or None.

    The same lines (``(number, raw ns, payload)``, numbered from 1 over ``data.split(b"\\n")``) and
    samples, without splitting the text into a bytes object per line: a ticker line that is dropped
    is never copied. None when a line is not ``<digits> <payload>`` or a number needs more than 18
    digits: the caller then runs the pure scan, which raises for a bad line with its file and number.
    """
    cdef const char *buf = data
    cdef Py_ssize_t size = len(data), start = 0, stop, i, space, mark, digits_end
    cdef Py_ssize_t number = 0, ticker_len = strlen(TICKER)
    cdef long long raw, exchange
    cdef bint blank
    cdef const char *found
    kept = []
    samples = []
    while start <= size:
        number += 1
        found = <const char *>memchr(buf + start, b'\n', size - start)
        stop = size if found is NULL else found - buf
        space = -1
        for i in range(start, stop):
            if buf[i] == b' ':
                space = i
                break
        if space <= start:
            blank = True
            for i in range(start, stop):
                if not _blank(buf[i]):
                    blank = False
                    break
            if not blank:
                return None
            start = stop + 1
            continue
        raw = 0
        for i in range(start, space):
            if not (b'0' <= buf[i] <= b'9') or raw > (LLONG_MAX - (buf[i] - 48)) // 10:
                return None  # not a stamp, or one beyond 64 bits (a whitespace-only line: see above)
            raw = raw * 10 + (buf[i] - 48)
        # The first '"E":' followed by digits, as re.search(rb'"E":(\d+)') finds it.
        mark = space + 1
        while True:
            found = <const char *>memmem(buf + mark, stop - mark, EXCHANGE_TIME, 4)
            if found is NULL:
                break
            mark = found - buf + 4
            digits_end = mark
            while digits_end < stop and b'0' <= buf[digits_end] <= b'9':
                digits_end += 1
            if digits_end == mark:
                continue
            if digits_end - mark > 18:
                return None
            exchange = 0
            for i in range(mark, digits_end):
                exchange = exchange * 10 + (buf[i] - 48)
            samples.append((raw, raw - (<object>exchange) * ns_per_ms))  # Python ints: no overflow
            break
        if keep_all or memmem(buf + space + 1, stop - space - 1, TICKER, ticker_len) is NULL:
            kept.append((number, raw, data[space + 1:stop]))
        start = stop + 1
    return kept, samples


def gather(str typecode, list table, list groups):
    """``array(typecode, (table[row] for rows in groups for row in rows)).tobytes()``, for ``I`` and ``q``.

    The on-disk cache writes each level's table index and integer units this way (``encoding.known_levels``);
    a table value that does not fit the type raises OverflowError, as ``array`` does. (Every table entry
    is checked, used or not, where the pure path checks those a row uses; the reader's tables hold only
    numbers its levels use, and either way the cache writer then skips the entry, never the events.)
    A row outside the table raises IndexError. The table goes to a C array first, so a level costs one
    read of its row's int and two array accesses.
    """
    cdef Py_ssize_t total = 0, at = 0, g, k, n, size = PyList_GET_SIZE(table), row, width
    cdef bint wide
    cdef long long value
    cdef list rows
    cdef bytes out
    cdef char *buf
    cdef long long *longs
    cdef unsigned int *uints
    if typecode == "q":
        wide = True
    elif typecode == "I":
        wide = False
    else:
        raise ValueError(f"typecode {typecode!r} is not I or q")
    cdef long long *values = <long long *>_alloc(max(size, 1) * sizeof(long long))
    try:
        for k in range(size):
            value = <object>PyList_GET_ITEM(table, k)
            if not wide and (value < 0 or value > 4294967295):
                raise OverflowError(f"{value} does not fit an unsigned 32-bit index")
            values[k] = value
        for rows in groups:
            total += PyList_GET_SIZE(rows)
        width = 8 if wide else 4
        out = PyBytes_FromStringAndSize(NULL, total * width)
        buf = PyBytes_AS_STRING(out)
        longs = <long long *>buf
        uints = <unsigned int *>buf
        for g in range(PyList_GET_SIZE(groups)):
            rows = <list>PyList_GET_ITEM(groups, g)
            n = PyList_GET_SIZE(rows)
            for k in range(n):
                row = <object>PyList_GET_ITEM(rows, k)
                if row < 0 or row >= size:
                    raise IndexError(f"row {row} outside a table of {size}")
                if wide:
                    longs[at] = values[row]
                else:
                    uints[at] = <unsigned int>values[row]
                at += 1
    finally:
        _free(values)
    return out
