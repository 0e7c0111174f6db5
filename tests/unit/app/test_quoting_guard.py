"""A connector that says why quotes must not rest on its venue (mmkit.connector.QuotingGuard) stops quoting.

The ccxt connector says so while its venue's dead man's switch is not armed
(connectors/ccxt/deadman.py). The engine reads the reason every tick before the
controller: quotes are pulled and none is placed while it holds, and quoting
resumes by itself once it clears. A connector without the method costs nothing.
"""

from __future__ import annotations

from decimal import Decimal as D

from mmkit.connector import load_venue_rules, quoting_guard
from mmkit.testing.fake_connector import FakeConnector
from mmkit.testing.harness import DEFAULT_START_NS, Harness
from strategies.simple import SimpleConfig, SimpleController


class GuardedVenue(FakeConnector):
    """A FakeConnector whose venue-side protection can be switched off by the test."""

    halt: str | None = None

    def quoting_halt_reason(self) -> str | None:
        return self.halt


def make(venue: FakeConnector) -> Harness:
    controller = SimpleController(SimpleConfig(half_spread_bps=D(10), order_size=D("0.01")))
    return Harness(controller, venue=venue)


def test_quotes_are_pulled_while_the_venue_says_they_must_not_rest_and_come_back_after() -> None:
    venue = GuardedVenue(load_venue_rules("sim"), start_ns=DEFAULT_START_NS)
    h = make(venue)
    h.set_fair("60000")
    h.tick(2)
    assert len(venue.open_orders) == 2
    venue.halt = "sim: dead man's switch last refreshed 31.0 s ago"
    h.tick(2)
    assert venue.open_orders == [], "quotes kept resting while the venue's protection was failing"
    placed = len(venue.placed)
    h.set_fair("60100")
    h.tick(3)
    assert len(venue.placed) == placed and venue.open_orders == []
    assert h.engine.runner.stats.halted_ticks >= 5
    venue.halt = None
    h.tick(2)
    assert len(venue.open_orders) == 2


def test_a_connector_without_the_method_adds_no_gate() -> None:
    plain = FakeConnector(load_venue_rules("sim"), start_ns=DEFAULT_START_NS)
    assert quoting_guard(plain) is None
    assert make(plain).engine.runner.gates == []
    guarded = GuardedVenue(load_venue_rules("sim"), start_ns=DEFAULT_START_NS)
    assert len(make(guarded).engine.runner.gates) == 1
