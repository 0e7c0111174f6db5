"""TrueX FIX NOS -> ExecutionReport(New) on loopback: mmkit against a raw QuickFIX loopback, same run.

Two paths, run interleaved (raw, mmkit, raw, mmkit, ...) so the machine's load
hits both alike:

* **raw**: a bare QuickFIX initiator and acceptor in this process, the same
  session settings and data dictionaries as mmkit (``build_settings``,
  conf/fix), no engine. The acceptor answers each NewOrderSingle straight
  from its ``fromApp`` with an ExecutionReport New (as the TrueX simulator
  does); the initiator's ``fromApp`` wakes the waiting thread. This is the
  floor: QuickFIX's own work (serialise, validate, socket) plus the Python
  callbacks any QuickFIX application has.
* **mmkit**: ``TrueXConnector.place`` -> the TrueX simulator
  (connectors/truex/sim: rules, matching engine, ordered outbox) -> the
  OrderAccepted event in the connector's inbox on the asyncio loop.

Figures, each over ``ROUNDS`` interleaved rounds:

1. round trip, one order at a time: from the send until the answer is back
   with the waiter (min / median over every order);
2. sustained throughput with the simulator's rate limits lifted: orders sent
   in bursts of ``BURST``, every one must come back accepted (min / median
   orders/s over the rounds); a lost order is counted and reported.

Both paths are measured under the engine's GC policy (``long_run_gc``, what
``mmkit start`` runs under once connected; it is process-wide, so it applies
to both alike). The raw path uses QuickFIX and the standard library only (no
mmkit helpers), so making mmkit faster cannot make the baseline faster.

Targets (issue 16): mmkit's median orders/s >= 0.8x raw and median round
trip <= 1.5x raw. ``anchor_figures()`` returns the medians for
bench/compare_anchors.py. The report also prints the median of the
per-round latency ratios (each round's raw and mmkit medians are taken
seconds apart): on this shared 2-core machine the load can change between
the start and the end of a run, which moves the ratio of whole-run medians
more than the per-round one.

Run it alone: ``python -m bench.bench_fix`` (or ``python -m bench bench_fix``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import statistics
import threading
import time
from decimal import Decimal
from typing import Any

import attrs
import quickfix as fix
from loguru import logger

from connectors.truex import fix_tags
from connectors.truex.dictionary import CONF_FIX_DIR
from connectors.truex.session import SessionSpec, build_settings
from mmkit.gc_policy import long_run_gc
from mmkit.model import OrderAccepted, OrderRequest, Side
from tests.integration.truex.harness import free_port, make_pair, unique_comp_ids

ROUNDS = 5
LATENCY_ORDERS = 200  # per round and path
THROUGHPUT_ORDERS = 2000  # per round and path
BURST = 250
WAIT_S = 30.0


# --------------------------------------------------------------------------
# raw QuickFIX loopback (no engine)
# --------------------------------------------------------------------------


def _party_order() -> fix.IntArray:
    order = fix.IntArray(4)
    for index, tag in enumerate((fix_tags.T_PARTY_ID, 447, fix_tags.T_PARTY_ROLE, 0)):
        order[index] = tag
    return order


class _RawAcceptor(fix.Application):
    """Answers every NewOrderSingle with an ExecutionReport New from inside ``fromApp``."""

    def __init__(self) -> None:
        super().__init__()
        self._next = 0

    def onCreate(self, sessionID: fix.SessionID) -> None: ...

    def onLogon(self, sessionID: fix.SessionID) -> None: ...

    def onLogout(self, sessionID: fix.SessionID) -> None: ...

    def toAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None: ...

    def fromAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None: ...

    def toApp(self, message: fix.Message, sessionID: fix.SessionID) -> None: ...

    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        if message.getHeader().getField(35) != "D":
            return
        self._next += 1
        report = fix.Message()
        header = report.getHeader()
        header.setField(fix.BeginString(fix_tags.BEGIN_STRING))
        header.setField(fix.MsgType("8"))
        qty = message.getField(fix_tags.T_QTY)
        for tag, value in (
            (fix_tags.T_ORDER_ID, f"R{self._next}"),
            (fix_tags.T_CLORDID, message.getField(fix_tags.T_CLORDID)),
            (fix_tags.T_EXEC_ID, f"R{self._next}-0"),
            (fix_tags.T_EXEC_TYPE, "0"),
            (fix_tags.T_ORD_STATUS, "0"),
            (fix_tags.T_SYMBOL, message.getField(fix_tags.T_SYMBOL)),
            (fix_tags.T_SIDE, message.getField(fix_tags.T_SIDE)),
            (fix_tags.T_QTY, qty),
            (fix_tags.T_PRICE, message.getField(fix_tags.T_PRICE)),
            (fix_tags.T_LEAVES_QTY, qty),
            (fix_tags.T_CUM_QTY, "0"),
        ):
            report.setField(tag, value)
        report.setField(fix.TransactTime(6))  # QuickFIX's own clock field, microseconds
        fix.Session.sendToTarget(report, sessionID)


class _RawInitiator(fix.Application):
    """Counts ExecutionReports New by ClOrdID and wakes the waiting thread."""

    def __init__(self) -> None:
        super().__init__()
        self.logged_on = threading.Event()
        self.answered = threading.Event()
        self._lock = threading.Lock()
        self._pending: set[str] = set()

    def expect(self, client_ids: set[str]) -> None:
        with self._lock:
            self._pending |= client_ids
            self.answered.clear()

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def onCreate(self, sessionID: fix.SessionID) -> None: ...

    def onLogon(self, sessionID: fix.SessionID) -> None:
        self.logged_on.set()

    def onLogout(self, sessionID: fix.SessionID) -> None: ...

    def toAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None: ...

    def fromAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None: ...

    def toApp(self, message: fix.Message, sessionID: fix.SessionID) -> None: ...

    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        if message.getHeader().getField(35) != "8" or message.getField(fix_tags.T_EXEC_TYPE) != "0":
            return
        with self._lock:
            self._pending.discard(message.getField(fix_tags.T_CLORDID))
            if not self._pending:
                self.answered.set()


class RawLoopback:
    """A bare QuickFIX initiator/acceptor pair on loopback with mmkit's settings and dictionaries."""

    def __init__(self) -> None:
        oe_comp, _ = unique_comp_ids()
        port = free_port()
        acceptor_spec = SessionSpec("RAW_VENUE", oe_comp, port)
        self._initiator_spec = SessionSpec(oe_comp, "RAW_VENUE", port, "127.0.0.1")
        self._acceptor_app = _RawAcceptor()
        self.app = _RawInitiator()
        acceptor_settings = build_settings("acceptor", [acceptor_spec], CONF_FIX_DIR)
        initiator_settings = build_settings("initiator", [self._initiator_spec], CONF_FIX_DIR, heartbeat_s=5)
        self._acceptor = fix.SocketAcceptor(self._acceptor_app, fix.MemoryStoreFactory(), acceptor_settings)
        self._initiator = fix.SocketInitiator(self.app, fix.MemoryStoreFactory(), initiator_settings)

    def start(self) -> None:
        self._acceptor.start()
        self._initiator.start()
        if not self.app.logged_on.wait(10):
            raise RuntimeError("raw QuickFIX loopback did not log on within 10 s")

    def stop(self) -> None:
        self._initiator.stop()
        self._acceptor.stop()

    def send(self, client_id: str, price: str) -> None:
        """A NewOrderSingle with the fields mmkit sends (parties group included), built field by field."""
        message = fix.Message()
        header = message.getHeader()
        header.setField(fix.BeginString(fix_tags.BEGIN_STRING))
        header.setField(fix.MsgType("D"))
        message.setField(fix_tags.T_CLORDID, client_id)
        group = fix.Group(fix_tags.T_NO_PARTY_IDS, fix_tags.T_PARTY_ID, _party_order())
        group.setField(fix_tags.T_PARTY_ID, "PARTY1")
        group.setField(fix_tags.T_PARTY_ROLE, fix_tags.PARTY_ROLE_CLIENT_ID)
        message.addGroup(group)
        message.setField(fix_tags.T_SYMBOL, "BTC-PYUSD")
        message.setField(fix_tags.T_SIDE, "1")
        message.setField(fix.TransactTime(6))
        message.setField(fix_tags.T_QTY, "0.0001")
        message.setField(fix_tags.T_ORD_TYPE, fix_tags.ORD_TYPE_LIMIT)
        message.setField(fix_tags.T_PRICE, price)
        message.setField(fix_tags.T_TIF, "1")
        message.setField(fix_tags.T_EXEC_INST, fix_tags.EXEC_INST_POST_ONLY)
        fix.Session.sendToTarget(message, self._initiator_spec.session_id)

    def latency(self, prefix: str, count: int) -> tuple[list[float], int]:
        """Round trips in microseconds, one order at a time; and how many never came back."""
        samples: list[float] = []
        lost = 0
        for i in range(count):
            client_id = f"{prefix}{i}"
            began = time.perf_counter()
            self.app.expect({client_id})
            self.send(client_id, str(_price()))
            if self.app.answered.wait(WAIT_S):
                samples.append((time.perf_counter() - began) * 1e6)
            else:
                lost += self.app.pending()
                self.app.expect(set())
        return samples, lost

    def throughput(self, prefix: str, count: int) -> tuple[float, int]:
        """Orders/s over ``count`` orders sent in bursts; and how many never came back."""
        ids = [f"{prefix}{i}" for i in range(count)]
        began = time.perf_counter()
        self.app.expect(set(ids))
        for client_id in ids:
            self.send(client_id, str(_price()))
        self.app.answered.wait(WAIT_S)
        elapsed = time.perf_counter() - began
        return count / elapsed, self.app.pending()


