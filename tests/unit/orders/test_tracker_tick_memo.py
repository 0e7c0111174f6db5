"""ClientOrderTracker.tick skips its pending-order scan until a query comes due: each input it rests on.

The scan is skipped while the tracker's version and ``pending_timeout_ns``
are those of the last scan and the time it noted for the earliest due query
has not come. Each test below changes one of those alone after a scan that
found nothing to ask, and checks that the status query is still sent; the
last one replays a seeded walk against a tracker that scans every tick.
"""

from __future__ import annotations

import random
from decimal import Decimal

from mmkit.model import NS_PER_S, OrderAccepted, OrderRequest, Side
from mmkit.orders.ids import ClientIdGenerator, Sequencer
from mmkit.orders.tracker import ClientOrderTracker
from mmkit.testing.fake_connector import FakeConnector

SYM = "BTC-PYUSD"
TIMEOUT = 2 * NS_PER_S  # conf/venues/sim.yml pending_timeout_s


def req(tracker: ClientOrderTracker, price: str = "59990") -> OrderRequest:
    return OrderRequest(tracker.new_client_id(), "sim", SYM, Side.BUY, Decimal("0.01"), Decimal(price), post_only=True)


def test_an_order_submitted_after_an_empty_scan_is_queried_when_due(
    fake: FakeConnector, tracker: ClientOrderTracker
) -> None:
    tracker.tick(0)  # nothing pending: no query comes due
    order = tracker.submit(req(tracker), now_ns=0)  # the version moves
    tracker.tick(TIMEOUT)
    assert fake.status_requests == [order.client_id]


def test_time_alone_brings_the_noted_query_due(fake: FakeConnector, tracker: ClientOrderTracker) -> None:
    order = tracker.submit(req(tracker), now_ns=0)
    tracker.tick(TIMEOUT - 1)  # scanned: due at TIMEOUT
    tracker.tick(TIMEOUT - 1)  # skipped
    assert fake.status_requests == []
    tracker.tick(TIMEOUT)
    assert fake.status_requests == [order.client_id]
    tracker.tick(2 * TIMEOUT - 1)
    tracker.tick(2 * TIMEOUT)  # backoff: the next one at 2T
    assert fake.status_requests == [order.client_id] * 2


def test_a_shorter_timeout_is_applied_at_once(fake: FakeConnector, tracker: ClientOrderTracker) -> None:
    order = tracker.submit(req(tracker), now_ns=0)
    tracker.tick(1)  # scanned: due at TIMEOUT
    tracker.pending_timeout_ns = 10
    tracker.tick(10)
    assert fake.status_requests == [order.client_id]


def test_an_order_that_leaves_pending_is_not_queried(fake: FakeConnector, tracker: ClientOrderTracker) -> None:
    order = tracker.submit(req(tracker), now_ns=0)
    tracker.tick(1)  # scanned: due at TIMEOUT
    tracker.on_event(OrderAccepted("sim", order.client_id, "V1", 1, 1))
    tracker.tick(TIMEOUT)
    assert fake.status_requests == []


def _tracker(fake: FakeConnector) -> ClientOrderTracker:
    return ClientOrderTracker(fake, id_generator=ClientIdGenerator("t", Sequencer(iter(range(10**6)).__next__)))


def test_the_skipping_tracker_asks_what_a_scanning_one_asks_over_a_walk() -> None:
    from mmkit.connector import load_venue_rules

    rng = random.Random(11)
    fakes = [FakeConnector(load_venue_rules("sim"), auto_ack=False) for _ in range(2)]
    memo, full = (_tracker(f) for f in fakes)
    now = 0
    for step in range(4000):
        now += rng.choice((NS_PER_S // 10, NS_PER_S // 2, TIMEOUT))
        roll = rng.random()
        for tracker in (memo, full):
            if roll < 0.1:
                tracker.submit(req(tracker, str(59000 + step)), now_ns=now)
            elif roll < 0.2 and tracker.open_orders():
                target = tracker.open_orders()[step % len(tracker.open_orders())]
                if target.state.is_pending:
                    tracker.on_event(OrderAccepted("sim", target.client_id, f"V{step}", now, now))
                else:
                    tracker.cancel(target.client_id, now)
        full._scanned_version = -1  # the reference scans every tick
        memo.tick(now)
        full.tick(now)
        assert fakes[0].status_requests == fakes[1].status_requests, step
    assert memo.status_queries == full.status_queries > 10
