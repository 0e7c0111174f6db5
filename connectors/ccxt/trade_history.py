"""Reading our trade history from the venue, page by page (Kraken ``ofs``, Gemini ``timestamp``, Coinbase ``cursor``).

Why apart from the order flow (:mod:`connectors.ccxt.order_flow`): how each venue pages
its history is a job of its own, used by the trade sync, the in-run ledger check's sweep
(:mod:`connectors.ccxt.ledger_check`) and restart recovery (``fetch_fills``); what the
trades mean for our orders is the order flow's.
"""

from __future__ import annotations

import time
from typing import Any

from connectors.ccxt.base import CcxtBase
from mmkit.model import NS_PER_MS

#: Gemini's mytrades: the most trades one call may ask for (``limit_trades``; 50 when not asked).
GEMINI_TRADES_PAGE = 500


class TradeHistoryMixin(CcxtBase):
    """One page of our trades per call, and a window read page by page."""

    async def _trade_page(self, symbol: str, since_ms: int, until_ms: int,
                          cursor: int | str | None) -> tuple[list[Any], int | str | None, bool]:
        """One page (see ``_venue_trade_page``); a venue whose next page starts where this one did is refused.

        Why: Coinbase handing back the cursor it was sent would have recovery read one page 200
        times (200 calls against its rate limit) and the in-run sweep read it every round for good.
        """
        trades, after, whole = await self._venue_trade_page(symbol, since_ms, until_ms, cursor)
        if not whole and cursor is not None and str(after) == str(cursor):
            raise ValueError(f"trade history of {symbol}: the venue answered cursor {cursor!r} again; its paging "
                             f"does not move on")
        return trades, after, whole

    async def _venue_trade_page(self, symbol: str, since_ms: int, until_ms: int,
                                cursor: int | str | None) -> tuple[list[Any], int | str | None, bool]:
        """One page of our trades from ``since_ms`` on: (trades, where the next page starts, window read to its end).

        ``cursor`` is None for a window's first page, else what the previous page returned.
        Kraken's TradesHistory answers the newest 50 of ``[since_ms, until_ms]`` and how many
        the window holds (``count``); ``ofs`` pages on (the cursor is that offset). Gemini's
        mytrades answers the *oldest* ``limit_trades`` (at most 500) on or after ``timestamp``
        (milliseconds), newest first; the next page starts at the newest millisecond of this
        one, not past it: trades of that millisecond beyond the page would be skipped, and
        the ones read twice are one trade each (by trade id). Coinbase's List Fills pages
        with the opaque ``cursor`` of its answer (empty on the last page) over a fixed
        ``[start, end]``. ccxt's ``fetch_my_trades``
        hands over one such page; for Kraken (filtered to the symbol) the raw answer is read
        right after the call (nothing else runs in between). Other venues: one call, taken
        as the window.
        """
        ccxt_symbol = self._profile.ccxt_symbol(symbol)
        if self._exchange.id == "gemini":
            return await self._gemini_trade_page(ccxt_symbol, since_ms if cursor is None else int(cursor))
        if self._exchange.id == "coinbase":
            return await self._coinbase_trade_page(ccxt_symbol, since_ms, until_ms, cursor)
        if self._exchange.id != "kraken":
            trades = await self._rest(self._exchange.fetch_my_trades, ccxt_symbol, since_ms)
            return trades, None, True
        offset = int(cursor or 0)
        params = {"until": until_ms, "ofs": offset}
        trades = await self._rest(self._exchange.fetch_my_trades, ccxt_symbol, since_ms, None, params)
        result = (self._exchange.last_json_response or {}).get("result") or {}
        raw = result.get("trades")
        if not isinstance(raw, dict) or any(str(t.get("id")) not in raw for t in trades):
            raise ValueError("TradesHistory: the raw answer does not match the parsed trades; cannot page")
        offset += len(raw)
        return trades, offset, not raw or offset >= int(result.get("count") or 0)

    async def _gemini_trade_page(self, ccxt_symbol: str, start_ms: int) -> tuple[list[Any], int | str | None, bool]:
        """Gemini: the oldest ``GEMINI_TRADES_PAGE`` trades on or after ``start_ms`` (see ``_trade_page``)."""
        params = {"timestamp": start_ms, "limit_trades": GEMINI_TRADES_PAGE}  # ms: Gemini takes either unit
        # ccxt parses every entry of the answer (no since, no limit: it filters none out), so the page is the answer.
        trades = await self._rest(self._exchange.fetch_my_trades, ccxt_symbol, None, None, params)
        if len(trades) < GEMINI_TRADES_PAGE:
            return trades, None, True
        newest = max(int(t.get("timestamp") or 0) for t in trades)
        if newest <= start_ms:  # no timestamp pages past them without skipping some: say so, read nothing on
            raise ValueError(f"mytrades: more than {GEMINI_TRADES_PAGE} of our {ccxt_symbol} trades in one "
                             f"millisecond ({start_ms}); Gemini cannot page past them")
        return trades, newest, False

    async def _coinbase_trade_page(self, ccxt_symbol: str, since_ms: int, until_ms: int,
                                   cursor: int | str | None) -> tuple[list[Any], str | None, bool]:
        """Coinbase: one page of List Fills in ``[since_ms, until_ms]``, from ``cursor`` (see ``_trade_page``).

        The start goes as the venue's parameter, not as ccxt's ``since`` (ccxt would filter
        the page on its side, and could drop the entry that carries the cursor).
        """
        params: dict[str, Any] = {"start_sequence_timestamp": self._exchange.iso8601(since_ms), "until": until_ms}
        if cursor:
            params["cursor"] = str(cursor)
        trades = await self._rest(self._exchange.fetch_my_trades, ccxt_symbol, None, None, params)
        # ccxt hands the answer's cursor over on the first entry's raw fill ("info").
        after = next((str(c) for t in trades if (c := (t.get("info") or {}).get("cursor"))), None)
        return trades, after, after is None

    async def _read_trades(self, symbol: str, since_ms: int, max_pages: int) -> tuple[list[Any], bool]:
        """Our trades of ``symbol`` since ``since_ms``, paged where the venue pages; (trades, whole window read).

        Kraken answers 50 trades a call, Gemini at most 500, Coinbase a page per cursor: one
        call missed the rest of a busy window. Each trade once (Gemini's pages overlap by a
        millisecond).
        """
        until_ms = time.time_ns() // NS_PER_MS
        cursor: int | str | None = None
        trades: dict[str, Any] = {}
        sent: set[str] = set()
        for _ in range(max_pages):
            page, cursor, whole = await self._trade_page(symbol, since_ms, until_ms, cursor)
            if not whole and str(cursor) in sent:  # a cycle of cursors: the window would never be read to its end
                raise ValueError(f"trade history of {symbol}: the venue answered cursor {cursor!r} again; its "
                                 f"paging does not move on")
            sent.add(str(cursor))
            trades.update((str(t.get("id")), t) for t in page)
            if whole:
                return list(trades.values()), True
        return list(trades.values()), False
