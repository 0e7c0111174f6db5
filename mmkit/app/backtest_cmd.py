"""``mmkit backtest CONFIG --data PATH``: run a strategy config on recorded data and write a report.

The same controller, executor, trackers and risk gates as live are
assembled (:func:`mmkit.app.simulated.build_sim_setup` for setup ``sim``,
:func:`mmkit.app.backtest_setups.build_replay_venue_setup` for setup
``replay``); the clock is BACKTEST, so a run is a pure function of the
config, the data, the time window and the seed. Outputs, in ``--out``:
``report.json`` (identical for identical inputs, provenance apart), ``fills.csv``,
``orders.csv`` and the tearsheet ``report.html`` (self-contained, see mmkit.backtest.report).

:func:`run_backtest` is the library entry point (tests, the bench, the demo).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from loguru import logger

from mmkit.app.assembly import RiskSettings
from mmkit.app.backtest_balances import balances_section, format_balances, given_balances, starting_balances
from mmkit.app.backtest_data import data_verdict, recording_fit_store, recording_notes
from mmkit.app.backtest_funding import attach_funding, funding_report
from mmkit.app.backtest_setup_choice import (
    SetupChoice,
    bad_numbers,
    choose_setup,
    option_of_another_setup,
)
from mmkit.app.engine import Engine
from mmkit.app.outcome import EXIT_NOT_PERSISTED, EXIT_USAGE, ProblemKind
from mmkit.app.simulated import FitStore, build_sim_setup
from mmkit.backtest.binance import RecordingFormatError, read_recording, recording_files
from mmkit.backtest.continuity import FileNote
from mmkit.backtest.funding import FundingFormatError, FundingInput, funding_lines, funding_section, is_perpetual
from mmkit.backtest.health import DEFAULT_MAX_INVALID_PCT, format_health, outside_recording
from mmkit.backtest.no_fill import no_fill_reason
from mmkit.backtest.progress import ProgressBar
from mmkit.backtest.rejections import RejectionCounter
from mmkit.backtest.replay import RecordingReplay, ReplayedReference, ReplayEvent
from mmkit.backtest.report import build_report, format_table
from mmkit.backtest.sampler import BacktestSampler
from mmkit.backtest.tardis import TardisFormatError, is_tardis, read_tardis, tardis_files
from mmkit.clock import Clock, ClockMode
from mmkit.conf import ConfigError
from mmkit.connector import VenueRules, load_venue_rules
from mmkit.gc_policy import long_run_gc
from mmkit.model import NS_PER_MS, BookDelta, BookSnapshot, Trade
from mmkit.sim.calibration import format_flow
from mmkit.sim.flow import FlowConfig, SyntheticMarket
from mmkit.sim.latency import DEFAULT_BACKTEST_LATENCY, LatencyModel, describe_latency, parse_latency_ms
from mmkit.sim.through_fill import THROUGH_FILL_LINES, ThroughFill
from mmkit.strategy import Controller

if TYPE_CHECKING:
    from mmkit.app.backtest_setups import QueueName
    from mmkit.app.config import LoadedConfig
    from mmkit.sim.base_venue import SimulatedVenue
    from mmkit.sim.replay_venue import ReplayBookVenue

EXIT_OK = 0
EXIT_FAILURE = 1
DEFAULT_SEED = 7


@attrs.define
class BacktestResult:
    engine: Engine
    sampler: BacktestSampler
    report: dict[str, Any]
    left_open: int
    run_s: float
    events: int


class _ProgressIterator:
    """Clock iterator that moves the progress bar with simulated time."""

    def __init__(self, bar: ProgressBar, start_ns: int, end_ns: int) -> None:
        self.bar, self.start_ns, self.span = bar, start_ns, max(1, end_ns - start_ns)

    def start(self, clock: Clock, ts_ns: int) -> None:
        return None

    def stop(self, clock: Clock) -> None:
        return None

    def tick(self, ts_ns: int) -> None:
        self.bar.update(int((ts_ns - self.start_ns) * self.bar.total // self.span))


def parse_time(text: str | None) -> int | None:
    """``--from``/``--to``: integer ns since the epoch, or ISO 8601 (naive = UTC)."""
    if text is None:
        return None
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"not a time: {text!r} (ISO 8601 UTC or ns since the epoch)") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1_000_000) * 1_000


def _book_event_span(events: Sequence[ReplayEvent], key: str) -> tuple[int | None, int | None]:
    """Receive times of the first and the last book event (snapshot or diff) of book ``key`` (venue:symbol)."""
    def of_book(event: ReplayEvent) -> bool:
        return isinstance(event, BookSnapshot | BookDelta) and f"{event.venue}:{event.symbol}" == key

    first = next((e.ts_recv for e in events if of_book(e)), None)
    last = next((e.ts_recv for e in reversed(events) if of_book(e)), None)
    return first, last


def load_events(data: Path, end_ns: int | None = None, *, freeze: bool = False) -> list[ReplayEvent]:
    """Book snapshots, diffs and trades of a recording, up to ``end_ns`` (receive time).

    ``data``: a Binance recording (directory of ``*.gz`` or one file), or Tardis-style CSV
    (a directory with ``*incremental_book_L2*.csv[.gz]`` and/or ``*trades*.csv[.gz]``, or one such file).
    ``freeze``: for a caller about to backtest them, the events are frozen out of the garbage collector
    as they are built (:func:`mmkit.gc_policy.gc_paused`).
    """
    source: Iterable[object]
    if is_tardis(data):
        if data.is_dir():
            book, trades = tardis_files(data)
        else:
            book, trades = (None, data) if "trades" in data.name else (data, None)
        source = read_tardis(book, trades, freeze=freeze)
    else:
        source = read_recording(recording_files(data) if data.is_dir() else [data], freeze=freeze)
    events: list[ReplayEvent] = []
    for event in source:
        if isinstance(event, BookSnapshot | BookDelta | Trade):
            if end_ns is not None and event.ts_recv > end_ns:
                break  # the reader yields in receive-time order
            events.append(event)
    return events


def run_backtest(
    controller: Controller,
    events: Sequence[ReplayEvent],
    *,
    setup: str = "sim",
    rules: VenueRules | None = None,
    symbol: str | None = None,
    risk: RiskSettings | None = None,
    tick_ms: int = 100,
    start_ns: int | None = None,
    end_ns: int | None = None,
    seed: int = DEFAULT_SEED,
    queue: QueueName = "conservative",
    progress: bool = False,
    meta: dict[str, Any] | None = None,
    setup_chosen_by_default: bool = False,
    taker_reach_bps: Decimal = Decimal(0),
    controller_max_failures: int | None = None,
    fit_store: FitStore | None = None,
    latency: LatencyModel | None = None,
    funding: FundingInput | None = None,
    through_fill: ThroughFill = "tape",
    balances: Mapping[str, Decimal] | None = None,
    balances_source: str = "given",
) -> BacktestResult:
    """One deterministic backtest of ``controller`` over ``events``; returns the engine, samples and report.

    ``setup`` ``sim``: quote ``symbol`` on a simulated venue (``rules``, default
    ``conf/venues/sim.yml`` BTC-PYUSD) priced off the recording, with seeded
    synthetic flow. ``replay``: quote the recorded instrument on the recorded
    venue (rules ``conf/venues/<recorded venue>.yml``), fills from the queue model.

    Setup ``sim`` always puts a banner in the report (``report["banner"]``):
    its fills are synthetic, and nothing else on the page says so. Its takers
    follow the recorded tape and pay no worse than each recorded print unless
    ``taker_reach_bps`` says how much worse; ``report["taker_flow"]`` shows
    the tape and the takers by distance from the mid. ``fit_store``: where
    the fit of these events is kept across runs (:func:`recording_fit_store`).
    ``latency``: both legs between us and the venue (default
    :data:`~mmkit.sim.latency.DEFAULT_BACKTEST_LATENCY`, 2 ms each way), stated in ``report["latency_ms"]``.
    ``funding``: the published funding settlements of a perpetual contract and where they came from, paid
    into the PnL during the run (:mod:`mmkit.backtest.funding_settler`: the kill switch and the equity curve
    see each payment from its settlement on) and cross-checked after it; a run on a perpetual has
    ``report["funding"]`` either way (:mod:`mmkit.backtest.funding`: booked, or said to be missing from the
    PnL); given for anything else, or not covering the run, it is refused (ValueError).
    ``through_fill`` (setup replay): what a print or the recorded book moving through our price fills,
    ``"tape"`` (no more than it traded or offered) or ``"whole"`` (hftbacktest's convention); stated in
    ``report["through_fill"]`` (:mod:`mmkit.sim.through_fill`).
    ``balances``: the venue account's starting balances (an asset not named starts at 0); None: the default
    of :mod:`mmkit.app.backtest_balances` for a spot instrument. A spot order they cannot pay for is rejected
    INSUFFICIENT_FUNDS; ``report["balances"]`` and ``report["rejections"]`` say what happened, and
    ``balances_source`` where they came from (``report["balances"]["source"]``).
    """
    if not events:
        raise ValueError("no recorded events to replay")
    risk = risk or RiskSettings()
    latency = latency or DEFAULT_BACKTEST_LATENCY
    start = events[0].ts_recv if start_ns is None else start_ns
    end = events[-1].ts_recv if end_ns is None else end_ns
    if end <= start:
        raise ValueError(f"empty time window: start {start} >= end {end}")
    clock = Clock(ClockMode.BACKTEST, tick_ns=tick_ms * NS_PER_MS, start_ns=start)
    engine: Engine
    replay: RecordingReplay
    reference: ReplayedReference
    market: SyntheticMarket | None = None
    recorded_venue: ReplayBookVenue | None = None
    if setup == "sim":
        rules = rules or load_venue_rules("sim")
        symbol = symbol or rules.instruments[0].symbol
        start_balances, balance_source = starting_balances(rules.instrument(symbol), balances,
                                                           risk.inventory.max_position, events, balances_source)
        flow = FlowConfig(seed=seed, reach_bps=taker_reach_bps)
        sim = build_sim_setup(clock, controller, events, rules, symbol, risk=risk, flow=flow, fit_window=(start, end),
                              fit_store=fit_store, latency=latency, initial_balances=start_balances)
        engine, replay, reference = sim.engine, sim.replay, sim.reference
        market = sim.market
        quoted_venue: SimulatedVenue = sim.venue
    elif setup == "replay":
        # Here only: the replay venue and its queue models are not what a setup-sim run uses (issue 16).
        from mmkit.app.backtest_setups import build_replay_venue_setup, queue_model

        first = events[0]
        rules = rules or load_venue_rules(first.venue)
        symbol = symbol or first.symbol
        start_balances, balance_source = starting_balances(rules.instrument(symbol), balances,
                                                           risk.inventory.max_position, events, balances_source)
        rep = build_replay_venue_setup(clock, controller, events, rules, symbol, risk=risk,
                                       queue=queue_model(queue, seed), latency=latency, through_fill=through_fill,
                                       initial_balances=start_balances)
        engine, replay, reference = rep.engine, rep.replay, rep.reference
        recorded_venue = quoted_venue = rep.venue
    else:
        raise ValueError(f"unknown setup {setup!r} (sim, replay)")
    if controller_max_failures is not None:  # engine.controller_max_failures of the config (issue 13)
        engine.runner.max_consecutive_failures = controller_max_failures
    settler = None
    if funding is not None:  # before the run: a file that does not fit this run is a mistake, said at once
        funding.check(rules.venue, symbol, start, end)
        # Paid into the PnL during the run, so the kill switch and the equity curve see it (issue: funding).
        settler = attach_funding(engine, quoted_venue, funding, symbol, start, end)
    # A funding column only when funding is booked into the PnL: spot reports stay byte for byte as they were.
    sampler = BacktestSampler(engine.pnl, engine.inventory, engine.orders, symbol, lambda: engine.runner.last_fair,
                              funding=settler is not None)
    engine.stream.add_order_listener(sampler.on_order_event, BacktestSampler.ORDER_KINDS)
    rejections = RejectionCounter()
    engine.stream.add_order_listener(rejections.on_order_event, RejectionCounter.ORDER_KINDS)
    clock.add_iterator(sampler, name="sampler")
    bar = ProgressBar(1000, enabled=progress)
    if progress:  # an iterator less on every tick when nobody watches the bar
        clock.add_iterator(_ProgressIterator(bar, start, end), name="progress")
    began = time.perf_counter()
    with long_run_gc():  # the recording and the engine live for the whole run (see mmkit.gc_policy)
        left_open = asyncio.run(engine.run_backtest(end))
    if settler is not None:  # a settlement inside the span that the last tick did not reach
        settler.finish(clock.now_ns)
    run_s = time.perf_counter() - began
    bar.close()
    if left_open:
        # Recorded with the run's own problems, before the report is built: it was recorded only for the exit
        # code (1), after the outputs were written, so report.json read as a clean run (problems: []) and a
        # sweep trial that left orders open was ranked.
        engine.outcome.record(ProblemKind.NOT_FLAT, _left_open_reason(left_open), clock.now_ns)
    if recorded_venue is not None and recorded_venue.queue_model_overfills:
        # The queue model is pluggable: one that fills more than a print traded makes the run's fills wrong.
        model = type(recorded_venue.queue_model).__name__
        engine.outcome.record(ProblemKind.ENGINE_FAILURE, f"the queue model {model} filled more than a print traded "
                              f"{recorded_venue.queue_model_overfills} times (capped to the print; a bug in the model)",
                              clock.now_ns)
    if quoted_venue.overdrafts:  # the checks at entry should make it impossible: the ledger is not to be trusted
        engine.outcome.record(ProblemKind.ENGINE_FAILURE, f"{quoted_venue.overdrafts} fills took a spot balance "
                              "below zero (see the log)", clock.now_ns)
    kill = engine.runner.kill_switch
    stats = engine.runner.stats
    counters = {
        "orders_left_open": left_open,
        "quoting_ticks": stats.quoting_ticks,
        "halted_ticks": stats.halted_ticks,
        "controller_errors": stats.controller_errors,
        "iterator_errors": dict(clock.iterator_errors),
        "problems": engine.outcome.as_report(),
        "kill_switch": kill.reason if kill is not None and kill.halted else "not tripped",
        "events_replayed": replay.delivered,
        "malformed_messages": engine.router.malformed,
    }
    base_meta = {
        "setup": setup if setup == "sim" else f"replay ({queue} queue)",
        "strategy": controller.name,
        "venue": rules.venue,
        "symbol": symbol,
        "seed": seed,
        "tick_ms": tick_ms,
    }
    base_meta.update(meta or {})
    report = build_report(
        sampler, engine.fills, engine.pnl, max_position=risk.inventory.max_position, meta=base_meta,
        counters=counters,
    )
    # Per book, over the run's span (mmkit.backtest.health); the quoted venue's book is the reference book
    # in both setups (setup sim prices its synthetic venue off it).
    # Span the recording does not cover (a --from before its first book event, a --to past its last) counts too.
    first_book, last_book = _book_event_span(events, reference.health.key)
    outside = outside_recording(first_book, last_book, start, end, reference.staleness_ns)
    report["data_health"] = {reference.health.key: reference.health.summary(start, end, outside)}
    report["quoted_book"] = reference.health.key
    executor = engine.runner.executor
    ticks = max(1, int(report.get("ticks") or 0))
    report["rate_limited_ticks"] = executor.rate_limited_ticks
    report["rate_limited_tick_pct"] = round(100.0 * executor.rate_limited_ticks / ticks, 2)
    report["position_limited_targets"] = executor.limited_targets
    if market is not None:
        report["taker_flow"] = {"source": f"recorded trades of {reference.health.key}", **market.flow_report()}
    if recorded_venue is not None:
        # Prints and book crossings that reached a resting order of ours but were dated before it arrived
        # (the feed delivered them late): they traded without us, so they filled nothing (docs/backtesting.md).
        report["before_arrival_events"] = recorded_venue.before_arrival
        report["through_fill"] = recorded_venue.through_fill  # an assumption that shapes every fill: stated
    report["balances"] = balances_section(quoted_venue, rules.instrument(symbol), start_balances, balance_source)
    report["rejections"] = rejections.section()
    report["latency_ms"] = describe_latency(latency)  # an assumption that shapes every fill: stated, not implied
    report["fees"] = {"maker_bps": str(rules.fees.maker_bps), "taker_bps": str(rules.fees.taker_bps),
                      "source": f"conf/venues/{rules.venue}.yml"}
    report["banner"] = None if setup != "sim" else synthetic_banner(
        rules.venue, symbol, reference.health.key, by_default=setup_chosen_by_default
    )
    report["no_fill"] = no_fill_reason(report)  # None unless the run filled nothing (then it says why)
    if settler is not None and funding is not None:  # booked during the run, cross-checked after it
        funding_report(report, settler, funding, engine, sampler, start, end)
    elif is_perpetual(rules.venue, symbol):  # only then: every other report stays as it was
        report["funding"] = funding_section(None, None, engine.fills, sampler.ts, sampler.mid,
                                            engine.pnl.settlement, start, end, engine.pnl.total())
    return BacktestResult(engine, sampler, report, left_open, run_s, replay.delivered)


def synthetic_banner(venue: str, symbol: str, recorded_book: str, *, by_default: bool) -> str:
    """The line every output of a setup-sim run carries: its venue and its fills are synthetic."""
    why = (f"{venue} has no recorded book in this data, so the simulated venue is used"
           if by_default else "--setup sim was asked for")
    return (f"SYNTHETIC VENUE: {venue}:{symbol} is simulated ({why}); its fills come from a synthetic taker flow "
            f"priced off the recorded {recorded_book} book and trades, not from recorded orders. "
            "Treat PnL as a model output, not an estimate of live results.")


def write_outputs(result: BacktestResult, out_dir: Path) -> dict[str, Path]:
    """report.json, fills.csv, orders.csv and the tearsheet report.html in ``out_dir``; returns name -> path."""
    from mmkit.backtest.report import write_backtest_outputs

    return write_backtest_outputs(result.report, result.sampler, result.engine, out_dir)


def _log_to_file(path: Path, verbose: bool, json: bool = False) -> None:
    """Engine logs (thousands of lines on a long run) go to a file; the terminal keeps the bar and errors."""
    from mmkit.app import logs

    logs.backtest_sinks(path, verbose=verbose, json=json)  # folded repeats, simulated time, no locals


def backtest_command(args: argparse.Namespace) -> int:
    """The CLI handler (arguments as registered in :mod:`mmkit.app.cli`).

    Bad input (a missing, empty, damaged recording; a bad time) ends with one
    line naming the file (and line) and :data:`EXIT_USAGE`; a run whose quoted
    book was invalid for more than ``--max-invalid-pct`` of its span writes its
    outputs and ends with :data:`EXIT_DATA_UNHEALTHY` (see docs/backtesting.md).
    """
    from mmkit.app.build import build_controller
    from mmkit.app.config import ConfigOverrides, load_engine_config

    loaded = load_engine_config(args.config, ConfigOverrides(backtest=True))  # nothing connects: no secrets read
    config = loaded.config
    build_controller(loaded)  # a config whose controller cannot be built fails here, before the recording is read
    data = Path(args.data)
    if not data.exists():
        return _usage(f"{data}: no such recording file or directory")
    try:
        start_ns, end_ns = parse_time(args.start), parse_time(args.end)
    except ValueError as exc:
        return _usage(str(exc))
    if start_ns is not None and end_ns is not None and end_ns <= start_ns:
        return _usage(f"--to {args.end} is not after --from {args.start}: the window is empty")
    bad = bad_numbers(args)
    if bad is not None:
        return _usage(bad)
    max_invalid_pct = getattr(args, "max_invalid_pct", None)
    max_invalid_pct = DEFAULT_MAX_INVALID_PCT if max_invalid_pct is None else float(max_invalid_pct)
    seed = DEFAULT_SEED if args.seed is None else args.seed
    verbose = bool(getattr(args, "verbose", False))
    logger.remove()  # until the report directory (and its log file) exists: errors only, as one line each
    logger.add(sys.stderr, level="DEBUG" if verbose else "ERROR")
    began = time.perf_counter()
    try:
        events = load_events(data, end_ns, freeze=True)  # run next, under long_run_gc
        notes = recording_notes(data)
    except (RecordingFormatError, TardisFormatError, FileNotFoundError) as exc:
        return _usage(str(exc))
    load_s = time.perf_counter() - began
    if not events:
        if end_ns is not None:
            return _usage(f"{data}: no recorded events before --to {args.end}")
        return _usage(f"{data}: no book or trade events in the recording")
    if start_ns is not None and not any(e.ts_recv >= start_ns for e in events):
        return _usage(f"{data}: no recorded events after --from {args.start}")
    choice = choose_setup(loaded, events, getattr(args, "setup", None))
    misplaced = option_of_another_setup(args, choice)
    if misplaced is not None:
        return _usage(misplaced)
    try:
        balances, balances_source = given_balances(loaded, getattr(args, "balance", None), choice, events)
    except (ValueError, KeyError) as exc:  # the file's are a ConfigError: `config error: FILE: KEY: ...`, exit 2
        return _usage(str(exc))
    funding = None
    if getattr(args, "funding", None):
        try:
            funding = _funding_for(Path(args.funding), choice, events, start_ns, end_ns)
        except FundingFormatError as exc:
            return _usage(f"--funding: {exc}")
    stamp = datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%S")
    from mmkit.app import paths as homes  # one home for what a run writes (issue 13)

    out_dir = Path(args.out) if args.out else homes.backtest_dir(
        config.engine.output_dir, f"{loaded.path.stem}-{choice.setup}-{stamp}")
    unwritable = _unwritable(out_dir)
    if unwritable is not None:
        return _usage(unwritable)
    _log_to_file(out_dir / "backtest.log", verbose=verbose, json=bool(getattr(args, "log_json", False)))
    for note in notes:
        logger.info("recording file {}: {}", note.path.name, note.note)
    result, verdict = backtest_loaded(
        loaded, events, notes, data, choice, start_ns=start_ns, end_ns=end_ns, seed=seed,
        queue=getattr(args, "queue", None) or "conservative", progress=not args.no_progress,
        taker_reach_bps=Decimal(str(getattr(args, "taker_reach_bps", None) or 0)),
        max_invalid_pct=max_invalid_pct, meta={"config": str(loaded.path), "data": str(data)},
        fit_store=recording_fit_store(data, end_ns),
        latency=None if getattr(args, "latency_ms", None) is None else parse_latency_ms(args.latency_ms),
        funding=funding, through_fill=getattr(args, "through_fill", None) or "tape", balances=balances,
        balances_source=balances_source,
    )
    report = result.report
    try:
        paths = write_outputs(result, out_dir)
    except OSError as exc:  # a full or failing disk: the figures still reach the terminal, and the exit says so
        print(format_table(report))
        print(f"mmkit backtest: the run's outputs could not be written in {out_dir} ({exc}); none of "
              "report.json, fills.csv, orders.csv, report.html was left there from this run", file=sys.stderr)
        return EXIT_NOT_PERSISTED
    banner = report.get("banner")
    if banner:
        print(f"!! {banner}")
    print(format_table(report))
    if report.get("no_fill"):
        print(f"!! {report['no_fill']}")
    for line in funding_lines(report["funding"]) if "funding" in report else ():
        print(line)
    print(_format_failures(result))
    print(format_health(report))
    if report.get("taker_flow"):
        print(format_flow(report["taker_flow"]))
    print(f"  {'rate-limited ticks'.ljust(31)}  {report['rate_limited_ticks']:,} "
          f"({report['rate_limited_tick_pct']:.2f} % of ticks had an action denied by the venue's limits); "
          f"targets cut by max_position {report['position_limited_targets']:,}")
    if report.get("through_fill"):
        print(f"  {'fills through our price'.ljust(31)}  {THROUGH_FILL_LINES[report['through_fill']]}")
    if report.get("before_arrival_events"):
        print(f"  {'dated before our order arrived'.ljust(31)}  {report['before_arrival_events']:,} recorded "
              "prints or crossings reached a resting order of ours but were dated before it arrived "
              "(delivered late by the feed): they filled nothing")
    for line in format_balances(report):
        print(line)
    print(f"  {'wall time'.ljust(31)}  load {load_s:.2f} s, simulate {result.run_s:.2f} s "
          f"({result.events / max(result.run_s, 1e-9):,.0f} events/s)")
    if banner:
        print(f"!! {banner}")
    print(f"\nreport written to {out_dir}/")
    for name, path in {**paths, "backtest.log": out_dir / "backtest.log"}.items():
        print(f"  {name:14s} {path}")
    if verdict is not None:
        print(f"mmkit backtest: {verdict}", file=sys.stderr)
    return _exit_code(result)


def backtest_loaded(
    loaded: LoadedConfig,
    events: Sequence[ReplayEvent],
    notes: Sequence[FileNote],
    data: Path,
    choice: SetupChoice,
    *,
    start_ns: int | None,
    end_ns: int | None,
    seed: int,
    queue: QueueName,
    taker_reach_bps: Decimal,
    max_invalid_pct: float,
    progress: bool = False,
    meta: dict[str, Any] | None = None,
    fit_store: FitStore | None = None,
    latency: LatencyModel | None = None,
    funding: FundingInput | None = None,
    through_fill: ThroughFill = "tape",
    balances: Mapping[str, Decimal] | None = None,
    balances_source: str = "given",
) -> tuple[BacktestResult, str | None]:
    """Backtest a loaded config exactly as ``mmkit backtest`` does; returns the result and the data verdict.

    One function for the CLI and the sweep trials (:mod:`mmkit.research`), so that a
    trial is the same backtest the command runs and the two cannot drift: the
    controller-failure limit, the files' continuity notes in the data health, and a
    quoted book invalid past ``max_invalid_pct`` recorded as a problem (exit 7 for the CLI).
    ``balances`` None: the config's ``simulation.balances`` when it has them (a sweep trial's come so),
    else the default (:func:`~mmkit.app.backtest_balances.given_balances`).
    """
    from mmkit.app.build import build_controller, risk_settings

    config = loaded.config
    if balances is None:
        balances, balances_source = given_balances(loaded, None, choice, events)
    try:
        result = run_backtest(
            build_controller(loaded), events, setup=choice.setup, rules=choice.rules, symbol=choice.symbol,
            risk=risk_settings(loaded), tick_ms=config.engine.tick_ms, start_ns=start_ns, end_ns=end_ns,
            seed=seed, queue=queue, progress=progress, meta=meta, setup_chosen_by_default=choice.by_default,
            taker_reach_bps=taker_reach_bps, controller_max_failures=config.engine.controller_max_failures,
            fit_store=fit_store, latency=latency, funding=funding, through_fill=through_fill, balances=balances,
            balances_source=balances_source,
        )
    except (ValueError, KeyError) as exc:
        raise ConfigError(loaded.path, "", f"cannot backtest: {exc}") from exc
    report = result.report
    for health in report.get("data_health", {}).values():
        health["files"] = [note.as_dict() for note in notes]
    verdict = data_verdict(report, notes, data, max_invalid_pct)
    if verdict is not None:
        result.engine.outcome.record(ProblemKind.DATA_UNHEALTHY, verdict)
        report["problems"] = result.engine.outcome.as_report()
    return result, verdict


def _left_open_reason(left_open: int) -> str:
    return f"{left_open} orders left open after the run"


def _funding_for(path: Path, choice: SetupChoice, events: Sequence[ReplayEvent], start_ns: int | None,
                 end_ns: int | None) -> FundingInput:
    """``--funding``'s settlements, checked against the quoted contract and the run's span before anything runs."""
    venue = choice.rules.venue if choice.rules is not None else events[0].venue
    symbol = choice.symbol or events[0].symbol
    funding = FundingInput.load(path, symbol)
    start = events[0].ts_recv if start_ns is None else start_ns
    end = events[-1].ts_recv if end_ns is None else end_ns
    funding.check(venue, symbol, start, end)
    return funding


def _unwritable(out_dir: Path) -> str | None:
    """Why the report directory cannot take the outputs (created here if missing), or None; before the run.

    Why: it failed only after the run, with a traceback (``--out`` under a file, a read-only directory).
    """
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"--out {out_dir}: cannot create the report directory ({exc.strerror or exc})"
    if not os.access(out_dir, os.W_OK | os.X_OK):
        return f"--out {out_dir}: the report directory is not writable"
    return None


def _usage(message: str) -> int:
    """One line naming what is wrong, no traceback: the documented exit code for a person's mistake."""
    print(f"mmkit backtest: {message}", file=sys.stderr)
    return EXIT_USAGE


