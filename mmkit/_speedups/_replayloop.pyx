# cython: language_level=3, boundscheck=False, wraparound=False
"""Compiled delivery loop of a replay backtest: the recorded events between two clock ticks in one C loop.

Why: a replay pushes ~26,000 recorded events (trades and diffs) through the
book sequencer, the replay venue and the reference book, and per event the
pure path is half a dozen Python calls (``RecordingReplay.deliver_until`` ->
sequencer -> ``ReplayBookVenue.on_market_event`` -> ``_on_trade``/``_on_delta``
-> ``ReplayedReference`` -> ``OrderBookTracker.on_delta`` -> ``OrderBook``).
The compiled books made each step cheap; the calls themselves were left
(issue 16). This loop does, for the common event, exactly what those calls
do, reading and writing the same attributes, and calls the sinks themselves
(the pure path, unchanged) for every event it does not handle.

It handles an event only when every precondition below holds, all checked
before the event changes anything; otherwise the event goes to the sinks as
it would without this loop:

* a trade: the venue has a book for the symbol and nobody subscribed to its
  trades; the print reaches none of our resting orders (the venue's cached
  reach says so);
* a diff: it follows on in the sequencer and in the reference tracker (both
  synced, valid, no bridge pending, not inside a resync callback, same
  venue/symbol, no checksum); its pre-scaled levels are on both books'
  grids; nobody subscribed to the venue's book; the diff lists none of the
  levels our resting orders wait at (the queue model must hear of those);
  nothing is in the venue's ledger of what our orders took from the recorded
  levels (``TakenLiquidity``: while it holds anything, the Python path
  forgets listed levels and judges crossings against what is left);
* anything else (snapshots, other event types) goes to the sinks.

Where the pure path would do something first, the loop does it first too,
through the same Python method: the venue's ``advance`` when an action of
ours is due by the event's time (for a diff, once the sequencer would hand
it on; should the event then go to the sinks, the venue finds nothing due),
and the venue's cached views of our orders (``_reach``, ``_watched``,
``_resting_orders``) and the price conversion of a print (``tick_of``) when
they are not cached yet. After a handled diff, a crossing of one of our
orders by the recorded book, a crossed reference book, a change of the
reference's validity and a new mid are handed to the same Python methods
the pure path calls (``ReplayBookVenue._on_depth``,
``OrderBookTracker._invalidate_crossed``, ``BookHealth.observe``, the mid
listeners).

The venue's book and the reference's may be one object
(:mod:`mmkit.backtest.shared_book`): then a handled diff is applied once, and
only while the sequencer and the tracker are at the same seq (otherwise the
diff goes to the SharedBook, which forks first). The venue's book is looked
up again after every event handed to the sinks and after the tracker
invalidates (a fork or a join may have replaced it); the tracker's never
changes.

tests/unit/backtest/test_replay_loop.py (random streams) and
tests/integration/backtest/test_replay_loop_identical.py (the whole shared
recording) run backtests through this loop and through the sinks alone and
compare every piece of state it touches after every tick, then the reports.
"""

cdef extern from *:
    const char *MMKIT_SOURCE_SHA  # defined by setup.py: the sha256 of this file when it was compiled

#: The digest of the .pyx this module was built from (mmkit._speedups compares it with the file beside it).
SOURCE_SHA = MMKIT_SOURCE_SHA.decode("ascii")

from mmkit.model import ZERO, BookDelta, Side, Trade

cdef object _TRADE = Trade
cdef object _DELTA = BookDelta
cdef object _BUY = Side.BUY
cdef object _SELL = Side.SELL
cdef object _ZERO = ZERO

# Why an event went to the sinks (0: handled here); the names are what ``passed_by`` reports.
cdef enum:
    _HANDLED = 0
    _REACH = 1
    _SEQUENCE = 2
    _TRACKER = 3
    _GRID = 4
    _OURS = 5
    _OTHER = 6
    _KIND = 7
    _SHARED = 8
    _TAKEN = 9
    _REASONS = 10
_REASON_NAMES = (
    "handled",
    "print reaches our order",
    "sequencer not following on",
    "tracker not following on",
    "levels not pre-scaled on the grid",
    "diff lists our level",
    "other",
    "snapshot or other type",
    "shared book, sinks at different seqs",
    "our orders took from the recorded book",
)


