"""A market claim lost mid-run halts quoting for good (mmkit.app.market_claim.MarketClaimGate).

Lost: our lock file was deleted (a /tmp cleaner) and another instance, in a real other process, locked the new
file before our next check. From then on the other instance may quote the same account and symbol, so this
engine pulls its quotes, quotes no more and ends LEDGER_HALT.
"""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from mmkit.app.market_claim import MarketClaimGate
from mmkit.app.outcome import ProblemKind
from mmkit.store.market_lock import MarketKey, MarketLock
from mmkit.testing.harness import Harness
from strategies.simple import SimpleConfig, SimpleController

REPO = Path(__file__).resolve().parents[3]
KEY = MarketKey("sim", "PartyID=DESK1", "BTC-USD")


def another_instance_takes_the_claim(directory: Path) -> subprocess.Popen[str]:
    """Delete our lock file (a /tmp cleaner) and have a real other process lock the new one; it holds until killed."""
    (directory / KEY.file_name()).unlink()
    script = ("import sys; from pathlib import Path; from mmkit.store.market_lock import MarketKey, MarketLock\n"
              "MarketLock([MarketKey('sim', 'PartyID=DESK1', 'BTC-USD')], 'theirs', directory=Path(sys.argv[1]))"
              ".acquire()\nprint('holding', flush=True)\nsys.stdin.read()")
    other = subprocess.Popen([sys.executable, "-c", script, str(directory)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert other.stdout is not None and other.stdout.readline().strip() == "holding"
    return other


def quoting_under_a_claim(directory: Path, hedge: Any = None) -> tuple[Harness, MarketLock, MarketClaimGate]:
    """An engine quoting for three ticks while it holds the claim on KEY, its gate checking on every tick (and
    holding ``hedge``, a HedgeExecutor, when the claim is lost)."""
    h = Harness(SimpleController(SimpleConfig(half_spread_bps=D(10), order_size=D("0.01"))))
    lock = MarketLock([KEY], "mine", directory=directory)
    lock.acquire()
    gate = MarketClaimGate(lock, h.engine, period_s=0.0, hedge=hedge)
    h.engine.runner.add_gate(gate, "market claim")
    h.set_fair("60000")
    h.tick(3)
    return h, lock, gate


def test_a_claim_taken_by_another_instance_halts_quoting_for_good(tmp_path: Path) -> None:
    h, lock, gate = quoting_under_a_claim(tmp_path)
    assert h.venue.open_orders and gate.reason is None  # quoting while the claim holds

    other = another_instance_takes_the_claim(tmp_path)
    try:
        h.tick(3)
        assert gate.reason is not None and gate.reason.startswith("market lock lost:")
        assert "instance theirs" in gate.reason
        assert [p.kind for p in h.engine.outcome.problems] == [ProblemKind.LEDGER_HALT]
        assert not h.venue.open_orders, "quotes left resting after the claim was lost"
        h.tick(5)
        assert not h.venue.open_orders and len(h.engine.outcome.problems) == 1  # for good, recorded once
    finally:
        other.kill()
        other.wait(timeout=30)
        lock.release()


def test_the_shipped_truex_config_claims_its_session_party_and_key_and_paper_claims_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """What `mmkit start strategies/truex_btc_pyusd.yml` claims; `--paper` (the venue simulated in the process,
    a new account each run) claims nothing."""
    from mmkit.app.build import build
    from mmkit.app.config import ConfigOverrides, load_engine_config
    from mmkit.app.market_claim import market_keys
    from mmkit.app.venue_account import key_fingerprint
    from mmkit.clock import Clock, ClockMode

    monkeypatch.setenv("TRUEX_API_KEY", "desk-key")
    monkeypatch.setenv("TRUEX_SECRET_KEY", "s")
    config = str(REPO / "strategies" / "truex_btc_pyusd.yml")
    live = ConfigOverrides(sim_hedge=True, output_dir=str(tmp_path))
    built = build(load_engine_config(config, live), Clock(ClockMode.REALTIME))
    identities = ["SenderCompID=MMKIT_OE/TargetCompID=TRUEX_UAT_OE", "PartyID=MMKIT_CLIENT",
                  key_fingerprint("desk-key")]
    assert market_keys(built) == [MarketKey("truex", i, "BTC-PYUSD") for i in identities] + [
        MarketKey("truex", i, "BTC-PYUSD", exchange=True) for i in identities  # on the exchange, whatever its name
    ]  # the hedge venue is not claimed (mmkit.app.market_claim says why)
    paper = ConfigOverrides(paper=True, sim_hedge=True, output_dir=str(tmp_path))
    assert market_keys(build(load_engine_config(config, paper), Clock(ClockMode.REALTIME))) == []


def test_after_the_claim_is_lost_our_stop_cancels_our_orders_only(tmp_path: Path) -> None:
    """The instance that took the market has orders on the same symbol; our halt and our stop must not cancel them.

    Before: the halt's and the stop's cancel-all went to the venue for the whole symbol (``cancel_all``), so the
    instance now holding the market lost its quotes, and our stop reported its orders as ours left open
    (NOT_FLAT) for the whole of the 10 s it waited.
    """
    import asyncio

    from mmkit.model import OrderRequest, Side
    from mmkit.testing.fake_connector import ActionKind

    h, lock, gate = quoting_under_a_claim(tmp_path)
    ours = {o.client_id for o in h.venue.open_orders}
    assert ours

    other = another_instance_takes_the_claim(tmp_path)
    try:
        symbol = h.engine.symbol
        h.venue.place(OrderRequest("theirs1", h.venue.venue, symbol, Side.BUY, D("0.5"), D(59000)))
        h.tick(3)
        assert gate.reason is not None
        h.engine.pull_quotes()  # a kill or a halt after the loss takes this path too
        h.tick(2)
        assert not asyncio.run(h.engine.confirm_flat_book(timeout_s=5.0)), "their order counted as ours"
        assert [o.client_id for o in h.venue.open_orders] == ["theirs1"]
        assert not any(a.kind is ActionKind.CANCEL_ALL for a in h.venue.actions)
        assert {a.client_id for a in h.venue.actions if a.kind is ActionKind.CANCEL} == ours
    finally:
        other.kill()
        other.wait(timeout=30)
        lock.release()


def test_a_lost_claim_stops_hedging_too_loudly_and_for_good(tmp_path: Path) -> None:
    """The claim covers the hedge venue where its dead man's switch is per key (mmkit.app.market_claim): once it
    is lost, another instance may quote or hedge on that key, and this run's books are not its own alone. Before:
    the gate halted quoting only; the hedger went on sending hedges on a position it can no longer trust."""
    from mmkit.risk.hedge import STOP_HELD
    from tests.unit.risk.test_hedge_gate import Rig

    rig = Rig("3")  # past hedge_threshold 2: the hedger sells 3 on the hedge venue
    h, lock, gate = quoting_under_a_claim(tmp_path, rig.hedger)
    rig.hedger.tick(0)
    working = {o.client_id for o in rig.fake.open_orders}
    assert working and rig.hedger.stop_reason is None

    other = another_instance_takes_the_claim(tmp_path)
    try:
        h.tick(3)
        assert gate.reason is not None
        stop = rig.hedger.stop_reason
        assert stop is not None and stop.startswith(f"{STOP_HELD}: market lock lost:"), stop
        assert rig.problems[-1][0] == "hedge_stopped" and "market lock lost" in rig.problems[-1][1]["reason"]
        rig.hedger.tick(1_000_000)
        assert not rig.fake.open_orders, "hedges left working after the claim was lost"
        placed = len(rig.fake.placed)
        rig.hedger.request_flatten("operator")
        for ms in range(2, 10_000, 500):  # past the limit timeout: no market fallback either
            rig.hedger.tick(ms * 1_000_000)
        assert rig.hedger.flatten(10_000_000_000, rig.inventory.position) == rig.inventory.position
        assert len(rig.fake.placed) == placed, "hedges sent after the claim was lost"
        assert not rig.hedger.reset_by_hand() and rig.hedger.stop_reason == stop  # for good
        assert [p.kind for p in h.engine.outcome.problems] == [ProblemKind.LEDGER_HALT]
    finally:
        other.kill()
        other.wait(timeout=30)
        lock.release()


def test_a_lost_claim_leaves_the_keys_dead_mans_switch_to_the_new_holder(tmp_path: Path) -> None:
    """Where the venue's dead man's switch is per API key, after a lost claim it guards the new holder's quotes:
    the gate tells such a connector to stop refreshing it and not to disarm it at stop (yield_shared_switch;
    tests/integration/ccxt/test_dead_man.py has the real connector against the Kraken mock). A venue whose
    switch is not per key is left alone. Before: our refreshes kept the new holder's quotes alive if it hung,
    and our clean stop switched its protection off."""
    h, lock, gate = quoting_under_a_claim(tmp_path)
    left: list[str] = []
    h.venue.account_wide_claim = "the dead man's switch covers the whole API key"  # type: ignore[attr-defined]
    h.venue.yield_shared_switch = left.append  # type: ignore[attr-defined]
    other = another_instance_takes_the_claim(tmp_path)
    try:
        h.tick(3)
        assert gate.reason is not None
        assert left == [gate.reason], "the per-key switch was not left to the new holder (exactly once)"
    finally:
        other.kill()
        other.wait(timeout=30)
        lock.release()


def test_a_lost_claim_leaves_a_per_symbol_venues_connector_alone(tmp_path: Path) -> None:
    h, lock, gate = quoting_under_a_claim(tmp_path)
    left: list[str] = []
    h.venue.account_wide_claim = None  # type: ignore[attr-defined]
    h.venue.yield_shared_switch = left.append  # type: ignore[attr-defined]
    other = another_instance_takes_the_claim(tmp_path)
    try:
        h.tick(3)
        assert gate.reason is not None and left == []
    finally:
        other.kill()
        other.wait(timeout=30)
        lock.release()
