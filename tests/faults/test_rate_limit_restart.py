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

from loguru import logger

from mmkit.app.config import StoreSection
from mmkit.app.persistence import attach_persistence
from mmkit.app.persistence_iterator import Persistence
from mmkit.connector import load_venue_rules
from mmkit.model import NS_PER_MS, NS_PER_S
from mmkit.store.journal import Journal, journal_path_for
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


def journal_actions(tmp_path: Path, times: list[int]) -> None:
    """What a previous process journaled (a clean stop's checkpoint carries the same ``actions`` lines)."""
    journal = Journal(journal_path_for(f"sqlite:///{tmp_path / 'store' / f'{INSTANCE}.sqlite'}", INSTANCE, tmp_path),
                      instance=INSTANCE)
    journal.open()
    journal.append_actions(times)
    journal.close()


def sent(venue: FakeConnector) -> list[int]:
    return [x.ts for x in venue.actions if x.kind is not ActionKind.STATUS]


async def test_journaled_action_times_in_the_future_are_counted_as_now_not_trusted(tmp_path: Path) -> None:
    """The clock went back an hour (or the journal is corrupt): 200 actions of the last half minute, and 5
    stamped an hour ahead. Before: the limiter took the future time as "now", dropped the 200 as outside
    the window (the restart could send 240 at once: 445 in one minute) and stamped every later action an
    hour ahead, so its own window never emptied (placing blocked for the hour)."""
    now = DEFAULT_START_NS
    recent = [now - 30 * NS_PER_S + i * 150 * NS_PER_S // 1000 for i in range(200)]
    future = [now + 3600 * NS_PER_S + i for i in range(5)]
    journal_actions(tmp_path, recent + future)
    venue = FakeConnector(load_venue_rules("truex"))
    messages: list[str] = []
    sink = logger.add(lambda m: messages.append(str(m)), level="WARNING")
    try:
        b, pb = await start(tmp_path, venue, now)
    finally:
        logger.remove(sink)
    limiter = b.engine.runner.executor.limiter
    assert len(limiter.action_times()) == 205  # all counted: the future five as sent now
    assert max(limiter.action_times()) == now
    clamped = [m for m in messages if "after now" in m]
    assert len(clamped) == 1 and "5 journaled action time(s)" in clamped[0], messages  # said once
    churn(b, 150)
    b.stop()
    assert pb.close() == 0
    ours = sent(venue)
    assert busiest_window([*recent, *[now] * 5, *ours]) <= LIMIT  # never more than the venue allows
    assert any(t > now + 120 * NS_PER_S for t in ours)  # and not blocked for the hour


async def test_a_journal_with_a_full_window_still_blocks_with_some_of_it_in_the_future(tmp_path: Path) -> None:
    """300 actions (TrueX's minute) journaled, half of them stamped in the future: the restart sends no
    place or replace until the window has room for one, as if all 300 were sent at the latest now."""
    now = DEFAULT_START_NS
    past = [now - 20 * NS_PER_S + i * 100 * NS_PER_MS for i in range(150)]
    future = [now + 600 * NS_PER_S + i * NS_PER_S for i in range(150)]
    journal_actions(tmp_path, past + future)
    venue = FakeConnector(load_venue_rules("truex"))
    b, pb = await start(tmp_path, venue, now)
    churn(b, 90)
    b.stop()
    assert pb.close() == 0
    ours = sent(venue)
    assert ours, "never sent anything"
    assert busiest_window([*past, *[now] * 150, *ours]) <= LIMIT
    assert min(ours) >= now + 40 * NS_PER_S  # nothing until the clamped 150 (at "now") and the past ones left room
