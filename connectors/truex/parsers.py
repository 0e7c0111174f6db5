"""Parse TrueX FIX replies (8, 9, j, W, X) into mmkit events.

Split out of ``messages.py`` by job: what the client receives. Parsers work on
a :class:`~connectors.truex.raw_message.RawMessage` built on the asyncio loop
from the text QuickFIX handed over, never on a QuickFIX object.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from connectors.truex.fix_tags import (
    _ORD_STATUS,
    SIDE_FROM_CODE,
    T_APPL_SEQ_NUM,
    T_BIZ_REJECT_REASON,
    T_BIZ_REJECT_REF_ID,
    T_CLORDID,
    T_COMM_CCY,
    T_COMMISSION,
    T_CUM_QTY,
    T_CXL_REJ_REASON,
    T_CXL_REJ_RESPONSE_TO,
    T_EXEC_ID,
    T_EXEC_TYPE,
    T_LAST_PX,
    T_LAST_QTY,
    T_LAST_RPT_REQUESTED,
    T_LEAVES_QTY,
    T_LIQUIDITY,
    T_MASS_STATUS_REQ_ID,
    T_MD_ENTRY_ID,
    T_MD_ENTRY_PX,
    T_MD_ENTRY_SIZE,
    T_MD_ENTRY_TIME,
    T_MD_ENTRY_TYPE,
    T_MD_UPDATE_ACTION,
    T_NO_MD_ENTRIES,
    T_ORD_REJ_REASON,
    T_ORD_STATUS,
    T_ORD_STATUS_REQ_ID,
    T_ORDER_ID,
    T_ORIG_CLORDID,
    T_PRICE,
    T_QTY,
    T_REF_MSG_TYPE,
    T_SENDING_TIME,
    T_SEQ,
    T_SIDE,
    T_SYMBOL,
    T_TEXT,
    T_TOT_NUM_REPORTS,
    T_TRANSACT_TIME,
)
from connectors.truex.fix_values import _dec, parse_utc_timestamp
from connectors.truex.raw_message import ParseError, RawMessage
from connectors.truex.rejects import VenueReject, map_reject
from mmkit.model import (
    BookDelta,
    BookSnapshot,
    Fill,
    Level,
    Liquidity,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderExpired,
    OrderNotFound,
    OrderRejected,
    OrderReplaced,
    OrderStatusReport,
    Side,
    Trade,
)


def event_time(msg: RawMessage, ts_recv: int) -> int:
    """When the venue says it happened: TransactTime(60), else SendingTime(52), else ``ts_recv``."""
    for tag in (T_TRANSACT_TIME, T_SENDING_TIME):
        value = msg.get(tag)
        if value:
            try:
                return parse_utc_timestamp(value)
            except ValueError:
                continue
    return ts_recv


def _side(msg: RawMessage) -> Side:
    code = msg.req(T_SIDE)
    try:
        return SIDE_FROM_CODE[code]
    except KeyError as exc:
        raise ParseError(f"unknown side {code!r}") from exc


@attrs.frozen(slots=True)
class StatusAnswer:
    """An ExecType I report with the request ids it answers (for fetch_* futures)."""

    #: None for the empty answer to a mass status request (TotNumReports 0).
    event: OrderStatusReport | OrderNotFound | None
    status_req_id: str | None
    mass_req_id: str | None
    last_report: bool
    total_reports: int | None


ExecEvent = (
    OrderAccepted
    | OrderRejected
    | OrderCanceled
    | OrderExpired
    | OrderReplaced
    | Fill
    | OrderStatusReport
    | OrderNotFound
)


def parse_execution_report(
    msg: RawMessage, venue: str, ts_recv: int, fee_currency: str = "PYUSD"
) -> list[ExecEvent] | StatusAnswer:
    """35=8 to events. A trade report yields a Fill (keyed by ExecID) and nothing else."""
    exec_type = msg.req(T_EXEC_TYPE)
    client_id = msg.get(T_CLORDID) or ""
    orig = msg.get(T_ORIG_CLORDID)
    order_id = msg.get(T_ORDER_ID) or ""
    ts_event = event_time(msg, ts_recv)
    if exec_type == "I":
        return _status_answer(msg, venue, ts_recv, ts_event)
    if exec_type == "0":
        return [OrderAccepted(venue, client_id, order_id, ts_event, ts_recv)]
    if exec_type in ("F", "1", "2"):
        liquidity = Liquidity.TAKER if msg.get(T_LIQUIDITY) == "2" else Liquidity.MAKER
        fee = _dec(msg.get(T_COMMISSION)) or Decimal(0)
        return [
            Fill(
                venue=venue,
                trade_id=msg.req(T_EXEC_ID),
                client_id=client_id,
                symbol=msg.get(T_SYMBOL) or "",
                side=_side(msg),
                price=_dec(msg.req(T_LAST_PX)) or Decimal(0),
                qty=_dec(msg.req(T_LAST_QTY)) or Decimal(0),
                fee=fee,
                fee_currency=msg.get(T_COMM_CCY) or fee_currency,
                liquidity=liquidity,
                ts_event=ts_event,
                ts_recv=ts_recv,
                venue_order_id=order_id,
                venue_cum_qty=_dec(msg.get(T_CUM_QTY)),
            )
        ]
    if exec_type == "4":
        return [OrderCanceled(venue, orig or client_id, ts_event, ts_recv, _dec(msg.get(T_LEAVES_QTY)))]
    if exec_type == "5":
        return [
            OrderReplaced(
                venue=venue,
                client_id=client_id,
                orig_client_id=orig or "",
                venue_order_id=order_id,
                price=_dec(msg.req(T_PRICE)) or Decimal(0),
                # mmkit's replace quantity is the open quantity; FIX's OrderQty counts the filled part.
                qty=_replaced_open_qty(msg),
                ts_event=ts_event,
                ts_recv=ts_recv,
            )
        ]
    if exec_type == "8":
        text = msg.get(T_TEXT) or ""
        reason = map_reject(msg.get(T_ORD_REJ_REASON), text)
        return [OrderRejected(venue, client_id, reason, text, ts_event, ts_recv)]
    if exec_type == "C":
        return [OrderExpired(venue, client_id, ts_event, ts_recv)]
    return []  # pending new / pending cancel / restated: nothing to act on


def _status_answer(msg: RawMessage, venue: str, ts_recv: int, ts_event: int) -> StatusAnswer:
    client_id = msg.get(T_CLORDID) or ""
    total_text = msg.get(T_TOT_NUM_REPORTS)
    total = int(total_text) if total_text and total_text.isdigit() else None
    status_code = msg.req(T_ORD_STATUS)
    event: OrderStatusReport | OrderNotFound | None
    if total == 0:
        event = None
    elif status_code == "8" and msg.get(T_ORD_REJ_REASON) == VenueReject.UNKNOWN_ORDER.code:
        event = OrderNotFound(venue, client_id, ts_recv)
    else:
        status = _ORD_STATUS.get(status_code)
        if status is None:
            raise ParseError(f"unknown OrdStatus {status_code!r}")
        cum = _dec(msg.get(T_CUM_QTY)) or Decimal(0)
        leaves = _dec(msg.get(T_LEAVES_QTY)) or Decimal(0)
        qty = _dec(msg.get(T_QTY))
        event = OrderStatusReport(
            venue=venue,
            client_id=client_id,
            venue_order_id=msg.get(T_ORDER_ID) or "",
            symbol=msg.get(T_SYMBOL) or "",
            side=_side(msg),
            price=_dec(msg.get(T_PRICE)),
            qty=qty if qty is not None else cum + leaves,
            filled_qty=cum,
            status=status,
            ts_event=ts_event,
            ts_recv=ts_recv,
        )
    return StatusAnswer(
        event=event,
        status_req_id=msg.get(T_ORD_STATUS_REQ_ID),
        mass_req_id=msg.get(T_MASS_STATUS_REQ_ID),
        last_report=msg.get(T_LAST_RPT_REQUESTED) == "Y",
        total_reports=total,
    )


def parse_cancel_reject(msg: RawMessage, venue: str, ts_recv: int) -> OrderCancelRejected:
    """35=9: the cancel (434=1) or replace (434=2) was refused; the order stands."""
    is_replace = msg.get(T_CXL_REJ_RESPONSE_TO) == "2"
    text = msg.get(T_TEXT) or ""
    return OrderCancelRejected(
        venue=venue,
        client_id=msg.get(T_ORIG_CLORDID) or msg.get(T_CLORDID) or "",
        reason=map_reject(msg.get(T_CXL_REJ_REASON), text),
        message=text,
        ts_event=event_time(msg, ts_recv),
        ts_recv=ts_recv,
        is_replace=is_replace,
        new_client_id=msg.get(T_CLORDID) if is_replace else None,
    )


@attrs.frozen(slots=True)
class BusinessReject:
    """35=j: which message type and which id (usually the ClOrdID) was refused, and why."""

    ref_msg_type: str
    ref_id: str
    reason_code: str
    text: str


def parse_business_reject(msg: RawMessage) -> BusinessReject:
    return BusinessReject(
        ref_msg_type=msg.get(T_REF_MSG_TYPE) or "",
        ref_id=msg.get(T_BIZ_REJECT_REF_ID) or "",
        reason_code=msg.get(T_BIZ_REJECT_REASON) or "",
        text=msg.get(T_TEXT) or "",
    )


def md_sequence(msg: RawMessage) -> int:
    """The MD sequence used for gap detection: ApplSeqNum (1181) if present, else MsgSeqNum."""
    value = msg.get(T_APPL_SEQ_NUM) or msg.req(T_SEQ)
    return int(value)


#: MDUpdateAction values a book entry may carry here: new, change, delete. Delete thru (3), delete from (4)
#: and overlay (5) are legal FIX but would need another book model: applied as a level, they corrupt it.
_BOOK_ACTIONS = frozenset({"0", "1", "2"})


#: MDEntryType(269) values of the TrueX dictionary (conf/fix/TRUEX-FIX50SP2.xml). QuickFIX does not check
#: a value inside a repeating group, so one outside these is ours to refuse; one inside them that we did not
#: ask for (statistics) is skipped.
_SPEC_ENTRY_TYPES = frozenset("0123456789ABCDEFGHJKLMNOPQRSTUVWXYZa")


def _check_entry_type(kind: str | None) -> None:
    if kind not in _SPEC_ENTRY_TYPES:
        raise ParseError(f"MDEntryType {kind!r} is not in the TrueX dictionary")


def _check_level(price: Decimal, size: Decimal) -> None:
    """A book level the venue cannot mean: a price not above 0 or a negative size (0 deletes)."""
    if price <= 0 or size < 0 or not price.is_finite() or not size.is_finite():
        raise ParseError(f"impossible book level: price {price}, size {size}")


def check_grid(levels: tuple[Level, ...], tick: Decimal, lot: Decimal) -> None:
    """Every level on the instrument's finest price and size grid (the book keeps integer ticks and lots)."""
    for price, size in levels:
        if price % tick or size % lot:
            raise ParseError(f"book level {price} x {size} is off the instrument's grid ({tick} x {lot})")


