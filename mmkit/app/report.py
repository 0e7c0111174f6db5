"""What a desk reads while a strategy runs and after it stopped.

``status_block`` is the live table (reference, our quotes, inventory, PnL);
``final_report`` gathers the end-of-run figures from the fill ledger (never
from balances) and the engine's counters; ``format_report`` prints them.

The session's money figures (realized, unrealized, fees, total, spread
capture) are read back from the store once the run has flushed it and
computed by :func:`mmkit.app.history_cmd.summarize` for every book the
session traded (quoted and hedge, :mod:`mmkit.app.session_money`), i.e. by
:mod:`mmkit.analytics.ledger`, the very function ``mmkit history`` calls on
the very same rows, so the two always agree for a session. Without a
readable store they come from the engine's PnLTracker and the report says so
(``figures_source``). Uptime, PnL per hour and markouts come from the per-tick
samples through :mod:`mmkit.analytics`, as in a backtest report.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from loguru import logger

from mmkit.analytics.execution import order_to_trade
from mmkit.analytics.ledger import GroupStats
from mmkit.analytics.markouts import headline, markout_table
from mmkit.analytics.performance import risk_adjusted
from mmkit.analytics.quoting import uptime
from mmkit.app.session_money import session_money
from mmkit.connector import health_counters
from mmkit.model import Side

if TYPE_CHECKING:
    from mmkit.app.build import BuiltEngine
    from mmkit.app.engine import Engine
    from mmkit.backtest.sampler import BacktestSampler
    from mmkit.risk.pnl import PnLTracker

CENT = Decimal("0.01")
BPS_PLACES = Decimal("0.0001")


def _money(value: Decimal | None) -> str:
    return "-" if value is None else f"{value.quantize(CENT):,}"


def status_block(engine: Engine, ts_ns: int) -> str:
    runner = engine.runner
    fair = runner.last_fair
    orders = engine.orders.open_orders(engine.symbol)
    bids = sorted((o for o in orders if o.side is Side.BUY), key=lambda o: -(o.price or 0))
    asks = sorted((o for o in orders if o.side is Side.SELL), key=lambda o: o.price or 0)
    best_bid = f"{bids[0].price} x {bids[0].remaining}" if bids else "-"
    best_ask = f"{asks[0].price} x {asks[0].remaining}" if asks else "-"
    pnl = engine.pnl
    kill = runner.kill_switch
    state = "HALTED" if (kill is not None and kill.halted) else ("quoting" if runner.quoting_enabled else "stopped")
    holds = runner.gate_holds
    if holds:  # runner gates (the venue's guard, the market claim, the journal): never "quoting"; every one holding
        held = "HELD " + "; ".join(f"by gate {hold.gate} for {max(ts_ns - hold.since_ns, 0) / 1e9:.1f} s: {hold.reason}"
                                   for hold in holds)
        state = held if state == "quoting" else f"{state}; {held}"
    if runner.failure_halt is not None:  # the controller failed too often (mmkit.app.strategy_runner.StrategyRunner)
        state = f"HALTED: {runner.failure_halt}"
    elif runner.stats.controller_errors:
        state += f", controller errors {runner.stats.controller_errors}"
    return (
        f"┌ {engine.runner.controller.name} on {engine.venue.venue}:{engine.symbol} [{state}]\n"
        f"│ reference {_money(fair.price)} (confidence {fair.confidence:.2f})\n"
        f"│ our quotes  bid {best_bid}  |  ask {best_ask}  ({len(bids)}+{len(asks)} orders)\n"
        f"│ inventory {engine.inventory.position} {pnl.settlement.size_unit} "
        f"(entry {_money(engine.inventory.entry_price)})\n"
        + _pnl_line(pnl)
    )


def _pnl_line(pnl: PnLTracker) -> str:
    """The PnL row: quote money to the cent; an inverse contract's coin to the satoshi, with its unit."""
    if not pnl.settlement.inverse:
        return (f"└ PnL total {_money(pnl.total())} = realized {_money(pnl.realized())} + unrealized "
                f"{_money(pnl.unrealized())} - fees {_money(pnl.fees())} | fills {pnl.trade_count()}")
    unit = pnl.unit
    in_quote = pnl.to_quote(pnl.total())
    return (f"└ PnL total {pnl.total():.8f} {unit} ({_money(in_quote)} {pnl.settlement.quote_name}) = realized "
            f"{pnl.realized():.8f} + unrealized {pnl.unrealized():.8f} - fees {pnl.fees():.8f} {unit} "
            f"| fills {pnl.trade_count()}")


