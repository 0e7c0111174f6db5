"""The in-run ledger check of a ccxt venue: what we passed on, set against the venue, while running.

Why: ccxt venues send fills without a cumulative filled quantity (a Kraken
execution, a Coinbase fill), so a missed trade or one booked twice (a venue
re-sending an execution under a new id) is seen on an open order by the
poller's listing, but on an order that has finished it was seen only at the
next restart (mmkit.app.recovery). The check closes that, on the venue's own
REST answers, every ``ledger_check_s`` and at once after a gap in a private
stream (a dropped socket is where trades go missing):

1. **Trade history sweep**: one ``fetch_my_trades`` per symbol since the last
   round (a minute of overlap). A trade of one of our orders not passed on yet
   went missing on the way (raced a cancel, fell in a stream gap): it is
   passed on now, as restart recovery would book it from the same history,
   and logged (``ledger_missed_trades``).
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

Mismatches within half a lot are rounding (the stream decides, as for every
report). Every call is a REST call like the others (session health, ccxt's
throttle), and the reads are bounded per round: the venues count every request.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from connectors.ccxt.convert import _dec, _Tracked
from connectors.ccxt.errors import classify
from connectors.ccxt.polling import PollingMixin
from mmkit.model import NS_PER_MS

#: The trade history sweep overlaps the previous round by this much (a trade stamped late is still seen).
SWEEP_OVERLAP_MS = 60_000


class LedgerCheckMixin(PollingMixin):
    """The periodic check (``_ledger_check_loop``) and one round of it (``check_ledger``)."""

    async def _ledger_check_loop(self) -> None:
        interval = self._config.ledger_check_s
        while self._running:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ledger_wake.wait(), interval)
            self._ledger_wake.clear()
            if not self._running or self._ticks_stalled() or not self._connected:
                continue  # a stalled engine must not keep a Gemini heartbeat session alive by polling
            await self.check_ledger()

    def _wake_ledger_check(self, why: str) -> None:
        """A gap in a private stream: trades may have gone missing in it, so check now."""
        if self._config.ledger_check_s > 0 and not self._ledger_wake.is_set():
            self._log.info("ledger check brought forward: {}", why)
            self._ledger_wake.set()

    async def check_ledger(self) -> None:
        """One round: sweep the trade history, read finished orders booked since they agreed, report what lags."""
        self.ledger_checks += 1
        began_ms = time.time_ns() // NS_PER_MS
        await self._sweep_trade_history()
        self._ledger_since_ms = began_ms - SWEEP_OVERLAP_MS
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
            try:
                trades = await self._rest(
                    self._exchange.fetch_my_trades, self._profile.ccxt_symbol(symbol), self._ledger_since_ms)
            except Exception as exc:
                self._log.warning("ledger check: trade history unavailable ({}); next round", classify(exc).message)
                continue
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
