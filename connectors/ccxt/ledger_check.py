"""The in-run ledger check of a ccxt venue: what we passed on, set against the venue, while running.

Why: ccxt venues send fills without a cumulative filled quantity (a Kraken
execution, a Coinbase fill), so a missed trade or one booked twice (a venue
re-sending an execution under a new id) is seen on an open order by the
poller's listing, but on an order that has finished it was seen only at the
next restart (mmkit.app.recovery). The check closes that, on the venue's own
REST answers, every ``ledger_check_s`` and at once after a gap in a private
stream (a dropped socket is where trades go missing):

1. **Trade history sweep**: ``fetch_my_trades`` per symbol since that
   symbol's last *complete* sweep (a minute of overlap). The start moves on
   only once a symbol's window was read to its end: a round whose read failed
   keeps it, so a trade history down for a while is read back when it returns.
   Where the venue pages its history (Kraken: 50 trades a call, newest first,
   ``ofs`` pages on; Gemini: the oldest 500 from a ``timestamp`` on, the next
   page from the newest millisecond read, trades read twice booked once by id;
   Coinbase: a page a call, its ``cursor`` pages on) the window is read page by
   page, at most ``SWEEP_MAX_PAGES`` a round (the venue counts every call); the
   rest is carried to the next round, never skipped. A trade of one of our orders not
   passed on yet went missing on the way (raced a cancel, fell in a stream
   gap): it is passed on now, as restart recovery would book it from the same
   history, and logged (``ledger_missed_trades``). A trade that does not parse
   is logged at ERROR and counted (``malformed_trades``), and not marked seen:
   a corrected answer books it later.
2. **Finished orders**: an order that got a trade passed on after its last
   answer that agreed (``_Tracked.verified_filled``) is read again, oldest
   first, at most ``ledger_check_max_reads`` a round. An answer below what was
   passed on goes to the engine as an OrderStatusReport: the stream halts,
   "ledger ahead of venue" (exit 5), as at a restart, where the same finding
   refuses the start.
3. **Behind for too long**: an order whose venue answers have counted more
   filled than its trades explain for ``ledger_behind_grace_s`` (the trade
   syncs in between found nothing) is reported: the stream books the
   difference as a flagged synthetic fill and halts ("fills missing"). Within
   the grace it is the trade history's lag.

Each round is guarded: an error in one is logged at ERROR with its cause and
counted (``ledger_check_errors``), and the loop goes on; a loop that ends
anyway is logged at ERROR and started again (connector.py, ``_watch``).

Mismatches within half a lot are rounding (the stream decides, as for every
report). Every call is a REST call like the others (session health, ccxt's
throttle), and the reads are bounded per round: the venues count every request.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import attrs

from connectors.ccxt.convert import _dec, _Tracked
from connectors.ccxt.errors import classify
from connectors.ccxt.polling import PollingMixin
from mmkit.model import NS_PER_MS

#: The trade history sweep overlaps the previous round by this much (a trade stamped late is still seen).
SWEEP_OVERLAP_MS = 60_000
#: Pages of a paged trade history read per symbol and round; the rest is carried to the next round.
SWEEP_MAX_PAGES = 4


@attrs.define
class _SweepWindow:
    """One symbol's trade history sweep: where it starts, and a window being read page by page."""

    #: The start (ms) of the next window: moves on only once a window was read to its end.
    since_ms: int
    #: The end (ms) of the window being read (None: the next round opens a new window up to its start).
    until_ms: int | None = None
    #: Where the window's next page starts (Kraken: entries read, its ``ofs``; Gemini: a ``timestamp``;
    #: Coinbase: its ``cursor``); None: the window's first page.
    cursor: int | str | None = None


