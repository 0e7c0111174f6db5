"""Logging set deliberately (issue 13, item 2): no variable values, repeats folded, simulated time, JSON."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger

from mmkit.app import logs


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    yield
    logs.use_simulated_time(None)
    logger.remove()
    logger.configure(patcher=lambda record: None)
    logger.add(sys.stderr)  # loguru's default sink, as other tests expect it


def fail_once(secret_value: str) -> None:
    api_secret = secret_value  # a local that diagnose=True would print  # noqa: F841
    try:
        raise RuntimeError("model blew up")
    except RuntimeError:
        logger.opt(exception=True).error("controller failed")


def test_a_repeated_error_is_one_traceback_then_counts(tmp_path: Path) -> None:
    terminal = io.StringIO()
    logs.setup(stream=terminal)
    log_file = tmp_path / "run.log"
    logs.add_file(log_file)
    for _ in range(25):
        fail_once("hunter2-SECRET")
    logs.flush_repeats()
    text = log_file.read_text()
    assert text.count("Traceback") == 1
    assert text.count("controller failed") == 3  # the first, the 10th, and the total at the end
    assert "controller failed (repeated 10 times; traceback shown once)" in text
    assert "controller failed (repeated 25 times in all; traceback shown once)" in text
    assert "hunter2-SECRET" not in text  # diagnose=False: no variable values
    # The terminal gets one line per event, the exception as its type and message, never a traceback.
    shown = terminal.getvalue()
    assert "Traceback" not in shown and "hunter2-SECRET" not in shown
    assert shown.splitlines()[0].endswith("controller failed (RuntimeError: model blew up)")
    assert len(shown.splitlines()) == 3


def test_verbose_shows_the_first_traceback_on_the_terminal_too() -> None:
    terminal = io.StringIO()
    logs.setup(stream=terminal, verbose=True)
    for _ in range(3):
        fail_once("x")
    assert terminal.getvalue().count("Traceback") == 1


def test_different_messages_are_different_places() -> None:
    terminal = io.StringIO()
    logs.setup(stream=terminal)
    for i in range(3):
        logger.error("order {} rejected", i)
    assert len(terminal.getvalue().splitlines()) == 3


def test_lines_carry_simulated_time_while_a_backtest_clock_runs() -> None:
    terminal = io.StringIO()
    logs.setup(stream=terminal)
    logs.use_simulated_time(lambda: 1_723_161_253_123_000_000)
    logger.info("in the backtest")
    logs.use_simulated_time(None)
    logger.info("after it")
    first, second = terminal.getvalue().splitlines()
    assert first.startswith("2024-08-08T23:54:13.123Z(sim) INFO")
    assert "(sim)" not in second and second[:2] == "20"


def test_log_json_writes_one_object_per_line() -> None:
    terminal = io.StringIO()
    logs.setup(stream=terminal, json=True)
    logger.bind(venue="truex").warning("session down")
    record = json.loads(terminal.getvalue().splitlines()[0])
    assert record["record"]["message"] == "session down"
    assert record["record"]["extra"]["venue"] == "truex"
    assert record["record"]["level"]["name"] == "WARNING"
