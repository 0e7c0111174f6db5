"""Build TrueX FIX requests (D, F, G, H, AF, V) as ``quickfix.Message`` objects ready for ``sendToTarget``.

Split out of ``messages.py`` by job: what the client sends. The field-by-field
builders here are the reference the pre-rendered templates
(``templates.py``) are tested byte-equal against.
"""

from __future__ import annotations

from decimal import Decimal

import quickfix as fix

from connectors.truex.fix_tags import (
    _SIDE_CODES,
    _TIF_CODES,
    BEGIN_STRING,
    EXEC_INST_POST_ONLY,
    ORD_TYPE_LIMIT,
    ORD_TYPE_MARKET,
    PARTY_ROLE_CLIENT_ID,
    T_CLORDID,
    T_EXEC_INST,
    T_MARKET_DEPTH,
    T_MASS_STATUS_REQ_ID,
    T_MASS_STATUS_REQ_TYPE,
    T_MD_ENTRY_TYPE,
    T_MD_REQ_ID,
    T_MD_UPDATE_TYPE,
    T_NO_MD_ENTRY_TYPES,
    T_NO_PARTY_IDS,
    T_NO_RELATED_SYM,
    T_ORD_STATUS_REQ_ID,
    T_ORD_TYPE,
    T_ORIG_CLORDID,
    T_PARTY_ID,
    T_PARTY_ROLE,
    T_PRICE,
    T_QTY,
    T_SECURITY_TYPE,
    T_SIDE,
    T_SUB_REQ_TYPE,
    T_SYMBOL,
    T_TIF,
    T_TRANSACT_TIME,
)
from connectors.truex.fix_values import fmt_decimal, format_utc_timestamp
from mmkit.model import OrderRequest, OrderType, Side, TimeInForce


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
