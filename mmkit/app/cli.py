"""The ``mmkit`` command.

Sub-commands are thin: they parse arguments, call into :mod:`mmkit.app`
(assembly and lifecycle) and turn errors into exit codes. A configuration
error prints ``file: key.path: reason`` and exits 2 before anything is sent.

Global options (``-v``, ``--log-json``) are accepted before or after the
sub-command; every option has a help text (a test walks the parser).
Exit codes: :mod:`mmkit.app.outcome` and docs/operations.md.
"""

from __future__ import annotations

import argparse
import gc
import math
import sys
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING

from mmkit import __version__
from mmkit.app import logs
from mmkit.app.outcome import EXIT_OK, EXIT_USAGE
from mmkit.conf import ConfigError

if TYPE_CHECKING:
    from mmkit.app.config import ConfigOverrides

EXIT_FAILURE = 1
EXIT_CONFIG = EXIT_USAGE

Handler = Callable[[argparse.Namespace], int]


def positive_number(text: str) -> float:
    """argparse type of a duration, a speed or a timeout: a positive finite number, else a usage error.

    Why not ``float``: ``--run-for nan`` connected to the venue and then died on int(nan); ``0`` and ``-1``
    connected and stopped at once with exit 0; ``--timeout -1`` died in socket.settimeout with exit 1.
    """
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text!r}")
    return value


