"""Open orders are re-synced with the venue periodically, not only at start and reconnect (issue 11)."""

from __future__ import annotations

from decimal import Decimal as D

import attrs

from mmkit.connector import load_venue_rules
from mmkit.model import NS_PER_S, Fill, OrderRequest, Side
from mmkit.orders.tracker import ClientOrderTracker
from mmkit.orders.validation import LedgerAlarm
from mmkit.stream import SYNTHETIC_PREFIX, UserStreamTracker
from mmkit.testing.fake_connector import FakeConnector

T0 = 1_000 * NS_PER_S


def rig(interval_s: int = 30) -> tuple[FakeConnector, ClientOrderTracker, UserStreamTracker, list[LedgerAlarm]]:
    rules = attrs.evolve(load_venue_rules("sim"), resync_interval_ns=interval_s * NS_PER_S)
    venue = FakeConnector(rules, start_ns=T0)
    tracker = ClientOrderTracker(venue)
    stream = UserStreamTracker(tracker)
    alarms: list[LedgerAlarm] = []
    stream.add_alarm_listener(alarms.append)
    return venue, tracker, stream, alarms


def test_a_fill_that_never_arrived_surfaces_within_one_interval() -> None:
    venue, tracker, stream, alarms = rig()
    tracker.submit(OrderRequest("c1", "sim", "BTC-PYUSD", Side.BUY, D("0.01"), D("59990")), T0)
    tracker.tick(T0)
    stream.process(venue.drain())
    venue.fill("c1", "0.004")
    lost = [e for e in venue.drain() if not isinstance(e, Fill)]  # the fill's report is lost on the way
    stream.process(lost)
    tracker.tick(T0 + 29 * NS_PER_S)
    assert venue.status_requests == []  # not yet
    tracker.tick(T0 + 31 * NS_PER_S)
    assert venue.status_requests == ["c1"] and tracker.resyncs == 1
    stream.process(venue.drain())
    assert tracker.get("c1").filled_qty == D("0.004")  # type: ignore[union-attr]
    assert alarms and "fills missing" in alarms[0].reason and SYNTHETIC_PREFIX in alarms[0].reason


def test_zero_interval_disables_it() -> None:
    venue, tracker, stream, _ = rig(interval_s=0)
    tracker.submit(OrderRequest("c1", "sim", "BTC-PYUSD", Side.BUY, D("0.01"), D("59990")), T0)
    stream.process(venue.drain())
    for minute in range(1, 5):
        tracker.tick(T0 + minute * 60 * NS_PER_S)
    assert venue.status_requests == []