cdef inline bint _on_grid(object price, object size, object ours_price, object ours_size) except -1:
    """The reader's pre-scaled levels (increments ``price``, ``size``) are on a book's grid (OrderBook.int_levels)."""
    return (price is ours_price or price == ours_price) and (size is ours_size or size == ours_size)


cdef inline bint _lists(tuple levels, object tick):
    """True when one of the diff's levels is at ``tick``."""
    cdef Py_ssize_t i
    for i in range(len(levels)):
        if levels[i][0] == tick:
            return True
    return False


cdef inline void _drop_listed(dict table, tuple levels):
    """Remove from ``table`` every price ``levels`` lists (mmkit.book.levels.drop_listed)."""
    cdef Py_ssize_t i
    for i in range(len(levels)):
        price = levels[i][0]
        if price in table:
            del table[price]
            if not table:
                return


cdef class ReplayLoop:
    """Delivers recorded events to (sequencer -> replay venue, reference) as their sinks would."""

    cdef list _sinks
    cdef object _sequencer
    cdef object _venue
    cdef object _reference
    cdef object _tracker
    cdef object _health
    cdef object _ref_book
    cdef object _ref_levels
    cdef object _ref_price_inc
    cdef object _ref_size_inc
    cdef object _symbol
    cdef object _venue_name
    cdef object _book
    cdef object _levels
    cdef dict _books
    cdef dict _price_memo
    cdef object _price_inc
    cdef object _size_inc
    # The venue's containers (assigned once in its __init__, mutated in place ever after).
    cdef list _to_venue
    cdef object _trade_subs
    cdef object _book_subs
    cdef dict _resting
    cdef dict _traded
    cdef dict _traded_cache
    cdef dict _reach
    cdef dict _watch
    cdef dict _taken
    cdef list _trade_listeners
    cdef list _mid_listeners
    #: Events handled here, and events handed to the sinks (for tests and the bench).
    cdef public Py_ssize_t handled
    cdef public Py_ssize_t passed
    #: Handled diffs after which the venue's _on_depth ran (our order crossed or off the grid), or the tracker
    #: invalidated a crossed reference book (the rare branches, counted so the tests can show they ran).
    cdef public Py_ssize_t our_crossings
    cdef public Py_ssize_t reference_crossings
    #: Events before which the loop ran the venue's advance (an action of ours was due).
    cdef public Py_ssize_t advances
    #: The index after the event being delivered: where the replay goes on when a sink or a venue step raises
    #: inside :meth:`deliver` (mmkit.backtest.replay.RecordingReplay.deliver_until).
    cdef public Py_ssize_t resume_index
    cdef Py_ssize_t _why[_REASONS]

    def __init__(self, list sinks, sequencer, venue, reference):
        self._sinks = sinks
        self._sequencer = sequencer
        self._venue = venue
        self._reference = reference
        self._tracker = reference.tracker
        self._health = reference.health
        self._ref_book = self._tracker.book
        self._ref_levels = self._ref_book._levels
        self._ref_price_inc = self._ref_book._price.increment
        self._ref_size_inc = self._ref_book._size.increment
        # The one instrument of the replay (a tracker's venue and symbol, a book's core, scalers and price memo
        # are assigned once, in their __init__): events of any other symbol go to the sinks.
        self._symbol = self._tracker.symbol
        self._venue_name = self._tracker.venue
        # The venue's book is the tracker's while a SharedBook keeps them one object (mmkit.backtest.shared_book),
        # a copy of its own once forked: looked up again wherever a fork or a join may have happened (_rebind).
        self._books = venue.books
        self._book = None
        self._rebind()
        self._to_venue = venue._to_venue
        self._trade_subs = venue._trade_subs
        self._book_subs = venue._book_subs
        self._resting = venue._resting
        self._traded = venue._traded
        self._traded_cache = {}
        self._reach = venue._reach_by_symbol
        self._watch = venue._watch
        self._taken = venue._taken.tables  # one dict for the venue's life, empty while nothing is taken
        self._trade_listeners = reference._trade_listeners
        self._mid_listeners = reference._mid_listeners
        self.handled = 0
        self.passed = 0
        self.our_crossings = 0
        self.reference_crossings = 0
        self.advances = 0
        self.resume_index = 0
        for i in range(_REASONS):
            self._why[i] = 0

    @property
    def passed_by(self):
        """Events handed to the sinks, by reason (for the bench and the tests)."""
        return {_REASON_NAMES[i]: self._why[i] for i in range(1, _REASONS) if self._why[i]}

    def deliver(self, list events, Py_ssize_t index, object recorded_ns):
        """Deliver ``events[index:]`` up to ``ts_recv <= recorded_ns``; returns the index of the first one left."""
        cdef Py_ssize_t end = len(events)
        cdef object event, kind
        cdef int why
        while index < end:
            event = events[index]
            if event.ts_recv > recorded_ns:
                break
            index += 1
            self.resume_index = index
            kind = type(event)
            if kind is _TRADE:
                why = self._trade(event)
            elif kind is _DELTA:
                why = self._delta(event)
            else:
                why = _KIND
            if why == _HANDLED:
                self.handled += 1
            else:
                self.passed += 1
                self._why[why] += 1
                for sink in self._sinks:
                    sink(event)
                self._rebind()
        return index

    cdef int _rebind(self) except -1:
        """Follow the venue's book of the symbol when it is another object now (a fork or a join)."""
        book = self._books[self._symbol]
        if book is not self._book:
            self._book = book
            self._levels = book._levels
            self._price_memo = book._price.memo
            self._price_inc = book._price.increment
            self._size_inc = book._size.increment
        return 0

    cdef inline bint _due(self, object ts):
        """An action of ours has arrived at the venue by ``ts`` (the venue's advance must run first)."""
        cdef list to_venue = self._to_venue
        return len(to_venue) > 0 and to_venue[0][0] <= ts

    cdef int _advance(self, object ts) except -1:
        """The venue's advance, where its on_market_event would call it (before the event; the rest of the
        event may still go to the sinks, whose on_market_event then finds nothing due)."""
        self.advances += 1
        self._venue.advance(ts)
        return 0

    cdef inline void _venue_time(self, object ts):
        venue = self._venue
        if ts > venue._venue_time:
            venue._venue_time = ts

    cdef int _trade(self, trade) except -1:
        """ReplayBookVenue.on_market_event + ReplayedReference.__call__ for a trade, when nothing of ours is near."""
        ts = trade.ts_event
        if self._due(ts):
            self._advance(ts)
        symbol = trade.symbol
        if symbol != self._symbol or (self._trade_subs and symbol in self._trade_subs):
            return _OTHER
        price = trade.price
        if self._resting:
            reach = self._reach.get(symbol)
            if reach is None:
                reach = self._venue._reach(symbol)  # builds the venue's cached view, as its _on_trade would
            high_bid, low_ask = reach
            if (high_bid is not None and price <= high_bid) or (low_ask is not None and price >= low_ask):
                return _REACH
        aggressor = trade.aggressor
        tick = None
        if aggressor is not None:
            tick = self._price_memo.get(price)
            if tick is None:
                tick = self._book.tick_of(price)  # converts (and memoizes) as the venue's _on_trade does; None: off grid
        # -- every precondition holds: the effects, in the pure path's order
        self._venue_time(ts)
        if tick is not None:
            traded = self._traded_at(symbol, _SELL if aggressor is _BUY else _BUY, True)
            (<dict> traded)[tick] = (<dict> traded).get(tick, _ZERO) + trade.qty
        for listener in self._trade_listeners:
            listener(trade)
        return _HANDLED

    cdef int _delta(self, delta) except -1:
        """Sequencer + venue + reference for a diff that follows on and lists none of our levels."""
        cdef bint shared
        sequencer = self._sequencer
        tracker = self._tracker
        venue = self._venue
        seq = delta.seq
        first = delta.first_seq
        last = sequencer._last_seq
        if last is None or seq <= last or first > last + 1:
            return _SEQUENCE
        ts = delta.ts_event
        if self._due(ts):
            self._advance(ts)  # the sequencer hands it on: the venue lets our due actions act first
        if not tracker._valid or tracker._need_bridge or tracker._in_resync_callback:
            return _TRACKER
        symbol = delta.symbol
        if symbol != self._symbol or delta.venue != self._venue_name or delta.checksum is not None:
            return _OTHER
        tracker_last = tracker._last_seq
        if seq <= tracker_last or first != tracker_last + 1:
            return _TRACKER
        # One book for both (shared): only while both sinks are at the same seq (the SharedBook forks otherwise).
        shared = self._levels is self._ref_levels
        if shared and tracker_last != last:
            return _SHARED
        if self._book_subs and symbol in self._book_subs:
            return _OTHER
        if self._taken:
            return _TAKEN
        scaled = delta.scaled
        if scaled is None:
            return _GRID
        price_inc = scaled.price_increment
        size_inc = scaled.size_increment
        if not _on_grid(price_inc, size_inc, self._price_inc, self._size_inc) or not _on_grid(
            price_inc, size_inc, self._ref_price_inc, self._ref_size_inc
        ):
            return _GRID
        bids = scaled.bids
        asks = scaled.asks
        if type(bids) is not tuple or type(asks) is not tuple:
            return _GRID
        resting = self._resting
        orders = None
        if resting:
            # The venue's cached views of our orders (built here when missing, as its _on_delta would).
            orders = venue._resting_seq
            if orders is None:
                orders = venue._resting_orders()
            watch = self._watch.get(symbol)
            if watch is None:
                watch = venue._watched(symbol)
            for is_bid, tick in watch[1]:
                if _lists(<tuple> (bids if is_bid else asks), tick):
                    return _OURS  # the queue model must hear of it: the sinks
        # -- every precondition holds: the sequencer hands it on, the venue applies it (pure path's order)
        sequencer._last_seq = seq
        self._venue_time(ts)
        book = self._book
        levels = self._levels
        if resting:
            levels.apply(bids, asks)
            best_bid = levels.best_bid()
            best_ask = levels.best_ask()
            book.seq = seq
            if self._crosses_ours(<tuple> orders, symbol, best_bid, best_ask):
                self.our_crossings += 1
                venue._on_depth(book, symbol, {}, ts, (best_bid, best_ask))
        else:
            levels.apply(bids, asks)
            book.seq = seq
        if self._traded:
            traded = self._traded_at(symbol, _BUY, False)
            if traded and bids:
                _drop_listed(<dict> traded, <tuple> bids)
            traded = self._traded_at(symbol, _SELL, False)
            if traded and asks:
                _drop_listed(<dict> traded, <tuple> asks)
        # -- the reference: BookHealth counters, OrderBookTracker._apply, then ReplayedReference's tail
        self._health.diffs_received += 1
        ref_levels = self._ref_levels
        ref_book = self._ref_book
        if not shared:  # shared: the venue's apply above was the tracker's too
            ref_levels.apply(bids, asks)
        ref_book.seq = seq
        ref_book.ts_event = delta.ts_event
        tracker._last_seq = seq
        tracker.deltas_applied += 1
        if ref_levels.is_crossed():
            self.reference_crossings += 1
            tracker._invalidate_crossed(delta)  # a shared book is forked first (the tracker's before_clear)
            self._rebind()
        reference = self._reference
        valid = tracker._valid
        if valid is not reference._was_valid:
            reference._was_valid = valid
            self._health.observe(delta.ts_recv, valid)
        if not valid:
            return _HANDLED
        reference.last_update_ns = delta.ts_recv
        top = (ref_levels.best_bid(), ref_levels.best_ask())
        if top == reference._last_top:
            return _HANDLED
        reference._last_top = top
        mid = ref_book.mid()
        if mid is not None and mid != reference.last_mid:
            reference.last_mid = mid
            for listener in self._mid_listeners:
                listener(mid)
        return _HANDLED

    cdef object _traded_at(self, symbol, side, bint create):
        """The venue's ``_traded[(symbol, side)]`` table (None when absent and not ``create``d).

        Kept per symbol here: the venue only ever adds these tables (setdefault) and never drops or replaces
        one, and a (str, Side) key costs a Python-level Enum hash per lookup.
        """
        cdef list pair = self._traded_cache.get(symbol)
        cdef int index = 0 if side is _BUY else 1
        if pair is None:
            pair = self._traded_cache[symbol] = [None, None]
        table = pair[index]
        if table is None:
            key = (symbol, side)
            table = self._traded.get(key)
            if table is None and create:
                table = self._traded[key] = {}
            pair[index] = table
        return table

    cdef bint _crosses_ours(self, tuple orders, symbol, best_bid, best_ask) except -1:
        """True when the recorded book now crosses one of our orders of ``symbol``, or one is off the grid.

        Either way ReplayBookVenue._on_depth runs (with no changed level of ours, all it does is fill
        crossed orders; an off-grid order is compared in Decimal there).
        """
        for queued in orders:
            rec = queued.rec
            if rec.symbol != symbol or rec.price is None:
                continue
            tick = queued.tick
            if tick is None:
                return True
            if rec.side is _BUY:
                if best_ask is not None and best_ask < tick:
                    return True
            elif best_bid is not None and best_bid > tick:
                return True
        return False
