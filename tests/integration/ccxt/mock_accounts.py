"""The private (account) side of the mock venue for Coinbase Advanced Trade and Gemini.

Why: the conformance suite must run ccxt's own order-entry code for each venue
(request building, signing, response parsing, error mapping), so the mock
answers the endpoints ccxt calls with the venues' documented payloads:

* Coinbase Advanced Trade (``/api/v3/brokerage/...``): create, batch_cancel,
  edit, historical order by id, historical batch (orders list), fills; and the
  v2 accounts list for balances (its shape is ccxt's recorded fixture in
  ``../shared/data/ccxt_static/response/coinbase.json``, loaded at test time).
  A post-only order that would cross is refused with
  ``INVALID_LIMIT_PRICE_POST_ONLY``; an unknown order id answers Coinbase's
  "order with this orderID was not found".
* Gemini REST v1 (``/v1/...``, payload base64 in ``X-GEMINI-PAYLOAD``): order
  new/cancel/status (by order id or client order id), active orders, mytrades,
  balances, heartbeat. A maker-or-cancel order that would take comes back
  cancelled with reason ``MakerOrCancelWouldTake``, as Gemini does.

Both keep orders and trades in :class:`MockOrder` / :class:`MockTrade`, so a
test fills, loses or inspects an order the same way on either venue. A venue's
rate-limit answer is injected with ``fail_next(venue, "rate_limit")``.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import time
import uuid
from collections import deque
from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs
from aiohttp import WSMsgType, web

D = Decimal


@attrs.define
class MockTrade:
    trade_id: str
    order_id: str
    client_id: str
    side: str
    price: Decimal
    qty: Decimal
    fee: Decimal
    maker: bool
    ts_ms: int


@attrs.define
class MockOrder:
    """One resting or finished order on a venue (Coinbase or Gemini)."""

    order_id: str
    client_id: str
    product: str
    side: str  # "buy" / "sell"
    price: Decimal
    qty: Decimal
    post_only: bool
    created_ms: int
    filled: Decimal = attrs.Factory(Decimal)
    cost: Decimal = attrs.Factory(Decimal)
    fee: Decimal = attrs.Factory(Decimal)
    status: str = "open"  # open / filled / canceled
    cancel_reason: str | None = None

    @property
    def average(self) -> Decimal:
        return self.cost / self.filled if self.filled else D(0)


#: Gemini's mytrades: trades a page by default, and the most ``limit_trades`` may ask for.
GEMINI_TRADES_PAGE = 50
GEMINI_TRADES_PAGE_MAX = 500
#: Coinbase's List Fills: fills a page when ``limit`` is not given (the mock's choice; see ``_coinbase_fills``).
COINBASE_FILLS_PAGE = 100


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


class AccountsMixin:
    """Coinbase and Gemini order entry, mixed into :class:`MockVenueServer`."""

    books: dict[str, Any]
    maker_fee: Decimal
    taker_fee: Decimal
    #: A hostile Coinbase: List Fills answers a page with the very cursor it was sent (its paging never ends).
    coinbase_cursor_repeats: bool = False
    #: A hostile Gemini: fields replacing the order's own in the next order/cancel answer (then cleared).
    gemini_next_cancel_answer: dict[str, Any]

    def _init_accounts(self) -> None:
        self.orders: dict[str, dict[str, MockOrder]] = {"coinbase": {}, "gemini": {}}
        self.trades: dict[str, list[MockTrade]] = {"kraken": [], "coinbase": [], "gemini": []}
        self.calls: dict[str, list[tuple[str, dict[str, Any]]]] = {"coinbase": [], "gemini": []}
        self.errors: dict[str, deque[str]] = {"coinbase": deque(), "gemini": deque()}
        #: Gemini's "require heartbeat" session: when set, orders die if no heartbeat for this long.
        self.gemini_heartbeat_timeout_s: float | None = None
        self.gemini_last_heartbeat: float | None = None
        self.gemini_heartbeats = 0
        self.accounts_down = False
        #: Gemini order-events sockets (``/v1/order/events``) and the events sent on them.
        self.gemini_event_sockets: list[web.WebSocketResponse] = []
        self.gemini_events: list[dict[str, Any]] = []
        self._event_ids = itertools.count(9_000_000_000)
        self._trade_ids = itertools.count(1000)
        self._gemini_ids = itertools.count(7_000_000_000)

    def add_account_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/coinbase/api/v3/brokerage/{path:.*}", self._coinbase_rest)
        app.router.add_get("/coinbase/v2/accounts", self._coinbase_accounts)
        app.router.add_post("/gemini/v1/{path:.*}", self._gemini_rest)
        app.router.add_get("/gemini/v1/order/events", self._gemini_order_events)

    # -- controls ---------------------------------------------------------

    def find_order(self, venue: str, client_id: str) -> MockOrder:
        return next(o for o in self.orders[venue].values() if o.client_id == client_id)

    def open_orders_of(self, venue: str) -> list[MockOrder]:
        self.expire_gemini_session()
        return [o for o in self.orders[venue].values() if o.status == "open"]

    def fill_account_order(self, venue: str, client_id: str, qty: Decimal, price: Decimal, maker: bool = True) -> None:
        order = self.find_order(venue, client_id)
        self._execute(venue, order, qty, price, maker)

    def lose_account_order(self, venue: str, client_id: str) -> None:
        for order_id, order in list(self.orders[venue].items()):
            if order.client_id == client_id:
                del self.orders[venue][order_id]

    def fail_account_next(self, venue: str, error: str) -> None:
        """Queue an error answer for the venue's next create-order call ("rate_limit" or "insufficient_funds")."""
        self.errors[venue].append(error)

    def expire_gemini_session(self) -> None:
        """Gemini cancels a heartbeat session's orders when its heartbeat lapses (checked on access)."""
        timeout = self.gemini_heartbeat_timeout_s
        if timeout is None or self.gemini_last_heartbeat is None:
            return
        if time.monotonic() - self.gemini_last_heartbeat > timeout:
            for order in self.orders["gemini"].values():
                if order.status == "open":
                    order.status, order.cancel_reason = "canceled", "HeartbeatMissed"

    def _execute(self, venue: str, order: MockOrder, qty: Decimal, price: Decimal, maker: bool) -> None:
        fee = qty * price * (self.maker_fee if maker else self.taker_fee)
        order.filled += qty
        order.cost += qty * price
        order.fee += fee
        if order.filled >= order.qty:
            order.status = "filled"
        if venue == "coinbase":
            self.coinbase_user_push(order)
        trade_id = str(next(self._trade_ids))
        if venue == "gemini":
            self._gemini_event(
                order,
                "fill",
                fill={
                    "trade_id": trade_id,
                    "liquidity": "Maker" if maker else "Taker",
                    "price": str(price),
                    "amount": str(qty),
                    "fee": str(fee),
                    "fee_currency": "USD",
                },
            )
        self.trades[venue].append(
            MockTrade(
                trade_id,
                order.order_id,
                order.client_id,
                order.side,
                price,
                qty,
                fee,
                maker,
                _now_ms(),
            )
        )

    # -- Gemini order events (private WebSocket) ------------------------------

    async def _gemini_order_events(self, request: web.Request) -> web.WebSocketResponse:
        """``/v1/order/events``: signed by headers at connect, then a JSON array per event batch."""
        if not request.headers.get("X-GEMINI-APIKEY") or not request.headers.get("X-GEMINI-SIGNATURE"):
            return web.Response(status=400, text="missing X-GEMINI-APIKEY / X-GEMINI-SIGNATURE")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json(
            {
                "type": "subscription_ack",
                "accountId": 5365,
                "subscriptionId": "ws-order-events-5365",
                "symbolFilter": [],
                "apiSessionFilter": [],
                "eventTypeFilter": request.query.getall("eventTypeFilter", []),
            }
        )
        initial = [self._gemini_event_json(o, "initial") for o in self.orders["gemini"].values() if o.status == "open"]
        if initial:
            await ws.send_json(initial)
        self.gemini_event_sockets.append(ws)
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    break
        finally:
            self.gemini_event_sockets.remove(ws)
        return ws

    def _gemini_event_json(self, o: MockOrder, kind: str, **extra: Any) -> dict[str, Any]:
        event = self._gemini_order_json(o)
        for key in ("id", "exchange", "options", "reason"):
            event.pop(key, None)
        return {
            **event,
            "type": kind,
            "event_id": str(next(self._event_ids)),
            "api_session": "account-test-key",
            "order_type": "exchange limit",
            "socket_sequence": len(self.gemini_events),
            **extra,
        }

    def _gemini_event(self, order: MockOrder, kind: str, **extra: Any) -> None:
        event = self._gemini_event_json(order, kind, **extra)
        self.gemini_events.append(event)
        for ws in list(self.gemini_event_sockets):
            if not ws.closed:
                asyncio.get_running_loop().create_task(ws.send_json([event]))

    def _crosses(self, venue: str, side: str, price: Decimal) -> bool:
        bids, asks = self.books[venue].top(1)
        if side == "buy":
            return bool(asks) and price >= asks[0][0]
        return bool(bids) and price <= bids[0][0]

    # -- Coinbase Advanced Trade -------------------------------------------

    #: Pushes an order's change to the ``user`` channel sockets (MockVenueServer holds the sockets).
    coinbase_user_push: Any

    def coinbase_user_order(self, o: MockOrder) -> dict[str, Any]:
        """One order as Coinbase's ``user`` channel describes it."""
        status = {"open": "OPEN", "filled": "FILLED", "canceled": "CANCELLED"}[o.status]
        return {
            "order_id": o.order_id,
            "client_order_id": o.client_id,
            "cumulative_quantity": str(o.filled),
            "leaves_quantity": str(o.qty - o.filled if o.status == "open" else 0),
            "avg_price": str(o.average),
            "total_fees": str(o.fee),
            "status": status,
            "product_id": o.product,
            "creation_time": _iso(o.created_ms),
            "order_side": o.side.upper(),
            "order_type": "Limit",
            "limit_price": str(o.price),
            "filled_value": str(o.cost),
            "number_of_fills": "0",
            "post_only": o.post_only,
        }

    def _coinbase_order_json(self, o: MockOrder) -> dict[str, Any]:
        status = {"open": "OPEN", "filled": "FILLED", "canceled": "CANCELLED"}[o.status]
        return {
            "order_id": o.order_id,
            "product_id": o.product,
            "user_id": "mock-user",
            "order_configuration": {
                "limit_limit_gtc": {"base_size": str(o.qty), "limit_price": str(o.price), "post_only": o.post_only}
            },
            "side": o.side.upper(),
            "client_order_id": o.client_id,
            "status": status,
            "time_in_force": "GOOD_UNTIL_CANCELLED",
            "created_time": _iso(o.created_ms),
            "completion_percentage": str((o.filled / o.qty * 100).quantize(D("0.01"))),
            "filled_size": str(o.filled),
            "average_filled_price": str(o.average),
            "number_of_fills": str(sum(1 for t in self.trades["coinbase"] if t.order_id == o.order_id)),
            "filled_value": str(o.cost),
            "pending_cancel": False,
            "size_in_quote": False,
            "total_fees": str(o.fee),
            "size_inclusive_of_fees": False,
            "total_value_after_fees": str(o.cost + o.fee),
            "trigger_status": "INVALID_ORDER_TYPE",
            "order_type": "LIMIT",
            "reject_reason": "REJECT_REASON_UNSPECIFIED",
            "settled": o.status != "open",
            "product_type": "SPOT",
            "reject_message": "",
            "cancel_message": o.cancel_reason or "",
            "order_placement_source": "RETAIL_ADVANCED",
            "outstanding_hold_amount": "0",
        }

    async def _coinbase_rest(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        body: dict[str, Any] = {}
        if request.method == "POST" and request.can_read_body:
            body = json.loads(await request.text() or "{}")
        query = dict(request.query)
        self.calls["coinbase"].append((f"{request.method} {path}", {**query, **body}))
        if self.accounts_down:
            return web.Response(status=503, text="Service Unavailable")
        if self.errors["coinbase"] and request.method == "POST" and path == "orders":
            error = self.errors["coinbase"].popleft()
            if error == "rate_limit":
                return web.json_response(
                    {
                        "error": "rate_limit_exceeded",
                        "error_details": "Too many requests",
                        "message": "Too many requests",
                    },
                    status=429,
                )
            if error == "insufficient_funds":
                return web.json_response(
                    self._coinbase_failure(
                        "INSUFFICIENT_FUND", "Insufficient balance in source account", "PREVIEW_INSUFFICIENT_FUND"
                    )
                )
        if request.method == "POST" and path == "orders":
            return web.json_response(self._coinbase_create(body))
        if path == "orders/batch_cancel":
            return web.json_response(self._coinbase_cancel(body))
        if path == "orders/edit":
            return web.json_response(self._coinbase_edit(body))
        if path == "orders/historical/batch":
            status = query.get("order_status")
            orders = [
                o
                for o in self.orders["coinbase"].values()
                if status is None or self._coinbase_order_json(o)["status"] == status
            ]
            return web.json_response(
                {
                    "orders": [self._coinbase_order_json(o) for o in orders],
                    "sequence": "0",
                    "has_next": False,
                    "cursor": "",
                }
            )
        if path == "orders/historical/fills":
            return web.json_response(self._coinbase_fills(query))
        if path.startswith("orders/historical/"):
            order = self.orders["coinbase"].get(path.rsplit("/", 1)[1])
            if order is None:
                return web.json_response(
                    {
                        "error": "unknown",
                        "error_details": "order with this orderID was not found",
                        "message": "order with this orderID was not found",
                    },
                    status=404,
                )
            return web.json_response({"order": self._coinbase_order_json(order)})
        return web.json_response({"error": "NOT_FOUND", "message": f"no route {path}"}, status=404)

    @staticmethod
    def _coinbase_failure(error: str, message: str, preview: str) -> dict[str, Any]:
        return {
            "success": False,
            "failure_reason": "UNKNOWN_FAILURE_REASON",
            "order_id": "",
            "error_response": {
                "error": error,
                "message": message,
                "error_details": "",
                "preview_failure_reason": preview,
            },
        }

    def _coinbase_create(self, body: dict[str, Any]) -> dict[str, Any]:
        config = body["order_configuration"]
        kind, spec = next(iter(config.items()))
        side = body["side"].lower()
        if kind == "market_market_ioc":
            qty = D(spec["base_size"])
            order = MockOrder(
                str(uuid.uuid4()), body["client_order_id"], body["product_id"], side, D(0), qty, False, _now_ms()
            )
            self.orders["coinbase"][order.order_id] = order
            bids, asks = self.books["coinbase"].top(1)
            self._execute("coinbase", order, qty, asks[0][0] if side == "buy" else bids[0][0], maker=False)
        else:
            price, qty, post_only = D(spec["limit_price"]), D(spec["base_size"]), bool(spec.get("post_only"))
            if post_only and self._crosses("coinbase", side, price):
                return self._coinbase_failure(
                    "INVALID_LIMIT_PRICE_POST_ONLY",
                    "Invalid limit price for post-only order",
                    "PREVIEW_INVALID_LIMIT_PRICE_POST_ONLY",
                )
            order = MockOrder(
                str(uuid.uuid4()), body["client_order_id"], body["product_id"], side, price, qty, post_only, _now_ms()
            )
            self.orders["coinbase"][order.order_id] = order
            self.coinbase_user_push(order)
        return {
            "success": True,
            "success_response": {
                "order_id": order.order_id,
                "product_id": order.product,
                "side": side.upper(),
                "client_order_id": order.client_id,
            },
            "order_configuration": config,
        }

    def _coinbase_cancel(self, body: dict[str, Any]) -> dict[str, Any]:
        results = []
        for order_id in body.get("order_ids", []):
            order = self.orders["coinbase"].get(order_id)
            if order is None or order.status != "open":
                results.append({"success": False, "failure_reason": "UNKNOWN_CANCEL_ORDER", "order_id": order_id})
                continue
            order.status = "canceled"
            self.coinbase_user_push(order)
            results.append({"success": True, "failure_reason": "UNKNOWN_CANCEL_FAILURE_REASON", "order_id": order_id})
        return {"results": results}

    def _coinbase_edit(self, body: dict[str, Any]) -> dict[str, Any]:
        order = self.orders["coinbase"].get(body.get("order_id", ""))
        if order is None or order.status != "open":
            return {"success": False, "errors": [{"edit_failure_reason": "ORDER_NOT_FOUND"}]}
        price = D(body["price"]) if "price" in body else order.price
        qty = D(body["size"]) if "size" in body else order.qty
        if order.post_only and self._crosses("coinbase", order.side, price):
            return {"success": False, "errors": [{"edit_failure_reason": "INVALID_LIMIT_PRICE_POST_ONLY"}]}
        if qty <= order.filled:
            return {"success": False, "errors": [{"edit_failure_reason": "CANNOT_EDIT_TO_BELOW_FILLED_SIZE"}]}
        order.price, order.qty = price, qty
        self.coinbase_user_push(order)
        return {"success": True, "errors": []}

    def _coinbase_fills(self, query: dict[str, str]) -> dict[str, Any]:
        """List Fills: newest first, ``limit`` a page (``COINBASE_FILLS_PAGE`` when not asked), ``cursor`` pages on.

        ``start_sequence_timestamp`` / ``end_sequence_timestamp`` (ISO 8601) bound the list; the
        answer's ``cursor`` is empty on the last page. The default page size is the mock's
        assumption (Coinbase's own is not stated in what we could read); the pager does not rely on it.
        """
        def ms(name: str) -> int | None:
            value = query.get(name)
            return None if not value else int(datetime.fromisoformat(value).timestamp() * 1000)

        start, end = ms("start_sequence_timestamp"), ms("end_sequence_timestamp")
        fills = [t for t in self.trades["coinbase"]
                 if (start is None or t.ts_ms >= start) and (end is None or t.ts_ms <= end)]
        fills.sort(key=lambda t: (t.ts_ms, int(t.trade_id)), reverse=True)
        limit, offset = int(query.get("limit") or COINBASE_FILLS_PAGE), int(query.get("cursor") or 0)
        page = fills[offset: offset + limit]
        more = offset + limit < len(fills)
        if self.coinbase_cursor_repeats and query.get("cursor"):
            return {"fills": [self._coinbase_fill_json(t) for t in page], "cursor": query["cursor"]}  # a hostile venue
        return {"fills": [self._coinbase_fill_json(t) for t in page], "cursor": str(offset + limit) if more else ""}

    @staticmethod
    def _coinbase_fill_json(t: MockTrade) -> dict[str, Any]:
        return {
            "entry_id": f"e-{t.trade_id}",
            "trade_id": t.trade_id,
            "order_id": t.order_id,
            "trade_time": _iso(t.ts_ms),
            "trade_type": "FILL",
            "price": str(t.price),
            "size": str(t.qty),
            "commission": str(t.fee),
            "product_id": "BTC-USD",
            "sequence_timestamp": _iso(t.ts_ms),
            "liquidity_indicator": "MAKER" if t.maker else "TAKER",
            "size_in_quote": False,
            "user_id": "mock-user",
            "side": t.side.upper(),
            "retail_portfolio_id": "mock-portfolio",
        }

    async def _coinbase_accounts(self, request: web.Request) -> web.Response:
        self.calls["coinbase"].append(("GET v2/accounts", dict(request.query)))
        if self.accounts_down:
            return web.Response(status=503, text="Service Unavailable")
        from tests.integration.ccxt.mock_venue import load_fixture

        # ccxt's recorded v2 answer (a real account's ADA and MASK wallets), plus BTC and USD wallets of
        # the same shape so that hedges on the mock are funded.
        recorded = load_fixture("response", "coinbase")["methods"]["fetchBalance"][0]["httpResponse"]
        template = recorded["data"][0]
        funded = [
            {**template, "id": f"mock-{code.lower()}-wallet", "name": f"{code} Wallet",
             "resource_path": f"/v2/accounts/mock-{code.lower()}-wallet",
             "currency": {**template["currency"], "code": code, "name": code, "slug": code.lower()},
             "balance": {"amount": amount, "currency": code}}
            for code, amount in (("BTC", "1.50000000"), ("USD", "100000.00"))
        ]
        return web.json_response({**recorded, "data": [*funded, *recorded["data"]]})

    # -- Gemini -------------------------------------------------------------

    def _gemini_order_json(self, o: MockOrder) -> dict[str, Any]:
        ts = o.created_ms
        return {
            "order_id": o.order_id,
            "id": o.order_id,
            "symbol": o.product,
            "exchange": "gemini",
            "avg_execution_price": f"{o.average:.2f}",
            "side": o.side,
            "type": "exchange limit",
            "timestamp": str(ts // 1000),
            "timestampms": ts,
            "is_live": o.status == "open",
            "is_cancelled": o.status == "canceled",
            "is_hidden": False,
            "was_forced": False,
            "executed_amount": str(o.filled),
            "remaining_amount": str(o.qty - o.filled),
            "client_order_id": o.client_id,
            "options": ["maker-or-cancel"] if o.post_only else [],
            "price": str(o.price),
            "original_amount": str(o.qty),
            **({"reason": o.cancel_reason} if o.cancel_reason else {}),
        }

    @staticmethod
    def _gemini_error(reason: str, message: str, status: int = 400) -> web.Response:
        return web.json_response({"result": "error", "reason": reason, "message": message}, status=status)

    async def _gemini_rest(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        payload = json.loads(base64.b64decode(request.headers.get("X-GEMINI-PAYLOAD", "e30=")))
        self.calls["gemini"].append((path, payload))
        if self.accounts_down:
            return web.Response(status=503, text="Service Unavailable")
        self.expire_gemini_session()
        self.gemini_last_heartbeat = time.monotonic()  # Gemini: any private call counts as a heartbeat
        if self.errors["gemini"] and path == "order/new":
            error = self.errors["gemini"].popleft()
            if error == "rate_limit":
                return self._gemini_error("RateLimit", "Requests were made too frequently", status=429)
            if error == "insufficient_funds":
                return self._gemini_error("InsufficientFunds", "Failed to place buy order on symbol 'BTCUSD'")
        orders = self.orders["gemini"]
        if path == "heartbeat":
            self.gemini_heartbeats += 1
            return web.json_response({"result": "ok"})
        if path == "order/new":
            side, price, qty = payload["side"], D(payload["price"]), D(payload["amount"])
            post_only = "maker-or-cancel" in (payload.get("options") or [])
            order = MockOrder(
                str(next(self._gemini_ids)),
                str(payload["client_order_id"]),
                payload["symbol"],
                side,
                price,
                qty,
                post_only,
                _now_ms(),
            )
            orders[order.order_id] = order
            if post_only and self._crosses("gemini", side, price):
                order.status, order.cancel_reason = "canceled", "MakerOrCancelWouldTake"
                self._gemini_event(order, "cancelled", reason="MakerOrCancelWouldTake")
            else:
                self._gemini_event(order, "accepted")
                self._gemini_event(order, "booked")
            return web.json_response(self._gemini_order_json(order))
        if path in ("order/cancel", "order/status"):
            found = self._gemini_find(payload)
            if found is None:
                return self._gemini_error("OrderNotFound", f"Order {payload.get('order_id')} not found")
            if path == "order/cancel" and found.status == "open":
                found.status, found.cancel_reason = "canceled", "Requested"
                self._gemini_event(found, "cancelled", reason="Requested")
            if path == "order/cancel" and self.gemini_next_cancel_answer:
                hostile, self.gemini_next_cancel_answer = self.gemini_next_cancel_answer, {}
                return web.json_response(self._gemini_order_json(found) | hostile)
            return web.json_response(self._gemini_order_json(found))
        if path == "orders":
            return web.json_response([self._gemini_order_json(o) for o in orders.values() if o.status == "open"])
        if path == "mytrades":
            return self._gemini_mytrades(payload)
        if path == "balances":
            return web.json_response(
                [
                    {
                        "type": "exchange",
                        "currency": "BTC",
                        "amount": "1.5",
                        "available": "1.4",
                        "availableForWithdrawal": "1.4",
                    },
                    {
                        "type": "exchange",
                        "currency": "USD",
                        "amount": "100000.00",
                        "available": "99000.00",
                        "availableForWithdrawal": "99000.00",
                    },
                ]
            )
        return self._gemini_error("InvalidEndpoint", f"no route {path}", status=404)

    def _gemini_mytrades(self, payload: dict[str, Any]) -> web.Response:
        """Gemini's Get Past Trades: one page of at most ``limit_trades`` (default 50, at most 500), newest first.

        With ``timestamp`` (seconds, or milliseconds: Gemini takes either) the page holds the
        *oldest* trades on or after it; without, the most recent ones. Gemini's own walk
        through a history pages on from the newest ``timestampms`` of the page.
        """
        limit = int(payload.get("limit_trades") or GEMINI_TRADES_PAGE)
        if not 0 < limit <= GEMINI_TRADES_PAGE_MAX:
            return self._gemini_error("InvalidParameter", f"limit_trades {limit} not in 1..{GEMINI_TRADES_PAGE_MAX}")
        trades = sorted(self.trades["gemini"], key=lambda t: (t.ts_ms, int(t.trade_id)))
        stamp = payload.get("timestamp")
        if stamp is None:
            page = trades[-limit:]
        else:
            since_ms = int(stamp) if int(stamp) >= 10**11 else int(stamp) * 1000
            page = [t for t in trades if t.ts_ms >= since_ms][:limit]
        return web.json_response([self._gemini_trade_json(t) for t in reversed(page)])

    def _gemini_find(self, payload: dict[str, Any]) -> MockOrder | None:
        order_id = payload.get("order_id")
        if order_id is not None and str(order_id) in self.orders["gemini"]:
            return self.orders["gemini"][str(order_id)]
        client_id = payload.get("client_order_id")
        if client_id:
            return next((o for o in self.orders["gemini"].values() if o.client_id == client_id), None)
        return None

    @staticmethod
    def _gemini_trade_json(t: MockTrade) -> dict[str, Any]:
        return {
            "price": str(t.price),
            "amount": str(t.qty),
            "timestamp": t.ts_ms // 1000,
            "timestampms": t.ts_ms,
            "type": "Buy" if t.side == "buy" else "Sell",
            "aggressor": not t.maker,
            "fee_currency": "USD",
            "fee_amount": str(t.fee),
            "tid": int(t.trade_id),
            "order_id": t.order_id,
            "exchange": "gemini",
            "is_auction_fill": False,
            "client_order_id": t.client_id,
        }