def _md_entry_ts(entry: dict[int, str], fallback: int) -> int:
    text = entry.get(T_MD_ENTRY_TIME)
    if text and len(text) >= 17:
        return parse_utc_timestamp(text)
    return fallback


def parse_snapshot(msg: RawMessage, venue: str, ts_recv: int) -> BookSnapshot:
    """35=W (full refresh) to a BookSnapshot at the MD sequence."""
    bids: list[Level] = []
    asks: list[Level] = []
    ts_event = event_time(msg, ts_recv)
    for entry in msg.group(T_NO_MD_ENTRIES, T_MD_ENTRY_TYPE):
        kind = entry.get(T_MD_ENTRY_TYPE)
        px, size = _dec(entry.get(T_MD_ENTRY_PX)), _dec(entry.get(T_MD_ENTRY_SIZE))
        _check_entry_type(kind)
        if kind not in ("0", "1") or px is None or size is None:
            continue
        _check_level(px, size)
        (bids if kind == "0" else asks).append((px, size))
        ts_event = _md_entry_ts(entry, ts_event)
    bids.sort(key=lambda level: level[0], reverse=True)
    asks.sort(key=lambda level: level[0])
    return BookSnapshot(
        venue=venue,
        symbol=msg.req(T_SYMBOL),
        seq=md_sequence(msg),
        bids=tuple(bids),
        asks=tuple(asks),
        ts_event=ts_event,
        ts_recv=ts_recv,
    )


