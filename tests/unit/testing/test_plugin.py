"""The pytest fixtures a strategy author gets from the mmkit plugin."""

from __future__ import annotations

from decimal import Decimal

from mmkit.model import Side
from strategies.simple import SimpleConfig, SimpleController


def test_harness_fixture_builds_a_working_engine(mmkit_harness) -> None:
    h = mmkit_harness(SimpleController(SimpleConfig(half_spread_bps=Decimal(10))))
    h.set_fair("50000")
    h.tick()
    assert [q[0] for q in h.quotes()] == [Side.BUY, Side.SELL]


def test_fake_venue_fixture_uses_the_sim_rules(fake_venue, sim_rules) -> None:
    assert fake_venue.rules is sim_rules
    assert sim_rules.instrument("BTC-PYUSD").tick_for(Decimal(60000)) == Decimal("0.10")