def positive_price(text: str) -> Decimal:
    """argparse type of a price (``--fair``): a positive finite decimal, read exactly."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal("NaN")
    if not (value.is_finite() and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text!r}")
    return value


def _overrides(args: argparse.Namespace) -> ConfigOverrides:
    from mmkit.app.config import ConfigOverrides

    speed = getattr(args, "replay_speed", None)
    return ConfigOverrides(
        reference_replay=getattr(args, "reference_replay", None),
        replay_speed=Decimal(str(speed)) if speed is not None else None,
        sim_hedge=getattr(args, "sim_hedge", False),
        output_dir=getattr(args, "output_dir", None),
    )


def _add_override_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reference-replay", metavar="PATH", default=None,
                        help="offline: price off this recording instead of the configured reference venues")
    parser.add_argument("--replay-speed", type=positive_number, default=None,
                        help="speed of --reference-replay (default 1)")
    parser.add_argument("--sim-hedge", action="store_true", help="offline: hedge on a simulated venue")
    parser.add_argument("--output-dir", default=None, metavar="DIR",
                        help="the instance home: store, journal, audit trail, logs and reports "
                             "(default: engine.output_dir, else $MMKIT_HOME/<instance>, else var/<instance>/ "
                             "beside the config)")


def _add_global_flags(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """-v and --log-json, on the top parser and on every sub-command (so they work before or after it).

    On sub-commands the default is SUPPRESS, so a flag given before the sub-command is not reset by it.
    """
    default: object = False if top else argparse.SUPPRESS
    parser.add_argument("-v", "--verbose", action="store_true", default=default, help="debug logging")
    parser.add_argument("--log-json", action="store_true", default=default,
                        help="log one JSON object per line on stderr (for a log pipeline)")


def _cmd_check(args: argparse.Namespace) -> int:
    from mmkit.app.build import check_config

    fair: Decimal | None = args.fair
    summary = check_config(args.config, _overrides(args), fair=fair)
    print(summary)
    return EXIT_OK


def _cmd_start(args: argparse.Namespace) -> int:
    import attrs

    from mmkit.app.config import load_engine_config
    from mmkit.app.lifecycle import start_command
    from mmkit.app.start_checks import preflight
    from mmkit.store.private import restrict_umask

    restrict_umask()  # issue 11: the log file, store, journal, audit and reports are 0600 in 0700 dirs
    # The run's log file, with the first traceback of each failing place, lives in the instance home.
    overrides = attrs.evolve(_overrides(args), paper=bool(args.paper))
    loaded = load_engine_config(args.config, overrides)
    # The controller's first quotes against the venue's rules, as `mmkit check` does: before the log file,
    # the store or any connector exists (mmkit.app.start_checks.preflight).
    preflight(loaded, args.fair)
    instance = loaded.config.engine.instance
    log_path = Path(loaded.config.engine.output_dir) / "logs" / f"{instance}.log"
    logs.add_file(log_path, level="DEBUG" if getattr(args, "verbose", False) else "INFO",
                  json=bool(getattr(args, "log_json", False)), mode="a")

    return start_command(
        args.config, paper=args.paper, run_for_s=args.run_for, quiet=args.quiet,
        overrides=_overrides(args),
    )


def _cmd_demo(args: argparse.Namespace) -> int:
    from mmkit.app.demo import demo_command

    return demo_command(duration_s=args.duration, config=args.config, recording=args.data)


def _cmd_backtest(args: argparse.Namespace) -> int:
    from mmkit.app.backtest_cmd import backtest_command

    return backtest_command(args)


def _cmd_sweep(args: argparse.Namespace) -> int:
    from mmkit.research.command import sweep_command

    return sweep_command(args)


def _cmd_status(args: argparse.Namespace) -> int:
    from mmkit.app.status_cmd import status_command

    return status_command(args)


def _cmd_history(args: argparse.Namespace) -> int:
    from mmkit.app.history_cmd import history_command

    return history_command(args)


def _cmd_control(args: argparse.Namespace) -> int:
    from mmkit.app.control.cli import control_command

    return control_command(args.command, args)


def _cmd_alert_test(args: argparse.Namespace) -> int:
    from mmkit.app.console.alerts import alert_test_command

    return alert_test_command(args.config)


def _cmd_sim(args: argparse.Namespace) -> int:
    from mmkit.app.resolve import resolve_dotted

    targets = {"truex": "connectors.truex.sim.__main__:main"}
    main = resolve_dotted(targets[args.venue], None, "sim")
    result = main(args.rest)
    return int(result or 0)


def _cmd_reconcile(args: argparse.Namespace) -> int:
    from mmkit.app.reconcile import reconcile_command

    return reconcile_command(
        args.config, accept_venue=args.accept_venue, reason=args.reason,
        overrides=_overrides(args), void_excess=args.void_excess, accept_account=args.accept_account,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmkit",
        description="mmkit: write, test, backtest and run market-making strategies.",
    )
    parser.add_argument("--version", action="version", version=f"mmkit {__version__}",
                        help="print the version and exit")
    _add_global_flags(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = sub.add_parser("check", help="validate a strategy config without trading")
    check.add_argument("config", help="strategy YAML, e.g. strategies/truex_btc_pyusd.yml")
    check.add_argument("--fair", type=positive_price, default=None, metavar="PRICE",
                       help="fair price of the synthetic tick the controller is run on "
                            "(default: reference.random_walk.start_price, else 60000)")
    _add_override_flags(check)
    check.set_defaults(handler=_cmd_check)

    start = sub.add_parser("start", help="run a strategy config until SIGINT/SIGTERM")
    start.add_argument("config", help="strategy YAML, e.g. strategies/truex_btc_pyusd.yml")
    start.add_argument("--paper", action="store_true", help="live market data, simulated fills")
    start.add_argument("--run-for", type=positive_number, default=None, metavar="SECONDS",
                       help="stop by itself after this long")
    start.add_argument("--quiet", action="store_true", help="no live status table")
    start.add_argument("--fair", type=positive_price, default=None, metavar="PRICE",
                       help="fair price of the synthetic tick the controller's first quotes are checked on "
                            "before the start (default: reference.random_walk.start_price, else 60000)")
    _add_override_flags(start)
    start.set_defaults(handler=_cmd_start)

    demo = sub.add_parser("demo", help="offline demo: simulated venue, replayed data, a strategy, a report")
    demo.add_argument("--duration", type=positive_number, default=30.0, metavar="SECONDS",
                      help="how long to run (default 30)")
    demo.add_argument("--config", default=None, help="strategy YAML (default: strategies/truex_btc_pyusd.yml)")
    demo.add_argument("--data", default=None, help="recording to replay (default: ../shared/data/binance_spot_btcusdt)")
    demo.set_defaults(handler=_cmd_demo)

    backtest = sub.add_parser("backtest", help="backtest a strategy config on recorded data, with a report")
    backtest.add_argument("config", help="strategy YAML")
    backtest.add_argument("--data", required=True, help="recording directory or file")
    backtest.add_argument("--from", dest="start", default=None, help="start time (ISO 8601 UTC or ns)")
    backtest.add_argument("--to", dest="end", default=None, help="end time (ISO 8601 UTC or ns)")
    backtest.add_argument("--setup", choices=["sim", "replay"], default=None,
                          help="replay: quote on the recorded venue's book (the default when the config's venue is "
                          "the recorded one); sim: simulated venue priced off the recording (else; with a banner)")
    backtest.add_argument("--max-invalid-pct", type=float, default=None, metavar="PCT",
                          help="exit 7 when the quoted book is invalid longer than this share of the span (default 1)")
    backtest.add_argument("--taker-reach-bps", type=float, default=None, metavar="BPS",
                          help="setup sim: synthetic takers may trade this much further from the mid than the tape"
                               " shows (default 0)")
    backtest.add_argument("--latency-ms", default=None, metavar="MS[,MS]",
                          help="latency between us and the venue in ms, each way or entry,response (default 2)")
    backtest.add_argument("--through-fill", choices=["tape", "whole"], default=None,
                          help="setup replay: what a print or the recorded book moving through our price fills: "
                               "tape (no more than it traded or offered; the default) or whole (the whole order, "
                               "hftbacktest's convention)")
    backtest.add_argument("--funding", default=None, metavar="FILE",
                          help="a perpetual's published funding settlements (Binance fundingRate CSV, or the "
                               "/fapi/v1/fundingRate JSON): paid into the PnL during the run on the venue's position "
                               "at each, so the kill switch and the equity curve see it; without it the report "
                               "says what is missing")
    backtest.add_argument("--balance", action="append", default=None, metavar="ASSET=AMOUNT",
                          help="a starting balance of the venue account (repeat for base and quote; an asset not "
                               "given starts at 0); replaces the config's simulation.balances whole. Without "
                               "either: risk.inventory.max_position of the base, twice its value at the first "
                               "recorded price of the quote. A spot order the balances cannot pay for is rejected "
                               "(docs/backtesting.md)")
    backtest.add_argument("--seed", type=int, default=None, help="seed of the simulated flow")
    backtest.add_argument("--queue", choices=["conservative", "probabilistic"], default=None,
                          help="queue-position model of --setup replay (default conservative)")
    backtest.add_argument("--out", default=None,
                          help="report directory (default: <instance home>/reports/backtest-<config>-<setup>-<time>)")
    backtest.add_argument("--no-progress", action="store_true",
                          help="no progress display (it is a bar on a terminal, a periodic line otherwise)")
    backtest.set_defaults(handler=_cmd_backtest)

    sweep = sub.add_parser("sweep", help="parameter sweep / walk-forward of backtests on Ray (docs/research.md)")
    sweep.add_argument("sweep", help="sweep file, e.g. strategies/sweeps/layered_spread.yml")
    sweep.add_argument("--out", default=None, help="results directory (default reports/sweeps/<name>; reused = resume)")
    sweep.add_argument("--address", default=None, help="join this Ray cluster (default: RAY_ADDRESS, else a local Ray)")
    sweep.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray (default: all cores)")
    sweep.add_argument("--in-process", action="store_true", help="no Ray: run the trials one by one in this process")
    sweep.add_argument("--rerun", metavar="TRIAL", default=None, help="run one trial again and compare its report")
    sweep.add_argument("--no-progress", action="store_true", help="no progress display while the trials run")
    sweep.set_defaults(handler=_cmd_sweep)

    status = sub.add_parser("status", help="position, open orders, PnL, kill switch, heartbeat of an instance")
    status.add_argument("config", help="the strategy YAML the instance runs (names its store and Redis keys)")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument("--output-dir", default=None, metavar="DIR", help="the instance home, if the run used one")
    status.add_argument("--watch", action="store_true", help="refresh in place every --interval seconds")
    status.add_argument("--interval", type=positive_number, default=2.0, help="seconds between redraws with --watch")
    status.set_defaults(handler=_cmd_status)

    history = sub.add_parser("history", help="trades, volumes, PnL, fees, spread capture per session and per day")
    history.add_argument("config", help="the strategy YAML the instance runs (names its store)")
    history.add_argument("--by", choices=["session", "day"], default="session",
                         help="one row per session (default) or per UTC day")
    history.add_argument("--csv", metavar="FILE", default=None, help="also export the fills as CSV")
    history.add_argument("--output-dir", default=None, metavar="DIR", help="the instance home, if the run used one")
    history.set_defaults(handler=_cmd_history)

    reconcile = sub.add_parser("reconcile", help="show the venue's view of our orders against the ledger; "
                               "--accept-venue books the difference as flagged synthetic fills")
    reconcile.add_argument("config", help="the strategy YAML of the instance (names its venue, store and journal)")
    reconcile.add_argument("--accept-venue", action="store_true",
                           help="book what the venue reports filled and the ledger lacks (from CumQty/AvgPx)")
    reconcile.add_argument("--void-excess", action="store_true",
                           help="book a flagged compensating fill (opposite side) for what the ledger holds and "
                                "the venue never filled (EXCESS); never deletes a fill")
    reconcile.add_argument("--accept-account", action="store_true",
                           help="the ledger was recorded under another account fingerprint (a rotated API key): "
                                "re-assign it to this config's account")
    reconcile.add_argument("--reason", default=None,
                           help="why (required with --accept-venue, --void-excess and --accept-account; audited)")
    _add_override_flags(reconcile)
    reconcile.set_defaults(handler=_cmd_reconcile)

    from mmkit.app.control.cli import COMMANDS as CONTROL_COMMANDS
    from mmkit.app.control.cli import add_arguments as add_control_arguments

    for name, help_text in CONTROL_COMMANDS.items():  # operator commands to a running instance
        control = sub.add_parser(name, help=help_text)
        add_control_arguments(control)
        control.set_defaults(handler=_cmd_control)

    alert_test = sub.add_parser("alert-test", help="send a test alert to the config's webhooks (console.alerts)")
    alert_test.add_argument("config", help="the strategy YAML whose console.alerts.webhooks to test")
    alert_test.set_defaults(handler=_cmd_alert_test)

    sim = sub.add_parser("sim", help="run a local venue simulator (e.g. `mmkit sim truex`)")
    sim.add_argument("venue", choices=["truex"], help="which venue to simulate")
    sim.add_argument("rest", nargs=argparse.REMAINDER, help="simulator options (see `mmkit sim truex --help`)")
    sim.set_defaults(handler=_cmd_sim)
    return _with_global_flags(parser, sub)


def _with_global_flags(parser: argparse.ArgumentParser, sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Every sub-command (whoever registered it above) accepts the global flags too."""
    for command in sub.choices.values():
        _add_global_flags(command, top=False)
    return parser


