"""``mmkit history CONFIG [--by session|day] [--csv FILE]``: what an instance did, from its ledger.

Why recompute from fills rather than read PnL snapshots: the fills are the
ledger of record (unique by venue and trade id, exact Decimals), while
snapshots are periodic and may miss the last second before a crash. So
realized PnL is rebuilt by replaying every fill of the instance, in venue
time, through the same FIFO books the engine uses (one per venue and
quote/hedge), and each fill's realized PnL is credited to its group.

Per group (a session or a UTC day) and (venue, symbol): trades, bought and
sold quantity, volume, notional, net quantity, realized PnL (before fees),
unrealized PnL at the group's closing mark, fees per currency, maker share
and spread capture, all as defined once in :mod:`mmkit.analytics.ledger`
(the live final report calls the same function on the same store).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path

from mmkit.analytics import ledger
from mmkit.analytics.ledger import GroupStats
from mmkit.app.persistence import default_audit_path, default_store_url
from mmkit.app.recovery import InstanceLedger, StoredFill
from mmkit.app.status_cmd import (
    EXIT_STORE_UNREADABLE,
    StoreUnreadable,
    instance_settings,
    journal_note,
    journal_only_fills,
    read_store_or_fail,
    store_exists,
)
from mmkit.model import Fill
from mmkit.risk.settlement import Settlement
from mmkit.store.db import redact_url
from mmkit.store.journal import SYNTHETIC_PREFIX, VOID_PREFIX, JournalCorrupt, journal_path_for
from mmkit.store.queries import utc_day

EXIT_OK = 0
EXIT_NO_DATA = 1
#: The session column of fills only the journal holds (the store, which knows sessions, lacks them).
JOURNAL_GROUP = "journal"

CSV_COLUMNS = (
    "session_id", "day", "venue", "symbol", "trade_id", "client_id", "venue_order_id", "side", "price", "qty",
    "fee", "fee_currency", "liquidity", "is_hedge", "ts_event", "ts_recv",
)


def summarize(
    fills: Sequence[StoredFill], by: str, marks: Sequence[tuple[int, Decimal]] = (),
    settlements: Mapping[tuple[str, str], Settlement] | None = None,
) -> list[GroupStats]:
    """Group stats in first-seen order of the groups (fills in venue-time order).

    The figures are :func:`mmkit.analytics.ledger.summarize`'s, the very function the live final
    report calls, so a session shows the same numbers in both. ``settlements`` (per (venue, symbol),
    from :func:`config_settlements`) books an inverse contract's PnL in its coin.
    """
    plain = [stored.fill for stored in fills]

    def group_of(index: int, fill: Fill) -> str:
        return fills[index].session_id if by == "session" else utc_day(fill.ts_event)

    return ledger.summarize(plain, group_of, marks, settlements=settlements)


def config_settlements(config_path: str) -> dict[tuple[str, str], Settlement]:
    """Per (venue, symbol) of the config's quoted and hedge venues, its settlement (linear or inverse).

    Read from the venue rules the config names (``conf/venues``), without building or connecting anything.
    """
    from mmkit.app.build import venue_rules
    from mmkit.app.config import ConfigOverrides, load_engine_config

    loaded = load_engine_config(config_path, ConfigOverrides(backtest=True))
    sections = [("venue", loaded.config.venue)]
    if loaded.config.hedge.venue is not None:
        sections.append(("hedge.venue", loaded.config.hedge.venue))
    out: dict[tuple[str, str], Settlement] = {}
    for key, section in sections:
        rules = venue_rules(section, loaded.path, key)
        out[(rules.venue, section.symbol)] = Settlement.of(rules.instrument(section.symbol))
    return out


def fees_by_venue(fills: Sequence[StoredFill]) -> dict[tuple[str, str], Decimal]:
    return ledger.fees_by_venue([stored.fill for stored in fills])


def format_history(instance: str, by: str, stats: Sequence[GroupStats], fees: dict[tuple[str, str], Decimal]) -> str:
    header = [
        by, "venue", "symbol", "trades", "bought", "sold", "volume", "notional", "net", "realized", "unrealized",
        "fees", "maker%", "capture_bps",
    ]
    rows = [header]
    for s in stats:
        capture = s.capture_bps
        rows.append([
            s.group, s.venue, s.symbol, str(s.trades), _n(s.buy_qty), _n(s.sell_qty), _n(s.volume), _n(s.notional),
            _n(s.buy_qty - s.sell_qty), _n(s.realized), _n(s.unrealized),
            " ".join(f"{_n(v)} {c}" for c, v in sorted(s.fees.items())),
            f"{100 * s.maker / s.trades:.0f}" if s.trades else "-",
            f"{capture:.2f}" if capture is not None else "-",
        ])
    lines = [f"history of {instance} by {by}: {sum(s.trades for s in stats)} fills", *_left_cols(rows, 3)]
    for s in stats:  # an inverse contract: its sizes are contracts and its PnL is in the coin
        if s.inverse is not None:
            in_quote = s.total_in_quote
            quote = s.inverse.quote_name
            converted = "" if in_quote is None else f" = {in_quote:.2f} {quote} at {s.closing_mark}"
            lines.append(f"  {s.group} {s.venue}:{s.symbol} is inverse: sizes in contracts of "
                         f"{s.inverse.inverse_size} {quote}, realized/unrealized/fees in {s.unit}; "
                         f"total {_n(s.total)} {s.unit}{converted}")
    lines += ["", "fees by venue"]
    fee_rows = [["venue", "currency", "fees"]] + [[v, c, _n(t)] for (v, c), t in sorted(fees.items())]
    lines += _left_cols(fee_rows, 2)
    return "\n".join(lines)


def _left_cols(rows: list[list[str]], left: int) -> list[str]:
    """Like status_cmd.table, with the first ``left`` (text) columns left-aligned."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.ljust(w) if i < left else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in rows
    ]


