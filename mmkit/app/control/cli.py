"""``mmkit pause|resume|flatten|cancel-all CONFIG``: operator commands to a running instance.

Each finds the instance's control socket from the config (``engine.instance``,
``engine.output_dir``; ``--output-dir`` overrides it as for ``mmkit start``),
sends one action, and prints one line: ``<action>: done: <what happened>``
on stdout, or ``<action>: FAILED: <why>`` on stderr. Secrets in the config are
not needed (nothing but the local socket is contacted).

Exit codes (docs/operations.md, "Operator control channel"):

====  =====================  ======================================================
code  name                   meaning
====  =====================  ======================================================
0     EXIT_DONE              the instance did it and confirmed the effect
1     EXIT_ACTION_FAILED     the instance refused or could not complete it (the line says why)
2     EXIT_USAGE             bad config file or arguments
10    EXIT_NO_INSTANCE       no running instance: the socket is missing or nobody answers
11    EXIT_NO_ANSWER         the instance took the command but did not answer in time
====  =====================  ======================================================
"""

from __future__ import annotations

import argparse
import getpass
import sys

from mmkit.app.control.client import NoAnswerError, NoInstanceError, send_command
from mmkit.app.control.paths import control_socket_path
from mmkit.app.outcome import EXIT_USAGE

EXIT_DONE = 0
EXIT_ACTION_FAILED = 1
EXIT_NO_INSTANCE = 10
EXIT_NO_ANSWER = 11

#: The operator commands ``mmkit`` registers, with their help lines.
COMMANDS: dict[str, str] = {
    "pause": "running instance: stop quoting and pull every quote (hedging goes on) until `mmkit resume`",
    "resume": "running instance: lift a pause, reset a tripped kill switch by hand",
    "flatten": "running instance: pause, then hedge the whole position to zero on the hedge venue",
    "cancel-all": "running instance: pause, then cancel every order at the venue and confirm none is open",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mmkit.app.cli import positive_number

    parser.add_argument("config", help="the strategy YAML the instance runs (names its control socket)")
    parser.add_argument("--output-dir", default=None, help="the instance's output dir, if started with --output-dir")
    parser.add_argument("--timeout", type=positive_number, default=60.0, metavar="SECONDS",
                        help="how long to wait for the instance's answer (default 60)")


def control_command(action: str, args: argparse.Namespace) -> int:
    """Send ``action`` to the instance ``args.config`` names; print one line; return the exit code."""
    from mmkit.app.status_cmd import instance_settings

    instance, output_dir, _store = instance_settings(args.config, getattr(args, "output_dir", None))
    path = control_socket_path(output_dir, instance)
    source = f"mmkit {action} by {_user()}"
    try:
        answer = send_command(path, action, source=source, timeout_s=args.timeout)
    except NoInstanceError as exc:
        print(f"{action}: instance {instance!r} is not running: {exc}", file=sys.stderr)
        return EXIT_NO_INSTANCE
    except NoAnswerError as exc:
        print(f"{action}: {exc}; check with `mmkit status {args.config}`", file=sys.stderr)
        return EXIT_NO_ANSWER
    message = str(answer.get("message", "")).replace("\n", " ")
    if answer.get("ok"):
        print(f"{action}: done: {message}")
        return EXIT_DONE
    print(f"{action}: FAILED: {message}", file=sys.stderr)
    return EXIT_ACTION_FAILED


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no name for this uid (containers): the server adds the uid anyway
        return "unknown"


__all__ = ["COMMANDS", "EXIT_ACTION_FAILED", "EXIT_DONE", "EXIT_NO_ANSWER", "EXIT_NO_INSTANCE", "EXIT_USAGE",
           "add_arguments", "control_command"]