#: Batch commands whose process ends right after they return (see :func:`_spare_the_exit_collection`).
_BATCH_HANDLERS: frozenset[Handler] = frozenset({_cmd_backtest})


def _spare_the_exit_collection() -> None:
    """Move everything alive out of the cyclic collector's sight: the process exits next.

    Why: after ``mmkit backtest`` returns, CPython's finalization walks and
    frees everything still alive (the recording's hundreds of thousands of
    events, the engine, the report) with collector passes, only for the OS to
    take the memory back an instant later: measured at 0.25-0.3 s CPU of a
    1.5 s default backtest. ``gc.freeze`` (a list splice) keeps those objects
    out of the final passes. Unlike ``os._exit`` nothing else is skipped:
    ``atexit`` handlers (loguru closes its file sinks there), stream flushes
    and reference-count frees still run.
    """
    gc.freeze()


def main(argv: Sequence[str] | None = None) -> int:
    """The ``mmkit`` console script; ``argv`` None reads the process's own command line.

    Only then (this call is the process's command and ``sys.exit`` follows)
    does a batch command spare the exit its collector passes
    (:func:`_spare_the_exit_collection`); a caller passing ``argv`` gets a
    process left as it was.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.setup(verbose=bool(getattr(args, "verbose", False)), json=bool(getattr(args, "log_json", False)))
    handler: Handler = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return EXIT_FAILURE
    finally:
        logs.flush_repeats()
        if argv is None and handler in _BATCH_HANDLERS:
            _spare_the_exit_collection()


if __name__ == "__main__":
    sys.exit(main())