# --------------------------------------------------------------------------
# mmkit: TrueXConnector -> TrueX simulator -> OrderAccepted on the loop
# --------------------------------------------------------------------------


_sequence = itertools.count()


def _price() -> Decimal:
    """A price no other order of this run has (so the duplicate-order rule never fires); all rest, none cross."""
    return Decimal(58600) + Decimal(next(_sequence) % 28000) / 10


def _order(i: int, prefix: str) -> OrderRequest:
    return OrderRequest(f"{prefix}{i}", "truex", "BTC-PYUSD", Side.BUY, Decimal("0.0001"), _price(), post_only=True)


class _AcceptedWaiter:
    """Resolves a future when every awaited order's OrderAccepted is in the connector's inbox.

    Uses the inbox's public event tap (called on the loop as each event is
    queued), so the wait costs one future wake-up, not a poll.
    """

    def __init__(self, connector: Any) -> None:
        self._pending: set[str] = set()
        self._done: asyncio.Future[None] | None = None
        self._deadline = 0.0
        connector.add_event_tap(self._on_event)
        self._connector = connector

    def _on_event(self, event: Any) -> None:
        if isinstance(event, OrderAccepted) and event.client_id in self._pending:
            self._pending.discard(event.client_id)
            if not self._pending and self._done is not None and not self._done.done():
                self._done.set_result(None)

    def expect(self, client_ids: set[str]) -> None:
        self._pending = set(client_ids)
        self._done = asyncio.get_running_loop().create_future()

    async def wait(self, timeout_s: float) -> int:
        """Wait for every expected acceptance; how many never came (0 = none lost).

        The timeout is enforced by ``_expire_late`` (one task, once a second)
        rather than a timer per order, which would cost the mmkit path two
        heap operations per order that the raw path's ``threading.Event`` does not pay.
        """
        assert self._done is not None
        if self._pending:
            self._deadline = time.perf_counter() + timeout_s
            with contextlib.suppress(TimeoutError):
                await self._done
        self._connector.drain()  # the engine would drain on its tick; keep the inbox from growing
        return len(self._pending)

    async def expire_late(self) -> None:
        """Fail a wait that has run past its deadline (an order lost on the way)."""
        while True:
            await asyncio.sleep(1.0)
            done = self._done
            if done is not None and not done.done() and time.perf_counter() > self._deadline:
                done.set_exception(TimeoutError())


