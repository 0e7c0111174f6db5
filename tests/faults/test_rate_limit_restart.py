"""Issue 11, case 6: a clean stop then an immediate restart must not exceed TrueX's 300 actions a minute.

Before: the new process's rate limiter started empty, so the restart could
spend a whole window again (314 D+G in 60 s, RATE_LIMIT rejects, the breaker
opened). Now the actions sent in the last window are journaled and the
limiter starts from them. Real TrueX rules (conf/venues/truex.yml: 10/s and
300/min), the real engine, executor and limiter; the venue's own record of
every action is what is counted.
"""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

from mmkit.app.config import StoreSection
from mmkit.app.persistence import attach_persistence
from mmkit.app.persistence_iterator import Persistence
from mmkit.connector import load_venue_rules
from mmkit.model import NS_PER_S
from mmkit.testing.fake_connector import ActionKind, FakeConnector
from mmkit.testing.harness import DEFAULT_START_NS, Harness
from strategies.simple import SimpleConfig, SimpleController

INSTANCE = "ratelimit"
WINDOW_NS = 60 * NS_PER_S
LIMIT = 300


async def start(tmp_path: Path, venue: FakeConnector, start_ns: int) -> tuple[Harness, Persistence]:
    controller = SimpleController(SimpleConfig(half_spread_bps=D(10), order_size=D("0.01")))
    h = Harness(controller, rules=venue.rules, venue=venue, start_ns=start_ns)
    p = attach_persistence(h.engine, StoreSection(), INSTANCE, tmp_path)
    await h.engine.start()
    return h, p


def churn(h: Harness, seconds: int) -> None:
    """Move the fair value every tick: every tick wants both quotes replaced."""
    for i in range(seconds * 10):
        h.set_fair(D(60000) + D(i % 40) - D(20))
        h.tick()


def busiest_window(times: list[int]) -> int:
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= WINDOW_NS:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


async def test_a_restart_starts_the_limiter_from_the_actions_of_the_last_window(tmp_path: Path) -> None:
    venue = FakeConnector(load_venue_rules("truex"))
    a, pa = await start(tmp_path, venue, DEFAULT_START_NS)
    churn(a, 40)
    a.stop()
    assert pa.close() == 0
    sent_by_a = len([x for x in venue.actions if x.kind is not ActionKind.STATUS])
    assert sent_by_a > LIMIT // 2  # A used most of the minute's budget

    b, pb = await start(tmp_path, venue, a.clock.now_ns)  # immediately after
    assert len(b.engine.runner.executor.limiter.action_times()) >= sent_by_a - 5
    churn(b, 40)
    b.stop()
    assert pb.close() == 0
    order_entry = [x.ts for x in venue.actions if x.kind is not ActionKind.STATUS]
    assert len(order_entry) > LIMIT  # both runs together wanted more than a minute allows ...
    assert busiest_window(order_entry) <= LIMIT  # ... and no 60 s window saw more than 300