def _n(value: Decimal) -> str:
    """Exact positional text (no exponent), trailing zeros dropped for readability."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def ledger_corrections(fills: Sequence[Fill], audit_path: Path) -> list[str]:
    """The fills ``mmkit reconcile`` booked (synthetic from the venue, or a VOID of an excess), with why.

    The reason comes from the audit trail (the journal's copy goes at the next checkpoint); a correction
    whose audit line is missing is still listed, and says so.
    """
    marked = [f for f in fills if f.trade_id.startswith((SYNTHETIC_PREFIX, VOID_PREFIX))]
    if not marked:
        return []
    reasons: dict[str, str] = {}
    if audit_path.exists():
        with audit_path.open(encoding="utf-8") as lines:
            for line in lines:
                if '"reconcile_' not in line:
                    continue
                try:
                    data = json.loads(line).get("data") or {}
                except ValueError:
                    continue  # a line cut short by a crash
                fill = data.get("fill")
                if isinstance(fill, dict) and "trade_id" in fill:
                    reasons[str(fill["trade_id"])] = str(data.get("reason", ""))
    out = ["", "ledger corrections (mmkit reconcile; never a deleted fill)"]
    for f in marked:
        what = "VOID" if f.trade_id.startswith(VOID_PREFIX) else "SYNTHETIC"
        why = reasons.get(f.trade_id, f"reason not in the audit trail {audit_path}")
        out.append(f"  {what} {f.trade_id}: {f.side.value} {_n(f.qty)} @ {_n(f.price)} on {f.venue} order "
                   f"{f.client_id}: {why}")
    return out


def write_csv(path: str | Path, fills: Sequence[StoredFill]) -> int:
    """Every fill, one row each, money as exact decimal text; returns the number of rows."""
    with Path(path).open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for stored in fills:
            f = stored.fill
            writer.writerow([
                stored.session_id, utc_day(f.ts_event), f.venue, f.symbol, f.trade_id, f.client_id,
                f.venue_order_id, f.side.value, format(f.price, "f"), format(f.qty, "f"), format(f.fee, "f"),
                f.fee_currency, f.liquidity.value, int(f.is_hedge), f.ts_event, f.ts_recv,
            ])
    return len(fills)


def history_command(args: argparse.Namespace) -> int:
    """Print the history; exit 1 when there is no store, 3 when it cannot be read (one line, no traceback)."""
    instance, out_dir, store = instance_settings(args.config, getattr(args, "output_dir", None))
    url = default_store_url(store, instance, out_dir)
    if not store_exists(url):
        print(f"no store at {redact_url(url)}")
        return EXIT_NO_DATA

    def read() -> tuple[list[StoredFill], list[tuple[int, Decimal]]]:
        stored = InstanceLedger(url, instance)
        try:
            return list(stored.fills()), list(stored.marks())
        finally:
            stored.close()

    try:
        fills, marks = read_store_or_fail("history", url, read)
    except StoreUnreadable as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_STORE_UNREADABLE
    # After a crash or a store outage the journal holds fills the store lacks: they happened, so they count
    # (in a group of their own when by session), and the output says so (docs/operations.md, mmkit history).
    journal = journal_path_for(url, instance, out_dir)
    try:
        extra = journal_only_fills(journal, instance, [s.fill for s in fills])
    except JournalCorrupt as exc:
        print(f"mmkit history: journal unreadable, the next start refuses: {exc}; the store alone follows",
              file=sys.stderr)
        extra = []
    if extra:
        fills = sorted([*fills, *(StoredFill(JOURNAL_GROUP, f) for f in extra)], key=lambda s: s.fill.ts_event)
        print(f"note: {journal_note(len(extra), journal)}")
    by = getattr(args, "by", "session") or "session"
    try:
        settlements = config_settlements(args.config)
    except Exception as exc:  # history of the fills is still worth printing; say what it cannot know
        print(f"mmkit history: cannot read the venue rules of {args.config} ({exc}); "
              "every instrument is taken as linear", file=sys.stderr)
        settlements = {}
    print(format_history(instance, by, summarize(fills, by, marks, settlements), fees_by_venue(fills)))
    for line in ledger_corrections([s.fill for s in fills], default_audit_path(store, instance, out_dir)):
        print(line)
    if getattr(args, "csv", None):
        count = write_csv(args.csv, fills)
        print(f"{count} fills written to {args.csv}")
    return EXIT_OK
