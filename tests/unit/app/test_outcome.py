"""The run outcome: problems recorded once with a count, and the most severe decides the exit code."""

from mmkit.app.outcome import (
    EXIT_ENGINE_FAILURE,
    EXIT_LEDGER_HALT,
    EXIT_NOT_FLAT,
    EXIT_NOT_PERSISTED,
    EXIT_OK,
    ProblemKind,
    RunOutcome,
)


def test_clean_run_exits_zero():
    outcome = RunOutcome()
    assert outcome.ok
    assert outcome.exit_code() == EXIT_OK
    assert outcome.as_report() == []


def test_repeated_problem_is_kept_once_with_its_count():
    outcome = RunOutcome()
    for ts in range(5):
        outcome.record(ProblemKind.ENGINE_FAILURE, "controller Foo raised ValueError", ts)
    assert len(outcome.problems) == 1
    (row,) = outcome.as_report()
    assert row["count"] == 5
    assert row["ts_ns"] == 0  # the first time it happened
    assert outcome.exit_code() == EXIT_ENGINE_FAILURE


def test_most_severe_kind_wins_whatever_the_order():
    outcome = RunOutcome()
    outcome.record(ProblemKind.ENGINE_FAILURE, "a")
    outcome.record(ProblemKind.NOT_FLAT, "b")
    assert outcome.exit_code() == EXIT_NOT_FLAT
    outcome.record(ProblemKind.LEDGER_HALT, "c")
    assert outcome.exit_code() == EXIT_LEDGER_HALT
    outcome.record(ProblemKind.NOT_PERSISTED, "d")
    assert outcome.exit_code() == EXIT_NOT_PERSISTED
