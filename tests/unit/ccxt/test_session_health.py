"""SessionHealth: the newest-sent call whose outcome is known decides up or down.

The oracle in ``test_random_interleavings_follow_the_newest_sent_outcome`` is
that sentence, written independently of the class's two watermarks.
"""

from __future__ import annotations

import random

import pytest

from connectors.ccxt.errors import ccxt_exc, classify
from connectors.ccxt.session_health import SessionHealth, Verdict


def up_session() -> SessionHealth:
    health = SessionHealth()
    health.declare_up()
    return health


def test_a_new_health_is_down_until_an_answer_or_a_declared_start() -> None:
    health = SessionHealth()
    assert not health.up
    assert health.answered(health.send()) is Verdict.WENT_UP
    assert health.up
    assert up_session().up


def test_a_stale_failure_after_recovery_is_ignored_and_counted() -> None:
    health = up_session()
    held = health.send()  # sent while the venue is down; its 503 comes back last
    later = health.send()
    assert health.failed(later) is Verdict.WENT_DOWN
    probe = health.send()
    assert health.answered(probe) is Verdict.WENT_UP
    assert health.failed(held) is Verdict.STALE
    assert health.up
    assert health.stale_failures == 1


def test_a_fresh_failure_after_recovery_still_takes_it_down() -> None:
    health = up_session()
    assert health.failed(health.send()) is Verdict.WENT_DOWN
    assert health.answered(health.send()) is Verdict.WENT_UP
    assert health.failed(health.send()) is Verdict.WENT_DOWN
    assert not health.up
    assert health.stale_failures == 0


def test_concurrent_calls_completing_out_of_order() -> None:
    """Four calls in flight; outcomes arrive 4, 2, 1, 3. Each is judged against the newest-sent one known."""
    health = up_session()
    one, two, three, four = (health.send() for _ in range(4))
    assert health.failed(four) is Verdict.WENT_DOWN  # the newest call found no venue
    assert health.answered(two) is Verdict.STALE  # an older answer must not bring it back up
    assert health.failed(one) is Verdict.STALE
    assert not health.up
    assert health.answered(three) is Verdict.STALE  # still older than four's failure
    assert not health.up
    five = health.send()
    assert health.answered(five) is Verdict.WENT_UP
    assert (health.stale_failures, health.stale_answers) == (1, 2)


def test_agreeing_fresh_news_changes_nothing() -> None:
    health = up_session()
    assert health.answered(health.send()) is Verdict.UNCHANGED
    first, second = health.send(), health.send()
    assert health.failed(first) is Verdict.WENT_DOWN
    assert health.failed(second) is Verdict.UNCHANGED
    assert (health.stale_failures, health.stale_answers) == (0, 0)


@pytest.mark.parametrize(
    "exc",
    [
        ccxt_exc.InsufficientFunds("EOrder:Insufficient funds"),
        ccxt_exc.OrderNotFound("EOrder:Unknown order"),
        ccxt_exc.InvalidOrder("EOrder:Invalid price"),
        ccxt_exc.AuthenticationError("EAPI:Invalid key"),
        ccxt_exc.RateLimitExceeded("EAPI:Rate limit exceeded"),  # "too fast" is an answer too
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_the_venue_saying_no_is_proof_of_life(exc: Exception) -> None:
    health = up_session()
    down_at = health.send()
    assert health.outcome(down_at, classify(ccxt_exc.ExchangeNotAvailable("503 Service Unavailable"))) \
        is Verdict.WENT_DOWN
    assert health.outcome(health.send(), classify(exc)) is Verdict.WENT_UP
    assert health.up


@pytest.mark.parametrize(
    "exc", [ccxt_exc.ExchangeNotAvailable("503"), ccxt_exc.RequestTimeout("timed out"),
            ccxt_exc.NetworkError("reset"), RuntimeError("a bug inside ccxt")],
    ids=lambda exc: type(exc).__name__,
)
def test_no_answer_is_a_failure(exc: Exception) -> None:
    health = up_session()
    assert health.outcome(health.send(), classify(exc)) is Verdict.WENT_DOWN
    assert health.outcome(health.send(), None) is Verdict.WENT_UP


def test_a_declared_start_makes_everything_sent_before_it_stale() -> None:
    health = SessionHealth()
    old_fail, old_answer = health.send(), health.send()
    health.declare_up()
    assert health.failed(old_fail) is Verdict.STALE
    assert health.up
    health.declare_down()
    assert health.answered(old_answer) is Verdict.STALE
    assert not health.up


def test_a_send_number_never_handed_out_is_a_bug_said_out_loud() -> None:
    health = SessionHealth()
    with pytest.raises(ValueError, match="never handed out"):
        health.answered(1)
    health.send()
    with pytest.raises(ValueError, match="never handed out"):
        health.failed(0)


@pytest.mark.parametrize("seed", range(200))
def test_random_interleavings_follow_the_newest_sent_outcome(seed: int) -> None:
    """Calls are sent and completed in random order; after each outcome the state is that of the newest-sent
    call whose outcome is known (or the declared start, if none since)."""
    rng = random.Random(seed)
    health = up_session()
    in_flight: list[int] = []
    known: dict[int, bool] = {}  # send number -> answered
    for _ in range(60):
        if not in_flight or rng.random() < 0.45:
            in_flight.append(health.send())
            continue
        sent = in_flight.pop(rng.randrange(len(in_flight)))
        answered = rng.random() < 0.5
        before = health.up
        verdict = health.answered(sent) if answered else health.failed(sent)
        newest_before = max(known, default=0)
        known[sent] = answered
        expected = known[max(known)]
        assert health.up is expected, (seed, sent, known)
        if sent < newest_before:
            assert verdict is Verdict.STALE and health.up is before
        elif expected is not before:
            assert verdict is (Verdict.WENT_UP if expected else Verdict.WENT_DOWN)
        else:
            assert verdict is Verdict.UNCHANGED
