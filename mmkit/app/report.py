"""What a desk reads while a strategy runs and after it stopped.

``status_block`` is the live table (reference, our quotes, inventory, PnL);
``final_report`` gathers the end-of-run figures from the fill ledger (never
from balances) and the engine's counters; ``format_report`` prints them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from mmkit.model import Side

if TYPE_CHECKING:
    from mmkit.app.build import BuiltEngine
    from mmkit.app.engine import Engine

CENT = Decimal("0.01")


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
    if runner.failure_halt is not None:  # the controller failed too often (mmkit.app.engine.StrategyRunner)
        state = f"HALTED: {runner.failure_halt}"
    elif runner.stats.controller_errors:
        state += f", controller errors {runner.stats.controller_errors}"
    return (
        f"┌ {engine.runner.controller.name} on {engine.venue.venue}:{engine.symbol} [{state}]\n"
        f"│ reference {_money(fair.price)} (confidence {fair.confidence:.2f})\n"
        f"│ our quotes  bid {best_bid}  |  ask {best_ask}  ({len(bids)}+{len(asks)} orders)\n"
        f"│ inventory {engine.inventory.position} BTC (entry {_money(engine.inventory.entry_price)})\n"
        f"└ PnL total {_money(pnl.total())} = realized {_money(pnl.realized())} + unrealized "
        f"{_money(pnl.unrealized())} - fees {_money(pnl.fees())} | fills {pnl.trade_count()}"
    )


def final_report(engine: Engine, built: BuiltEngine, still_open: list[str]) -> dict[str, Any]:
    """The end-of-run figures (all money as exact strings)."""
    pnl = engine.pnl
    clock = engine.clock
    kill = engine.runner.kill_switch
    stats = engine.runner.stats
    events = engine.router.events
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
        "realized_pnl": str(pnl.realized()),
        "unrealized_pnl": str(pnl.unrealized()),
        "fees": str(pnl.fees()),
        "total_pnl": str(pnl.total()),
        "avg_spread_capture_bps": str(pnl.avg_spread_capture_bps()),
        "max_drawdown": str(pnl.max_drawdown),
        "open_orders_at_venue": still_open,
        "kill_switch": (kill.reason if kill is not None and kill.halted else "not tripped"),
        "ticks": clock.tick_count,
        "missed_ticks": clock.missed_ticks,
        "woken_ticks": clock.woken_ticks,
        "iterator_errors": dict(clock.iterator_errors),
        "controller_errors": stats.controller_errors,
        "quoting_ticks": stats.quoting_ticks,
        "halted_ticks": stats.halted_ticks,
        "orders_accepted": events["OrderAccepted"],
        "orders_replaced": events["OrderReplaced"],
        "orders_canceled": events["OrderCanceled"],
        "order_rejects": events["OrderRejected"],
        "cancel_or_replace_rejects": events["OrderCancelRejected"],
        "malformed_messages": engine.router.malformed,
        "duplicate_fills_dropped": engine.stream.duplicate_fills,
        "problems": engine.outcome.as_report(),
    }


def format_report(report: dict[str, Any]) -> str:
    lines = ["", "══ final report ══"]
    width = max(len(k) for k in report)
    for key, value in report.items():
        lines.append(f"  {key.ljust(width)}  {value}")
    lines.append("")
    return "\n".join(lines)
