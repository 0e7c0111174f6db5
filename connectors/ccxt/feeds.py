"""Market-data feeds of the ccxt connector: books and trades under a watchdog, integrity checks.

One task per subscribed feed awaits ccxt's ``watch_*`` under a staleness
watchdog and turns each update into a normalized event in the inbox. Book
integrity is checked on every raw message, inside ccxt's own handler (Kraken
CRC32, Coinbase sequence_num); a failure marks the book invalid and tears the
socket down so that the venue sends a fresh snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from connectors.ccxt.base import CcxtBase, _really_cancelled
from connectors.ccxt.checksums import SequenceChecker, decimals_of, kraken_checksum
from connectors.ccxt.convert import _dec, _levels
from connectors.ccxt.errors import classify
from connectors.ccxt.profiles import BookCheck
from connectors.ccxt.watchdog import Backoff, FeedWatchdog
from mmkit.model import (
    NS_PER_MS,
    BookSnapshot,
    ConnectionStatus,
    Side,
    Trade,
)


class FeedsMixin(CcxtBase):
    """Book, trade and heartbeat loops plus the per-message integrity taps."""

    #: Books that held a level no book can (each not passed on, the feed resynced).
    malformed_books: int

    async def _book_loop(self, symbol: str) -> None:
        ccxt_symbol = self._profile.ccxt_symbol(symbol)
        feed = f"book:{symbol}"
        dog = self.watchdogs.setdefault(feed, FeedWatchdog(feed, int(self._config.stale_s * 1e9)))
        backoff = Backoff(self._config.backoff_initial_s, self._config.backoff_max_s)
        up = False
        while self._running:
            try:
                if self._profile.book_depth is None:
                    watch = self._exchange.watch_order_book(ccxt_symbol)
                else:
                    watch = self._exchange.watch_order_book(ccxt_symbol, self._profile.book_depth)
                book = await asyncio.wait_for(watch, timeout=self._config.stale_s)
            except asyncio.CancelledError:
                if _really_cancelled():
                    raise
                exc = ConnectionError("watch future cancelled by a socket close")
                self._log.debug("{}: {}", self.venue, exc)
                await asyncio.sleep(self._config.backoff_initial_s)
                continue
            except Exception as exc:
                timed_out = isinstance(exc, TimeoutError)
                reason = "stale: no update within watchdog limit" if timed_out else classify(exc).message
                if timed_out:
                    dog.stale_events += 1
                if up:
                    self._put(ConnectionStatus(self.venue, feed, False, reason, self._now()))
                up = False
                self._log.warning("{} down: {}", feed, reason)
                await self._drop_socket()
                await asyncio.sleep(backoff.next_delay())
                continue
            if self._book_invalid.get(ccxt_symbol):
                continue  # a failed check is being resynced; this book is not trustworthy
            now = self._now()
            levels = self._config.emit_levels
            try:
                bids, asks = _levels(book["bids"], levels), _levels(book["asks"], levels)
            except (ArithmeticError, IndexError, KeyError, TypeError, ValueError) as exc:
                await self._malformed_book(feed, exc)
                up = False
                await asyncio.sleep(backoff.next_delay())  # a venue whose snapshots are all bad: not a tight loop
                continue
            dog.beat(now)
            backoff.reset()
            if not up:
                up = True
                self._put(ConnectionStatus(self.venue, feed, True, "book live", now))
            seq = self._book_seq.get(symbol, 0) + 1
            self._book_seq[symbol] = seq
            ts = book.get("timestamp")
            self._put(
                BookSnapshot(
                    venue=self.venue,
                    symbol=symbol,
                    seq=seq,
                    bids=bids,
                    asks=asks,
                    ts_event=int(ts) * NS_PER_MS if ts else now,
                    ts_recv=now,
                    checksum=self._last_checksum.get(ccxt_symbol),
                )
            )

    async def _malformed_book(self, feed: str, exc: BaseException) -> None:
        """A book no engine can hold (NaN, a non-positive price, a negative size): not passed on, said, resynced.

        Logged at ERROR and counted (``malformed_books``); the feed is shown down and every socket is
        replaced (as for a stale feed) so the venue sends a fresh snapshot. No book flag is set: a venue
        without a checksum or sequence (Gemini) would never clear it.
        """
        self.malformed_books += 1
        reason = f"malformed book: {type(exc).__name__}: {exc}"
        self._log.error("{} {}; not passed on, resyncing ({} so far)", feed, reason, self.malformed_books)
        self._put(ConnectionStatus(self.venue, feed, False, reason, self._now()))
        await self._drop_socket()

    async def _trade_loop(self, symbol: str) -> None:
        ccxt_symbol = self._profile.ccxt_symbol(symbol)
        feed = f"trades:{symbol}"
        dog = self.watchdogs.setdefault(feed, FeedWatchdog(feed, int(self._config.stale_s * 1e9)))
        backoff = Backoff(self._config.backoff_initial_s, self._config.backoff_max_s)
        seen: set[str] = set()
        while self._running:
            try:
                trades = await asyncio.wait_for(self._exchange.watch_trades(ccxt_symbol), timeout=self._config.stale_s)
            except asyncio.CancelledError:
                if _really_cancelled():
                    raise
                exc = ConnectionError("watch future cancelled by a socket close")
                self._log.debug("{}: {}", self.venue, exc)
                await asyncio.sleep(self._config.backoff_initial_s)
                continue
            except Exception as exc:
                self._log.warning("{} down: {}", feed, classify(exc).message)
                await asyncio.sleep(backoff.next_delay())
                continue
            now = self._now()
            dog.beat(now)
            backoff.reset()
            for trade in trades:
                trade_id = str(trade.get("id"))
                if trade_id in seen:
                    continue  # ccxt returns a cache that may repeat earlier trades
                seen.add(trade_id)
                side = trade.get("side")
                self._put(
                    Trade(
                        venue=self.venue,
                        symbol=symbol,
                        trade_id=trade_id,
                        price=_dec(trade["price"]),
                        qty=_dec(trade["amount"]),
                        aggressor=Side.BUY if side == "buy" else Side.SELL if side == "sell" else None,
                        ts_event=int(trade.get("timestamp") or 0) * NS_PER_MS,
                        ts_recv=now,
                    )
                )
            if len(seen) > 10_000:
                seen.clear()

    async def _heartbeat_loop(self, channel: str) -> None:
        """Keep a heartbeat subscription open (Coinbase closes sockets with no subscribed activity)."""
        backoff = Backoff(self._config.backoff_initial_s, self._config.backoff_max_s)
        while self._running:
            try:
                await asyncio.wait_for(self._exchange.subscribe(channel, False), timeout=self._config.stale_s)
                backoff.reset()
            except asyncio.CancelledError:
                if _really_cancelled():
                    raise
                exc = ConnectionError("watch future cancelled by a socket close")
                self._log.debug("{}: {}", self.venue, exc)
                await asyncio.sleep(self._config.backoff_initial_s)
                continue
            except Exception as exc:
                self._log.debug("heartbeat: {}", classify(exc).message)
                await asyncio.sleep(backoff.next_delay())

    # -- integrity checks inside ccxt's handlers ---------------------------

    def _install_taps(self) -> None:
        """Wrap ccxt's per-message handlers so every raw book message is checked as it is applied."""
        exchange = self._exchange
        if self._profile.book_check is BookCheck.KRAKEN_CRC32 and hasattr(exchange, "handle_order_book"):
            original = exchange.handle_order_book

            def kraken_checked(client: Any, message: Any) -> None:
                original(client, message)
                self._check_kraken(client, message)

            exchange.handle_order_book = kraken_checked
        elif self._profile.book_check is BookCheck.COINBASE_SEQUENCE and hasattr(exchange, "handle_message"):
            original_message = exchange.handle_message

            def sequence_checked(client: Any, message: Any) -> None:
                if self._check_sequence(client, message):
                    original_message(client, message)

            exchange.handle_message = sequence_checked

    def _check_kraken(self, client: Any, message: Any) -> None:
        data = (message.get("data") or [{}])[0]
        expected = data.get("checksum")
        ws_symbol = data.get("symbol")
        book = self._exchange.orderbooks.get(ws_symbol)
        if expected is None or book is None:
            return
        market = self._exchange.markets.get(ws_symbol) or {}
        precision = market.get("precision") or {}
        actual = kraken_checksum(
            book["asks"],
            book["bids"],
            decimals_of(precision.get("price") or "0.1"),
            decimals_of(precision.get("amount") or "0.00000001"),
        )
        self._last_checksum[ws_symbol] = int(expected)
        if actual == int(expected):
            if message.get("type") == "snapshot" and self._book_invalid.pop(ws_symbol, None):
                self._log.info("book {} resynced from a fresh snapshot", ws_symbol)
            return
        self.checksum_failures += 1
        self._invalidate(ws_symbol, f"checksum mismatch: venue {expected}, local {actual}", client)

    def _check_sequence(self, client: Any, message: Any) -> bool:
        """Return False to drop a message that arrives after a gap (the socket is being replaced)."""
        if not isinstance(message, dict) or "sequence_num" not in message:
            return True
        url = str(getattr(client, "url", ""))
        checker = self._sequences.setdefault(url, SequenceChecker())
        if checker.check(int(message["sequence_num"])):
            if message.get("channel") == "l2_data":
                for event in message.get("events") or []:
                    if event.get("type") == "snapshot":
                        symbol = self._exchange.safe_symbol(event.get("product_id"), None, "-")
                        self._book_invalid.pop(symbol, None)
            return True
        self.sequence_gaps += 1
        checker.reset()
        for ccxt_symbol in [self._profile.ccxt_symbol(s) for s in self._book_symbols]:
            self._invalidate(ccxt_symbol, f"sequence gap at {message['sequence_num']}", client)
        return False

    def _invalidate(self, ccxt_symbol: str, reason: str, client: Any) -> None:
        """Mark a book untrustworthy and replace the socket so the venue sends a new snapshot."""
        self._book_invalid[ccxt_symbol] = True
        self.resyncs += 1
        now = self._now()
        symbol = self._symbol_or_none(ccxt_symbol) or ccxt_symbol
        self._log.warning("book {} invalid ({}); resyncing", symbol, reason)
        self._put(ConnectionStatus(self.venue, f"book:{symbol}", False, f"resync: {reason}", now))
        self._spawn(self._close_client(client))

    async def _close_client(self, client: Any) -> None:
        self.reconnects += 1
        with contextlib.suppress(Exception):
            await client.close()

    async def _drop_socket(self) -> None:
        """After a stale or failed watch, close every websocket so the next watch reconnects cleanly."""
        for client in list(getattr(self._exchange, "clients", {}).values()):
            await self._close_client(client)
        self._sequences.clear()

