"""How a run ended: the documented exit codes and the problems that decide them.

DESIGN.md §3b: a trading system that is wrong must be loud. Every part that
finds something a person must know about at the end of a run (a controller
that keeps failing, a fill that cannot be true, a record that was not
persisted, orders left open) records a :class:`Problem` here, through the
app layer's wiring. The commands (`mmkit start`, `mmkit backtest`, ...) turn
the problems into one exit code with :meth:`RunOutcome.exit_code`, and the
final report and status block list them. One place, so that no command can
forget a kind of failure and exit 0.

Exit codes (documented in docs/operations.md; keep both in step):

====  ======================  =====================================================
code  name                    meaning
====  ======================  =====================================================
0     EXIT_OK                 clean run, clean stop, nothing to report
1     EXIT_NOT_FLAT           stop could not confirm that nothing is open at the venue
2     EXIT_USAGE              a person's mistake: config, path, secret, recording
3     EXIT_START_REFUSED      refused to start: recovery/reconciliation failed, the store
                              cannot be written, the quoting venue cannot be reached
4     EXIT_ENGINE_FAILURE     the controller or an iterator failed during the run
5     EXIT_LEDGER_HALT        quoting halted because the ledger was in doubt (quarantined or
                              conflicting fill, venue reports fills we do not hold, or
                              less filled than the ledger booked)
6     EXIT_NOT_PERSISTED      something the run did was not made durable (journal/store)
7     EXIT_DATA_UNHEALTHY     a backtest's data was not good enough to trust its result
====  ======================  =====================================================

When several problems were recorded the most severe code wins, in this
order: NOT_PERSISTED, LEDGER_HALT, NOT_FLAT, ENGINE_FAILURE, DATA_UNHEALTHY.
Losing a record or doubting the ledger outranks everything else, because it
is what an operator must act on first.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Callable

import attrs

EXIT_OK = 0
EXIT_NOT_FLAT = 1
EXIT_USAGE = 2
EXIT_START_REFUSED = 3
EXIT_ENGINE_FAILURE = 4
EXIT_LEDGER_HALT = 5
EXIT_NOT_PERSISTED = 6
EXIT_DATA_UNHEALTHY = 7


class ProblemKind(enum.Enum):
    """What kind of thing went wrong; each maps to one exit code."""

    NOT_FLAT = EXIT_NOT_FLAT
    ENGINE_FAILURE = EXIT_ENGINE_FAILURE
    LEDGER_HALT = EXIT_LEDGER_HALT
    NOT_PERSISTED = EXIT_NOT_PERSISTED
    DATA_UNHEALTHY = EXIT_DATA_UNHEALTHY


#: Most severe first: the exit code of a run is the first kind in this list it recorded.
SEVERITY: tuple[ProblemKind, ...] = (
    ProblemKind.NOT_PERSISTED,
    ProblemKind.LEDGER_HALT,
    ProblemKind.NOT_FLAT,
    ProblemKind.ENGINE_FAILURE,
    ProblemKind.DATA_UNHEALTHY,
)


@attrs.frozen
class Problem:
    """One thing that went wrong: its kind, a sentence a person can act on, and when (ns)."""

    kind: ProblemKind
    reason: str
    ts_ns: int = 0

    def as_dict(self) -> dict[str, object]:
        return {"kind": self.kind.name.lower(), "reason": self.reason, "ts_ns": self.ts_ns,
                "exit_code": self.kind.value}


@attrs.define
class RunOutcome:
    """The problems of one run, in the order they were recorded.

    A repeated problem (same kind and reason) is kept once with a count, so a
    failure that repeats every tick does not grow the list without bound.
    """

    problems: list[Problem] = attrs.field(factory=list)
    counts: dict[tuple[ProblemKind, str], int] = attrs.field(factory=dict)
    #: Called once per new problem (the console's alerts); a listener that raises is ignored.
    listeners: list[Callable[[Problem], None]] = attrs.field(factory=list, eq=False, repr=False)

    def record(self, kind: ProblemKind, reason: str, ts_ns: int = 0) -> None:
        key = (kind, reason)
        if key not in self.counts:
            problem = Problem(kind, reason, ts_ns)
            self.problems.append(problem)
            self.counts[key] = 0
            for listener in self.listeners:
                with contextlib.suppress(Exception):
                    listener(problem)
        self.counts[key] += 1

    def has(self, kind: ProblemKind) -> bool:
        return any(p.kind is kind for p in self.problems)

    @property
    def ok(self) -> bool:
        return not self.problems

    def exit_code(self) -> int:
        """The documented exit code: 0 when nothing was recorded, else the most severe kind's."""
        for kind in SEVERITY:
            if self.has(kind):
                return kind.value
        return EXIT_OK

    def as_report(self) -> list[dict[str, object]]:
        """For report.json and the status block: each problem with how often it was recorded."""
        return [{**p.as_dict(), "count": self.counts[(p.kind, p.reason)]} for p in self.problems]
