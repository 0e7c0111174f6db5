"""Build TrueX FIX requests and parse TrueX FIX replies into mmkit events.

Builders return ``quickfix.Message`` objects ready for ``sendToTarget``.
Parsers work on the raw text copied out of a QuickFIX callback
(``message.toString()``): the copy is taken on the QuickFIX thread, the parse
happens on the asyncio loop, so no QuickFIX object crosses threads. QuickFIX
has already validated the message against the TrueX dictionary by then, so a
flat tag/value scan is enough; repeating groups are walked by their
delimiter tag.

The reject vocabulary (``VenueReject``) is shared with the local exchange so
that the texts the simulator sends are exactly the texts the client maps.
"""

from __future__ import annotations

import calendar
import enum
import time
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation

import attrs
import quickfix as fix

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
    OrderRequest,
    OrderStatusReport,
    OrderType,
    RejectReason,
    Side,
    TimeInForce,
    Trade,
    VenueOrderStatus,
)

SOH = "\x01"
BEGIN_STRING = "FIXT.1.1"

# Tags used here, named once.
T_MSG_TYPE, T_SEQ, T_SENDING_TIME, T_ORIG_SENDING_TIME, T_POSS_DUP = 35, 34, 52, 122, 43
T_CLORDID, T_ORIG_CLORDID, T_ORDER_ID, T_EXEC_ID, T_EXEC_TYPE, T_ORD_STATUS = 11, 41, 37, 17, 150, 39
T_SIDE, T_SYMBOL, T_QTY, T_PRICE, T_ORD_TYPE, T_TIF, T_EXEC_INST, T_TRANSACT_TIME = 54, 55, 38, 44, 40, 59, 18, 60
T_LAST_PX, T_LAST_QTY, T_CUM_QTY, T_LEAVES_QTY, T_COMMISSION, T_COMM_CCY, T_LIQUIDITY = 31, 32, 14, 151, 12, 479, 851
T_TEXT, T_ORD_REJ_REASON, T_CXL_REJ_REASON, T_CXL_REJ_RESPONSE_TO = 58, 103, 102, 434
T_REF_MSG_TYPE, T_BIZ_REJECT_REF_ID, T_BIZ_REJECT_REASON = 372, 379, 380
T_ORD_STATUS_REQ_ID, T_MASS_STATUS_REQ_ID, T_MASS_STATUS_REQ_TYPE = 790, 584, 585
T_TOT_NUM_REPORTS, T_LAST_RPT_REQUESTED = 911, 912
T_NO_PARTY_IDS, T_PARTY_ID, T_PARTY_ROLE = 453, 448, 452
T_MD_REQ_ID, T_SUB_REQ_TYPE, T_MARKET_DEPTH, T_MD_UPDATE_TYPE = 262, 263, 264, 265
T_NO_MD_ENTRY_TYPES, T_NO_RELATED_SYM, T_NO_MD_ENTRIES = 267, 146, 268
T_MD_ENTRY_TYPE, T_MD_ENTRY_PX, T_MD_ENTRY_SIZE, T_MD_ENTRY_TIME, T_MD_UPDATE_ACTION = 269, 270, 271, 273, 279
T_MD_ENTRY_ID, T_SECURITY_TYPE, T_MD_PRICE_LEVEL, T_APPL_SEQ_NUM, T_LAST_UPDATE_TIME = 278, 167, 1023, 1181, 779
T_USERNAME, T_PASSWORD = 553, 554
T_AVG_PX = 6

#: Tags never written to a log or a store (the API key and the logon signature).
SECRET_TAGS = (T_USERNAME, T_PASSWORD)