def parse_incremental(msg: RawMessage, venue: str, default_symbol: str, ts_recv: int) -> list[BookDelta | Trade]:
    """35=X to one BookDelta per symbol (deletes as size 0) plus a Trade per trade entry."""
    seq = md_sequence(msg)
    ts_msg = event_time(msg, ts_recv)
    changes: dict[str, tuple[list[Level], list[Level], int]] = {}
    trades: list[BookDelta | Trade] = []
    for entry in msg.group(T_NO_MD_ENTRIES, T_MD_UPDATE_ACTION):
        symbol = entry.get(T_SYMBOL) or default_symbol
        kind = entry.get(T_MD_ENTRY_TYPE)
        action = entry.get(T_MD_UPDATE_ACTION)
        px = _dec(entry.get(T_MD_ENTRY_PX))
        size = _dec(entry.get(T_MD_ENTRY_SIZE))
        ts_event = _md_entry_ts(entry, ts_msg)
        if px is None:
            raise ParseError("MD entry without a price")
        _check_entry_type(kind)
        if kind == "2":
            trades.append(
                Trade(
                    venue,
                    symbol,
                    entry.get(T_MD_ENTRY_ID) or f"{seq}-{len(trades)}",
                    px,
                    size or Decimal(0),
                    None,
                    ts_event,
                    ts_recv,
                )
            )
            continue
        if kind not in ("0", "1"):
            continue  # an entry type we did not ask for (statistics): not the book's
        if action not in _BOOK_ACTIONS:
            raise ParseError(f"MDUpdateAction {action!r} on a book entry is not one this connector applies (0, 1, 2)")
        bids, asks, _ = changes.setdefault(symbol, ([], [], ts_event))
        level = (px, Decimal(0) if action == "2" or size is None else size)
        _check_level(*level)
        (bids if kind == "0" else asks).append(level)
        changes[symbol] = (bids, asks, ts_event)
    deltas: list[BookDelta | Trade] = [
        BookDelta(venue, symbol, seq, seq, tuple(b), tuple(a), ts, ts_recv) for symbol, (b, a, ts) in changes.items()
    ]
    if not deltas:  # a trade-only message still advances the sequence: report an empty delta
        deltas.append(BookDelta(venue, default_symbol, seq, seq, (), (), ts_msg, ts_recv))
    return deltas + trades


def _replaced_open_qty(msg: RawMessage) -> Decimal:
    """Open quantity after a replace: LeavesQty(151), else OrderQty(38) - CumQty(14)."""
    leaves = _dec(msg.get(T_LEAVES_QTY))
    if leaves is not None:
        return leaves
    return (_dec(msg.req(T_QTY)) or Decimal(0)) - (_dec(msg.get(T_CUM_QTY)) or Decimal(0))
