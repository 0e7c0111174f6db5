# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled twin of :class:`mmkit.book.levels.PyLevels`: the same levels and best prices after every update.

The algorithm is PyLevels' (read its docstring for why): the levels are the
same Python dicts (price ticks -> size lots), which callers read as they read
the pure core's, and the windowed lazy heaps move into C arrays of 64-bit
ints. Heap rebuilds (window moves, compaction) happen at exactly the points
the pure core's do, so :attr:`bounds` agree too.

Difference on invalid input only: a price outside signed 64 bits, or not an
int, raises (OverflowError, TypeError) where the pure core would store it; no
recording or venue has such prices, and the book's Decimal edge refuses them
before they get here (prices are > 0 ticks of a real increment).
"""

from cpython.mem cimport PyMem_Free, PyMem_Realloc
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


cdef class CLevels:
    """Both sides of a book in integers: dicts for the levels, C heaps for the best prices."""

    cdef readonly dict bids
    cdef readonly dict asks
    cdef Heap _bid_heap  # negated prices
    cdef Heap _ask_heap
    cdef long long _bid_floor
    cdef long long _ask_ceiling
    cdef long long _window

    def __cinit__(self, long long window=_WINDOW):
        if window <= 0:
            raise ValueError(f"heap window must be positive ticks, got {window}")
        self._window = window
        self.bids = {}
        self.asks = {}
        self._bid_floor = _NO_FLOOR
        self._ask_ceiling = _NO_CEILING

    def __dealloc__(self):
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
        self.bids.clear()
        self.asks.clear()
        self._bid_heap.n = 0
        self._ask_heap.n = 0
        self._bid_floor = _NO_FLOOR
        self._ask_ceiling = _NO_CEILING

    def set_levels(self, bids, asks):
        """Replace every level (zero sizes are left out), heaps rebuilt once."""
        self.bids = {p: q for p, q in bids if q}
        self.asks = {p: q for p, q in asks if q}
        self._rebuild_bid_heap()
        self._rebuild_ask_heap()

    def apply(self, bids, asks):
        """The hot path: a size replaces the level, size 0 deletes it (a missing level: no-op)."""
        self._apply_side(bids, self.bids, &self._bid_heap, True, self._bid_floor)
        self._apply_side(asks, self.asks, &self._ask_heap, False, self._ask_ceiling)
        if self._bid_heap.n + self._ask_heap.n > _FACTOR * (len(self.bids) + len(self.asks)) + _SLACK:
            self._rebuild_bid_heap()
            self._rebuild_ask_heap()

    cdef int _apply_side(self, levels, dict book, Heap *heap, bint bid, long long bound) except -1:
        """One side's levels; a new price within the heap window goes on the heap (bids negated)."""
        cdef Py_ssize_t count, i
        cdef Py_ssize_t before
        cdef long long p
        cdef tuple level
        if type(levels) is not tuple:
            levels = tuple(levels)
        count = len(<tuple> levels)
        for i in range(count):
            item = (<tuple> levels)[i]
            if type(item) is tuple and len(<tuple> item) == 2:
                level = <tuple> item
                price = level[0]
                size = level[1]
            else:
                price, size = item
            if size:
                # One hash lookup for the common case (a known price): a new key grows the dict.
                before = len(book)
                book[price] = size
                if len(book) != before:
                    p = price
                    if bid:
                        if p >= bound:
                            heap_push(heap, -p)
                    elif p <= bound:
                        heap_push(heap, p)
            else:
                book.pop(price, None)
        return 0

    cdef int _rebuild_bid_heap(self) except -1:
        """The bid heap anew: every live bid within the window below the best."""
        cdef dict book = self.bids
        cdef long long floor = _NO_FLOOR
        cdef long long p
        cdef Heap *h = &self._bid_heap
        if book:
            floor = max(book) - self._window
        self._bid_floor = floor
        h.n = 0
        heap_reserve(h, len(book))
        for price in book:
            p = price
            if p >= floor:
                h.data[h.n] = -p
                h.n += 1
        heapify(h)
        return 0

    cdef int _rebuild_ask_heap(self) except -1:
        """The ask heap anew: every live ask within the window above the best."""
        cdef dict book = self.asks
        cdef long long ceiling = _NO_CEILING
        cdef long long p
        cdef Heap *h = &self._ask_heap
        if book:
            ceiling = min(book) + self._window
        self._ask_ceiling = ceiling
        h.n = 0
        heap_reserve(h, len(book))
        for price in book:
            p = price
            if p <= ceiling:
                h.data[h.n] = p
                h.n += 1
        heapify(h)
        return 0

    cdef object _best_bid(self):
        cdef dict book = self.bids
        cdef Heap *h = &self._bid_heap
        cdef object price
        while h.n:
            price = -h.data[0]
            if price in book:
                return price
            heap_pop(h)
        if not book:
            return None
        self._rebuild_bid_heap()  # every live bid lies below the floor: move the window down
        return -h.data[0]

    cdef object _best_ask(self):
        cdef dict book = self.asks
        cdef Heap *h = &self._ask_heap
        cdef object price
        while h.n:
            price = h.data[0]
            if price in book:
                return price
            heap_pop(h)
        if not book:
            return None
        self._rebuild_ask_heap()  # every live ask lies above the ceiling: move the window up
        return h.data[0]

    def best_bid(self):
        """Best bid price in ticks, popping stale heap roots on the way (amortized O(1))."""
        return self._best_bid()

    def best_ask(self):
        """Best ask price in ticks (amortized O(1))."""
        return self._best_ask()

    def size_at(self, side, price):
        """Size displayed at ``price`` (ticks) on ``side``, in lots; 0 where there is no level."""
        return (self.bids if side is _BUY else self.asks).get(price, 0)

    def is_crossed(self):
        """True when the best bid is at or above the best ask (crossed or locked)."""
        bid = self._best_bid()
        if bid is None:
            return False
        ask = self._best_ask()
        return ask is not None and bid >= ask


# -- scans of one diff's levels (twins of mmkit.book.levels.size_before_last_change / drop_listed) -------------


cdef inline tuple _as_tuple(levels):
    return <tuple> levels if type(levels) is tuple else tuple(levels)


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
