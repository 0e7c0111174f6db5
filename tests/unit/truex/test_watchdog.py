"""The OE watchdog's verdicts (connectors/truex/watchdog.py): silence and unanswered actions."""

from __future__ import annotations

from connectors.truex.watchdog import SessionWatchdog
from mmkit.model import NS_PER_S

T0 = 1_000 * NS_PER_S


def test_silence_past_one_and_a_half_heartbeats_is_down() -> None:
    dog = SessionWatchdog(10)
    dog.reset(T0)
    assert dog.verdict(T0 + 15 * NS_PER_S) is None
    assert "nothing received for 15.1s" in (dog.verdict(T0 + 15 * NS_PER_S + NS_PER_S // 10) or "")
    dog.received(T0 + 15 * NS_PER_S)  # a heartbeat: alive again
    assert dog.verdict(T0 + 16 * NS_PER_S) is None


def test_unanswered_actions_count_only_until_answered() -> None:
    dog = SessionWatchdog(10, ack_timeout_ns=2 * NS_PER_S, max_unanswered=3)
    dog.reset(T0)
    for n in range(3):
        dog.sent(f"c{n}", T0)
    dog.received(T0 + NS_PER_S, ("c0", ""))  # one answered (an 8 naming its ClOrdID)
    assert dog.verdict(T0 + 3 * NS_PER_S) is None  # two left: below the limit
    dog.sent("c3", T0 + NS_PER_S)
    dog.received(T0 + 3 * NS_PER_S + 1)  # heartbeats keep coming, orders are not answered
    assert "3 order actions unanswered" in (dog.verdict(T0 + 3 * NS_PER_S + 2) or "")
    dog.reset(T0 + 4 * NS_PER_S)  # a new logon starts afresh
    assert dog.verdict(T0 + 4 * NS_PER_S) is None


def test_a_venue_answering_a_backlog_in_order_is_not_down() -> None:
    """A burst the venue answers slowly but steadily: the oldest wait past the timeout, yet answers keep coming."""
    dog = SessionWatchdog(10, ack_timeout_ns=2 * NS_PER_S, max_unanswered=3)
    dog.reset(T0)
    for n in range(2000):
        dog.sent(f"c{n}", T0)
    for n in range(2000):  # 500 answers a second, in order: the last comes 4 s after it was sent
        now = T0 + (n + 1) * NS_PER_S // 500
        dog.received(now, (f"c{n}", ""))
        assert dog.verdict(now) is None, n
    dog.sent("late", T0 + 4 * NS_PER_S)
    dog.sent("later", T0 + 4 * NS_PER_S)
    dog.sent("latest", T0 + 4 * NS_PER_S)
    dog.received(T0 + 6 * NS_PER_S)  # heartbeats only: nothing answers the three
    assert dog.verdict(T0 + 6 * NS_PER_S) is None  # the last answer is exactly 2 s old
    assert "3 order actions unanswered" in (dog.verdict(T0 + 6 * NS_PER_S + 1) or "")


def test_actions_lost_behind_a_trickle_of_later_answers_bring_the_session_down() -> None:
    """A half-dead venue: new orders vanish while later actions (cancels) are still answered every 4 s.

    Answers keep coming, but to actions sent *after* the lost ones: a queue answers in order, so
    those are lost, not queued. Before, any answer excused every late action and this ran blind.
    """
    dog = SessionWatchdog(30, ack_timeout_ns=5 * NS_PER_S, max_unanswered=3)
    dog.reset(T0)
    for n in range(3):
        dog.sent(f"lost{n}", T0)  # never answered
    verdicts = []
    for k in range(1, 30):
        now = T0 + k * 4 * NS_PER_S
        dog.sent(f"ok{k}", now - NS_PER_S)
        dog.received(now, (f"ok{k}", ""))
        verdicts.append(dog.verdict(now + 1))
    assert verdicts[0] is None  # 4 s: the lost ones are not overdue yet
    assert "3 order actions unanswered" in (verdicts[1] or "")  # 8 s: overdue, and later actions were answered


def test_one_action_lost_in_a_flowing_session_stays_below_the_limit() -> None:
    """The tracker's own pending timeout handles a single lost order; the session is not dropped for it."""
    dog = SessionWatchdog(30, ack_timeout_ns=2 * NS_PER_S, max_unanswered=3)
    dog.reset(T0)
    dog.sent("lost", T0)
    for k in range(1, 20):
        now = T0 + k * NS_PER_S
        dog.sent(f"ok{k}", now)
        dog.received(now + 1, (f"ok{k}", ""))
        assert dog.verdict(now + 2) is None, k