async def _mmkit_latency(connector: Any, waiter: _AcceptedWaiter, prefix: str, count: int) -> tuple[list[float], int]:
    samples: list[float] = []
    lost = 0
    for i in range(count):
        order = _order(i, prefix)
        began = time.perf_counter()
        waiter.expect({order.client_id})
        connector.place(order)
        missing = await waiter.wait(WAIT_S)
        if missing:
            lost += missing
        else:
            samples.append((time.perf_counter() - began) * 1e6)
    return samples, lost


async def _mmkit_throughput(connector: Any, waiter: _AcceptedWaiter, prefix: str, count: int) -> tuple[float, int]:
    orders = [_order(i, prefix) for i in range(count)]
    began = time.perf_counter()
    waiter.expect({order.client_id for order in orders})
    for start in range(0, count, BURST):
        for order in orders[start : start + BURST]:
            connector.place(order)
        await asyncio.sleep(0)
    lost = await waiter.wait(WAIT_S)
    return count / (time.perf_counter() - began), lost


# --------------------------------------------------------------------------
# the interleaved run
# --------------------------------------------------------------------------


@attrs.define
class Figures:
    """Everything one interleaved run measured, per path."""

    latency_us: dict[str, list[float]] = attrs.field(factory=lambda: {"raw": [], "mmkit": []})
    #: mmkit's median round trip over raw's, round by round (the two measured seconds apart).
    round_ratios: list[float] = attrs.Factory(list)
    rates: dict[str, list[float]] = attrs.field(factory=lambda: {"raw": [], "mmkit": []})
    lost: dict[str, int] = attrs.field(factory=lambda: {"raw": 0, "mmkit": 0})
    resting_on_exchange: int = 0

    def median_us(self, path: str) -> float:
        return statistics.median(self.latency_us[path])

    def median_rate(self, path: str) -> float:
        return statistics.median(self.rates[path])


