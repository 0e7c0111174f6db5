"""pytest fixtures for strategy authors (registered as the ``mmkit`` pytest plugin).

Installed with the package, so any project's tests can use them:

    def test_my_controller(mmkit_harness):
        h = mmkit_harness(MyController(MyConfig()))
        h.set_fair("60000")
        h.tick()
        assert h.quotes()
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mmkit.connector import VenueRules, load_venue_rules
from mmkit.strategy import Controller
from mmkit.testing.fake_connector import FakeConnector
from mmkit.testing.harness import Harness


@pytest.fixture
def sim_rules() -> VenueRules:
    """The simulated venue's rules (TrueX increments and limits), from conf/venues/sim.yml."""
    return load_venue_rules("sim")


@pytest.fixture
def fake_venue(sim_rules: VenueRules) -> FakeConnector:
    """A scripted in-memory venue implementing the Connector protocol."""
    return FakeConnector(sim_rules)


@pytest.fixture
def mmkit_harness() -> Iterator[Callable[..., Harness]]:
    """A factory: ``mmkit_harness(controller, **options)`` → a Harness; each is stopped after the test."""
    made: list[Harness] = []

    def make(controller: Controller, **options: Any) -> Harness:
        harness = Harness(controller, **options)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        harness.stop()
