"""Wiring the operator console into a live run: metrics, alerts and the dashboard, each off unless configured.

:func:`start_console` runs first in ``run_live`` (so a refused start can
still alert); :meth:`Console.open` runs once persistence and the control
channel are up; :meth:`Console.close` runs when the run ends, whatever way.
The addresses actually bound (port 0 picks a free one) are logged and
written to ``<output_dir>/console/<instance>.json`` for scripts and tests.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger

from mmkit.app.console.alerts import AlertSender, AlertSettings
from mmkit.app.outcome import Problem, ProblemKind
from mmkit.risk.kill_switch import KillSwitchEvent

if TYPE_CHECKING:  # prometheus_client (+ http.server, email, wsgiref: ~2 MB resident) only when metrics are configured
    from mmkit.app.console.metrics import Metrics, MetricsServer


class ConsoleStartError(Exception):
    """A configured console part cannot start (its port is taken): the instance must not run unwatched."""


class Console:
    """What the console started for one run; every part optional."""

    def __init__(self, built: Any) -> None:
        self.built = built
        self.section = built.config.console
        self.instance = built.config.engine.instance
        self.alerts: AlertSender | None = None
        self.metrics: Metrics | None = None
        self.metrics_server: MetricsServer | None = None
        self.dashboard: Any = None
        self.addresses: dict[str, str] = {}
        self._tasks: list[asyncio.Task[None]] = []
        #: Rounds of the venue/store watcher so far (tests wait on it rather than on the clock).
        self.watch_checks = 0
        if self.section.alerts is not None and self.section.alerts.webhooks:
            self.alerts = AlertSender(AlertSettings.from_section(self.section.alerts), self.instance)
            self.alerts.start()

    # -- alerts raised by the lifecycle ------------------------------------

    async def start_refused(self, reason: str) -> None:
        """Alert that the instance refused to start, and wait (bounded) for it to go out before exiting."""
        if self.alerts is not None:
            self.alerts.alert("start_refused", "start", f"{self.instance} refused to start: {reason}")
            await self.alerts.drain(timeout_s=float(self.section.alerts.timeout_s) * 2 if self.section.alerts else 10)

    # -- after persistence and controls ------------------------------------

    async def open(self, persistence: Any, controls: Any) -> None:
        built, section = self.built, self.section
        engine = built.engine
        if section.metrics is not None:
            from mmkit.app.console.metrics import Metrics, MetricsCollector, MetricsServer

            self.metrics = Metrics(self.instance)
            collector = MetricsCollector(self.metrics, built, persistence, section.metrics.interval_ms)
            collector.attach()
            self.metrics_server = MetricsServer(self.metrics, section.metrics.host, section.metrics.port)
            try:
                self.addresses["metrics"] = self.metrics_server.start()
            except OSError as exc:
                raise ConsoleStartError(
                    f"cannot serve metrics on {section.metrics.host}:{section.metrics.port}: {exc}"
                ) from exc
        if self.alerts is not None:
            self._watch_for_alerts(persistence)
        if section.dashboard is not None:
            from mmkit.app.console.dashboard import Dashboard

            self.dashboard = Dashboard(built, section.dashboard, controls.channel if controls else None, persistence)
            # The last summary of refused requests goes out before the audit writer closes (persistence's
            # closer was appended before this one; closers run in order).
            engine.closers.insert(0, self.dashboard.refusals.close)
            try:
                self.addresses["dashboard"] = await self.dashboard.start()
            except OSError as exc:
                raise ConsoleStartError(
                    f"cannot serve the dashboard on {section.dashboard.host}:{section.dashboard.port}: {exc}"
                ) from exc
        if self.addresses:
            self._write_addresses(Path(built.config.engine.output_dir))
            print("console: " + "   ".join(f"{k} {v}" for k, v in self.addresses.items()), flush=True)
        engine.closers.append(self._close_sync)

    def _write_addresses(self, output_dir: Path) -> None:
        path = output_dir / "console" / f"{self.instance}.json"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(self.addresses), encoding="utf-8")
        except OSError as exc:
            logger.warning("could not write the console's addresses to {}: {}", path, exc)

    def _watch_for_alerts(self, persistence: Any) -> None:
        alerts, engine, built = self.alerts, self.built.engine, self.built
        assert alerts is not None
        kill = engine.runner.kill_switch
        if kill is not None:

            def on_trip(event: KillSwitchEvent) -> None:
                if event.halted:
                    pnl = engine.pnl  # its unit: an inverse contract's PnL is in the coin; pnl_quote at the mark
                    in_quote = pnl.to_quote(pnl.total())
                    alerts.alert(
                        "kill_switch",
                        event.reason,
                        f"kill switch tripped: {event.reason}",
                        details={"position": str(engine.inventory.position), "pnl": str(pnl.total()),
                                 "pnl_unit": pnl.unit, "pnl_quote": None if in_quote is None else str(in_quote)},
                        ts_ns=event.ts_ns,
                    )

            kill.add_trip_listener(on_trip)

        def on_problem(problem: Problem) -> None:
            kind = {ProblemKind.LEDGER_HALT: "ledger", ProblemKind.NOT_PERSISTED: "store"}.get(problem.kind, "problem")
            alerts.alert(
                kind,
                problem.reason,
                problem.reason,
                details={"problem": problem.kind.name.lower(), "exit_code": problem.kind.value},
                ts_ns=problem.ts_ns or None,
            )

        engine.outcome.listeners.append(on_problem)
        if built.hedge is not None:

            def on_hedge(event: str, detail: dict[str, Any]) -> None:
                if event in ("hedge_stopped", "hedge_unfunded"):
                    reason = str(detail.get("reason", event))
                    alerts.alert("hedge", event, f"hedge did not complete ({event}): {reason}", details=detail)

            built.hedge.problem_listeners.append(on_hedge)
        after = float(self.section.alerts.venue_down_after_s) if self.section.alerts else 30.0
        self._tasks.append(asyncio.create_task(self._watch(persistence, after), name="console-watch"))

    async def _watch(self, persistence: Any, down_after_s: float) -> None:
        """Venue outages and store failures, polled off the tick (twice a second)."""
        alerts, engine = self.alerts, self.built.engine
        assert alerts is not None
        down_since: float | None = None
        alerted_down = False
        seen_up = False
        db_errors = audit_errors = 0
        while True:
            await asyncio.sleep(0.5)
            self.watch_checks += 1
            venue = engine.venue
            if venue.connected:
                seen_up = True
                if alerted_down:
                    alerts.alert("venue_up", venue.venue, f"quoting venue {venue.venue} is back", severity="info")
                down_since, alerted_down = None, False
            elif seen_up:
                now = time.monotonic()
                down_since = down_since or now
                if not alerted_down and now - down_since >= down_after_s:
                    alerted_down = True
                    alerts.alert(
                        "venue_down",
                        venue.venue,
                        f"quoting venue {venue.venue} down for {now - down_since:.0f} s",
                        details={"down_for_s": round(now - down_since, 1)},
                    )
            if persistence is not None:
                stats = persistence.recorder.stats()
                if stats.db_errors > db_errors:
                    alerts.alert(
                        "store",
                        "write",
                        f"store write failures: {stats.db_errors} "
                        f"(in outage: {stats.in_outage}, queued: {stats.backlog})",
                        details={"db_errors": stats.db_errors, "backlog": stats.backlog},
                    )
                    db_errors = stats.db_errors
                errors = int(getattr(persistence.audit.trail, "errors", 0) or 0)
                if errors > audit_errors:
                    alerts.alert("store", "audit", f"audit trail write failures: {errors}", details={"errors": errors})
                    audit_errors = errors

    # -- end of run --------------------------------------------------------

    def _close_sync(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.metrics_server is not None:
            self.metrics_server.close()

    async def close(self) -> None:
        """Stop the page, post the alerts still queued (bounded), stop serving metrics."""
        for task in self._tasks:
            task.cancel()
        if self.dashboard is not None:
            await self.dashboard.close()
            self.dashboard = None
        if self.alerts is not None:
            await self.alerts.close(timeout_s=10.0)
        if self.metrics_server is not None:
            self.metrics_server.close()
            self.metrics_server = None


async def start_console(built: Any) -> Console:
    """The console of ``built`` (alerts start at once, so a refused start can alert).

    Also where a start says, before anything is sent, that it runs with no loss limit
    (``risk.kill_switch.unlimited_loss``): the config allows it only written down, and the log says it.
    """
    warn_unlimited_loss(built)
    return Console(built)


def unlimited_loss_text(kill: Any) -> str:
    """What status and the page say of a run with no loss limit ("" when it has one).

    Two ways to have none, both written in the config on purpose: ``unlimited_loss: true`` (the switch
    runs its other triggers), or no kill switch at all (``enabled: false``).
    """
    if kill is None:
        return "NO LOSS LIMIT (risk.kill_switch.enabled: false: no kill switch at all)"
    if not getattr(kill, "loss_unlimited", False):
        return ""
    return "NO LOSS LIMIT (risk.kill_switch.unlimited_loss: true; max_loss and max_drawdown are null)"


def warn_unlimited_loss(built: Any) -> None:
    """One WARNING at start when the run has no loss limit on purpose (nothing when it has one)."""
    text = unlimited_loss_text(built.engine.runner.kill_switch)
    if text:
        logger.warning("instance {} runs with {}", built.config.engine.instance, text)