PARTY_ROLE_CLIENT_ID = "3"
EXEC_INST_POST_ONLY = "6"
ORD_TYPE_LIMIT, ORD_TYPE_MARKET = "2", "1"
_TIF_CODES = {TimeInForce.DAY: "0", TimeInForce.GTC: "1", TimeInForce.IOC: "3", TimeInForce.FOK: "4"}
TIF_FROM_CODE = {code: tif for tif, code in _TIF_CODES.items()}
_SIDE_CODES = {Side.BUY: "1", Side.SELL: "2"}
SIDE_FROM_CODE = {"1": Side.BUY, "2": Side.SELL}
_ORD_STATUS = {
    "0": VenueOrderStatus.NEW,
    "1": VenueOrderStatus.PARTIALLY_FILLED,
    "2": VenueOrderStatus.FILLED,
    "4": VenueOrderStatus.CANCELED,
    "5": VenueOrderStatus.NEW,  # replaced: open under its new ClOrdID
    "8": VenueOrderStatus.REJECTED,
    "C": VenueOrderStatus.EXPIRED,
}
#: OrdStatus(39) -> our status, public for the connector's reading of cancel answers.
STATUS_FROM_CODE = _ORD_STATUS
ORD_STATUS_CODE = {
    VenueOrderStatus.NEW: "0",
    VenueOrderStatus.PARTIALLY_FILLED: "1",
    VenueOrderStatus.FILLED: "2",
    VenueOrderStatus.CANCELED: "4",
    VenueOrderStatus.REJECTED: "8",
    VenueOrderStatus.EXPIRED: "C",
}


# --------------------------------------------------------------------------
# Reject vocabulary shared with the local exchange
# --------------------------------------------------------------------------


class VenueReject(enum.Enum):
    """A TrueX reject: (OrdRejReason 103, text). The text is what the client matches on first."""

    RATE_LIMIT = ("99", "Rate limit exceeded")
    TICK = ("18", "Invalid price increment")
    LOT = ("13", "Invalid quantity increment")
    MIN_NOTIONAL = ("99", "Order notional below minimum")
    PRICE_BAND = ("16", "Price outside price band")
    POST_ONLY = ("99", "Post only order would cross")
    DUPLICATE_ORDER = ("6", "Duplicate order")
    DUPLICATE_CLORDID = ("6", "Duplicate ClOrdID")
    CLORDID_LENGTH = ("99", "Invalid ClOrdID length")
    ORIG_SENDING_TIME = ("99", "Tag 122 OrigSendingTime not supported")
    UNKNOWN_SYMBOL = ("1", "Unknown symbol")
    UNKNOWN_ORDER = ("5", "Unknown order")
    UNSUPPORTED = ("11", "Unsupported order characteristic")

    @property
    def code(self) -> str:
        return self.value[0]

    @property
    def text(self) -> str:
        return self.value[1]


#: Most specific first: matched case-insensitively against Text (58).
_TEXT_REASONS: tuple[tuple[str, RejectReason], ...] = (
    ("rate limit", RejectReason.RATE_LIMIT),
    ("throttl", RejectReason.RATE_LIMIT),
    ("post only", RejectReason.POST_ONLY_WOULD_CROSS),
    ("post-only", RejectReason.POST_ONLY_WOULD_CROSS),
    ("would cross", RejectReason.POST_ONLY_WOULD_CROSS),
    ("notional", RejectReason.MIN_NOTIONAL),
    ("duplicate clordid", RejectReason.DUPLICATE_CLIENT_ID),
    ("clordid", RejectReason.INVALID_CLIENT_ID),
    ("duplicate", RejectReason.DUPLICATE_ORDER),
    ("band", RejectReason.PRICE_BAND),
    ("price increment", RejectReason.INVALID_PRICE),
    ("tick", RejectReason.INVALID_PRICE),
    ("quantity", RejectReason.INVALID_QTY),
    ("insufficient", RejectReason.INSUFFICIENT_FUNDS),
    ("unknown order", RejectReason.UNKNOWN_ORDER),
    ("origsendingtime", RejectReason.INVALID_MESSAGE),
)
_CODE_REASONS = {
    "5": RejectReason.UNKNOWN_ORDER,
    "6": RejectReason.DUPLICATE_ORDER,
    "13": RejectReason.INVALID_QTY,
    "16": RejectReason.PRICE_BAND,
    "18": RejectReason.INVALID_PRICE,
}