def session_figures(built: BuiltEngine, session_id: str) -> list[GroupStats] | None:
    """This session's rows of ``mmkit history --by session``, one per book it traded, the quoted one first.

    Every book: the hedge venue's fills and fees are this session's money too
    (:mod:`mmkit.app.session_money`). None when the store cannot be read or
    holds no fill of this session.
    """
    from mmkit.app.history_cmd import config_settlements, summarize
    from mmkit.app.persistence import default_store_url
    from mmkit.app.recovery import InstanceLedger
    from mmkit.risk.settlement import Settlement

    cfg = built.config
    engine = built.engine
    try:
        ledger = InstanceLedger(default_store_url(cfg.store, cfg.engine.instance, cfg.engine.output_dir),
                                cfg.engine.instance)
        try:
            fills, marks = ledger.fills(), ledger.marks()
        finally:
            ledger.close()
    except Exception as exc:  # the report must still be written: it says where its figures came from
        logger.warning("final report: cannot read the store back ({}); figures from the engine", exc)
        return None
    quoted = (engine.venue.venue, engine.symbol)
    try:  # the hedge venue's settlement too (an inverse hedge books its PnL in its coin)
        settlements = config_settlements(str(built.path))
    except Exception as exc:
        logger.warning("final report: the hedge venue's settlement is unknown ({}); taken as linear", exc)
        settlements = {}
    settlements[quoted] = Settlement.of(built.rules.instrument(engine.symbol))
    rows = [row for row in summarize(fills, "session", marks, settlements) if row.group == session_id]
    rows.sort(key=lambda row: (row.venue, row.symbol) != quoted)  # stable: the quoted book first
    return rows or None


def final_report(
    engine: Engine,
    built: BuiltEngine,
    still_open: list[str],
    *,
    sampler: BacktestSampler | None = None,
    session: Sequence[GroupStats] | None = None,
) -> dict[str, Any]:
    """The end-of-run figures (all money as exact strings; units in the names or in docs/backtesting.md)."""
    pnl = engine.pnl
    clock = engine.clock
    kill = engine.runner.kill_switch
    stats = engine.runner.stats
    events = engine.router.events
    if session:
        money: dict[str, Any] = session_money(session, (engine.venue.venue, engine.symbol))
    else:
        engine_capture = pnl.avg_spread_capture_bps()
        money = {
            "figures_source": "engine (PnLTracker): no fill of this session could be read back from the store",
            "realized_pnl": str(pnl.realized()),
            "unrealized_pnl": str(pnl.unrealized()),
            "fees": str(pnl.fees()),
            "total_pnl": str(pnl.total()),
            "avg_spread_capture_bps": None if engine_capture is None else str(engine_capture.quantize(BPS_PLACES)),
        }
        if pnl.settlement.inverse:
            in_quote = pnl.to_quote(pnl.total())
            money["pnl_unit"] = pnl.unit
            money["total_pnl_quote"] = None if in_quote is None else str(in_quote)
    samples: dict[str, Any] = {}
    if sampler is not None and len(sampler) > 0:
        quoting = uptime(sampler.bid, sampler.ask)
        performance = risk_adjusted(sampler.ts, sampler.total, pnl.total())
        markouts = headline(markout_table(engine.fills, sampler.ts, sampler.mid))
        samples = {
            "two_sided_uptime_pct": quoting["two_sided_uptime_pct"],
            "any_side_uptime_pct": quoting["any_side_uptime_pct"],
            "sharpe": performance["sharpe"],
            "sharpe_note": performance["sharpe_note"],
            "pnl_per_hour": performance["pnl_per_hour"],
            "pnl_per_hour_se": performance["pnl_per_hour_se"],
            "markout_1s_bps": markouts["all_1s_bps"],
            "markout_10s_bps": markouts["all_10s_bps"],
            "markout_60s_bps": markouts["all_60s_bps"],
            "order_to_trade": order_to_trade(sampler.order_messages, len(engine.fills)),
        }
    return {
        "config": str(built.path),
        "strategy": engine.runner.controller.name,
        "venue": engine.venue.venue,
        "symbol": engine.symbol,
        "setup": built.description,
        "fills": len(engine.fills),
        "volume_base": str(pnl.volume_base()),
        "position": str(engine.inventory.position),
        "position_from_fills": str(engine.fill_position()),
        **money,
        "max_drawdown": str(pnl.max_drawdown),
        **samples,
        "open_orders_at_venue": still_open,
        "kill_switch": (kill.reason if kill is not None and kill.halted else "not tripped"),
        "ticks": clock.tick_count,
        "missed_ticks": clock.missed_ticks,
        "woken_ticks": clock.woken_ticks,
        "iterator_errors": dict(clock.iterator_errors),
        "controller_errors": stats.controller_errors,
        # Ticks with both sides quoted (the old count, every tick with quoting enabled, is quoting_enabled_ticks).
        "quoting_ticks": (uptime(sampler.bid, sampler.ask)["two_sided_ticks"] if sampler is not None
                          else None),
        "quoting_enabled_ticks": stats.quoting_ticks,
        "halted_ticks": stats.halted_ticks,
        # every runner gate that held quoting: ticks held, separate holds, first and last held tick (clock ns)
        "quoting_gates": [tally.as_dict() for tally in engine.runner.gate_tallies.values()],
        "orders_accepted": events["OrderAccepted"],
        "orders_replaced": events["OrderReplaced"],
        "orders_canceled": events["OrderCanceled"],
        "order_rejects": events["OrderRejected"],
        "cancel_or_replace_rejects": events["OrderCancelRejected"],
        "malformed_messages": engine.router.malformed,
        "duplicate_fills_dropped": engine.stream.duplicate_fills,
        **venue_counters([engine.venue, *([built.hedge.connector] if built.hedge is not None else [])]),
        "problems": engine.outcome.as_report(),
    }


