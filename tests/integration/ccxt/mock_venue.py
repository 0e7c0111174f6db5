"""A local HTTP + WebSocket server that speaks Kraken, Coinbase and Gemini to real ccxt code.

Why: ccxt's parsing, signing, throttling and websocket plumbing are part of
what we ship, so the integration tests must run them, but no test may touch
the internet. This server plays the three venues on loopback with their wire
formats; the first book frames are ccxt's own recorded fixtures
(``../shared/data/ccxt_static``), later frames are generated from a book the
server keeps (with correct Kraken checksums unless a test asks to corrupt one).

Controls a test uses: ``set_mid`` (move the book and push an update),
``hang`` (keep sockets open but send nothing: ccxt's silent hang),
``drop_connections`` (close every socket), ``corrupt_next_checksum``,
``skip_next_sequence``, ``fail_next`` (inject a Kraken REST error),
``hold_next`` (keep one Kraken REST call unanswered until the test releases it),
``fill_order`` (fill a resting order).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import time
from collections import deque
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
from aiohttp import WSMsgType, web

from connectors.ccxt.checksums import kraken_checksum
from tests.integration.ccxt.mock_accounts import AccountsMixin, MockTrade

REPO_ROOT = Path(__file__).resolve().parents[3]
SHARED_DATA = Path(os.environ.get("MMKIT_SHARED_DATA", REPO_ROOT / ".." / "shared" / "data"))
CCXT_STATIC = SHARED_DATA / "ccxt_static"


def load_fixture(kind: str, venue: str) -> Any:
    return json.loads((CCXT_STATIC / kind / f"{venue}.json").read_text())


def kraken_markets() -> dict[str, Any]:
    markets: dict[str, Any] = load_fixture("markets", "kraken")
    return markets


def coinbase_markets() -> dict[str, Any]:
    markets: dict[str, Any] = load_fixture("markets", "coinbase")
    return markets


def gemini_markets() -> dict[str, Any]:
    """Gemini has no market fixture; this is its BTC/USD market as ccxt describes it."""
    return {
        "BTC/USD": {
            "id": "btcusd",
            "symbol": "BTC/USD",
            "base": "BTC",
            "quote": "USD",
            "baseId": "btc",
            "quoteId": "usd",
            "type": "spot",
            "spot": True,
            "active": True,
            "precision": {"amount": 1e-08, "price": 0.01},
            "limits": {"amount": {"min": 1e-05}, "price": {}, "cost": {}},
            "taker": 0.004,
            "maker": 0.002,
            "info": {},
        }
    }


@attrs.define
class MockBook:
    """Top-of-book ladder around a mid, in exact decimals, 10 levels a side."""

    bids: dict[Decimal, Decimal] = attrs.Factory(dict)
    asks: dict[Decimal, Decimal] = attrs.Factory(dict)

    def top(self, depth: int = 10) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        bids = sorted(self.bids.items(), reverse=True)[:depth]
        asks = sorted(self.asks.items())[:depth]
        return bids, asks

    def ladder(self, mid: Decimal, tick: Decimal, qty: Decimal = Decimal("0.5")) -> None:
        half = tick * 5
        self.bids = {mid - half - tick * i: qty + Decimal(i) / 100 for i in range(10)}
        self.asks = {mid + half + tick * i: qty + Decimal(i) / 100 for i in range(10)}


@attrs.define
class KrakenOrder:
    txid: str
    cl_ord_id: str | None
    pair: str
    side: str
    ordertype: str
    price: Decimal
    vol: Decimal
    vol_exec: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    fee: Decimal = Decimal(0)
    status: str = "open"
    opentm: float = attrs.Factory(time.time)
    reason: str | None = None
    post_only: bool = False

    def as_json(self) -> dict[str, Any]:
        avg = self.cost / self.vol_exec if self.vol_exec else Decimal(0)
        return {
            "refid": None,
            "userref": "0",
            "cl_ord_id": self.cl_ord_id,
            "status": self.status,
            "opentm": f"{self.opentm:.6f}",
            "starttm": "0",
            "expiretm": "0",
            "descr": {
                "pair": self.pair,
                "type": self.side,
                "ordertype": self.ordertype,
                "price": str(self.price),
                "price2": "0",
                "leverage": "none",
                "order": f"{self.side} {self.vol} {self.pair} @ {self.ordertype} {self.price}",
                "close": "",
            },
            "vol": f"{self.vol:.8f}",
            "vol_exec": f"{self.vol_exec:.8f}",
            "cost": f"{self.cost:.6f}",
            "fee": f"{self.fee:.6f}",
            "price": f"{avg:.5f}",
            "stopprice": "0.000000",
            "limitprice": "0.000000",
            "misc": "",
            "oflags": "post,fciq" if self.post_only else "fciq",
            "reason": self.reason,
        }


@attrs.define
class KrakenRateCounter:
    """Kraken's per-pair order-rate counter as the venue keeps it (the mock's own copy, for refusals).

    Written from Kraken's published rules, independently of mmkit's limiter, so a
    test can show the limiter never sends what this refuses.
    """

    max_count: Decimal
    decay_per_s: Decimal
    #: (age limit in s, extra cost) for a cancel of an order younger than the limit.
    cancel_penalties: tuple[tuple[Decimal, Decimal], ...]
    amend_penalties: tuple[tuple[Decimal, Decimal], ...]
    value: Decimal = Decimal(0)
    at: float = attrs.Factory(time.monotonic)
    refused: int = 0

    def charge(self, cost: Decimal) -> bool:
        now = time.monotonic()
        self.value = max(Decimal(0), self.value - self.decay_per_s * Decimal(str(now - self.at)))
        self.at = now
        if self.value + cost > self.max_count:
            self.refused += 1
            return False
        self.value += cost
        return True

    @staticmethod
    def penalty(table: tuple[tuple[Decimal, Decimal], ...], age_s: float) -> Decimal:
        for limit, cost in table:
            if Decimal(str(age_s)) < limit:
                return cost
        return Decimal(0)


@attrs.define(eq=False)
class HeldRequest:
    """One Kraken private call the server keeps unanswered until the test releases it.

    Why: the order in which a client's calls come back is what a race is made of; a test
    holds one call in flight, changes the venue meanwhile, then chooses when and how it ends.
    """

    method: str
    match: Callable[[dict[str, str]], bool]
    #: Set when the held call reached the server (its form is then in ``form``).
    arrived: asyncio.Event = attrs.Factory(asyncio.Event)
    form: dict[str, str] = attrs.Factory(dict)
    _answer: asyncio.Future[int | None] | None = None
    taken: bool = False

    def release(self, status: int | None = 503) -> None:
        """Answer the held call now with this HTTP status (503: the venue was unreachable).

        ``None``: the venue handles it now as any other call (a real answer, given late).
        """
        if self._answer is None:
            self._answer = asyncio.get_running_loop().create_future()
        if not self._answer.done():
            self._answer.set_result(status)

    async def wait_answer(self) -> int | None:
        if self._answer is None:
            self._answer = asyncio.get_running_loop().create_future()
        return await self._answer


class MockVenueServer(AccountsMixin):
    """One aiohttp server, three venues under /kraken, /coinbase and /gemini."""

    def __init__(self, taker_fee: Decimal = Decimal("0.0026")) -> None:
        self.books: dict[str, MockBook] = {"kraken": MockBook(), "coinbase": MockBook(), "gemini": MockBook()}
        self.ticks = {"kraken": Decimal("0.1"), "coinbase": Decimal("0.01"), "gemini": Decimal("0.01")}
        self.hung: set[str] = set()
        self.sockets: dict[str, list[web.WebSocketResponse]] = {"kraken": [], "coinbase": [], "gemini": []}
        #: Sockets that have had their book snapshot: only these get updates (as on the real venues).
        self._snapshotted: set[int] = set()
        self.connections: dict[str, int] = {"kraken": 0, "coinbase": 0, "gemini": 0}
        self.subscribes: dict[str, int] = {"kraken": 0, "coinbase": 0, "gemini": 0}
        self.kraken_orders: dict[str, KrakenOrder] = {}
        self.kraken_calls: list[tuple[str, dict[str, str]]] = []
        self.kraken_errors: deque[str] = deque()
        #: Kraken private calls to hold unanswered (``hold_next``), first match wins, each once.
        self.kraken_holds: list[HeldRequest] = []
        #: Market orders fill at this price (None: at the book's best opposite level).
        self.market_fill_price: Decimal | None = None
        #: Limit orders that cross the book fill at once when True; else they rest.
        self.fill_marketable_limits = False
        self.taker_fee = taker_fee
        self.maker_fee = Decimal("0.0016")
        #: When True every Kraken REST call answers 503 (the venue is unreachable).
        self.rest_down = False
        #: Kraken private methods that answer this HTTP status (one endpoint failing while others work).
        self.kraken_method_status: dict[str, int] = {}
        #: Kraken private methods that answer this Kraken error, every time (e.g. "EGeneral:Permission denied").
        self.kraken_method_errors: dict[str, str] = {}
        #: method -> bodies answered (status 200, as given) to its next calls *after* the venue acted on them:
        #: a proxy in the path that forwarded the request and mangled the answer (an HTML error page,
        #: an empty or truncated body, a JSON answer of the wrong shape). Each entry: (content type, body).
        self.kraken_mangled: dict[str, deque[tuple[str, str]]] = {}
        #: method -> bodies a proxy answers (status 200) to its next calls *without* forwarding them: the venue
        #: never sees the request.
        self.kraken_proxy_pages: dict[str, deque[tuple[str, str]]] = {}
        #: txid -> fields replacing the order's own in QueryOrders / OpenOrders answers (a hostile venue).
        self.kraken_order_overrides: dict[str, dict[str, Any]] = {}
        #: Fields replacing the next ``trade`` execution's own on the private stream (then cleared): a hostile venue.
        self.kraken_next_trade_exec: dict[str, Any] = {}
        self.gemini_next_cancel_answer = {}
        #: Kraken private methods whose calls get no answer until the method is unstalled (client timeouts).
        self.kraken_stalled: dict[str, asyncio.Event] = {}
        self._corrupt_next = False
        self._skip_next_seq = False
        self._coinbase_seq: dict[int, int] = {}
        self._txids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._use_fixture_snapshot = True
        #: Kraken's dead man's switch (CancelAllOrdersAfter): monotonic deadline, or None when off.
        self.kraken_deadline: float | None = None
        self.kraken_deadman_calls: list[int] = []
        self.kraken_deadman_fired = 0
        #: Kraken's TradesHistory answers at most this many trades a call (newest first; ``ofs`` pages on).
        self.kraken_trades_page = 50
        #: Fields of a trade's TradesHistory entry replaced by these (a hostile venue's malformed trade).
        self.kraken_trade_overrides: dict[str, dict[str, Any]] = {}
        #: When set, AddOrder / CancelOrder / AmendOrder are charged to this counter and refused past it.
        self.kraken_rate: KrakenRateCounter | None = None
        self._reaper: asyncio.Task[None] | None = None
        #: Kraken WS v2 private sockets subscribed to "executions", and what they were sent.
        self.kraken_private: list[web.WebSocketResponse] = []
        self.kraken_executions: list[dict[str, Any]] = []
        self._exec_seq = itertools.count(1)
        #: Coinbase ``user`` channel sockets and the updates sent on them.
        self.coinbase_user_sockets: list[web.WebSocketResponse] = []
        self.coinbase_user_updates: list[dict[str, Any]] = []
        self._init_accounts()

    # -- lifecycle --------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/kraken/v2", self._kraken_ws)
        app.router.add_get("/kraken/v2-auth", self._kraken_private_ws)
        app.router.add_post("/kraken/0/private/{method}", self._kraken_private)
        app.router.add_get("/coinbase/ws", self._coinbase_ws)
        app.router.add_get("/gemini/v2/marketdata", self._gemini_ws)
        self.add_account_routes(app)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server: Any = site._server
        assert server is not None
        self.port = int(server.sockets[0].getsockname()[1])
        self._seed_books()
        self._reaper = asyncio.get_running_loop().create_task(self._reap())

    async def _reap(self) -> None:
        """The venues' timers run on their own: Kraken's cancel-after deadline, Gemini's heartbeat."""
        while True:
            self.expire_kraken_deadman()
            self.expire_gemini_session()
            await asyncio.sleep(0.02)

    def expire_kraken_deadman(self) -> None:
        if self.kraken_deadline is not None and time.monotonic() >= self.kraken_deadline:
            self.kraken_deadline = None
            self.kraken_deadman_fired += 1
            for order in self.kraken_orders.values():
                if order.status == "open":
                    order.status, order.reason = "canceled", "User requested"
                    self._kraken_execution(order, "canceled", "canceled", reason="Dead man's switch")

    async def stop(self) -> None:
        for held in self.kraken_holds:
            held.release()  # a handler still waiting would hold up the server's cleanup
        for event in self.kraken_stalled.values():
            event.set()
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        await self.drop_connections()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def _seed_books(self) -> None:
        """Kraken starts from ccxt's recorded BTC/USD snapshot; the others from a ladder near it."""
        frames = load_fixture("ws", "kraken")["methods"]["watchOrderBook"][0]["messages"]
        snapshot = next(m for m in frames if m.get("type") == "snapshot")["data"][0]
        kraken = self.books["kraken"]
        kraken.bids = {Decimal(str(level["price"])): Decimal(str(level["qty"])) for level in snapshot["bids"]}
        kraken.asks = {Decimal(str(level["price"])): Decimal(str(level["qty"])) for level in snapshot["asks"]}
        self.books["coinbase"].ladder(Decimal("63300.00"), self.ticks["coinbase"])
        self.books["gemini"].ladder(Decimal("63300.00"), self.ticks["gemini"])

    # -- controls ---------------------------------------------------------

    def hang(self, venue: str, hung: bool = True) -> None:
        """Keep the venue's sockets open but send nothing (the silent ccxt hang)."""
        if hung:
            self.hung.add(venue)
        else:
            self.hung.discard(venue)

    async def drop_connections(self, venue: str | None = None) -> None:
        for name, sockets in self.sockets.items():
            if venue is None or name == venue:
                for ws in list(sockets):
                    await ws.close()

    def corrupt_next_checksum(self) -> None:
        self._corrupt_next = True

    def skip_next_sequence(self) -> None:
        self._skip_next_seq = True

    def fail_next(self, kraken_error: str) -> None:
        """Make the next Kraken private call answer with this error (e.g. "EAPI:Rate limit exceeded")."""
        self.kraken_errors.append(kraken_error)

    def stall(self, method: str, stalled: bool = True) -> None:
        """Every Kraken private call of ``method`` waits unanswered (until unstalled): the client times out."""
        if stalled:
            self.kraken_stalled.setdefault(method, asyncio.Event())
        else:
            event = self.kraken_stalled.pop(method, None)
            if event is not None:
                event.set()

    def hold_next(self, method: str, match: Callable[[dict[str, str]], bool] = lambda form: True) -> HeldRequest:
        """Keep the next Kraken private call of ``method`` whose form ``match``es unanswered until released.

        The call is recorded in ``kraken_calls`` when it arrives, as any other; its answer is the
        status given to :meth:`HeldRequest.release`, whatever the venue's state is by then.
        """
        held = HeldRequest(method, match)
        self.kraken_holds.append(held)
        return held

    async def set_mid(self, venue: str, mid: Decimal) -> None:
        """Move a venue's book to a new ladder and push the change as an update frame."""
        book = self.books[venue]
        old_bids, old_asks = dict(book.bids), dict(book.asks)
        book.ladder(mid, self.ticks[venue])
        bids = [(p, Decimal(0)) for p in old_bids if p not in book.bids] + list(book.bids.items())
        asks = [(p, Decimal(0)) for p in old_asks if p not in book.asks] + list(book.asks.items())
        await self._push_update(venue, bids, asks)

    def fill_order(self, txid: str, qty: Decimal, price: Decimal, maker: bool = True) -> None:
        """A counterparty trades against our order (maker fee) or our order took liquidity (taker)."""
        order = self.kraken_orders[txid]
        fee = qty * price * (self.maker_fee if maker else self.taker_fee)
        order.vol_exec += qty
        order.cost += qty * price
        order.fee += fee
        if order.vol_exec >= order.vol:
            order.status = "closed"
        trade_id = f"T{next(self._txids):05d}-MOCK-TRADE"
        self.trades["kraken"].append(
            MockTrade(
                trade_id, txid, order.cl_ord_id or "", order.side, price, qty, fee, maker, time.time_ns() // 10**6
            )
        )
        status = "filled" if order.status == "closed" else "partially_filled"
        self._kraken_execution(
            order,
            "trade",
            status,
            exec_id=trade_id,
            last_qty=float(qty),
            last_price=float(price),
            liquidity_ind="m" if maker else "t",
            cost=float(qty * price),
            fees=[{"asset": "USD", "qty": float(fee)}],
        )
        if order.status == "closed":
            self._kraken_execution(order, "filled", "filled")

    def resend_kraken_trade(self, client_id: str) -> str:
        """A hostile Kraken: the order's last trade is streamed again on ``executions`` under a new exec id.

        The venue's own books (the order's ``vol_exec``, the trade history) still hold the one
        trade. Returns the new exec id.
        """
        order = self.find_by_client_id(client_id)
        trade = [t for t in self.trades["kraken"] if t.order_id == order.txid][-1]
        exec_id = f"T{next(self._txids):05d}-MOCK-RESENT"
        status = "filled" if order.status == "closed" else "partially_filled"
        self._kraken_execution(
            order, "trade", status, exec_id=exec_id, last_qty=float(trade.qty), last_price=float(trade.price),
            liquidity_ind="m" if trade.maker else "t", cost=float(trade.qty * trade.price),
            fees=[{"asset": "USD", "qty": float(trade.fee)}],
        )
        return exec_id

    def fill(self, venue: str, client_id: str, qty: Decimal, price: Decimal, maker: bool = True) -> None:
        """Fill (part of) our order on any venue, by our client order id."""
        if venue == "kraken":
            self.fill_order(self.find_by_client_id(client_id).txid, qty, price, maker)
        else:
            self.fill_account_order(venue, client_id, qty, price, maker)

    def lose(self, venue: str, client_id: str) -> None:
        if venue == "kraken":
            self.lose_order(client_id)
        else:
            self.lose_account_order(venue, client_id)

    def open_client_ids(self, venue: str) -> list[str]:
        """Our orders the venue holds open (what the desk would see on the venue's screen)."""
        if venue == "kraken":
            return [o.cl_ord_id or o.txid for o in self.kraken_orders.values() if o.status == "open"]
        return [o.client_id for o in self.open_orders_of(venue)]

    def set_rest_down(self, down: bool) -> None:
        self.rest_down = down
        self.accounts_down = down

    def lose_order(self, cl_ord_id: str) -> None:
        """The venue forgets the order entirely."""
        for txid, order in list(self.kraken_orders.items()):
            if order.cl_ord_id == cl_ord_id:
                del self.kraken_orders[txid]

    def find_by_client_id(self, cl_ord_id: str) -> KrakenOrder:
        return next(o for o in self.kraken_orders.values() if o.cl_ord_id == cl_ord_id)

    # -- Kraken -----------------------------------------------------------

    def _kraken_levels(self, levels: list[tuple[Decimal, Decimal]]) -> list[dict[str, float]]:
        return [{"price": float(p), "qty": float(q)} for p, q in levels]

    def _kraken_checksum(self) -> int:
        bids, asks = self.books["kraken"].top()
        value = kraken_checksum(asks, bids, 1, 8)
        if self._corrupt_next:
            self._corrupt_next = False
            value ^= 0x5A5A
        return value

    async def _kraken_ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.connections["kraken"] += 1
        self.sockets["kraken"].append(ws)
        await ws.send_json(
            {
                "channel": "status",
                "type": "update",
                "data": [{"version": "2.0.10", "system": "online", "api_version": "v2"}],
            }
        )
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    break
                data = json.loads(msg.data)
                if data.get("method") == "ping":
                    await ws.send_json({"method": "pong", "req_id": data.get("req_id")})
                elif data.get("method") == "subscribe" and data["params"]["channel"] == "book":
                    self.subscribes["kraken"] += 1
                    await ws.send_json(
                        {
                            "method": "subscribe",
                            "req_id": data.get("req_id"),
                            "result": {"channel": "book", "depth": 10, "snapshot": True, "symbol": "BTC/USD"},
                            "success": True,
                        }
                    )
                    if "kraken" not in self.hung:
                        bids, asks = self.books["kraken"].top()
                        await ws.send_json(
                            {
                                "channel": "book",
                                "type": "snapshot",
                                "data": [
                                    {
                                        "symbol": "BTC/USD",
                                        "bids": self._kraken_levels(bids),
                                        "asks": self._kraken_levels(asks),
                                        "checksum": self._kraken_checksum(),
                                    }
                                ],
                            }
                        )
                        self._snapshotted.add(id(ws))
        finally:
            self.sockets["kraken"].remove(ws)
            self._snapshotted.discard(id(ws))
        return ws

    async def _kraken_private(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.kraken_calls.append((method, form))
        held = next((h for h in self.kraken_holds if not h.taken and h.method == method and h.match(form)), None)
        if held is not None:
            held.taken, held.form = True, form
            held.arrived.set()
            status = await held.wait_answer()
            if status is not None:
                return web.Response(status=status, text="Service Unavailable")
        page = self.kraken_proxy_pages.get(method)
        if page:
            content_type, body = page.popleft()
            return web.Response(status=200, body=body.encode(), headers={"Content-Type": content_type})
        stalled = self.kraken_stalled.get(method)
        if stalled is not None:
            await stalled.wait()  # the client gives up first (its timeout), or the test unstalls it
        if self.rest_down:
            return web.Response(status=503, text="Service Unavailable")
        if method in self.kraken_method_status:
            return web.Response(status=self.kraken_method_status[method], text="Service Unavailable")
        if method in self.kraken_method_errors:
            return web.json_response({"error": [self.kraken_method_errors[method]]})
        if self.kraken_errors:
            return web.json_response({"error": [self.kraken_errors.popleft()]})
        result = self._kraken_result(method, form)
        mangled = self.kraken_mangled.get(method)
        if mangled:
            content_type, body = mangled.popleft()
            return web.Response(status=200, body=body.encode(), headers={"Content-Type": content_type})
        if isinstance(result, str):
            return web.json_response({"error": [result]})
        return web.json_response({"error": [], "result": result})

    def _kraken_result(self, method: str, form: dict[str, str]) -> Any:
        if method == "AddOrder":
            if self.kraken_rate is not None and not self.kraken_rate.charge(Decimal(1)):
                return "EOrder:Rate limit exceeded"
            txid = f"O{next(self._txids):05d}-MOCK-{len(self.kraken_orders):06d}"
            order = KrakenOrder(
                txid=txid,
                cl_ord_id=form.get("cl_ord_id"),
                pair=form["pair"],
                side=form["type"],
                ordertype=form["ordertype"],
                price=Decimal(form.get("price", "0")),
                vol=Decimal(form["volume"]),
                post_only="post" in form.get("oflags", "").split(","),
            )
            self.kraken_orders[txid] = order
            self._kraken_execution(order, "new", "new")
            if order.post_only and self._crosses("kraken", order.side, order.price):
                # Kraken accepts the order, then cancels it instead of letting it take.
                order.status, order.reason = "canceled", "Post only order"
                self._kraken_execution(order, "canceled", "canceled", reason="Post only order")
            else:
                self._maybe_fill_now(order)
            return {"txid": [txid], "descr": {"order": f"{order.side} {order.vol} {order.pair} @ {order.ordertype}"}}
        if method == "CancelOrder":
            found = self._find_kraken(form)
            if found is None or found.status != "open":
                return "EOrder:Unknown order"
            if self.kraken_rate is not None:
                age = time.time() - found.opentm
                if not self.kraken_rate.charge(self.kraken_rate.penalty(self.kraken_rate.cancel_penalties, age)):
                    return "EOrder:Rate limit exceeded"
            found.status = "canceled"
            self._kraken_execution(found, "canceled", "canceled", reason="User requested")
            return {"count": 1}
        if method == "AmendOrder":
            found = self._find_kraken(form)
            if found is None or found.status != "open":
                return "EOrder:Unknown order"
            if self.kraken_rate is not None:
                age = time.time() - found.opentm
                cost = Decimal(1) + self.kraken_rate.penalty(self.kraken_rate.amend_penalties, age)
                if not self.kraken_rate.charge(cost):
                    return "EOrder:Rate limit exceeded"
            price = Decimal(form.get("limit_price", found.price))
            qty = Decimal(form.get("order_qty", found.vol))
            if found.post_only and self._crosses("kraken", found.side, price):
                return "EOrder:Post only order"
            if qty <= found.vol_exec:
                return "EOrder:Invalid order quantity"
            found.price, found.vol = price, qty
            self._kraken_execution(found, "amended", "new")
            return {"amend_id": f"TAMEND-{next(self._txids):05d}"}
        if method == "CancelAllOrdersAfter":
            timeout = int(form["timeout"])
            self.kraken_deadman_calls.append(timeout)
            self.kraken_deadline = None if timeout == 0 else time.monotonic() + timeout
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            return {"currentTime": now, "triggerTime": "0" if timeout == 0 else now}
        if method == "GetWebSocketsToken":
            return {"token": "MOCK-WS-TOKEN", "expires": 900}
        if method == "TradesHistory":
            # Kraken: newest first, at most 50 a call; ``start`` / ``end`` (s) bound the window, ``ofs`` pages
            # through it, ``count`` is how many trades the whole window holds.
            start = float(form.get("start", "0"))
            end = float(form.get("end", "inf"))
            ofs = int(form.get("ofs", "0"))
            window = sorted(
                (t for t in self.trades["kraken"] if start <= t.ts_ms / 1000 <= end), key=lambda t: -t.ts_ms
            )
            page = window[ofs: ofs + self.kraken_trades_page]
            trades = {
                t.trade_id: {
                    "ordertxid": t.order_id,
                    "postxid": "TKH2SE-M7IF5-CFI7LT",
                    "pair": self.kraken_orders[t.order_id].pair if t.order_id in self.kraken_orders else "XXBTZUSD",
                    "time": t.ts_ms / 1000,
                    "type": t.side,
                    "ordertype": "limit",
                    "price": str(t.price),
                    "cost": f"{t.price * t.qty:.5f}",
                    "fee": f"{t.fee:.6f}",
                    "vol": f"{t.qty:.8f}",
                    "margin": "0.00000",
                    "misc": "",
                    "maker": t.maker,
                } | self.kraken_trade_overrides.get(t.trade_id, {})
                for t in page
            }
            return {"trades": trades, "count": len(window)}
        if method == "QueryOrders":
            found = self._find_kraken(form)
            if found is None:
                return "EOrder:Invalid order"  # what Kraken answers for a txid it does not know
            return {found.txid: found.as_json() | self.kraken_order_overrides.get(found.txid, {})}
        if method == "OpenOrders":
            return {"open": {o.txid: o.as_json() | self.kraken_order_overrides.get(o.txid, {})
                             for o in self.kraken_orders.values() if o.status == "open"}}
        if method == "Balance":
            return {"XXBT": "10.00000000", "ZUSD": "100000.0000"}
        if method == "BalanceEx":
            return {
                "XXBT": {"balance": "10.00000000", "hold_trade": "0.10000000"},
                "ZUSD": {"balance": "100000.0000", "hold_trade": "0.0000"},
            }
        return "EGeneral:Unknown method"

    async def _kraken_private_ws(self, request: web.Request) -> web.WebSocketResponse:
        """Kraken WS v2 private endpoint: the ``executions`` channel (orders and our trades)."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets["kraken"].append(ws)
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    break
                data = json.loads(msg.data)
                if data.get("method") == "ping":
                    await ws.send_json({"method": "pong", "req_id": data.get("req_id")})
                    continue
                params = data.get("params") or {}
                if data.get("method") != "subscribe" or params.get("channel") != "executions":
                    continue
                if params.get("token") != "MOCK-WS-TOKEN":
                    await ws.send_json(
                        {
                            "method": "subscribe",
                            "req_id": data.get("req_id"),
                            "success": False,
                            "error": "EAccount:Invalid permissions",
                        }
                    )
                    continue
                await ws.send_json(
                    {
                        "method": "subscribe",
                        "req_id": data.get("req_id"),
                        "success": True,
                        "result": {"channel": "executions", "snapshot": True},
                    }
                )
                snapshot = [
                    self._kraken_exec_json(o, "new", "new") for o in self.kraken_orders.values() if o.status == "open"
                ]
                await ws.send_json(
                    {"channel": "executions", "type": "snapshot", "data": snapshot, "sequence": next(self._exec_seq)}
                )
                self.kraken_private.append(ws)
        finally:
            self.sockets["kraken"].remove(ws)
            if ws in self.kraken_private:
                self.kraken_private.remove(ws)
        return ws

    def _kraken_exec_json(self, order: KrakenOrder, exec_type: str, status: str, **extra: Any) -> dict[str, Any]:
        return {
            "order_id": order.txid,
            "cl_ord_id": order.cl_ord_id,
            "exec_type": exec_type,
            "order_status": status,
            "symbol": "BTC/USD",
            "side": order.side,
            "order_type": order.ordertype,
            "order_qty": float(order.vol),
            "limit_price": float(order.price),
            "cum_qty": float(order.vol_exec),
            "cum_cost": float(order.cost),
            "order_userref": 0,
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime()),
            **extra,
        }

    def _kraken_execution(self, order: KrakenOrder, exec_type: str, status: str, **extra: Any) -> None:
        """Push one executions update to every subscribed private socket (as Kraken does, in order)."""
        if exec_type == "trade" and self.kraken_next_trade_exec:
            extra, self.kraken_next_trade_exec = extra | self.kraken_next_trade_exec, {}
        message = {
            "channel": "executions",
            "type": "update",
            "data": [self._kraken_exec_json(order, exec_type, status, **extra)],
            "sequence": next(self._exec_seq),
        }
        self.kraken_executions.append(message)
        for ws in list(self.kraken_private):
            if not ws.closed:
                asyncio.get_running_loop().create_task(ws.send_json(message))

    def _find_kraken(self, form: dict[str, str]) -> KrakenOrder | None:
        txid = form.get("txid")
        if txid and txid in self.kraken_orders:
            return self.kraken_orders[txid]
        cl_ord_id = form.get("cl_ord_id")
        return next((o for o in self.kraken_orders.values() if cl_ord_id and o.cl_ord_id == cl_ord_id), None)

    def _maybe_fill_now(self, order: KrakenOrder) -> None:
        bids, asks = self.books["kraken"].top()
        best = asks[0][0] if order.side == "buy" else bids[0][0]
        if order.ordertype == "market":
            self.fill_order(order.txid, order.vol, self.market_fill_price or best, maker=False)
        elif self.fill_marketable_limits:
            crosses = order.price >= best if order.side == "buy" else order.price <= best
            if crosses:
                self.fill_order(order.txid, order.vol, best, maker=False)

    # -- Coinbase ---------------------------------------------------------

    def _coinbase_next_seq(self, ws: web.WebSocketResponse) -> int:
        seq = self._coinbase_seq.get(id(ws), -1) + 1
        if self._skip_next_seq:
            self._skip_next_seq = False
            seq += 1
        self._coinbase_seq[id(ws)] = seq
        return seq

    def _coinbase_l2(self, ws: web.WebSocketResponse, kind: str, bids: Any, asks: Any) -> dict[str, Any]:
        updates = [
            {"side": "bid", "event_time": "2024-01-01T00:00:00Z", "price_level": str(p), "new_quantity": str(q)}
            for p, q in bids
        ]
        updates += [
            {"side": "offer", "event_time": "2024-01-01T00:00:00Z", "price_level": str(p), "new_quantity": str(q)}
            for p, q in asks
        ]
        return {
            "channel": "l2_data",
            "client_id": "",
            "timestamp": "2024-01-01T00:00:00.000000Z",
            "sequence_num": self._coinbase_next_seq(ws),
            "events": [{"type": kind, "product_id": "BTC-USD", "updates": updates}],
        }

    async def _coinbase_user_subscribe(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> None:
        """The ``user`` channel: signed (api_key + timestamp + signature, or a jwt), then a snapshot."""
        signed = bool(data.get("jwt")) or all(data.get(k) for k in ("api_key", "timestamp", "signature"))
        if not signed:
            await ws.send_json({"type": "error", "message": "authentication failure"})
            return
        orders = [self.coinbase_user_order(o) for o in self.open_orders_of("coinbase")]
        await ws.send_json(self._coinbase_user_frame(ws, "snapshot", orders))
        self.coinbase_user_sockets.append(ws)

    def _coinbase_user_frame(self, ws: web.WebSocketResponse, kind: str, orders: list[Any]) -> dict[str, Any]:
        return {
            "channel": "user",
            "client_id": "",
            "timestamp": "2024-01-01T00:00:00.000000Z",
            "sequence_num": self._coinbase_next_seq(ws),
            "events": [{"type": kind, "orders": orders}],
        }

    def coinbase_user_push(self, order: Any) -> None:
        """An order of ours changed on Coinbase: every user-channel socket gets an update."""
        for ws in list(self.coinbase_user_sockets):
            if not ws.closed:
                frame = self._coinbase_user_frame(ws, "update", [self.coinbase_user_order(order)])
                self.coinbase_user_updates.append(frame)
                asyncio.get_running_loop().create_task(ws.send_json(frame))

    async def _coinbase_ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.connections["coinbase"] += 1
        self.sockets["coinbase"].append(ws)
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    break
                data = json.loads(msg.data)
                if data.get("type") != "subscribe":
                    continue
                channel = data.get("channel")
                await ws.send_json(
                    {
                        "channel": "subscriptions",
                        "timestamp": "2024-01-01T00:00:00Z",
                        "sequence_num": self._coinbase_next_seq(ws),
                        "events": [{"subscriptions": {channel: data.get("product_ids") or []}}],
                    }
                )
                if channel == "heartbeats" and "coinbase" not in self.hung:
                    await ws.send_json(
                        {
                            "channel": "heartbeats",
                            "timestamp": "2024-01-01T00:00:00Z",
                            "sequence_num": self._coinbase_next_seq(ws),
                            "events": [{"current_time": "2024-01-01 00:00:00", "heartbeat_counter": "1"}],
                        }
                    )
                if channel == "level2" and "coinbase" not in self.hung:
                    self.subscribes["coinbase"] += 1
                    bids, asks = self.books["coinbase"].top()
                    await ws.send_json(self._coinbase_l2(ws, "snapshot", bids, asks))
                    self._snapshotted.add(id(ws))
                if channel == "user":
                    await self._coinbase_user_subscribe(ws, data)
        finally:
            if ws in self.coinbase_user_sockets:
                self.coinbase_user_sockets.remove(ws)
            self.sockets["coinbase"].remove(ws)
            self._snapshotted.discard(id(ws))
            self._coinbase_seq.pop(id(ws), None)
        return ws

    # -- Gemini -----------------------------------------------------------

    async def _gemini_ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.connections["gemini"] += 1
        self.sockets["gemini"].append(ws)
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    break
                data = json.loads(msg.data)
                if data.get("type") == "subscribe" and "gemini" not in self.hung:
                    self.subscribes["gemini"] += 1
                    bids, asks = self.books["gemini"].top()
                    changes = [["buy", str(p), str(q)] for p, q in bids] + [["sell", str(p), str(q)] for p, q in asks]
                    await ws.send_json(
                        {
                            "type": "l2_updates",
                            "symbol": "BTCUSD",
                            "changes": changes,
                            "trades": [],
                            "auction_events": [],
                        }
                    )
                    self._snapshotted.add(id(ws))
        finally:
            self.sockets["gemini"].remove(ws)
            self._snapshotted.discard(id(ws))
        return ws

    # -- pushes -----------------------------------------------------------

    async def _push_update(self, venue: str, bids: Any, asks: Any) -> None:
        if venue in self.hung:
            return
        for ws in list(self.sockets[venue]):
            if ws.closed or id(ws) not in self._snapshotted:
                continue
            if venue == "kraken":
                frame: dict[str, Any] = {
                    "channel": "book",
                    "type": "update",
                    "data": [
                        {
                            "symbol": "BTC/USD",
                            "bids": self._kraken_levels(bids),
                            "asks": self._kraken_levels(asks),
                            "checksum": self._kraken_checksum(),
                            "timestamp": "2024-01-01T00:00:00.000000Z",
                        }
                    ],
                }
            elif venue == "coinbase":
                frame = self._coinbase_l2(ws, "update", bids, asks)
            else:
                changes = [["buy", str(p), str(q)] for p, q in bids] + [["sell", str(p), str(q)] for p, q in asks]
                frame = {"type": "l2_updates", "symbol": "BTCUSD", "changes": changes}
            await ws.send_json(frame)


def point_exchange(exchange: Any, server: MockVenueServer, venue: str) -> Any:
    """Aim a ccxt.pro instance at the mock server (REST and websocket URLs)."""
    _merge(exchange.urls, venue_urls(server, venue))
    return exchange


def _merge(into: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def venue_urls(server: MockVenueServer, venue: str) -> dict[str, Any]:
    """ccxt's ``urls`` overrides that aim one venue at the mock (also what a config's settings.urls holds)."""
    if venue == "kraken":
        return {
            "api": {
                "public": f"{server.http}/kraken",
                "private": f"{server.http}/kraken",
                "ws": {"publicV2": f"{server.ws}/kraken/v2", "privateV2": f"{server.ws}/kraken/v2-auth"},
            }
        }
    if venue == "coinbase":
        return {"api": {"rest": f"{server.http}/coinbase", "ws": f"{server.ws}/coinbase/ws"}}
    return {"api": {"public": f"{server.http}/gemini", "private": f"{server.http}/gemini", "ws": f"{server.ws}/gemini"}}