def map_reject(code: str | None, text: str | None) -> RejectReason:
    """Normalize a TrueX reject (OrdRejReason/CxlRejReason code and Text) to a RejectReason."""
    lowered = (text or "").lower()
    for needle, reason in _TEXT_REASONS:
        if needle in lowered:
            return reason
    return _CODE_REASONS.get(code or "", RejectReason.OTHER)


# --------------------------------------------------------------------------
# Time and numbers
# --------------------------------------------------------------------------


#: (second, its "YYYYMMDD-HH:MM:SS" text): format_utc_timestamp's one-entry cache.
_LAST_SECOND: list[tuple[int, str]] = [(-1, "")]


def format_utc_timestamp(ts_ns: int) -> str:
    """``YYYYMMDD-HH:MM:SS.ffffff`` (microseconds), as FIX UTCTimestamp.

    The date-and-second part is cached for the last second seen (strftime is
    most of the cost, and an order burst falls within one second); the cache
    is one tuple, replaced whole, so threads can share it.
    """
    seconds, rem = divmod(ts_ns, 1_000_000_000)
    cached_second, prefix = _LAST_SECOND[0]
    if cached_second != seconds:
        prefix = time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(seconds))
        _LAST_SECOND[0] = (seconds, prefix)
    return f"{prefix}.{rem // 1000:06d}"


#: ("YYYYMMDD-HH:MM:SS", its epoch second): parse_utc_timestamp's one-entry cache.
_LAST_PARSED: list[tuple[str, int]] = [("", 0)]


def parse_utc_timestamp(text: str) -> int:
    """FIX UTCTimestamp (second to nanosecond precision) to integer ns since the epoch.

    The seconds part is cached for the last text seen (one tuple, replaced
    whole): the reports of a burst share their second.
    """
    if len(text) < 17 or text[8] != "-":
        raise ValueError(f"not a UTCTimestamp: {text!r}")
    head = text[:17]
    cached_head, whole = _LAST_PARSED[0]
    if cached_head != head:
        whole = calendar.timegm(
            (int(text[0:4]), int(text[4:6]), int(text[6:8]), int(text[9:11]), int(text[12:14]), int(text[15:17]),
             0, 0, 0)
        )  # fmt: skip
        _LAST_PARSED[0] = (head, whole)
    frac = text[18:] if len(text) > 18 and text[17] == "." else ""
    if frac and not frac.isdigit():
        raise ValueError(f"not a UTCTimestamp: {text!r}")
    return whole * 1_000_000_000 + (int(frac.ljust(9, "0")[:9]) if frac else 0)


