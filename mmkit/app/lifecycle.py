"""Running an engine for real: start sequence, live status, signals, stop sequence, final report.

Start: claim the instance (mmkit.store.instance_lock, the journal lock) and
the market (venue account + symbol, mmkit.app.market_claim) → connect feeds
→ connect venue → reconcile open orders (refuse to quote if that fails) →
tick. Both claims are held until the process ends, past the stop's cancels.
Stop (SIGINT/SIGTERM, ``run_for_s``, or the end of a replay): pull quotes →
cancel all → confirm with the venue that nothing is open → final report.
The exit code comes from the run's problems (mmkit.app.outcome): 0 only for a clean run and a clean stop.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import TextIO

import attrs
from loguru import logger

from mmkit.app.build import BuiltEngine, build
from mmkit.app.config import ConfigOverrides, load_engine_config
from mmkit.app.console.runtime import ConsoleStartError, start_console
from mmkit.app.control.runtime import ControlStartError, open_controls
from mmkit.app.engine import Engine, EngineStartError
from mmkit.app.market_claim import MarketClaimGate, claim_market, market_lock_for
from mmkit.app.memory import resident_kb, trim_heap
from mmkit.app.outcome import EXIT_START_REFUSED as EXIT_START_FAILED
from mmkit.app.outcome import ProblemKind
from mmkit.app.persistence import persist_built
from mmkit.app.report import final_report, format_report, session_figures, status_block
from mmkit.app.terminal import StatusDisplay
from mmkit.backtest.sampler import BacktestSampler
from mmkit.clock import Clock, ClockMode, TimeIterator
from mmkit.gc_policy import collections as gc_collections
from mmkit.gc_policy import long_run_gc
from mmkit.model import NS_PER_MS, NS_PER_S
from mmkit.store.market_lock import MarketLock
from mmkit.store.private import restrict_umask


class PeriodicPrinter:
    """Prints the status block and the risk line on their own periods (a post-iterator)."""

    def __init__(self, built: BuiltEngine, out: TextIO, quiet: bool) -> None:
        self.built = built
        self.out = out
        self.quiet = quiet
        cfg = built.config.engine
        self.status_ns = int(cfg.status_interval_s * NS_PER_S)
        self.risk_ns = int(cfg.risk_log_interval_s * NS_PER_S)
        self._next_status = 0
        self._next_risk = 0
        self.display = StatusDisplay(out)  # in place on a terminal (rich), plain blocks otherwise

    def start(self, clock: Clock, ts_ns: int) -> None:
        self._next_status = ts_ns + self.status_ns
        self._next_risk = ts_ns + self.risk_ns

    def tick(self, ts_ns: int) -> None:
        engine = self.built.engine
        engine.pnl.tick(ts_ns)  # logs the periodic PnL line on its own period
        if ts_ns >= self._next_risk:
            self._next_risk = ts_ns + self.risk_ns
            inv = engine.inventory
            kill = engine.runner.kill_switch
            hedge = self.built.hedge
            stop = hedge.stop_reason if hedge is not None else None
            logger.bind(strategy=engine.runner.controller.name).info(
                "risk: position {} util {:.0%} skew {} ticks | kill switch {}{}{}",
                inv.position,
                float(inv.utilization()),
                inv.skew_ticks().quantize(Decimal("0.01")),
                f"HALTED ({kill.reason})" if kill is not None and kill.halted else "ok",
                "" if engine.runner.quoting_enabled else " | quoting PAUSED",
                "" if hedge is None else f" | hedging {f'STOPPED ({stop})' if stop else 'on'}",
            )
        if not self.quiet and ts_ns >= self._next_status:
            self._next_status = ts_ns + self.status_ns
            self.display.show(status_block(engine, ts_ns))

    def stop(self, clock: Clock) -> None:
        self.display.close()


async def run_live(built: BuiltEngine, run_for_s: float | None, quiet: bool, out: TextIO = sys.stdout) -> int:
    """Start, tick until stopped, stop cleanly; returns the exit code."""
    engine = built.engine
    clock = engine.clock
    printer: TimeIterator = PeriodicPrinter(built, out, quiet)
    clock.add_iterator(printer, name="status")
    sampler = BacktestSampler(engine.pnl, engine.inventory, engine.orders, engine.symbol,
                              lambda: engine.runner.last_fair)
    clock.add_iterator(sampler, name="sampler")
    engine.stream.add_order_listener(sampler.on_order_event)  # orders.csv, fill rate per level
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _on_signal, clock, sig)
    console = await start_console(built)  # operator console: alerts first, so a refused start alerts
    market: MarketLock | None = None
    try:
        logger.info("starting: {} ({})", built.path, built.description)
        try:
            persistence = persist_built(built)  # recorder, audit, Redis hot state; recovery runs in engine.start
        except (ValueError, OSError) as exc:
            logger.error("refusing to quote: cannot open the store or the audit trail: {}", exc)
            await console.start_refused(f"cannot open the store or the audit trail: {exc}")
            return EXIT_START_FAILED
        try:
            controls = await open_controls(built, persistence)  # operator control channel (mmkit pause/resume/...)
        except ControlStartError as exc:
            logger.error("refusing to quote: {}", exc)
            await console.start_refused(str(exc))
            return EXIT_START_FAILED
        try:
            await console.open(persistence, controls)  # metrics, alert watchers, dashboard (each if configured)
        except ConsoleStartError as exc:
            logger.error("refusing to quote: {}", exc)
            await console.start_refused(str(exc))
            return EXIT_START_FAILED
        try:  # one process per instance, before the venue connects (after the control socket, whose refusal
            # names a twin in the same output dir): mmkit.store.instance_lock
            await asyncio.to_thread(persistence.claim)
            # one instance per venue account + symbol, before the venue connects: start-up reconciliation would
            # adopt (and the stop cancel) another instance's orders on it (mmkit.store.market_lock)
            market = market_lock_for(built)
            await asyncio.to_thread(claim_market, market)
        except EngineStartError as exc:
            logger.error("refusing to quote: {}", exc)
            await console.start_refused(str(exc))
            return EXIT_START_FAILED
        engine.runner.add_gate(MarketClaimGate(market, engine, hedge=built.hedge), "market claim")
        try:
            await engine.start()
        except EngineStartError as exc:
            logger.error("refusing to quote: {}", exc)
            await console.start_refused(str(exc))
            await _disconnect(engine)
            return EXIT_START_FAILED
        limit = run_for_s if run_for_s is not None else _float(built.config.engine.run_for_s)
        replay_end = _replay_end_ns(built)
        duration = int(limit * NS_PER_S) if limit is not None else replay_end
        if limit is not None and replay_end is not None:
            duration = min(duration or replay_end, replay_end)
        began = time.monotonic()
        logger.info("engine started: clock running{}", f" for {limit:g} s" if limit is not None else "")
        # Decision latency: what is alive now lives for the whole run (see mmkit.gc_policy).
        with long_run_gc():
            _release_start_up_memory()  # after long_run_gc's collection: what start-up freed goes back to the OS
            passes_before = gc_collections()
            await clock.run(duration_ns=duration)
            passes = [after - before for before, after in zip(passes_before, gc_collections(), strict=True)]
        logger.info("stopping after {:.1f} s: pulling quotes", time.monotonic() - began)
        logger.info("garbage collector during the run: {} gen-0, {} gen-1, {} gen-2 passes", *passes)
        still_open = await engine.confirm_flat_book(timeout_s=10.0)
        if built.config.hedge.flatten_on_stop and built.hedge is not None:
            await flatten_position(built)
        if still_open:
            logger.error("orders still open at the venue after stop: {}", still_open)
            engine.outcome.record(ProblemKind.NOT_FLAT, f"orders still open at the venue after stop: {still_open}")
        await _disconnect(engine)
        _run_closers(engine)  # the store now holds this session: its figures are read back from it
        session = session_figures(built, persistence.session_id)
        report = final_report(engine, built, still_open, sampler=sampler, session=session)
        print(format_report(report), file=out, flush=True)
        report_path = _write_report(built, report)
        if report_path is not None:
            _write_outputs(built, sampler, report, report_path.with_suffix(""), out)
        return engine.outcome.exit_code()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await console.close()
        _run_closers(engine)
        if market is not None:
            market.release()  # after the stop's cancels and the disconnect: the market is ours until then


def _release_start_up_memory() -> None:
    """Hand the heap pages start-up freed back to the OS (mmkit.app.memory: ~3 MB of the demo's resident size)."""
    before = resident_kb()
    released = trim_heap()
    after = resident_kb()
    if before is not None and after is not None:
        logger.debug("start-up memory released: {} (resident {} -> {} kB)", released, before, after)


def _run_closers(engine: Engine) -> None:
    """Flush what the run recorded (Engine.closers), whatever way the run ended; each closer runs once."""
    while engine.closers:
        close = engine.closers.pop(0)
        try:
            close()
        except Exception:
            logger.opt(exception=True).error("error while closing {}", getattr(close, "__qualname__", close))


async def flatten_position(built: BuiltEngine, timeout_s: float | None = None) -> Decimal:
    """Hedge the remaining position on the hedge venue (limit, then market after the timeout)."""
    engine, hedge = built.engine, built.hedge
    assert hedge is not None
    limit_s = hedge.config.limit_timeout_ms / 1000
    deadline = time.monotonic() + (timeout_s if timeout_s is not None else limit_s + 10)
    logger.info("flattening position {} on {}", engine.inventory.position, hedge.connector.venue)
    while time.monotonic() < deadline:
        now = engine.clock.now_ns
        engine.router.tick(now)
        if abs(engine.inventory.position) < hedge.config.min_qty and not hedge.working:
            break
        if hedge.stop_reason is not None:  # the hedge gate's named stops (venue down, loss limit)
            logger.error("cannot flatten position {}: {}", engine.inventory.position, hedge.stop_reason)
            break
        hedge.flatten(now, engine.inventory.position)
        hedge.tick(now)  # time-outs and the market fallback
        await asyncio.sleep(0.05)
    logger.info("position after flattening: {}", engine.inventory.position)
    return engine.inventory.position


def _on_signal(clock: Clock, sig: signal.Signals) -> None:
    logger.warning("{} received: stopping", sig.name)
    clock.request_stop()


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _replay_end_ns(built: BuiltEngine) -> int | None:
    """Wall-clock duration of the replay at its speed (the run ends with the recording)."""
    if built.sim is None:
        return None
    replay = built.sim.replay
    return int((replay.last_ts - replay.first_ts) / replay.speed) + NS_PER_S


async def _disconnect(engine: Engine) -> None:
    for connector in [engine.venue, *engine.feeds]:
        try:
            await connector.disconnect()
        except Exception:
            logger.opt(exception=True).warning("error while disconnecting {}", connector.venue)


def _write_report(built: BuiltEngine, report: dict[str, object]) -> Path | None:
    directory = Path(built.config.engine.output_dir) / "reports"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{built.config.engine.instance}-{time.strftime('%Y%m%dT%H%M%S')}.json"
        path.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    except OSError as exc:
        logger.warning("could not write the report: {}", exc)
        return None
    logger.info("report written to {}", path)
    return path


def _write_outputs(
    built: BuiltEngine, sampler: BacktestSampler, run: dict[str, object], directory: Path, out: TextIO
) -> None:
    """The same files as a backtest (report.json, fills.csv, orders.csv, tearsheet) in ``directory``.

    Their report.json carries the analytics of the samples (mmkit.backtest.report.build_report) and the
    final report above under ``"run"``.
    """
    from mmkit.backtest.report import build_report, parameters_of, provenance, write_run_outputs

    if len(sampler) == 0:
        return
    engine = built.engine
    try:
        report = build_report(
            sampler, engine.fills, engine.pnl, max_position=engine.inventory.max_position,
            meta={"setup": f"live: {built.description}", "strategy": run["strategy"], "venue": run["venue"],
                  "symbol": run["symbol"], "config": str(built.path), "tick_ms": built.config.engine.tick_ms},
        )
        report["problems"] = run.get("problems")
        report["run"] = run
        report["provenance"] = provenance(parameters=parameters_of(built.config.strategy.params),
                                          risk=parameters_of(engine.inventory.config))
        title = f"mmkit run — {run['strategy']} on {run['venue']}:{run['symbol']}"
        paths = write_run_outputs(report, sampler, engine.fills, directory, title=title)
    except Exception as exc:  # a failed page must not turn a clean stop into a failure
        logger.opt(exception=True).warning("could not write the run's files: {}", exc)
        return
    print(f"run files: {', '.join(str(p) for p in paths.values())}", file=out, flush=True)


def start_command(
    config_path: str,
    *,
    paper: bool = False,
    run_for_s: float | None = None,
    quiet: bool = False,
    overrides: ConfigOverrides | None = None,
) -> int:
    """``mmkit start``: validate (before anything is sent), assemble, run."""
    restrict_umask()  # everything the run writes (store, journal, audit, logs, reports): 0600 in 0700 dirs
    if paper:
        overrides = attrs.evolve(overrides or ConfigOverrides(), paper=True)
    loaded = load_engine_config(config_path, overrides)
    clock = Clock(ClockMode.REALTIME, tick_ns=loaded.config.engine.tick_ms * NS_PER_MS)
    built = build(loaded, clock)
    return asyncio.run(run_live(built, run_for_s, quiet))