def venue_counters(connectors: Sequence[object]) -> dict[str, Any]:
    """``{"venue_counters": {venue: counters}}`` for the connectors that keep some (mmkit.connector.health_counters);
    nothing for a run whose connectors keep none (a simulated venue), so those reports are unchanged."""
    found: dict[str, dict[str, int]] = {}
    for connector in connectors:
        counters = health_counters(connector)
        if counters is not None:
            found[str(getattr(connector, "venue", type(connector).__name__))] = counters
    return {"venue_counters": found} if found else {}


def _utc(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, UTC).isoformat(timespec="milliseconds")


def format_report(report: dict[str, Any]) -> str:
    lines = ["", "══ final report ══"]
    width = max(len(k) for k in report)
    for key, value in report.items():
        if key == "books" and isinstance(value, list):  # one line per book, not a list of dicts
            for book in value:
                money = (f"total {book['total']} {book['pnl_unit']}, fees {book['fees']}" if "pnl_unit" in book
                         else f"total {book['total_quote']}, fees {book['fees_quote']}")
                where = f"{book['venue']} {book['symbol']}"
                lines.append(f"  {'book'.ljust(width)}  {where}: {book['trades']} trades, {money}")
            continue
        if key == "quoting_gates" and isinstance(value, list):  # one line per gate that held quoting
            for gate in value:
                lines.append(f"  {'quoting_gate'.ljust(width)}  {gate['gate']}: held {gate['ticks']} ticks in "
                             f"{gate['holds']} holds, first {_utc(gate['first_ns'])}, last {_utc(gate['last_ns'])} "
                             f"(last reason: {gate['last_reason']})")
            if not value:
                lines.append(f"  {key.ljust(width)}  none held quoting")
            continue
        if key == "venue_counters" and isinstance(value, dict):  # one line per venue, the counts that are not 0
            for venue, counters in value.items():
                shown = ", ".join(f"{k} {v}" for k, v in counters.items() if v) or "all 0"
                lines.append(f"  {'venue_counters'.ljust(width)}  {venue}: {shown}")
            continue
        lines.append(f"  {key.ljust(width)}  {value}")
    lines.append("")
    return "\n".join(lines)
