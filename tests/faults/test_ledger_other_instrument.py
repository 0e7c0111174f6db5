"""An instance's ledger holding another instrument's fills must refuse the start, not be booked.

The scenario: instance ``mm1`` quoted BTC-PYUSD and bought 0.004 BTC; the
operator then edits the config to quote ETH-PYUSD and keeps ``engine.instance:
mm1``. Recovery replays every fill of the instance. The inventory ignored the
BTC fill (another base) but the PnL tracker booked it into the venue's quote
book (PnL position 0.004 while the inventory said 0), so an ETH sell would
"close" a BTC lot bought at 60,000: realized PnL, the loss limits and the final
report mix two assets; the BTC position was left to nobody. Same quote book
with another quote currency (BTC-USD after BTC-PYUSD): prices in two monies in
one FIFO book. Now the start is refused and says which fills and why.
"""

from __future__ import annotations

import io
from decimal import Decimal as D
from pathlib import Path

import attrs
import pytest

from mmkit.app.config import StoreSection
from mmkit.app.engine import EngineStartError
from mmkit.app.outcome import EXIT_START_REFUSED
from mmkit.app.persistence import attach_persistence, default_store_url
from mmkit.app.reconcile import run_reconcile
from mmkit.connector import VenueRules, load_venue_rules
from mmkit.model import Side
from mmkit.store.journal import journal_path_for
from mmkit.testing.fake_connector import ActionKind, FakeConnector
from mmkit.testing.harness import Harness
from strategies.simple import SimpleConfig, SimpleController

INSTANCE = "mm1"


def rules() -> VenueRules:
    """The sim venue with a second instrument: ETH-PYUSD (another base) and BTC-USD (another quote)."""
    base = load_venue_rules("sim")
    btc = base.instruments[0]
    eth = attrs.evolve(btc, symbol="ETH-PYUSD", base="ETH")
    usd = attrs.evolve(btc, symbol="BTC-USD", quote="USD")
    return attrs.evolve(base, instruments=(btc, eth, usd))


def harness(venue: FakeConnector, symbol: str) -> Harness:
    controller = SimpleController(SimpleConfig(half_spread_bps=D(10), order_size=D("0.01")))
    return Harness(controller, rules=venue.rules, venue=venue, symbol=symbol)


async def a_btc_session(tmp_path: Path, venue: FakeConnector) -> None:
    """mm1 quotes BTC-PYUSD, buys 0.004, stops cleanly (everything stored, the journal checkpointed)."""
    a = harness(venue, "BTC-PYUSD")
    p = attach_persistence(a.engine, StoreSection(), INSTANCE, tmp_path)
    await a.engine.start()
    a.set_fair("60000")
    a.tick(2)
    bid = next(o for o in venue.open_orders if o.side is Side.BUY)
    venue.fill(bid.client_id, "0.004")
    a.tick()
    assert a.position == D("0.004")
    a.stop()
    assert p.close() == 0


@pytest.mark.parametrize(("symbol", "why"), [("ETH-PYUSD", "another base"), ("BTC-USD", "another quote")])
async def test_a_ledger_of_another_instrument_refuses_the_start(tmp_path: Path, symbol: str, why: str) -> None:
    venue = FakeConnector(rules())
    await a_btc_session(tmp_path, venue)
    venue.clear_records()

    b = harness(venue, symbol)  # the same instance, edited to quote another instrument
    p = attach_persistence(b.engine, StoreSection(), INSTANCE, tmp_path)
    refusal = (rf"the ledger of instance mm1 holds 1 fill\(s\) of another instrument \(BTC-PYUSD on sim: F1\); "
               rf"this engine trades {symbol} on sim")
    with pytest.raises(EngineStartError, match=refusal):
        await b.engine.start()
    # Nothing booked: before, the PnL tracker held the BTC fill as this instrument's (position 0.004).
    assert b.engine.pnl.position() == 0 and b.engine.fills == []
    assert not [a for a in venue.actions if a.kind in (ActionKind.PLACE, ActionKind.REPLACE)]  # nothing sent
    assert p.close() == 0


async def test_the_same_instrument_restarts_as_before(tmp_path: Path) -> None:
    venue = FakeConnector(rules())
    await a_btc_session(tmp_path, venue)
    b = harness(venue, "BTC-PYUSD")
    p = attach_persistence(b.engine, StoreSection(), INSTANCE, tmp_path)
    await b.engine.start()
    assert b.position == D("0.004") and b.engine.pnl.position() == D("0.004")
    b.stop()
    assert p.close() == 0


async def test_reconcile_says_so_too_and_books_nothing(tmp_path: Path) -> None:
    venue = FakeConnector(rules())
    await a_btc_session(tmp_path, venue)
    url = default_store_url(StoreSection(), INSTANCE, tmp_path)
    out = io.StringIO()
    code = await run_reconcile(
        harness(venue, "ETH-PYUSD").engine, url, str(journal_path_for(url, INSTANCE, tmp_path)),
        str(tmp_path / "audit.jsonl"), INSTANCE, accept_venue=True, reason="x", out=out,
    )
    assert code == EXIT_START_REFUSED and "holds 1 fill(s) of another instrument" in out.getvalue()