# -- issue 13: a broken controller or iterator must not look like a clean backtest ------------------


def _format_failures(result: BacktestResult) -> str:
    """Error counts under the table: controller and iterator failures, and every problem recorded."""
    stats = result.engine.runner.stats
    iterator_errors = result.report.get("counters", {}).get("iterator_errors") or dict(
        result.engine.clock.iterator_errors)
    iterators = ", ".join(f"{k} {v}" for k, v in sorted(iterator_errors.items())) or "0"
    lines = [f"  {'controller errors'.ljust(31)}  {stats.controller_errors}",
             f"  {'iterator errors'.ljust(31)}  {iterators}"]
    for problem in result.engine.outcome.as_report():
        lines.append(f"  {'PROBLEM'.ljust(31)}  {problem['reason']} (x{problem['count']}, exit {problem['exit_code']})")
    return "\n".join(lines)


def _exit_code(result: BacktestResult) -> int:
    """The outcome's documented code, most severe first: orders left open (1), a controller or iterator
    failure (4), unhealthy data (7); 0 for a clean run."""
    if result.left_open and not result.engine.outcome.has(ProblemKind.NOT_FLAT):  # run_backtest records it
        result.engine.outcome.record(ProblemKind.NOT_FLAT, _left_open_reason(result.left_open))
    return result.engine.outcome.exit_code()
