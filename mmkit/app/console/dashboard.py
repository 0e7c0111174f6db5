"""The live dashboard page of a running instance (served on the engine's loop, loopback by default).

Why on the engine's loop: a snapshot of the engine's state must be taken
between two ticks (the tick is synchronous on that loop), and the control
actions must go through :meth:`ControlChannel.execute` there, exactly as the
Unix-socket transport does. One task builds a snapshot every
``push_interval_ms`` (a few hundred attribute reads, no I/O) and every open
page receives it as a server-sent event (``/events``); the page draws the
ladder, the tables and the Plotly charts (served from the installed plotly
package: the machine may have no internet) without reloading.

Units: the snapshot names them. ``pnl`` carries the ledger's figures in
``pnl.unit`` (the base coin of an inverse contract such as BTCUSD_PERP, else
the quote currency) and, in ``pnl.in_quote``, the same figures in the quote
currency at ``pnl.mark`` (None while there is no mark: no made-up number);
``inventory.unit`` says what a size counts (contracts or the base asset), a
fill names its fee's currency. The page shows an inverse contract's PnL as
"0.00051303 BTC (31.30 USD)"; a linear instrument's looks as it always did.

Routes: ``/`` the page, ``/static/...`` its script and plotly.min.js,
``/api/state`` one snapshot (with the session's history), ``/events`` the
stream, ``POST /api/control`` ``{"action": "pause"}`` with
``Authorization: Bearer <token>``. Without ``console.dashboard.control_token``
the page is read-only and every control request is refused (HTTP 403); with
it, a request without the right token is refused too. Refusals are shown on
the page and written to the audit trail, bounded against a flood
(:mod:`mmkit.app.console.refusals`: the first per client address and minute
in full, the rest counted in one summary line); accepted actions are audited
by the channel itself.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import importlib.util
import json
import time
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from loguru import logger

from mmkit.app.console.http_server import HttpServer, Request, Response, Send
from mmkit.app.console.refusals import RefusalAudit
from mmkit.app.console.runtime import unlimited_loss_text
from mmkit.app.control.auth import token_matches
from mmkit.model import NS_PER_S, BalanceUpdate, OrderCancelRejected, OrderRejected, Side, VenueEvent

#: What the page may ask for (``trip`` stays with the CLI: an emergency stop is not a button).
WEB_ACTIONS = ("pause", "resume", "flatten", "cancel-all")
HISTORY = 3600
BOOK_LEVELS = 10


def _plotly_js() -> Path:
    """plotly.min.js from the installed package, found without importing plotly (its modules would stay resident)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("plotly is not installed: the dashboard serves its plotly.min.js")
    return Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"


