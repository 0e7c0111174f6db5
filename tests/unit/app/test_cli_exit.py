"""``mmkit backtest`` run as the process's command spares the interpreter's exit its collector passes.

The freeze (mmkit.app.cli._spare_the_exit_collection) must happen only when
``main`` reads the process's own command line and for a batch command: a
library caller passing ``argv`` keeps a process as it was.
"""

from __future__ import annotations

import argparse
import gc
import sys

import pytest

from mmkit.app import backtest_cmd, cli


@pytest.fixture
def freezes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    monkeypatch.setattr(gc, "freeze", lambda: calls.append(1))  # never freeze the test process itself

    def fake_backtest(args: argparse.Namespace) -> int:
        assert calls == []  # not before the command has done its work
        return 3

    monkeypatch.setattr(backtest_cmd, "backtest_command", fake_backtest)
    return calls


def test_the_backtest_command_line_of_the_process_freezes_after_the_command(
    freezes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["mmkit", "backtest", "x.yml", "--data", "d", "--no-progress"])
    assert cli.main() == 3
    assert freezes == [1]


def test_a_caller_passing_argv_gets_no_freeze(freezes: list[int]) -> None:
    assert cli.main(["backtest", "x.yml", "--data", "d", "--no-progress"]) == 3
    assert freezes == []


def test_other_commands_get_no_freeze(freezes: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["mmkit", "check", "no-such-config.yml"])
    cli.main()  # fails on the missing config: what matters is that it did not freeze
    assert freezes == []
