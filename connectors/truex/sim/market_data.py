"""The simulated exchange's market-data side: 35=V subscriptions, 35=W snapshots, 35=X increments.

A mixin of :class:`connectors.truex.sim.exchange.TrueXExchange` (split out of
``exchange.py`` by job). It also keeps the aggregated L2 levels in step with
the matching engine, so a book change costs O(levels touched), not O(depth);
every engine call that changes the book goes through ``_engine_*`` here.
Callers hold the exchange's lock.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import quickfix as fix

from connectors.truex import builders, fix_tags, fix_values, raw_message
from connectors.truex.rejects import VenueReject
from connectors.truex.session import SessionSpec
from connectors.truex.sim.records import ExchangeConfig, ExchangeStats
from mmkit.model import Side
from mmkit.sim.matching import Execution, MatchingEngine, MatchResult, RestingOrder, SimOrder


class MarketDataPublisher:
    """Market data and book-level bookkeeping of the simulated exchange (see the module docstring)."""

    config: ExchangeConfig
    engine: MatchingEngine
    stats: ExchangeStats
    _md_subscribers: dict[str, str]
    _md_sessions: dict[str, SessionSpec]
    _md_seq: int
    _levels: dict[Side, dict[Decimal, Decimal]]
    _published: dict[Side, set[Decimal]]
    _dirty: set[tuple[Side, Decimal]]

    if TYPE_CHECKING:  # provided by TrueXExchange; declared for the type checker only (never shadow it)

        def _send(self, session_id: fix.SessionID, message: fix.Message) -> None: ...

        def _business_reject(
            self, sid: fix.SessionID, msg: raw_message.RawMessage, text: str, code: str, ref_id: str = ""
        ) -> Any: ...

    # -- market data ---------------------------------------------------------------

    def _on_md_message(self, msg: raw_message.RawMessage, comp_id: str, sid: fix.SessionID) -> None:
        if msg.msg_type != "V":
            self._business_reject(sid, msg, "Unsupported message type on MD", "3")
            return
        req_id = msg.req(fix_tags.T_MD_REQ_ID)
        if msg.get(fix_tags.T_SUB_REQ_TYPE) == "2":
            self._md_subscribers.pop(comp_id, None)
            return
        symbols = [entry.get(fix_tags.T_SYMBOL) for entry in msg.group(fix_tags.T_NO_RELATED_SYM, fix_tags.T_SYMBOL)]
        if self.config.symbol not in symbols:
            reject = fix.Message()
            reject.getHeader().setField(fix.BeginString(fix_tags.BEGIN_STRING))
            reject.getHeader().setField(fix.MsgType("Y"))
            reject.setField(fix_tags.T_MD_REQ_ID, req_id)
            reject.setField(281, "0")
            reject.setField(fix_tags.T_TEXT, VenueReject.UNKNOWN_SYMBOL.text)
            self._send(sid, reject)
            return
        self._md_subscribers[comp_id] = req_id
        self._send(sid, self._snapshot(req_id))

    def _snapshot(self, req_id: str) -> fix.Message:
        """35=W as TrueX sends it: 167=CSPOT, 1023 level, full timestamp in 273, no 779."""
        message = fix.Message()
        header = message.getHeader()
        header.setField(fix.BeginString(fix_tags.BEGIN_STRING))
        header.setField(fix.MsgType("W"))
        message.setField(fix_tags.T_APPL_SEQ_NUM, str(self._md_seq))
        message.setField(fix_tags.T_MD_REQ_ID, req_id)
        message.setField(fix_tags.T_SYMBOL, self.config.symbol)
        message.setField(fix_tags.T_SECURITY_TYPE, "CSPOT")
        stamp = fix_values.format_utc_timestamp(time.time_ns())
        order = builders.field_order(
            [
                fix_tags.T_MD_ENTRY_TYPE,
                fix_tags.T_MD_ENTRY_PX,
                fix_tags.T_MD_ENTRY_SIZE,
                fix_tags.T_MD_ENTRY_TIME,
                fix_tags.T_MD_PRICE_LEVEL,
                0,
            ]
        )
        for side, code in ((Side.BUY, "0"), (Side.SELL, "1")):
            for level, (price, qty) in enumerate(self.engine.depth(side), start=1):
                group = fix.Group(fix_tags.T_NO_MD_ENTRIES, fix_tags.T_MD_ENTRY_TYPE, order)
                group.setField(fix_tags.T_MD_ENTRY_TYPE, code)
                group.setField(fix_tags.T_MD_ENTRY_PX, fix_values.fmt_decimal(price))
                group.setField(fix_tags.T_MD_ENTRY_SIZE, fix_values.fmt_decimal(qty))
                group.setField(fix_tags.T_MD_ENTRY_TIME, stamp)
                group.setField(fix_tags.T_MD_PRICE_LEVEL, str(level))
                message.addGroup(group)
        if not message.isSetField(fix_tags.T_NO_MD_ENTRIES):
            message.setField(fix_tags.T_NO_MD_ENTRIES, "0")
        self._published = {side: {price for price, _ in self.engine.depth(side)} for side in (Side.BUY, Side.SELL)}
        self._dirty.clear()
        return message

    def _publish_md(self, executions: Sequence[Execution]) -> None:
        """Diff the book against what was last published and send one 35=X to every subscriber."""
        if not self._md_subscribers:
            self._note_unpublished(executions)
            return
        entries: list[tuple[str, str, Decimal, Decimal, str]] = []  # action, type, px, size, id
        for side, price in sorted(self._dirty, key=lambda item: (item[0].value, item[1])):
            code = "0" if side is Side.BUY else "1"
            qty = self._levels[side].get(price, Decimal(0))
            published = self._published[side]
            if qty > 0:
                entries.append(("1" if price in published else "0", code, price, qty, ""))
                published.add(price)
            elif price in published:
                entries.append(("2", code, price, Decimal(0), ""))
                published.discard(price)
        self._dirty.clear()
        entries.extend(("0", "2", e.price, e.qty, e.trade_id) for e in executions)
        if not entries:
            return
        self._md_seq += 1
        if not self._md_subscribers:
            return
        stamp = fix_values.format_utc_timestamp(time.time_ns())
        order = builders.field_order(
            [
                fix_tags.T_MD_UPDATE_ACTION,
                fix_tags.T_MD_ENTRY_TYPE,
                fix_tags.T_MD_ENTRY_ID,
                fix_tags.T_SYMBOL,
                fix_tags.T_MD_ENTRY_PX,
                fix_tags.T_MD_ENTRY_SIZE,
                fix_tags.T_MD_ENTRY_TIME,
                0,
            ]
        )
        for comp_id, req_id in list(self._md_subscribers.items()):
            message = fix.Message()
            header = message.getHeader()
            header.setField(fix.BeginString(fix_tags.BEGIN_STRING))
            header.setField(fix.MsgType("X"))
            message.setField(fix_tags.T_APPL_SEQ_NUM, str(self._md_seq))
            message.setField(fix_tags.T_MD_REQ_ID, req_id)
            for action, kind, price, size, entry_id in entries:
                group = fix.Group(fix_tags.T_NO_MD_ENTRIES, fix_tags.T_MD_UPDATE_ACTION, order)
                group.setField(fix_tags.T_MD_UPDATE_ACTION, action)
                group.setField(fix_tags.T_MD_ENTRY_TYPE, kind)
                if entry_id:
                    group.setField(fix_tags.T_MD_ENTRY_ID, entry_id)
                group.setField(fix_tags.T_SYMBOL, self.config.symbol)
                group.setField(fix_tags.T_MD_ENTRY_PX, fix_values.fmt_decimal(price))
                group.setField(fix_tags.T_MD_ENTRY_SIZE, fix_values.fmt_decimal(size))
                group.setField(fix_tags.T_MD_ENTRY_TIME, stamp)
                message.addGroup(group)
            spec = self._md_sessions.get(comp_id)
            if spec is not None:
                self.stats.md_messages += 1
                self._send(spec.session_id, message)

    def _note_unpublished(self, executions: Sequence[Execution]) -> None:
        """``_publish_md`` with nobody subscribed: the same sequence number and published set, no message.

        WHY: every order on the simulated exchange changes the book, and with
        no subscriber (the FIX benchmark, most order-entry tests) sorting the
        changes into entries nobody receives was a tenth of an order's cost.
        ``_levels`` holds positive quantities only, so "in levels" is "qty > 0".
        """
        changed = bool(executions)
        for side, price in self._dirty:
            published = self._published[side]
            if price in self._levels[side]:
                published.add(price)
                changed = True
            elif price in published:
                published.discard(price)
                changed = True
        self._dirty.clear()
        if changed:
            self._md_seq += 1

    # -- engine calls that keep the aggregated levels in step ---------------------------

    def _adjust(self, side: Side, price: Decimal, delta: Decimal) -> None:
        levels = self._levels[side]
        qty = levels.get(price, Decimal(0)) + delta
        if qty > 0:
            levels[price] = qty
        else:
            levels.pop(price, None)
        self._dirty.add((side, price))

    def _apply(self, result: MatchResult) -> MatchResult:
        for execution in result.executions:
            self._adjust(execution.maker_side, execution.price, -execution.qty)
        if result.resting is not None:
            self._adjust(result.resting.side, result.resting.price, result.resting.leaves_qty)
        return result

    def _engine_submit(self, order: SimOrder, ts: int) -> MatchResult:
        return self._apply(self.engine.submit(order, ts))

    def _engine_cancel(self, order_id: str, ts: int) -> RestingOrder | None:
        resting = self.engine.cancel(order_id, ts)
        if resting is not None:
            self._adjust(resting.side, resting.price, -resting.leaves_qty)
        return resting

    def _engine_replace(
        self, order_id: str, new_order_id: str, new_client_id: str, price: Decimal, qty: Decimal, ts: int
    ) -> MatchResult:
        before = self.engine.get(order_id)
        result = self.engine.replace(order_id, new_order_id, new_client_id, price, qty, ts)
        if result.accepted and before is not None:
            self._adjust(before.side, before.price, -before.leaves_qty)
            self._apply(result)
        return result
