"""Why a backtest filled nothing, in one line the report and the terminal both show.

A run that ends with zero fills is a legitimate result (quotes wider than
anything traded), but it is also what a wrong setup looks like: a halt from
the first tick, orders the venue refused, a strategy that never quoted. The
report's figures all read 0 either way, and ``exit 0`` says nothing. So a
zero-fill run names the first cause it can prove from the report itself,
most basic first, and for the ordinary case says how far our quotes sat
from the mid against how far the flow reached.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def no_fill_reason(report: Mapping[str, Any]) -> str | None:
    """None when the run filled anything; otherwise the one line that says why it filled nothing."""
    fills = report.get("fills") or {}
    if fills.get("count", 0):
        return None
    quoting = report.get("quoting") or {}
    counters = report.get("counters") or {}
    halt = _halt(report, counters)
    if not fills.get("accepted_orders"):
        sent = fills.get("order_messages", 0)
        refused = _refusals(report)
        if halt:
            return f"no fill: no order was accepted{refused}; quoting {halt}"
        if sent:
            return (f"no fill: the venue accepted none of the {sent} order messages sent{refused} "
                    "(orders.csv and backtest.log say why each was refused)")
        return "no fill: the strategy never asked for an order (its targets were empty on every tick)"
    if not quoting.get("any_side_ticks"):
        return "no fill: orders were accepted but none was resting at the end of any tick"
    distance = _distances(quoting.get("touch_distance_bps") or {})
    flow = report.get("taker_flow")
    if flow:
        entered = flow.get("takers_entered", 0)
        reach = flow.get("max_distance_bps")
        return (f"no fill: our nearest quotes sat {distance} from the mid; the recorded tape's prints reached "
                f"at most {reach} bps (taker reach {flow.get('reach_bps')} bps), so {entered:,} of "
                f"{flow.get('takers_sent', 0):,} synthetic takers could reach a resting order"
                + ("; --taker-reach-bps lets them trade further from the mid" if not entered else ""))
    tail = f"; quoting {halt}" if halt else ""
    return (f"no fill: our nearest quotes sat {distance} from the mid and no recorded print or book change "
            f"reached them in the queue model{tail}")


def _refusals(report: Mapping[str, Any]) -> str:
    """' (refused: INSUFFICIENT_FUNDS 12)' from ``report["rejections"]``, or '' (none, or an older report)."""
    by_reason = (report.get("rejections") or {}).get("orders_by_reason") or {}
    if not by_reason:
        return ""
    return " (refused: " + ", ".join(f"{reason} {count:,}" for reason, count in by_reason.items()) + ")"


def _halt(report: Mapping[str, Any], counters: Mapping[str, Any]) -> str | None:
    """How quoting was stopped, when it was (the kill switch, or halted ticks)."""
    kill = counters.get("kill_switch")
    if kill and kill != "not tripped":
        return f"halted by the kill switch ({kill})"
    halted = counters.get("halted_ticks") or 0
    if halted:
        ticks = report.get("ticks") or 0
        return f"was halted on {halted:,} of {ticks:,} ticks"
    return None


def _distances(touch: Mapping[str, Any]) -> str:
    """'a median of 25.1 bps (bid) / 24.9 bps (ask), nearest 24.0 bps' from the quoting section's distances."""
    sides: dict[str, Mapping[str, Any]] = {name: touch[name] for name in ("bid", "ask") if touch.get(name)}
    if not sides:
        return "at no known distance"
    medians = " / ".join(f"{s['median']} bps ({name})" for name, s in sides.items())
    nearest = min(s["min"] for s in sides.values())
    return f"a median of {medians}, nearest {nearest} bps"


__all__ = ["no_fill_reason"]
