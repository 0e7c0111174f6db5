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
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
from loguru import logger

from mmkit.app.assembly import RiskSettings
from mmkit.app.backtest_setups import QueueName, build_replay_venue_setup, queue_model
from mmkit.app.engine import Engine
from mmkit.app.simulated import build_sim_setup
from mmkit.backtest.binance import read_recording, recording_files
from mmkit.backtest.progress import ProgressBar
from mmkit.backtest.replay import RecordingReplay, ReplayEvent
from mmkit.backtest.report import build_report, format_table
from mmkit.backtest.sampler import BacktestSampler
from mmkit.backtest.tardis import is_tardis, read_tardis, tardis_files
from mmkit.clock import Clock, ClockMode
from mmkit.conf import ConfigError
from mmkit.connector import VenueRules, load_venue_rules
from mmkit.gc_policy import long_run_gc
from mmkit.model import NS_PER_MS, BookDelta, BookSnapshot, Trade
from mmkit.sim.flow import FlowConfig
from mmkit.strategy import Controller

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
) -> BacktestResult:
    """One deterministic backtest of ``controller`` over ``events``; returns the engine, samples and report.

    ``setup`` ``sim``: quote ``symbol`` on a simulated venue (``rules``, default
    ``conf/venues/sim.yml`` BTC-PYUSD) priced off the recording, with seeded
    synthetic flow. ``replay``: quote the recorded instrument on the recorded
    venue (rules ``conf/venues/<recorded venue>.yml``), fills from the queue model.
    """
    if not events:
        raise ValueError("no recorded events to replay")
    risk = risk or RiskSettings()
    start = events[0].ts_recv if start_ns is None else start_ns
    end = events[-1].ts_recv if end_ns is None else end_ns
    if end <= start:
        raise ValueError(f"empty time window: start {start} >= end {end}")
    clock = Clock(ClockMode.BACKTEST, tick_ns=tick_ms * NS_PER_MS, start_ns=start)
    engine: Engine
    replay: RecordingReplay
    if setup == "sim":
        rules = rules or load_venue_rules("sim")
        symbol = symbol or rules.instruments[0].symbol
        sim = build_sim_setup(clock, controller, events, rules, symbol, risk=risk, flow=FlowConfig(seed=seed))
        engine, replay = sim.engine, sim.replay
    elif setup == "replay":
        first = events[0]
        rules = rules or load_venue_rules(first.venue)
        symbol = symbol or first.symbol
        rep = build_replay_venue_setup(clock, controller, events, rules, symbol, risk=risk,
                                       queue=queue_model(queue, seed))
        engine, replay = rep.engine, rep.replay
    else:
        raise ValueError(f"unknown setup {setup!r} (sim, replay)")
    sampler = BacktestSampler(engine.pnl, engine.inventory, engine.orders, symbol, lambda: engine.runner.last_fair)
    engine.stream.add_order_listener(sampler.on_order_event)
    clock.add_iterator(sampler, name="sampler")
    bar = ProgressBar(1000, enabled=progress)
    if progress:  # an iterator less on every tick when nobody watches the bar
        clock.add_iterator(_ProgressIterator(bar, start, end), name="progress")
    began = time.perf_counter()
    with long_run_gc():  # the recording and the engine live for the whole run (see mmkit.gc_policy)
        left_open = asyncio.run(engine.run_backtest(end))
    run_s = time.perf_counter() - began
    bar.close()
    kill = engine.runner.kill_switch
    stats = engine.runner.stats
    counters = {
        "orders_left_open": left_open,
        "quoting_ticks": stats.quoting_ticks,
        "halted_ticks": stats.halted_ticks,
        "controller_errors": stats.controller_errors,
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
    return BacktestResult(engine, sampler, report, left_open, run_s, replay.delivered)


def write_outputs(result: BacktestResult, out_dir: Path) -> dict[str, Path]:
    """report.json, fills.csv, orders.csv and the tearsheet report.html in ``out_dir``; returns name -> path."""
    from mmkit.backtest.report import write_backtest_outputs

    return write_backtest_outputs(result.report, result.sampler, result.engine, out_dir)


def _log_to_file(path: Path, verbose: bool) -> None:
    """Engine logs (thousands of lines on a long run) go to a file; the terminal keeps the bar and errors."""
    logger.remove()
    logger.add(sys.stderr, level="DEBUG" if verbose else "ERROR")
    logger.add(path, level="DEBUG" if verbose else "INFO", mode="w")


def backtest_command(args: argparse.Namespace) -> int:
    """The CLI handler (arguments as registered in :mod:`mmkit.app.cli`)."""
    from mmkit.app.build import build_controller, risk_settings, venue_rules
    from mmkit.app.config import ConfigOverrides, load_engine_config

    loaded = load_engine_config(args.config, ConfigOverrides(backtest=True))  # nothing connects: no secrets read
    config = loaded.config
    controller = build_controller(loaded)
    risk = risk_settings(loaded)
    data = Path(args.data)
    if not data.exists():
        print(f"no such recording: {data}", file=sys.stderr)
        return EXIT_FAILURE
    try:
        start_ns, end_ns = parse_time(args.start), parse_time(args.end)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_FAILURE
    seed = DEFAULT_SEED if args.seed is None else args.seed
    rules = symbol = None
    if args.setup == "sim":
        if config.venue.connector not in ("sim", "mmkit.sim"):
            logger.info("setup sim: quoting on the simulated venue instead of {}", config.venue.connector)
        rules = venue_rules(config.venue, loaded.path, "venue") if config.venue.rules else None
        symbol = config.venue.symbol if rules is not None else None
    stamp = datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%S")
    out_dir = Path(args.out) if args.out else Path("reports") / f"{loaded.path.stem}-{args.setup}-{stamp}"
    out_dir.mkdir(parents=True, exist_ok=True)
    _log_to_file(out_dir / "backtest.log", verbose=bool(getattr(args, "verbose", False)))
    began = time.perf_counter()
    events = load_events(data, end_ns, freeze=True)  # run next, under long_run_gc
    load_s = time.perf_counter() - began
    if start_ns is not None:
        events_in_window = [e for e in events if e.ts_recv >= start_ns]
        if not events_in_window:
            print(f"no recorded events after --from {args.start}", file=sys.stderr)
            return EXIT_FAILURE
    try:
        result = run_backtest(
            controller, events, setup=args.setup, rules=rules, symbol=symbol, risk=risk,
            tick_ms=config.engine.tick_ms, start_ns=start_ns, end_ns=end_ns, seed=seed,
            queue=getattr(args, "queue", None) or "conservative", progress=not args.no_progress,
            meta={"config": str(loaded.path), "data": str(data)},
        )
    except (ValueError, KeyError) as exc:
        raise ConfigError(loaded.path, "", f"cannot backtest: {exc}") from exc
    paths = write_outputs(result, out_dir)
    print(format_table(result.report))
    print(f"  {'wall time'.ljust(31)}  load {load_s:.2f} s, simulate {result.run_s:.2f} s "
          f"({result.events / max(result.run_s, 1e-9):,.0f} events/s)")
    print(f"\nreport written to {out_dir}/")
    for name, path in {**paths, "backtest.log": out_dir / "backtest.log"}.items():
        print(f"  {name:14s} {path}")
    return EXIT_OK if result.left_open == 0 else EXIT_FAILURE
