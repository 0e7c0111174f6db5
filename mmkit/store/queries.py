"""Read side of the store: restart recovery and the ``mmkit status`` / ``history`` commands.

Sums are done in Python over Decimals rather than in SQL: SQLite keeps money
as exact text (it has no exact numeric type), and the answer must be the
same on both databases to the last satoshi.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import attrs
from sqlalchemy import Engine, Row, Select, func, select

from mmkit.model import ZERO, Fill, Liquidity, Side
from mmkit.store import schema
from mmkit.store.db import create_store_engine
from mmkit.store.records import OrderRecord, PnLRecord


@attrs.frozen(slots=True)
class SessionInfo:
    session_id: str
    instance: str
    started_ns: int
    stopped_ns: int | None


@attrs.frozen(slots=True)
class FillSummary:
    """Trading activity of one group (a UTC day or a session) on one (venue, symbol)."""

    group: str
    venue: str
    symbol: str
    trades: int
    buy_qty: Decimal
    sell_qty: Decimal
    buy_notional: Decimal
    sell_notional: Decimal
    fees: dict[str, Decimal]
    maker_trades: int

    @property
    def volume(self) -> Decimal:
        return self.buy_qty + self.sell_qty

    @property
    def net_qty(self) -> Decimal:
        return self.buy_qty - self.sell_qty

    @property
    def notional(self) -> Decimal:
        return self.buy_notional + self.sell_notional


def utc_day(ts_ns: int) -> str:
    """``YYYY-MM-DD`` of a nanosecond timestamp, in UTC (a desk's trading day boundary)."""
    return dt.datetime.fromtimestamp(ts_ns // 1_000_000_000, tz=dt.UTC).strftime("%Y-%m-%d")


class StoreQueries:
    """Queries over a store written by :class:`~mmkit.store.recorder.Recorder`.

    Opening does not migrate: a reader must not change the schema under a
    running writer. Use it after ``Recorder.start()`` or on an existing store.
    """

    def __init__(self, url_or_engine: str | Engine) -> None:
        self._owns_engine = isinstance(url_or_engine, str)
        self.engine = create_store_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine

    def close(self) -> None:
        if self._owns_engine:
            self.engine.dispose()

    # ------------------------------------------------------------------ sessions

    def sessions(self, instance: str | None = None) -> list[SessionInfo]:
        t = schema.sessions
        query = select(t.c.session_id, t.c.instance, t.c.started_ns, t.c.stopped_ns)
        with self.engine.connect() as conn:  # start order: the store's sequence (v3), else the start times
            ordered = schema.has_column(conn, t.name, "seq")
        query = query.order_by(t.c.seq, t.c.started_ns) if ordered else query.order_by(t.c.started_ns)
        if instance is not None:
            query = query.where(t.c.instance == instance)
        return [SessionInfo(r.session_id, r.instance, r.started_ns, r.stopped_ns) for r in self._rows(query)]

    # ------------------------------------------------------------------ fills and the ledger

    def fills(
        self,
        *,
        venue: str | None = None,
        symbol: str | None = None,
        session_id: str | None = None,
        since_ns: int | None = None,
        until_ns: int | None = None,
        include_hedges: bool = True,
    ) -> list[Fill]:
        """Fills in venue-time order (ties broken by insertion), filtered as asked; ``until_ns`` exclusive."""
        t = schema.fills
        query = select(t).order_by(t.c.ts_event, t.c.id)
        if venue is not None:
            query = query.where(t.c.venue == venue)
        if symbol is not None:
            query = query.where(t.c.symbol == symbol)
        if session_id is not None:
            query = query.where(t.c.session_id == session_id)
        if since_ns is not None:
            query = query.where(t.c.ts_event >= since_ns)
        if until_ns is not None:
            query = query.where(t.c.ts_event < until_ns)
        if not include_hedges:
            query = query.where(t.c.is_hedge.is_(False))
        return [fill_from_row(r) for r in self._rows(query)]

    def ledger(self, venue: str, symbol: str) -> list[Fill]:
        """Every fill ever stored for (venue, symbol): what restart recovery rebuilds the position from."""
        return self.fills(venue=venue, symbol=symbol)

    def position(self, venue: str, symbol: str) -> Decimal:
        """Signed sum of all stored fills (buys positive): exact, no snapshot involved."""
        return sum((f.side.sign * f.qty for f in self.ledger(venue, symbol)), ZERO)

    def trade_ids(self, venue: str) -> set[str]:
        """Trade ids already stored for a venue: the dedupe set across restarts."""
        t = schema.fills
        return {r[0] for r in self._rows(select(t.c.trade_id).where(t.c.venue == venue))}

    def last_fill_ts(self, venue: str) -> int | None:
        """The newest venue timestamp of a stored fill: ask the venue for fills since then on restart."""
        t = schema.fills
        rows = self._rows(select(func.max(t.c.ts_event)).where(t.c.venue == venue))
        value = rows[0][0] if rows else None
        return None if value is None else int(value)

    # ------------------------------------------------------------------ orders

    def order_history(self, venue: str, client_id: str) -> list[OrderRecord]:
        """Every recorded state of one order, in the order it was recorded."""
        t = schema.orders
        query = select(t).where(t.c.venue == venue, t.c.client_id == client_id).order_by(t.c.id)
        return [_order_from_row(r) for r in self._rows(query)]

    def latest_orders(self, venue: str | None = None) -> list[OrderRecord]:
        """The last recorded state of every order (one per (venue, client_id)), oldest first."""
        t = schema.orders
        last_ids = select(func.max(t.c.id).label("id")).group_by(t.c.venue, t.c.client_id)
        if venue is not None:
            last_ids = last_ids.where(t.c.venue == venue)
        sub = last_ids.subquery()
        query = select(t).join(sub, t.c.id == sub.c.id).order_by(t.c.id)
        return [_order_from_row(r) for r in self._rows(query)]

    def open_orders(self, venue: str | None = None) -> list[OrderRecord]:
        """Orders whose last recorded state is not terminal: the set to reconcile with the venue on start."""
        return [o for o in self.latest_orders(venue) if o.is_open]

    # ------------------------------------------------------------------ PnL and summaries

    def latest_pnl(self, venue: str | None = None) -> list[PnLRecord]:
        """The newest PnL snapshot of each (venue, symbol)."""
        t = schema.pnl_snapshots
        last_ids = select(func.max(t.c.id).label("id")).group_by(t.c.venue, t.c.symbol)
        if venue is not None:
            last_ids = last_ids.where(t.c.venue == venue)
        sub = last_ids.subquery()
        query = select(t).join(sub, t.c.id == sub.c.id).order_by(t.c.venue, t.c.symbol)
        return [
            PnLRecord(r.venue, r.symbol, r.position, r.realized, r.unrealized, r.fees, r.ts_ns, r.mark, r.avg_price)
            for r in self._rows(query)
        ]

    def fees_by_venue(self, since_ns: int | None = None, until_ns: int | None = None) -> dict[tuple[str, str], Decimal]:
        """Total fees keyed by (venue, fee currency); rebates show as negative."""
        totals: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
        for fill in self.fills(since_ns=since_ns, until_ns=until_ns):
            totals[(fill.venue, fill.fee_currency)] += fill.fee
        return dict(totals)

    def summary_by_day(self, venue: str | None = None, session_id: str | None = None) -> list[FillSummary]:
        """Activity per UTC day and (venue, symbol), days ascending."""
        fills = self.fills(venue=venue, session_id=session_id)
        return _summarize((utc_day(f.ts_event), f) for f in fills)

    def summary_by_session(self, venue: str | None = None) -> list[FillSummary]:
        """Activity per session and (venue, symbol), sessions in start order."""
        t = schema.fills
        query = select(t).order_by(t.c.ts_event, t.c.id)
        if venue is not None:
            query = query.where(t.c.venue == venue)
        rows = self._rows(query)
        order = {s.session_id: i for i, s in enumerate(self.sessions())}
        pairs = sorted(((r.session_id, fill_from_row(r)) for r in rows), key=lambda p: order.get(p[0], len(order)))
        return _summarize(pairs)

    # ------------------------------------------------------------------ helpers

    def _rows(self, query: Select[Any]) -> list[Row[Any]]:
        with self.engine.connect() as conn:
            return list(conn.execute(query))


def _summarize(pairs: Iterable[tuple[str, Fill]]) -> list[FillSummary]:
    groups: dict[tuple[str, str, str], list[Fill]] = {}
    for group, fill in pairs:
        groups.setdefault((group, fill.venue, fill.symbol), []).append(fill)
    out: list[FillSummary] = []
    for (group, venue, symbol), items in groups.items():
        fees: dict[str, Decimal] = defaultdict(lambda: ZERO)
        for f in items:
            fees[f.fee_currency] += f.fee
        buys = [f for f in items if f.side is Side.BUY]
        sells = [f for f in items if f.side is Side.SELL]
        out.append(
            FillSummary(
                group=group,
                venue=venue,
                symbol=symbol,
                trades=len(items),
                buy_qty=sum((f.qty for f in buys), ZERO),
                sell_qty=sum((f.qty for f in sells), ZERO),
                buy_notional=sum((f.notional for f in buys), ZERO),
                sell_notional=sum((f.notional for f in sells), ZERO),
                fees=dict(fees),
                maker_trades=sum(1 for f in items if f.liquidity is Liquidity.MAKER),
            )
        )
    return out


def fill_from_row(r: Row[Any]) -> Fill:
    """A row of the ``fills`` table as a Fill: the one mapping that queries and recovery share."""
    return Fill(
        venue=r.venue,
        trade_id=r.trade_id,
        client_id=r.client_id,
        symbol=r.symbol,
        side=Side(r.side),
        price=r.price,
        qty=r.qty,
        fee=r.fee,
        fee_currency=r.fee_currency,
        liquidity=Liquidity(r.liquidity),
        ts_event=int(r.ts_event),
        ts_recv=int(r.ts_recv),
        venue_order_id=r.venue_order_id,
        is_hedge=bool(r.is_hedge),
    )


def _order_from_row(r: Row[Any]) -> OrderRecord:
    return OrderRecord(
        r.client_id,
        r.venue,
        r.symbol,
        r.side,
        r.price,
        r.qty,
        r.filled_qty,
        r.state,
        r.venue_order_id,
        int(r.ts_ns),
        r.reason,
    )