class LedgerCheckMixin(PollingMixin):
    """The periodic check (``_ledger_check_loop``) and one round of it (``check_ledger``)."""

    #: Per mmkit symbol: the trade history sweep's window (created at the session's start, ``_ledger_since_ms``).
    _sweeps: dict[str, _SweepWindow]
    _ledger_lock: asyncio.Lock
    #: Rounds that raised (logged at ERROR with the cause; the loop went on).
    ledger_check_errors: int

    async def _ledger_check_loop(self) -> None:
        interval = self._config.ledger_check_s
        while self._running:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ledger_wake.wait(), interval)
            self._ledger_wake.clear()
            if not self._running or self._ticks_stalled() or not self._connected:
                continue  # a stalled engine must not keep a Gemini heartbeat session alive by polling
            try:
                await self.check_ledger()
            except Exception as exc:  # one bad round must not end the check: say why, go on
                self.ledger_check_errors += 1
                self._log.opt(exception=exc).error("ledger check round failed ({}): {!r}; next round",
                                                   self.ledger_check_errors, exc)

    def _wake_ledger_check(self, why: str) -> None:
        """A gap in a private stream: trades may have gone missing in it, so check now."""
        if self._config.ledger_check_s > 0 and not self._ledger_wake.is_set():
            self._log.info("ledger check brought forward: {}", why)
            self._ledger_wake.set()

    async def check_ledger(self) -> None:
        """One round: sweep the trade history, read finished orders booked since they agreed, report what lags."""
        async with self._ledger_lock:  # one round at a time: a round by hand must not interleave the sweep's pages
            await self._check_ledger()

    async def _check_ledger(self) -> None:
        self.ledger_checks += 1
        await self._sweep_trade_history()
        unverified = sorted(
            (t for t in self._current_orders()
             if not t.open and t.filled > 0 and t.verified_filled != t.filled),
            key=lambda t: t.sent_ns,
        )
        for tracked in unverified[: self._config.ledger_check_max_reads]:
            await self._read_finished(tracked)
        self._report_behind()

    async def _sweep_trade_history(self) -> None:
        symbols = sorted({t.request.symbol for t in self._orders.values() if t.venue_order_id is not None})
        for symbol in symbols:
            window = self._sweeps.setdefault(symbol, _SweepWindow(self._ledger_since_ms))
            for _ in range(SWEEP_MAX_PAGES):
                if window.until_ms is None:
                    window.until_ms, window.cursor = time.time_ns() // NS_PER_MS, None
                try:
                    trades, cursor, whole = await self._trade_page(symbol, window.since_ms, window.until_ms,
                                                                   window.cursor)
                except Exception as exc:  # the window stays: the next round reads it again
                    self._log.warning("ledger check: trade history of {} unavailable ({}); next round, from {}",
                                      symbol, classify(exc).message, window.since_ms)
                    break
                self._sweep_book(trades, symbol)
                window.cursor = cursor
                if whole:  # the window was read to its end
                    window.since_ms, window.until_ms = window.until_ms - SWEEP_OVERLAP_MS, None
                    break
            else:
                self._log.warning("ledger check: more than {} pages of {} trades in the history since {}; the rest "
                                  "next round (from page {})", SWEEP_MAX_PAGES, symbol, window.since_ms,
                                  window.cursor)

    def _sweep_book(self, trades: list[Any], symbol: str) -> None:
        for fill in self._book_trades(trades, symbol):
            tracked = self._orders.get(fill.client_id)
            if tracked is not None and tracked.open:
                continue  # an open order's trade the poller had not read yet: the sweep only got there first
            self.ledger_missed_trades += 1
            self._log.bind(client_id=fill.client_id).warning(
                "ledger check: trade {} ({} {}@{} on order {}) had not reached us; passed on now",
                fill.trade_id, fill.side.value, fill.qty, fill.price, fill.venue_order_id,
            )

    async def _read_finished(self, tracked: _Tracked) -> None:
        """Read a finished order again: the venue's filled against what was passed on before the read was sent."""
        booked_before = tracked.filled
        try:
            raw = await self._fetch_raw_order(tracked.request.client_id, tracked.request.symbol, tracked)
        except Exception as exc:
            self._log.bind(client_id=tracked.request.client_id).warning(
                "ledger check: cannot read order {} ({}); next round", tracked.venue_order_id, classify(exc).message)
            return
        self._apply_order(tracked, raw, booked_before)  # below what was passed on: reported to the engine

    def _current_orders(self) -> list[_Tracked]:
        """One tracked order per venue order id: the latest client id (a replace lives on under the new one).

        The replaced one keeps the filled quantity it had then; set against the venue's whole
        order it would read as "fills missing".
        """
        latest: dict[str, _Tracked] = {}
        for tracked in self._orders.values():
            if tracked.venue_order_id is not None:
                latest[tracked.venue_order_id] = tracked
        return list(latest.values())

    def _report_behind(self) -> None:
        now = time.time_ns()
        grace_ns = int(self._config.ledger_behind_grace_s * 1e9)
        for tracked in self._current_orders():
            since, raw = tracked.behind_since_ns, tracked.last_raw
            if since is None or raw is None or now - since < grace_ns:
                continue
            venue_filled = _dec(raw.get("filled"))
            if venue_filled <= tracked.filled or venue_filled == tracked.reported_behind:
                continue
            tracked.reported_behind = venue_filled
            self.ledger_reports += 1
            self._log.bind(client_id=tracked.request.client_id).error(
                "venue counts {} filled on order {} for {:.0f} s, its trade history explains {}: fills missing",
                venue_filled, tracked.venue_order_id, (now - since) / 1e9, tracked.filled,
            )
            self._put(self._report(tracked.request.client_id, tracked.request.symbol, raw))