async def _run(rounds: int, latency_orders: int, throughput_orders: int) -> Figures:
    figures = Figures()
    raw = RawLoopback()
    raw.start()
    exchange, connector = make_pair(enforce_rate_limits=False)
    exchange.start()
    try:
        await connector.connect()
        waiter = _AcceptedWaiter(connector)
        expiry = asyncio.ensure_future(waiter.expire_late())
        # one warm-up round each (imports, first allocations), not counted
        raw.latency("WR", 20)
        await _mmkit_latency(connector, waiter, "WM", 20)
        with long_run_gc():  # what `mmkit start` runs under once connected; process-wide, so both paths alike
            await _rounds(figures, raw, connector, waiter, rounds, latency_orders, throughput_orders)
        figures.resting_on_exchange = len(exchange.open_orders())
        expiry.cancel()
    finally:
        await connector.disconnect()
        exchange.stop()
        raw.stop()
    return figures


async def _rounds(
    figures: Figures,
    raw: RawLoopback,
    connector: Any,
    waiter: _AcceptedWaiter,
    rounds: int,
    latency_orders: int,
    throughput_orders: int,
) -> None:
    """raw, mmkit, raw, mmkit, ...: latency then throughput, ``rounds`` times."""
    for r in range(rounds):
        raw_samples, lost = raw.latency(f"RL{r}-", latency_orders)
        figures.latency_us["raw"] += raw_samples
        figures.lost["raw"] += lost
        samples, lost = await _mmkit_latency(connector, waiter, f"ML{r}-", latency_orders)
        figures.latency_us["mmkit"] += samples
        figures.lost["mmkit"] += lost
        if samples and raw_samples:
            figures.round_ratios.append(statistics.median(samples) / statistics.median(raw_samples))
        rate, lost = raw.throughput(f"RT{r}-", throughput_orders)
        figures.rates["raw"].append(rate)
        figures.lost["raw"] += lost
        rate, lost = await _mmkit_throughput(connector, waiter, f"MT{r}-", throughput_orders)
        figures.rates["mmkit"].append(rate)
        figures.lost["mmkit"] += lost


def measure(
    rounds: int = ROUNDS, latency_orders: int = LATENCY_ORDERS, throughput_orders: int = THROUGHPUT_ORDERS
) -> Figures:
    # Logging off for both paths alike (and the figures readable), without touching the caller's handlers.
    for name in ("mmkit", "connectors", "bench", "tests"):
        logger.disable(name)
    try:
        return asyncio.run(_run(rounds, latency_orders, throughput_orders))
    finally:
        for name in ("mmkit", "connectors", "bench", "tests"):
            logger.enable(name)


def anchor_figures(quick: bool = False) -> dict[str, float]:
    """Medians of one interleaved run, for bench/compare_anchors.py (raises if an order was lost).

    ``quick``: two rounds of 50 / 500 orders (a smoke run; the ratios are too noisy to quote).
    """
    figures = measure(rounds=2, latency_orders=50, throughput_orders=500) if quick else measure()
    if figures.lost["mmkit"] or figures.lost["raw"]:
        raise RuntimeError(f"orders lost on loopback: {figures.lost}")
    return {
        "raw_median_us": figures.median_us("raw"),
        "raw_orders_per_s": figures.median_rate("raw"),
        "mmkit_median_us": figures.median_us("mmkit"),
        "mmkit_orders_per_s": figures.median_rate("mmkit"),
    }


def report(figures: Figures) -> None:
    for path in ("raw", "mmkit"):
        samples = sorted(figures.latency_us[path])
        rates = figures.rates[path]
        p99 = samples[max(0, int(len(samples) * 0.99) - 1)] if samples else float("nan")
        print(
            f"   {path:5s} NOS->ER(New) round trip over {len(samples)}: min {samples[0]:.0f} us, "
            f"median {statistics.median(samples):.0f} us, p99 {p99:.0f} us | sustained over {len(rates)} rounds: "
            f"min {min(rates):,.0f}, median {statistics.median(rates):,.0f} orders/s | lost {figures.lost[path]}"
        )
    latency_ratio = figures.median_us("mmkit") / figures.median_us("raw")
    rate_ratio = figures.median_rate("mmkit") / figures.median_rate("raw")
    print(
        f"   ratios (same run): median round trip mmkit/raw {latency_ratio:.2f}x (target <= 1.5x), "
        f"orders/s mmkit/raw {rate_ratio:.2f}x (target >= 0.8x)"
    )
    if figures.round_ratios:
        ratios = figures.round_ratios
        print(
            f"   round trip mmkit/raw round by round: median {statistics.median(ratios):.2f}x, "
            f"min {min(ratios):.2f}x, max {max(ratios):.2f}x over {len(ratios)} rounds"
        )
    lost = figures.lost["mmkit"] + figures.lost["raw"]
    print(
        f"   lost orders: {lost} ({'none' if lost == 0 else 'LOST: ' + str(figures.lost)}); "
        f"resting on the simulator: {figures.resting_on_exchange}"
    )


def main() -> None:
    report(measure())


if __name__ == "__main__":
    main()
