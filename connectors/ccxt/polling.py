"""Polling and private streams of the ccxt connector: how the venue's view of our orders reaches us.

Why apart from the order tasks (:mod:`connectors.ccxt.order_flow`): this is
the part that runs on its own (loops), and the part that must not hang. REST
polling of our open orders always runs (one listing per symbol, then single
reads of orders no longer listed) and is the fallback that cannot hang
silently; ``watch_orders`` / ``watch_my_trades`` are the fast path when
``use_private_ws`` is on, and a gap in them brings the ledger check forward
(:mod:`connectors.ccxt.ledger_check`). While the REST session is down the
poller probes the venue.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from connectors.ccxt.answers import MalformedAnswer, order_answer
from connectors.ccxt.convert import _Tracked
from connectors.ccxt.errors import ErrorKind, classify
from connectors.ccxt.order_flow import OrderFlowMixin
from connectors.ccxt.watchdog import Backoff
from mmkit.model import ConnectionStatus


class PollingMixin(OrderFlowMixin):
    """The poller, the probe and the private stream loops."""


    async def _poll_loop(self) -> None:
        """REST polling of our open orders: slow, but it cannot hang silently like a socket.

        While the engine's ticks have stopped (nobody drains), polling pauses when a
        dead man's switch is armed: Gemini counts any private call as a heartbeat,
        so polling on would keep a stuck engine's quotes alive.
        """
        while self._running:
            if self._ticks_stalled():
                await asyncio.sleep(self._config.poll_interval_s)
                continue
            if not self._connected:
                await self._probe()
            # What was passed on per order before the listing was asked for (see the module docstring).
            booked_before = {id(t): t.filled for t in self._orders.values() if t.open}
            listed = await self._poll_open_list()
            for client_id, tracked in list(self._orders.items()):
                if not tracked.open or (tracked.venue_order_id is None and not tracked.unknown):
                    continue  # still being placed: the create call's answer will tell
                if tracked.venue_order_id in listed:
                    self._apply_order(tracked, listed[tracked.venue_order_id], booked_before.get(id(tracked)))
                    continue  # still open: the listing said all there is to say
                before_read = tracked.filled
                try:
                    raw = await self._fetch_raw_order(client_id, tracked.request.symbol, tracked)
                except Exception as exc:
                    err = classify(exc)
                    self._log.bind(client_id=client_id).debug("poll failed: {}", err.message)
                    if err.kind is ErrorKind.BACKOFF:
                        await asyncio.sleep(self._order_backoff.next_delay())
                    continue
                self._apply_order(tracked, raw, before_read)
            await asyncio.sleep(self._config.poll_interval_s)

    async def _poll_open_list(self) -> dict[str, Any]:
        """One open-orders listing per symbol: the venue's view of all our resting orders in one call.

        Only orders it no longer lists (finished, or not yet visible) are then read one
        by one. Venues count every request (Kraken's REST counter, Coinbase's 30/s,
        Gemini's 600/min), so polling N orders must not cost N calls per cycle.
        """
        symbols = {t.request.symbol for t in self._orders.values() if t.open and t.venue_order_id is not None}
        listed: dict[str, Any] = {}
        for symbol in sorted(symbols):
            try:
                raws = await self._rest(self._exchange.fetch_open_orders, self._profile.ccxt_symbol(symbol))
            except Exception as exc:
                self._log.debug("open-orders listing failed: {}", classify(exc).message)
                return {}  # read them one by one this cycle
            for raw in raws:
                try:
                    order_answer(raw, "fetch_open_orders")
                except MalformedAnswer as exc:  # not taken as the order's state: it is read on its own below
                    self.answers.note(self._log, exc)
                    continue
                listed[str(raw["id"])] = raw
        return listed

    def _ticks_stalled(self) -> bool:
        if "dead-man" not in self._tasks:
            return False
        return time.time_ns() - self._last_drain_ns > self._config.dead_man_tick_grace_s * 1e9

    async def _private_trades_loop(self) -> None:
        """watch_my_trades: our trades as the venue streams them, booked at once by venue trade id.

        The same ids the trade history gives (Kraken's exec_id is the trade id), so a
        trade the poller's history read books later is recognised and not booked twice.
        """
        failures = 0
        backoff = Backoff(self._config.backoff_initial_s, self._config.backoff_max_s)
        while self._running and failures < self._config.private_ws_max_failures:
            try:
                trades = await self._exchange.watch_my_trades()
            except Exception as exc:
                failures += 1
                self._log.warning("watch_my_trades failed ({}/{}): {}", failures,
                                  self._config.private_ws_max_failures, classify(exc).message)
                self._wake_ledger_check("a gap in the private trades stream")
                await asyncio.sleep(backoff.next_delay())
                continue
            failures = 0
            backoff.reset()
            for symbol in {self._symbol_or_none(t.get("symbol")) for t in trades}:
                if symbol is not None:
                    self._book_trades([t for t in trades if t.get("symbol") == self._profile.ccxt_symbol(symbol)],
                                      symbol)

    async def _refresh(self, tracked: _Tracked) -> None:
        """Read one order by REST now and apply it (what the poller does, without waiting for it)."""
        booked_before = tracked.filled
        try:
            raw = await self._fetch_raw_order(tracked.request.client_id, tracked.request.symbol, tracked)
        except Exception:
            return  # the poller reads it again; the outcome went into the session health
        self._apply_order(tracked, raw, booked_before)

    async def _probe(self) -> None:
        """While the REST session is down, a cheap private call tells when the venue answers again."""
        with contextlib.suppress(Exception):  # the outcome is all a probe is for: it went into the session health
            await self._rest(self._exchange.fetch_balance)

    async def _private_ws_loop(self) -> None:
        """watch_orders as the fast path for fills; gives up after repeated failures (polling remains)."""
        failures = 0
        backoff = Backoff(self._config.backoff_initial_s, self._config.backoff_max_s)
        while self._running and failures < self._config.private_ws_max_failures:
            try:
                orders = await self._exchange.watch_orders()
            except Exception as exc:
                failures += 1
                self._log.warning(
                    "watch_orders failed ({}/{}): {}",
                    failures,
                    self._config.private_ws_max_failures,
                    classify(exc).message,
                )
                self._wake_ledger_check("a gap in the private orders stream")
                await asyncio.sleep(backoff.next_delay())
                continue
            failures = 0
            backoff.reset()
            for raw in orders:
                client_id = self._client_id_of(raw)
                tracked = self._orders.get(client_id)
                if tracked is not None and tracked.open:
                    # A trigger, not the truth: ccxt's websocket orders may lack the filled size
                    # (Kraken's executions parse leaves it None), so the order is read again by REST.
                    self._spawn(self._refresh(tracked))
        if self._running:
            self._put(ConnectionStatus(self.venue, "private-ws", False, "falling back to REST polling", self._now()))

