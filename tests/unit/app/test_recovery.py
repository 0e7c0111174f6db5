"""Restart recovery on the FakeConnector: ledger restored exactly, fills deduped, orders reconciled, refusals."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import attrs
import pytest

from mmkit.app.config import StoreSection
from mmkit.app.engine import EngineStartError
from mmkit.app.persistence import attach_persistence, default_store_url
from mmkit.app.persistence_iterator import Persistence
from mmkit.connector import TransientVenueError, load_venue_rules
from mmkit.model import ZERO, OrderStatusReport, Side
from mmkit.store.queries import StoreQueries
from mmkit.testing.fake_connector import FakeConnector
from mmkit.testing.harness import Harness
from strategies.simple import SimpleConfig, SimpleController

INSTANCE = "recovery"


def harness(venue: FakeConnector | None = None) -> Harness:
    controller = SimpleController(SimpleConfig(half_spread_bps=D(10), order_size=D("0.01")))
    rules = venue.rules if venue is not None else load_venue_rules("sim")
    return Harness(controller, rules=rules, venue=venue)


async def start(tmp_path: Path, venue: FakeConnector | None = None) -> tuple[Harness, Persistence]:
    h = harness(venue)
    p = attach_persistence(h.engine, StoreSection(), INSTANCE, tmp_path)
    await h.engine.start()
    return h, p


def crash(p: Persistence) -> None:
    """The process dies: what the recorder had not written yet is lost, nothing is flushed."""
    p.recorder.record_fill = lambda fill: False  # type: ignore[method-assign]
    p.recorder.record_order = lambda *a, **k: False  # type: ignore[method-assign]


async def quoting_with_a_partial_fill(tmp_path: Path, venue: FakeConnector | None = None) -> Harness:
    """Run A: quotes, the bid partly fills, everything up to here is written; then A crashes."""
    h, p = await start(tmp_path, venue)
    h.set_fair("60000")
    h.tick(2)
    bid = next(o for o in h.venue.open_orders if o.side is Side.BUY)
    h.venue.fill(bid.client_id, "0.004")
    h.tick()
    assert p.recorder.flush()
    crash(p)
    return h


def signed_sum(venue: FakeConnector) -> D:
    return sum((f.qty * f.side.sign for f in venue.fills), ZERO)


def store(tmp_path: Path) -> StoreQueries:
    return StoreQueries(default_store_url(StoreSection(), INSTANCE, tmp_path))


async def test_restart_restores_the_ledger_books_missed_fills_once_and_adopts_open_orders(tmp_path: Path) -> None:
    a = await quoting_with_a_partial_fill(tmp_path)
    venue = a.venue
    ask = next(o for o in venue.open_orders if o.side is Side.SELL)
    venue.fill(ask.client_id, "0.003")  # while nobody listens: A never sees it, the store never gets it

    b, p = await start(tmp_path, venue)
    assert p.recovery is not None and p.recovery.missed_fills == 1 and p.recovery.restored_fills == 1
    assert b.position == signed_sum(venue) == D("0.001")
    assert {o.client_id for o in b.engine.orders.open_orders()} == {o.client_id for o in venue.open_orders}
    b.tick()  # the venue's inbox still holds the ask fill A never drained: it is a duplicate now
    assert b.engine.stream.duplicate_fills >= 1
    assert b.position == D("0.001")
    assert b.engine.pnl.position() == D("0.001")
    b.stop()
    assert p.close() == 0

    q = store(tmp_path)
    try:
        assert sorted(f.trade_id for f in q.fills()) == sorted(f.trade_id for f in venue.fills)
        assert q.position("sim", b.symbol) == signed_sum(venue)
    finally:
        q.close()


async def test_a_second_restart_counts_nothing_twice(tmp_path: Path) -> None:
    a = await quoting_with_a_partial_fill(tmp_path)
    b, p = await start(tmp_path, a.venue)
    b.stop()
    assert p.close() == 0
    c, p2 = await start(tmp_path, a.venue)
    assert p2.recovery is not None and p2.recovery.missed_fills == 0
    assert c.position == signed_sum(a.venue) == D("0.004")
    assert p2.close() == 0


async def test_orders_the_venue_finished_or_forgot_are_recorded_closed(tmp_path: Path) -> None:
    a = await quoting_with_a_partial_fill(tmp_path)
    venue = a.venue
    bid, ask = sorted(venue.open_orders, key=lambda o: o.side is Side.SELL)
    venue.cancel(ask.client_id, ask.symbol)  # canceled at the venue while we were down
    venue.lose_order(bid.client_id)  # and one the venue no longer knows at all

    b, p = await start(tmp_path, venue)
    assert p.recovery is not None
    # (the bid A had just re-sized is closed too: the venue reports the replaced original CANCELED)
    assert {bid.client_id, ask.client_id} <= set(p.recovery.closed)
    assert p.recovery.still_open == ()
    assert b.engine.orders.open_orders() == []
    assert p.close() == 0
    q = store(tmp_path)
    try:
        assert q.open_orders() == []
        last_ask = q.order_history("sim", ask.client_id)[-1]
        last_bid = q.order_history("sim", bid.client_id)[-1]
        assert (last_ask.state, last_ask.reason) == ("CANCELED", "restart: venue reports CANCELED")
        assert last_bid.state == "CANCELED" and "no such order" in last_bid.reason
    finally:
        q.close()


async def test_could_not_ask_about_an_order_refuses_to_quote(tmp_path: Path) -> None:
    a = await quoting_with_a_partial_fill(tmp_path)
    venue = a.venue
    lost = venue.open_orders[0].client_id
    venue.lose_order(lost)

    async def unreachable(client_id: str, symbol: str) -> OrderStatusReport:
        raise TransientVenueError("timeout")

    venue.fetch_order_status = unreachable  # type: ignore[method-assign]
    b = harness(venue)
    p = attach_persistence(b.engine, StoreSection(), INSTANCE, tmp_path)
    reason = rf"could not ask sim about \d order\(s\) recorded open: .*{lost}: timeout"
    with pytest.raises(EngineStartError, match=reason):
        await b.engine.start()
    assert p.close() == 0


async def test_listing_failure_refuses_to_quote(tmp_path: Path) -> None:
    a = await quoting_with_a_partial_fill(tmp_path)
    await a.venue.disconnect()

    async def still_down() -> None:
        return None

    a.venue.connect = still_down  # type: ignore[method-assign]
    b = harness(a.venue)
    p = attach_persistence(b.engine, StoreSection(), INSTANCE, tmp_path)
    with pytest.raises(EngineStartError, match="cannot fetch fills"):
        await b.engine.start()
    assert p.close() == 0


async def test_without_fill_history_unrecorded_fills_refuse_to_quote(tmp_path: Path) -> None:
    rules = attrs.evolve(load_venue_rules("sim"), supports_fill_history=False)
    venue = FakeConnector(rules)
    a = await quoting_with_a_partial_fill(tmp_path, venue)
    ask = next(o for o in a.venue.open_orders if o.side is Side.SELL)
    a.venue.fill(ask.client_id, "0.003")  # never recorded, and the venue cannot list it later
    b = harness(a.venue)
    p = attach_persistence(b.engine, StoreSection(), INSTANCE, tmp_path)
    with pytest.raises(EngineStartError, match=rf"no fill history.*{ask.client_id} \(venue filled 0.003, ledger 0\)"):
        await b.engine.start()
    assert p.close() == 0