def fmt_decimal(value: Decimal) -> str:
    """Plain notation (never ``1E-5``), no float on the way."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def _dec(text: str | None) -> Decimal | None:
    if text is None or text == "":
        return None
    try:
        return Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(f"not a decimal: {text!r}") from exc


# --------------------------------------------------------------------------
# Raw message access
# --------------------------------------------------------------------------


class ParseError(ValueError):
    """A message that QuickFIX accepted but we cannot turn into an event."""


class RawMessage:
    """Tag/value view of one raw FIX message: first occurrence lookups plus ordered pairs for groups."""

    __slots__ = ("_first", "pairs")

    def __init__(self, raw: str) -> None:
        pairs: list[tuple[int, str]] = []
        first: dict[int, str] = {}
        for item in raw.split(SOH):
            if not item:
                continue
            tag_text, sep, value = item.partition("=")
            if not sep or not tag_text.isdigit():
                raise ParseError(f"bad field {item[:40]!r}")
            tag = int(tag_text)
            pairs.append((tag, value))
            first.setdefault(tag, value)
        self.pairs = pairs
        self._first = first

    def get(self, tag: int) -> str | None:
        return self._first.get(tag)

    def req(self, tag: int) -> str:
        value = self._first.get(tag)
        if value is None:
            raise ParseError(f"tag {tag} missing in {self.msg_type}")
        return value

    @property
    def msg_type(self) -> str:
        return self._first.get(T_MSG_TYPE, "?")

    def group(self, count_tag: int, delimiter: int) -> Iterator[dict[int, str]]:
        """Yield each entry of a repeating group as {tag: value} (first occurrence within the entry)."""
        entry: dict[int, str] | None = None
        started = False
        for tag, value in self.pairs:
            if tag == count_tag:
                started = True
                continue
            if not started:
                continue
            if tag == delimiter:
                if entry is not None:
                    yield entry
                entry = {}
            if entry is not None:
                if tag in (10,):
                    break
                entry.setdefault(tag, value)
        if entry is not None:
            yield entry


def redact(raw: str) -> str:
    """Replace the values of 553/554 so that a message can be logged or stored."""
    parts = raw.split(SOH)
    for i, item in enumerate(parts):
        tag, sep, _ = item.partition("=")
        if sep and tag in ("553", "554"):
            parts[i] = f"{tag}=***"
    return "|".join(parts)


# --------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------


def field_order(tags: list[int]) -> fix.IntArray:
    """A QuickFIX group field order (``IntArray``, 0-terminated) from a list of tags."""
    order = fix.IntArray(len(tags))
    for index, tag in enumerate(tags):
        order[index] = tag
    return order


def _new(msg_type: str) -> fix.Message:
    message = fix.Message()
    header = message.getHeader()
    header.setField(fix.BeginString(BEGIN_STRING))
    header.setField(fix.MsgType(msg_type))
    return message


def _parties(message: fix.Message, party_id: str) -> None:
    """Parties: 453=1, 448=<client id>, 452=3 — in that order, as TrueX expects."""
    group = fix.Group(T_NO_PARTY_IDS, T_PARTY_ID, field_order([T_PARTY_ID, 447, T_PARTY_ROLE, 0]))
    group.setField(T_PARTY_ID, party_id)
    group.setField(T_PARTY_ROLE, PARTY_ROLE_CLIENT_ID)
    message.addGroup(group)


def new_order_single(order: OrderRequest, party_id: str, symbol: str, ts_ns: int) -> fix.Message:
    """35=D. Post-only via ExecInst 18=6; TIF from the request (GTC 59=1)."""
    message = _new("D")
    message.setField(T_CLORDID, order.client_id)
    _parties(message, party_id)
    message.setField(T_SYMBOL, symbol)
    message.setField(T_SIDE, _SIDE_CODES[order.side])
    message.setField(T_TRANSACT_TIME, format_utc_timestamp(ts_ns))
    message.setField(T_QTY, fmt_decimal(order.qty))
    if order.order_type is OrderType.LIMIT:
        assert order.price is not None  # OrderRequest guarantees it
        message.setField(T_ORD_TYPE, ORD_TYPE_LIMIT)
        message.setField(T_PRICE, fmt_decimal(order.price))
    else:
        message.setField(T_ORD_TYPE, ORD_TYPE_MARKET)
    message.setField(T_TIF, _TIF_CODES[order.tif])
    if order.post_only:
        message.setField(T_EXEC_INST, EXEC_INST_POST_ONLY)
    return message


def order_cancel_request(
    cancel_id: str, orig_client_id: str, *, side: Side, symbol: str, party_id: str, ts_ns: int
) -> fix.Message:
    """35=F: a real cancel (never a replace to zero)."""
    message = _new("F")
    message.setField(T_ORIG_CLORDID, orig_client_id)
    message.setField(T_CLORDID, cancel_id)
    _parties(message, party_id)
    message.setField(T_SYMBOL, symbol)
    message.setField(T_SIDE, _SIDE_CODES[side])
    message.setField(T_TRANSACT_TIME, format_utc_timestamp(ts_ns))
    return message


def cancel_replace_request(
    new_client_id: str,
    orig_client_id: str,
    *,
    side: Side,
    symbol: str,
    price: Decimal,
    qty: Decimal,
    party_id: str,
    ts_ns: int,
    post_only: bool = True,
) -> fix.Message:
    """35=G: new total quantity and price for a resting limit order."""
    message = _new("G")
    message.setField(T_ORIG_CLORDID, orig_client_id)
    message.setField(T_CLORDID, new_client_id)
    _parties(message, party_id)
    message.setField(T_SYMBOL, symbol)
    message.setField(T_SIDE, _SIDE_CODES[side])
    message.setField(T_TRANSACT_TIME, format_utc_timestamp(ts_ns))
    message.setField(T_QTY, fmt_decimal(qty))
    message.setField(T_ORD_TYPE, ORD_TYPE_LIMIT)
    message.setField(T_PRICE, fmt_decimal(price))
    message.setField(T_TIF, _TIF_CODES[TimeInForce.GTC])
    if post_only:
        message.setField(T_EXEC_INST, EXEC_INST_POST_ONLY)
    return message


def order_status_request(client_id: str, side: Side, symbol: str, request_id: str, party_id: str) -> fix.Message:
    """35=H for one order, answered by an ExecutionReport with ExecType I."""
    message = _new("H")
    message.setField(T_CLORDID, client_id)
    message.setField(T_ORD_STATUS_REQ_ID, request_id)
    _parties(message, party_id)
    message.setField(T_SYMBOL, symbol)
    message.setField(T_SIDE, _SIDE_CODES[side])
    return message


def order_mass_status_request(request_id: str, symbol: str | None, party_id: str) -> fix.Message:
    """35=AF: every open order of ours (585=7), or on one symbol (585=1)."""
    message = _new("AF")
    message.setField(T_MASS_STATUS_REQ_ID, request_id)
    message.setField(T_MASS_STATUS_REQ_TYPE, "1" if symbol else "7")
    _parties(message, party_id)
    if symbol:
        message.setField(T_SYMBOL, symbol)
    return message


def market_data_request(request_id: str, symbol: str, subscribe: bool = True, trades: bool = True) -> fix.Message:
    """35=V: snapshot + updates (263=1), full depth (264=0), incremental (265=1), bids and offers."""
    message = _new("V")
    message.setField(T_MD_REQ_ID, request_id)
    message.setField(T_SUB_REQ_TYPE, "1" if subscribe else "2")
    message.setField(T_MARKET_DEPTH, "0")
    message.setField(T_MD_UPDATE_TYPE, "1")
    for entry_type in ("0", "1", "2") if trades else ("0", "1"):
        group = fix.Group(T_NO_MD_ENTRY_TYPES, T_MD_ENTRY_TYPE, field_order([T_MD_ENTRY_TYPE, 0]))
        group.setField(T_MD_ENTRY_TYPE, entry_type)
        message.addGroup(group)
    sym = fix.Group(T_NO_RELATED_SYM, T_SYMBOL, field_order([T_SYMBOL, T_SECURITY_TYPE, 0]))
    sym.setField(T_SYMBOL, symbol)
    message.addGroup(sym)
    return message


# --------------------------------------------------------------------------
# Parsers
# --------------------------------------------------------------------------


def _ts_event(msg: RawMessage, ts_recv: int) -> int:
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
    ts_event = _ts_event(msg, ts_recv)
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
        ts_event=_ts_event(msg, ts_recv),
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


def _md_entry_ts(entry: dict[int, str], fallback: int) -> int:
    text = entry.get(T_MD_ENTRY_TIME)
    if text and len(text) >= 17:
        return parse_utc_timestamp(text)
    return fallback


def parse_snapshot(msg: RawMessage, venue: str, ts_recv: int) -> BookSnapshot:
    """35=W (full refresh) to a BookSnapshot at the MD sequence."""
    bids: list[Level] = []
    asks: list[Level] = []
    ts_event = _ts_event(msg, ts_recv)
    for entry in msg.group(T_NO_MD_ENTRIES, T_MD_ENTRY_TYPE):
        kind = entry.get(T_MD_ENTRY_TYPE)
        px, size = _dec(entry.get(T_MD_ENTRY_PX)), _dec(entry.get(T_MD_ENTRY_SIZE))
        if kind not in ("0", "1") or px is None or size is None:
            continue
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
    ts_msg = _ts_event(msg, ts_recv)
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
            continue
        bids, asks, _ = changes.setdefault(symbol, ([], [], ts_event))
        level = (px, Decimal(0) if action == "2" or size is None else size)
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
