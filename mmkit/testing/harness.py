"""A BACKTEST-clock harness for testing a controller through the real engine.

The harness wires a controller exactly as ``mmkit start`` does (same
trackers, executor, risk gates) around a scripted venue, so a strategy
author's unit test exercises the live code path, deterministically:

    h = Harness(MyController(MyConfig()))
    h.set_fair("60000")
    h.tick()
    assert h.quotes() == [(Side.BUY, Decimal("59940.0"), Decimal("0.01")), ...]
    h.venue.print_trade("59940.0", "0.01", aggressor=Side.SELL)
    h.tick()
    assert h.position == Decimal("0.01")

An exception raised by the controller (or a malformed ``on_tick`` result)
is raised again from :meth:`Harness.tick`, so a broken controller fails its
test instead of quietly quoting nothing. A test of error handling passes
``raise_errors=False`` and reads ``h.engine.runner.stats.controller_errors``
and ``h.engine.outcome`` instead.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from mmkit.app.assembly import RiskSettings, assemble
from mmkit.app.engine import Engine
from mmkit.clock import Clock, ClockMode
from mmkit.connector import VenueRules, load_venue_rules
from mmkit.model import NS_PER_MS, FairValue, Side, to_decimal
from mmkit.strategy import Controller
from mmkit.testing.fake_connector import FakeConnector

#: 2024-08-08 23:54:13 UTC, the start of the shared recording: any fixed value would do.
DEFAULT_START_NS = 1_723_161_253_000_000_000


class ScriptedFairValue:
    """A fair value the test sets by hand."""

    def __init__(self) -> None:
        self.value = FairValue(None, 0.0, 0)

    def set(self, price: Decimal | str | int | None, confidence: float, ts_ns: int) -> None:
        self.value = FairValue(None if price is None else to_decimal(price), confidence, ts_ns, sources=1)

    def fair(self, now_ns: int) -> FairValue:
        # A scripted price is as fresh as the tick that reads it.
        return attrs.evolve(self.value, ts=now_ns) if self.value.price is not None else self.value


class Harness:
    """One controller, one FakeConnector venue, a BACKTEST clock and the real engine in between."""

    def __init__(
        self,
        controller: Controller,
        *,
        rules: VenueRules | str = "sim",
        symbol: str | None = None,
        risk: RiskSettings | None = None,
        tick_ms: int = 100,
        start_ns: int = DEFAULT_START_NS,
        fair_from_book: bool = False,
        venue: FakeConnector | None = None,
        raise_errors: bool = True,
        max_consecutive_failures: int | None = None,
    ) -> None:
        venue_rules = load_venue_rules(rules) if isinstance(rules, str) else rules
        self.symbol = symbol or venue_rules.instruments[0].symbol
        self.clock = Clock(ClockMode.BACKTEST, tick_ns=tick_ms * NS_PER_MS, start_ns=start_ns)
        self.venue = venue or FakeConnector(venue_rules, start_ns=start_ns)
        self.scripted_fair = ScriptedFairValue()
        self.engine: Engine = assemble(
            self.clock,
            self.venue,
            self.symbol,
            controller,
            fair_source=None if fair_from_book else self.scripted_fair,
            risk=risk or RiskSettings(),
        )
        self.controller = controller
        #: Raise a controller's exception from tick() (the default); False counts it as the engine does.
        self.raise_errors = raise_errors
        if max_consecutive_failures is not None:
            self.engine.runner.max_consecutive_failures = max_consecutive_failures
        self._started = False

    # -- driving ----------------------------------------------------------

    def set_fair(self, price: Decimal | str | int | None, confidence: float = 1.0) -> None:
        self.scripted_fair.set(price, confidence, self.clock.now_ns)

    def tick(self, count: int = 1) -> None:
        """Advance simulated time by ``count`` ticks, running every iterator each time."""
        if not self._started:
            self.clock.start()
            self._started = True
            self._raise_controller_error()
        for _ in range(count):
            ts = self.clock.now_ns + self.clock.tick_ns
            self.venue.now_ns = ts
            self.clock.tick_once(ts)
            self._raise_controller_error()

    def _raise_controller_error(self) -> None:
        error = self.engine.runner.take_error()
        if error is not None and self.raise_errors:
            raise error

    def stop(self) -> int:
        """Pull quotes and tick until every cancel is confirmed; returns orders still open."""
        self.engine.pull_quotes()
        for _ in range(20):
            if self.engine.open_order_count() == 0:
                break
            self.tick()
        if self._started:
            self.clock.stop()
            self._started = False
        return self.engine.open_order_count()

    # -- looking ----------------------------------------------------------

    def quotes(self) -> list[tuple[Side, Decimal, Decimal]]:
        """What is resting at the venue (the venue's truth, not the tracker's belief), best first per side."""
        orders = [(o.side, o.price or Decimal(0), o.remaining) for o in self.venue.open_orders]
        bids = sorted((q for q in orders if q[0] is Side.BUY), key=lambda q: -q[1])
        asks = sorted((q for q in orders if q[0] is Side.SELL), key=lambda q: q[1])
        return bids + asks

    @property
    def position(self) -> Decimal:
        return self.engine.inventory.position

    @property
    def pnl(self) -> object:
        return self.engine.pnl
