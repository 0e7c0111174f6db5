"""Numbers on the command line that are not a duration or a price: one usage line and exit 2, nothing started.

Before: `mmkit start X --run-for nan` connected to the venue and then died with a traceback
(int(nan)); `--run-for 0` or `-1` connected, stopped at once and exited 0; `mmkit pause X --timeout -1`
and `--fair abc` died with tracebacks (the pause one with exit 1, which means "the instance refused").
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mmkit.app import cli

REPO = Path(__file__).resolve().parents[3]
CONFIG = str(REPO / "strategies" / "layered_example.yml")


@pytest.mark.parametrize(
    "argv",
    [
        ["start", CONFIG, "--run-for", value] for value in ("nan", "inf", "0", "-1", "abc")
    ] + [
        ["pause", CONFIG, "--timeout", value] for value in ("nan", "-1", "0", "inf")
    ] + [
        ["check", CONFIG, "--fair", value] for value in ("abc", "nan", "-5", "0", "inf")
    ] + [
        ["start", CONFIG, "--fair", "nan"],
        ["demo", "--duration", "-3"],
        ["start", CONFIG, "--reference-replay", "x", "--replay-speed", "0"],
    ],
    ids=lambda argv: " ".join(argv[:1] + argv[2:]),
)
def test_a_number_that_is_not_a_positive_finite_value_is_a_usage_error(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main([*argv, *(["--output-dir", str(tmp_path / "home")] if argv[0] in ("start", "pause") else [])])
    assert info.value.code == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"error: argument {argv[-2]}: must be a positive finite number, got {argv[-1]!r}" in err, err
    assert not (tmp_path / "home").exists()  # nothing started: no home, no log file, no store
