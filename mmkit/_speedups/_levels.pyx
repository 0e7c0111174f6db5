# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled twin of :class:`mmkit.book.levels.PyLevels`: the same levels and best prices after every update.

The algorithm is PyLevels' (read its docstring for why: windowed lazy heaps
over the levels), with everything in C: each side's levels are an
open-addressing hash map of 64-bit ints (price ticks -> size lots, deleted
slots reused, the table rebuilt past 70 % load), the heaps are arrays of
64-bit ints. Heap rebuilds (window moves, compaction) happen at exactly the
points the pure core's do, so :attr:`bounds` agree too. Callers read levels
through the methods (``levels``, ``count``, ``size_at``), as they do on the
pure core; a recorded diff is applied without a Python object per level.

Difference on invalid input only: a price or size outside signed 64 bits, or
not an int, raises (OverflowError, TypeError) and the two smallest 64-bit
prices raise ValueError, where the pure core would store them; no recording
or venue has such levels (the book's Decimal edge refuses prices <= 0).
"""

cdef extern from *:
    const char *MMKIT_SOURCE_SHA  # defined by setup.py: the sha256 of this file when it was compiled

#: The digest of the .pyx this module was built from (mmkit._speedups compares it with the file beside it).
SOURCE_SHA = MMKIT_SOURCE_SHA.decode("ascii")

import heapq

from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from libc.limits cimport LLONG_MAX

from mmkit.book.levels import COMPACT_FACTOR, COMPACT_SLACK, HEAP_WINDOW_TICKS, NO_CEILING, NO_FLOOR
from mmkit.model import Side

cdef object _BUY = Side.BUY
cdef long long _WINDOW = HEAP_WINDOW_TICKS
cdef long long _FACTOR = COMPACT_FACTOR
cdef long long _SLACK = COMPACT_SLACK
cdef long long _NO_FLOOR = NO_FLOOR
cdef long long _NO_CEILING = NO_CEILING
assert _NO_CEILING == LLONG_MAX


cdef struct Heap:
    long long *data
    Py_ssize_t n
    Py_ssize_t cap


cdef int heap_reserve(Heap *h, Py_ssize_t need) except -1:
    cdef Py_ssize_t cap
    cdef long long *grown
    if need <= h.cap:
        return 0
    cap = h.cap * 2 if h.cap else 64
    while cap < need:
        cap *= 2
    grown = <long long *> PyMem_Realloc(h.data, cap * sizeof(long long))
    if grown == NULL:
        raise MemoryError()
    h.data = grown
    h.cap = cap
    return 0


cdef inline void sift_down(long long *a, Py_ssize_t start, Py_ssize_t pos) noexcept:
    """Move a[pos] up towards ``start`` (heapq's _siftdown)."""
    cdef long long item = a[pos]
    cdef Py_ssize_t parent
    while pos > start:
        parent = (pos - 1) >> 1
        if item < a[parent]:
            a[pos] = a[parent]
            pos = parent
        else:
            break
    a[pos] = item


cdef inline void sift_up(long long *a, Py_ssize_t n, Py_ssize_t pos) noexcept:
    """Move a[pos] down to a leaf, then back up (heapq's _siftup)."""
    cdef Py_ssize_t start = pos
    cdef long long item = a[pos]
    cdef Py_ssize_t child = 2 * pos + 1
    cdef Py_ssize_t right
    while child < n:
        right = child + 1
        if right < n and not a[child] < a[right]:
            child = right
        a[pos] = a[child]
        pos = child
        child = 2 * pos + 1
    a[pos] = item
    sift_down(a, start, pos)


cdef inline int heap_push(Heap *h, long long value) except -1:
    if h.n >= h.cap:
        heap_reserve(h, h.n + 1)
    h.data[h.n] = value
    h.n += 1
    sift_down(h.data, 0, h.n - 1)
    return 0


cdef inline void heap_pop(Heap *h) noexcept:
    """Drop the root (the heap is not empty)."""
    h.n -= 1
    if h.n > 0:
        h.data[0] = h.data[h.n]
        sift_up(h.data, h.n, 0)


cdef void heapify(Heap *h) noexcept:
    cdef Py_ssize_t i = h.n // 2 - 1
    while i >= 0:
        sift_up(h.data, h.n, i)
        i -= 1


cdef inline tuple _as_tuple(levels):
    return <tuple> levels if type(levels) is tuple else tuple(levels)


# -- a side's levels: an open-addressing hash map of C ints (price ticks -> size lots) ---------------------------

cdef long long _EMPTY = -9223372036854775807 - 1  # LLONG_MIN: a slot never used
cdef long long _GONE = -9223372036854775807  # LLONG_MIN + 1: a slot whose level was deleted (a tombstone)


cdef struct Side_:
    long long *keys
    long long *values
    Py_ssize_t cap  # a power of two (0: nothing allocated)
    Py_ssize_t live  # levels
    Py_ssize_t used  # live + tombstones


cdef inline Py_ssize_t slot_of(long long key, Py_ssize_t mask) noexcept:
    cdef unsigned long long h = <unsigned long long> key * 0x9E3779B97F4A7C15ULL
    return <Py_ssize_t> ((h ^ (h >> 29)) & <unsigned long long> mask)


cdef int side_init(Side_ *t, Py_ssize_t cap) except -1:
    cdef Py_ssize_t i
    t.keys = <long long *> PyMem_Malloc(cap * sizeof(long long))
    t.values = <long long *> PyMem_Malloc(cap * sizeof(long long))
    if t.keys == NULL or t.values == NULL:
        PyMem_Free(t.keys)
        PyMem_Free(t.values)
        t.keys = NULL
        t.values = NULL
        raise MemoryError()
    for i in range(cap):
        t.keys[i] = _EMPTY
    t.cap = cap
    t.live = 0
    t.used = 0
    return 0


cdef void side_free(Side_ *t) noexcept:
    PyMem_Free(t.keys)
    PyMem_Free(t.values)
    t.keys = NULL
    t.values = NULL
    t.cap = 0
    t.live = 0
    t.used = 0


cdef inline Py_ssize_t side_find(Side_ *t, long long key) noexcept:
    """The slot holding ``key``, or -1."""
    cdef Py_ssize_t mask, i
    cdef long long k
    if t.cap == 0:
        return -1
    mask = t.cap - 1
    i = slot_of(key, mask)
    while True:
        k = t.keys[i]
        if k == key:
            return i
        if k == _EMPTY:
            return -1
        i = (i + 1) & mask


cdef int side_rehash(Side_ *t, Py_ssize_t cap) except -1:
    cdef Side_ old = t[0]
    cdef Py_ssize_t i, j, mask
    side_init(t, cap)
    mask = cap - 1
    for i in range(old.cap):
        if old.keys[i] != _EMPTY and old.keys[i] != _GONE:
            j = slot_of(old.keys[i], mask)
            while t.keys[j] != _EMPTY:
                j = (j + 1) & mask
            t.keys[j] = old.keys[i]
            t.values[j] = old.values[i]
            t.live += 1
            t.used += 1
    side_free(&old)
    return 0


cdef inline int side_set(Side_ *t, long long key, long long value) except -1:
    """Set ``key``; returns 1 when it was not there (a new level), 0 when it replaced a size."""
    cdef Py_ssize_t mask, i, grave
    cdef long long k
    if key == _EMPTY or key == _GONE:
        raise ValueError(f"price {key} ticks is reserved by the compiled book core")
    if (t.used + 1) * 10 > t.cap * 7:  # keep the load (tombstones included) under 70 %
        side_rehash(t, t.cap * 2 if t.live * 10 > t.cap * 3 else (t.cap if t.cap else 64))
    mask = t.cap - 1
    i = slot_of(key, mask)
    grave = -1
    while True:
        k = t.keys[i]
        if k == key:
            t.values[i] = value
            return 0
        if k == _EMPTY:
            break
        if k == _GONE and grave < 0:
            grave = i
        i = (i + 1) & mask
    if grave >= 0:
        i = grave  # reuse a tombstone: ``used`` does not grow
    else:
        t.used += 1
    t.keys[i] = key
    t.values[i] = value
    t.live += 1
    return 1


cdef inline void side_delete(Side_ *t, long long key) noexcept:
    cdef Py_ssize_t i = side_find(t, key)
    if i >= 0:
        t.keys[i] = _GONE
        t.live -= 1


cdef int side_clear(Side_ *t) except -1:
    side_free(t)
    return 0


cdef inline bint side_live(Side_ *t, Py_ssize_t i) noexcept:
    return t.keys[i] != _EMPTY and t.keys[i] != _GONE


cdef inline long long as_ll(object value) except? -1:
    return value  # an int, else TypeError; beyond 64 bits, OverflowError


cdef class CLevels:
    """Both sides of a book in C: hash maps for the levels, heaps for the best prices (PyLevels' algorithm)."""

    cdef Side_ _bids
    cdef Side_ _asks
    cdef Heap _bid_heap  # negated prices
    cdef Heap _ask_heap
    cdef long long _bid_floor
    cdef long long _ask_ceiling
    cdef long long _window

    def __cinit__(self, long long window=_WINDOW):
        if window <= 0:
            raise ValueError(f"heap window must be positive ticks, got {window}")
        self._window = window
        self._bid_floor = _NO_FLOOR
        self._ask_ceiling = _NO_CEILING

    def __dealloc__(self):
        side_free(&self._bids)
        side_free(&self._asks)
        PyMem_Free(self._bid_heap.data)
        PyMem_Free(self._ask_heap.data)

    @property
    def bounds(self):
        """(bid floor, ask ceiling) of the heap windows (for tests of the window logic)."""
        return self._bid_floor, self._ask_ceiling

    @property
    def heap_entries(self):
        """Entries in both heaps, stale ones included (for tests of the compaction)."""
        return self._bid_heap.n + self._ask_heap.n

    def clear(self):
        side_clear(&self._bids)
        side_clear(&self._asks)
        self._bid_heap.n = 0
        self._ask_heap.n = 0
        self._bid_floor = _NO_FLOOR
        self._ask_ceiling = _NO_CEILING

    def set_levels(self, bids, asks):
        """Replace every level (zero sizes are left out), heaps rebuilt once."""
        cdef Side_ fresh_bids
        cdef Side_ fresh_asks
        fresh_bids.cap = fresh_bids.live = fresh_bids.used = 0
        fresh_bids.keys = fresh_bids.values = NULL
        fresh_asks.cap = fresh_asks.live = fresh_asks.used = 0
        fresh_asks.keys = fresh_asks.values = NULL
        try:  # nothing changes unless every level converts
            for price, size in bids:
                if size:
                    side_set(&fresh_bids, as_ll(price), as_ll(size))
            for price, size in asks:
                if size:
                    side_set(&fresh_asks, as_ll(price), as_ll(size))
        except BaseException:
            side_free(&fresh_bids)
            side_free(&fresh_asks)
            raise
        side_free(&self._bids)
        side_free(&self._asks)
        self._bids = fresh_bids
        self._asks = fresh_asks
        self._rebuild_bid_heap()
        self._rebuild_ask_heap()

    def apply(self, bids, asks):
        """The hot path: a size replaces the level, size 0 deletes it (a missing level: no-op)."""
        self._apply_side(bids, &self._bids, &self._bid_heap, True, self._bid_floor)
        self._apply_side(asks, &self._asks, &self._ask_heap, False, self._ask_ceiling)
        if self._bid_heap.n + self._ask_heap.n > _FACTOR * (self._bids.live + self._asks.live) + _SLACK:
            self._rebuild_bid_heap()
            self._rebuild_ask_heap()

    cdef int _apply_side(self, levels, Side_ *book, Heap *heap, bint bid, long long bound) except -1:
        """One side's levels; a new price within the heap window goes on the heap (bids negated)."""
        cdef Py_ssize_t count, i
        cdef long long p, q
        cdef tuple items = _as_tuple(levels)
        count = len(items)
        for i in range(count):
            item = items[i]
            if type(item) is tuple and len(<tuple> item) == 2:
                p = as_ll((<tuple> item)[0])
                q = as_ll((<tuple> item)[1])
            else:
                price, size = item
                p = as_ll(price)
                q = as_ll(size)
            if q:
                if side_set(book, p, q):
                    if bid:
                        if p >= bound:
                            heap_push(heap, -p)
                    elif p <= bound:
                        heap_push(heap, p)
            else:
                side_delete(book, p)
        return 0

    def apply_watched(self, bids, asks, watched):
        """PyLevels.apply_watched: per watched (is bid, tick) the size before the diff last changed it, then the best."""
        cdef tuple items
        cdef Py_ssize_t i, n
        cdef long long tick, current
        cdef Side_ *book
        cdef bint listed
        befores = []
        bids = _as_tuple(bids)
        asks = _as_tuple(asks)
        for is_bid, price in watched:
            items = <tuple> (bids if is_bid else asks)
            book = &self._bids if is_bid else &self._asks
            tick = as_ll(price)
            i = side_find(book, tick)
            current = book.values[i] if i >= 0 else 0
            before = current
            listed = False
            n = len(items)
            for i in range(n):
                level = items[i]
                if as_ll(level[0]) == tick:
                    before = current
                    current = as_ll(level[1])
                    listed = True
            befores.append(before if listed else None)
        self.apply(bids, asks)
        return befores, self.best_bid(), self.best_ask()

    cdef int _rebuild_bid_heap(self) except -1:
        """The bid heap anew: every live bid within the window below the best."""
        cdef Side_ *book = &self._bids
        cdef Heap *h = &self._bid_heap
        cdef long long floor = _NO_FLOOR
        cdef long long best
        cdef Py_ssize_t i
        if book.live:
            best = _EMPTY
            for i in range(book.cap):
                if side_live(book, i) and book.keys[i] > best:
                    best = book.keys[i]
            floor = best - self._window
        self._bid_floor = floor
        h.n = 0
        heap_reserve(h, book.live)
        for i in range(book.cap):
            if side_live(book, i) and book.keys[i] >= floor:
                h.data[h.n] = -book.keys[i]
                h.n += 1
        heapify(h)
        return 0

    cdef int _rebuild_ask_heap(self) except -1:
        """The ask heap anew: every live ask within the window above the best."""
        cdef Side_ *book = &self._asks
        cdef Heap *h = &self._ask_heap
        cdef long long ceiling = _NO_CEILING
        cdef long long best
        cdef Py_ssize_t i
        if book.live:
            best = _NO_CEILING
            for i in range(book.cap):
                if side_live(book, i) and book.keys[i] < best:
                    best = book.keys[i]
            ceiling = best + self._window if best <= _NO_CEILING - self._window else _NO_CEILING
        self._ask_ceiling = ceiling
        h.n = 0
        heap_reserve(h, book.live)
        for i in range(book.cap):
            if side_live(book, i) and book.keys[i] <= ceiling:
                h.data[h.n] = book.keys[i]
                h.n += 1
        heapify(h)
        return 0

    cdef int _best_bid(self, long long *out) except -1:
        """1 and the best bid in ``out``, or 0 for an empty side."""
        cdef Heap *h = &self._bid_heap
        while h.n:
            if side_find(&self._bids, -h.data[0]) >= 0:
                out[0] = -h.data[0]
                return 1
            heap_pop(h)
        if not self._bids.live:
            return 0
        self._rebuild_bid_heap()  # every live bid lies below the floor: move the window down
        out[0] = -h.data[0]
        return 1

    cdef int _best_ask(self, long long *out) except -1:
        cdef Heap *h = &self._ask_heap
        while h.n:
            if side_find(&self._asks, h.data[0]) >= 0:
                out[0] = h.data[0]
                return 1
            heap_pop(h)
        if not self._asks.live:
            return 0
        self._rebuild_ask_heap()  # every live ask lies above the ceiling: move the window up
        out[0] = h.data[0]
        return 1

    def best_bid(self):
        """Best bid price in ticks, popping stale heap roots on the way (amortized O(1))."""
        cdef long long price
        return price if self._best_bid(&price) else None

    def best_ask(self):
        """Best ask price in ticks (amortized O(1))."""
        cdef long long price
        return price if self._best_ask(&price) else None

    def size_at(self, side, price):
        """Size displayed at ``price`` (ticks) on ``side``, in lots; 0 where there is no level."""
        cdef Side_ *book = &self._bids if side is _BUY else &self._asks
        cdef long long p
        try:
            p = price
        except OverflowError:
            return 0  # beyond 64 bits: no level can be there
        cdef Py_ssize_t i = side_find(book, p)
        return book.values[i] if i >= 0 else 0

    def count(self, side):
        """Number of levels on ``side``."""
        return self._bids.live if side is _BUY else self._asks.live

    def levels(self, side, depth=None):
        """The best ``depth`` levels of ``side`` (all when None), best first."""
        cdef Side_ *book = &self._bids if side is _BUY else &self._asks
        cdef bint bid = side is _BUY
        cdef Py_ssize_t i
        pairs = [(book.keys[i], book.values[i]) for i in range(book.cap) if side_live(book, i)]
        if depth is None or depth >= len(pairs):
            pairs.sort(reverse=bid)
            return pairs
        if depth <= 0:
            return []
        pick = heapq.nlargest if bid else heapq.nsmallest
        return pick(depth, pairs)

    def is_crossed(self):
        """True when the best bid is at or above the best ask (crossed or locked)."""
        cdef long long bid, ask
        if not self._best_bid(&bid):
            return False
        return self._best_ask(&ask) == 1 and bid >= ask


# -- scans of one diff's levels (twins of mmkit.book.levels.size_before_last_change / drop_listed) -------------


def size_before_last_change(levels, price, current):
    """What ``price`` displayed just before ``levels`` last changed it; None when it is not listed."""
    cdef tuple items = _as_tuple(levels)
    cdef Py_ssize_t i, n = len(items)
    before = None
    for i in range(n):
        level = items[i]
        if level[0] == price:
            before = current
            current = level[1]
    return before


def drop_listed(dict table, levels):
    """Remove from ``table`` every price ``levels`` lists."""
    cdef tuple items
    cdef Py_ssize_t i, n
    if not table:
        return
    items = _as_tuple(levels)
    n = len(items)
    for i in range(n):
        price = items[i][0]
        if price in table:
            del table[price]
            if not table:
                return
