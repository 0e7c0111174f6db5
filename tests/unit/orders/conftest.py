"""Fixtures of the order tracker tests: a fake venue that acks nothing by itself, and a tracker with short ids."""

from __future__ import annotations

import pytest

from mmkit.connector import load_venue_rules
from mmkit.orders.ids import ClientIdGenerator, Sequencer
from mmkit.orders.tracker import ClientOrderTracker
from mmkit.testing.fake_connector import FakeConnector


@pytest.fixture
def fake() -> FakeConnector:
    return FakeConnector(load_venue_rules("sim"), auto_ack=False)


@pytest.fixture
def tracker(fake: FakeConnector) -> ClientOrderTracker:
    return ClientOrderTracker(fake, id_generator=ClientIdGenerator("t", Sequencer(iter(range(10**6)).__next__)))