def _d(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def pnl_figures(pnl: Any) -> dict[str, Any]:
    """The PnL block of a snapshot: the ledger's figures in their unit, and in the quote currency at the mark.

    ``in_quote`` is the identity for a linear instrument and None for an inverse one without a mark.
    """
    settlement = pnl.settlement
    values = {"realized": pnl.realized(), "unrealized": pnl.unrealized(), "fees": pnl.fees(), "total": pnl.total()}
    converted = {name: pnl.to_quote(value) for name, value in values.items()}
    in_quote = None if None in converted.values() else {name: _d(value) for name, value in converted.items()}
    return {
        **{name: float(value) for name, value in values.items()},
        "unit": pnl.unit,
        "quote": settlement.quote_name,
        "inverse": settlement.inverse,
        "mark": _d(pnl.mark_price),
        "in_quote": in_quote,
    }


class Dashboard:
    """Serves the page and its data for one engine; :meth:`start` binds, :meth:`close` stops."""

    def __init__(self, built: Any, section: Any, channel: Any, persistence: Any = None) -> None:
        self.built = built
        self.engine = built.engine
        self.section = section
        self.channel = channel
        self.persistence = persistence
        self.token: str | None = section.control_token or None
        self.interval_s = section.push_interval_ms / 1000
        self.history: collections.deque[dict[str, Any]] = collections.deque(maxlen=HISTORY)
        self.rejects: collections.deque[dict[str, Any]] = collections.deque(maxlen=50)
        self.actions: collections.deque[dict[str, Any]] = collections.deque(maxlen=50)
        self.snapshot: dict[str, Any] = {}
        self.version = 0
        # Refused control requests go to the audit trail through its writer thread (persistence), else the
        # channel's sink; bounded per address and minute (mmkit.app.console.refusals).
        audit = getattr(getattr(persistence, "audit", None), "put", None) or getattr(channel, "audit", None)
        self.refusals = RefusalAudit(audit)
        self._server: HttpServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._started_ns = time.time_ns()
        self._log = logger.bind(component="dashboard")
        self.url = ""
        self.engine.stream.add_order_listener(self._on_order_event)
        #: Latest balances per venue: the quoting venue's from its user stream, the hedge venue's from the gate.
        self.balances: dict[str, dict[str, str]] = {}
        self.engine.stream.add_balance_listener(self._on_balances)

    # -- serving -----------------------------------------------------------

    async def start(self) -> str:
        # The server is mmkit.app.console.http_server (not aiohttp: ~10 MB resident, issue 16).
        server = HttpServer(
            {
                ("GET", "/"): self._page,
                ("GET", "/static/dashboard.js"): self._script,
                ("GET", "/static/plotly.min.js"): self._plotly,
                ("GET", "/api/state"): self._state,
                ("GET", "/events"): self._events,
                ("POST", "/api/control"): self._control,
            },
            name="dashboard",
        )
        port = await server.start(self.section.host, self.section.port)
        self._server = server
        self.url = f"http://{self.section.host}:{port}/"
        self.refresh()
        self._task = asyncio.create_task(self._produce(), name="dashboard")
        self._log.info("dashboard on {} ({})", self.url, "control enabled" if self.token else "read-only")
        return self.url

    async def close(self) -> None:
        self._closing = True
        self.refusals.close()  # no-op when the run's closers already did it (before the audit writer closed)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._server is not None:  # a page left open keeps an SSE request running: it is cancelled
            await self._server.close(grace_s=2.0)
            self._server = None

    async def _produce(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                self.refresh()
                self.refusals.flush()  # the summary of a minute of refusals that has ended
            except Exception:
                self._log.opt(exception=True).error("dashboard snapshot failed")

    async def _page(self, request: Request) -> Response:
        html = resources.files("mmkit.app.console").joinpath("static/dashboard.html").read_text("utf-8")
        return Response.text(html, "text/html")

    async def _script(self, request: Request) -> Response:
        js = resources.files("mmkit.app.console").joinpath("static/dashboard.js").read_text("utf-8")
        return Response.text(js, "application/javascript")

    async def _plotly(self, request: Request) -> Response:
        return Response(file=_plotly_js(), content_type="application/javascript")

    async def _state(self, request: Request) -> Response:
        return Response.json({**self.snapshot, "history": list(self.history)})

    async def _events(self, request: Request) -> Response:
        async def stream(send: Send) -> None:  # ends when the page goes away (ConnectionError) or on close
            seen = -1
            while not self._closing:
                if self.version != seen:
                    seen = self.version
                    await send(f"data: {json.dumps(self.snapshot)}\n\n".encode())
                await asyncio.sleep(self.interval_s / 2)

        return Response(content_type="text/event-stream", stream=stream, headers={"Cache-Control": "no-cache"})

    async def _control(self, request: Request) -> Response:
        peer = request.remote or "?"
        try:
            body = request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        action = body.get("action") if isinstance(body, dict) else None
        if action not in WEB_ACTIONS:
            return self._refused(400, str(action), peer, f"unknown action (the page offers {', '.join(WEB_ACTIONS)})")
        assert isinstance(body, dict)
        extra = sorted(str(key) for key in body if key != "action")
        if extra:  # {"action": "cancel-all", "symbol": "ETH-USD"}: cancelling everything is not what was asked
            return self._refused(400, action, peer, f"unknown field(s) {', '.join(repr(k) for k in extra)}; "
                                 "a request is {\"action\": ...} only; nothing was done")
        if self.token is None:
            return self._refused(403, action, peer, "read-only: no control token is configured")
        presented = request.header("Authorization").removeprefix("Bearer ").strip() or None
        if not token_matches(presented, self.token):
            return self._refused(403, action, peer, "wrong or missing control token")
        if self.channel is None:
            return self._refused(503, action, peer, "no control channel in this run")
        result = await self.channel.execute(action, source=f"web {peer}", params={})
        self.actions.appendleft(
            {
                "ts_ns": time.time_ns(),
                "action": action,
                "ok": result.ok,
                "message": result.message,
                "source": f"web {peer}",
            }
        )
        self.refresh()
        return Response.json(result.as_dict(), status=200 if result.ok else 409)

    def _refused(self, status: int, action: str, peer: str, why: str) -> Response:
        self.refusals.record(peer, action, status, why)  # audited and logged, bounded against a flood
        self.actions.appendleft(
            {
                "ts_ns": time.time_ns(),
                "action": action[:64],
                "ok": False,
                "message": f"refused: {why}"[:200],  # it may quote what was sent: the page shows 50
                "source": f"web {peer}",
            }
        )
        return Response.json({"ok": False, "action": action, "message": f"refused: {why}"}, status=status)

    # -- the snapshot --------------------------------------------------------

    def _on_order_event(self, event: VenueEvent) -> None:
        if isinstance(event, OrderRejected | OrderCancelRejected):
            what = "cancel" if isinstance(event, OrderCancelRejected) else "place"
            self.rejects.appendleft(
                {
                    "ts_ns": event.ts_recv,
                    "client_id": event.client_id,
                    "action": what,
                    "reason": event.reason.name.lower(),
                    "message": event.message[:200],
                }
            )

    def _fresh_venues(self) -> list[str]:
        """The reference venues in the fair price now (a PriceAggregator says; a single mid has none)."""
        fresh = getattr(self.engine.runner.fair_source, "fresh_venues", None)
        if not callable(fresh):
            return []
        try:
            return [str(v) for v in fresh(self.engine.clock.now_ns)]
        except Exception:
            return []

    def _balances(self) -> dict[str, dict[str, str]]:
        out = dict(self.balances)
        hedge = self.built.hedge
        if hedge is not None and hedge.balances is not None and hedge.balances.known:
            out[hedge.connector.venue] = hedge.balances.as_dict()
        return out

    def _on_balances(self, update: BalanceUpdate) -> None:
        self.balances[update.venue] = {b.asset: str(b.available) for b in update.balances}

    def refresh(self) -> None:
        """Build the snapshot from the engine's state (on the loop, between ticks) and bump the version."""
        now = time.time_ns()
        engine, runner = self.engine, self.engine.runner
        book_tracker = runner.book
        book: dict[str, Any] = {"valid": False, "bids": [], "asks": [], "venue": engine.venue.venue}
        mid: Decimal | None = None
        if book_tracker is not None and book_tracker.is_valid:
            ob = book_tracker.book
            mid = ob.mid()
            book.update(
                valid=True,
                bids=[[float(p), float(q)] for p, q in ob.depth(Side.BUY, BOOK_LEVELS)],
                asks=[[float(p), float(q)] for p, q in ob.depth(Side.SELL, BOOK_LEVELS)],
            )
        fair = runner.last_fair
        ref = mid if mid is not None else fair.price  # distance from the venue's mid (fair when the book is not valid)
        orders = []
        for o in engine.orders.open_orders(engine.symbol):
            price = o.request.price
            dist = None if (ref is None or price is None) else float((price - ref) / ref * 10_000)
            orders.append(
                {
                    "client_id": o.client_id,
                    "side": o.side.name.lower(),
                    "level": None if o.slot is None else o.slot[1],
                    "price": _d(price),
                    "qty": float(o.request.qty),
                    "remaining": float(o.request.qty - o.filled_qty),
                    "distance_bps": None if dist is None else round(dist, 2),
                    "age_s": round(max(now - o.created_ns, 0) / NS_PER_S, 1) if o.created_ns else None,
                    "state": o.state.name.lower(),
                }
            )
        orders.sort(
            key=lambda x: (
                x["side"] != "sell",
                -(x["price"] or 0) if x["side"] == "sell" else 0,
                x["level"] if x["level"] is not None else 99,
            )
        )
        inv, pnl = engine.inventory, engine.pnl
        kill = runner.kill_switch
        hedge = self.built.hedge
        fills = [
            {
                "ts_ns": f.ts_recv,
                "venue": f.venue,
                "side": f.side.name.lower(),
                "price": float(f.price),
                "qty": float(f.qty),
                "fee": float(f.fee),
                "fee_currency": f.fee_currency,
                "liquidity": f.liquidity.name.lower(),
            }
            for f in engine.fills[-20:]
        ][::-1]
        money = pnl_figures(pnl)
        point = {
            "ts_ns": now,
            "pnl": money["total"],  # in money["unit"]
            "pnl_quote": None if money["in_quote"] is None else money["in_quote"]["total"],
            "position": float(inv.position),
            "fair": _d(fair.price),
            "mid": _d(mid),
        }
        self.history.append(point)
        controls = bool(self.token) and self.channel is not None
        self.snapshot = {
            "instance": self.built.config.engine.instance,
            "ts_ns": now,
            "started_ns": self._started_ns,
            "strategy": runner.controller.name,
            "venue": engine.venue.venue,
            "symbol": engine.symbol,
            "venue_connected": bool(engine.venue.connected),
            "ticks": engine.clock.tick_count,
            "book": book,
            "mid": _d(mid),
            "orders": orders,
            "reference": {
                "price": _d(fair.price),
                "confidence": round(fair.confidence, 3),
                "sources": fair.sources,
                "age_s": round(max(now - fair.ts, 0) / NS_PER_S, 2) if fair.ts else None,
                "venues": self._fresh_venues(),
            },
            "inventory": {
                "position": float(inv.position),
                "max_position": float(inv.max_position),
                "utilization": float(inv.utilization()),
                "skew_ticks": float(inv.skew_ticks()),
                "unit": pnl.settlement.size_unit,
            },
            "pnl": money,
            "kill_switch": {
                "halted": bool(kill is not None and kill.halted),
                "reason": kill.reason if kill is not None and kill.halted else "",
                # "" or what the page shows in a banner: no loss limit, on purpose (unlimited_loss)
                "unlimited_loss": unlimited_loss_text(kill),
            },
            "quoting": bool(runner.quoting_enabled),
            # every runner gate holding quoting, in gate order (the page shows each in red, never a green
            # "quoting"); [] while none does
            "gates": [hold.as_dict() for hold in runner.gate_holds],
            # the first of them, or None: the field as versions before "gates" served it (external readers)
            "gate": runner.gate_holds[0].as_dict() if runner.gate_holds else None,
            "halt": runner.failure_halt or "",
            "hedge": None
            if hedge is None
            else {
                "venue": hedge.connector.venue,
                "working": len(hedge.working),
                "stopped": hedge.stop_reason or "",
                "in_flight": float(hedge.in_flight),
                "position": float(engine.pnl.position(hedge=True)),
            },
            "balances": self._balances(),
            "fills": fills,
            "rejects": list(self.rejects)[:20],
            "errors": engine.outcome.as_report()[-20:],
            "actions": list(self.actions)[:20],
            "controls": controls,
            "control_actions": list(WEB_ACTIONS) if controls else [],
            "point": point,
        }
        self.version += 1
