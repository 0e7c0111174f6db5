"""``mmkit status CONFIG [--json]``: what an instance holds now, and whether it is alive.

Why two sources: Redis hot state is the live view (published every 100 ms,
heartbeat with a TTL), but it is optional and may be down; the store always
exists and answers the same questions from the ledger (position = sum of the
fills, open orders = last recorded states, PnL = last snapshot, heartbeat =
the newest record). Redis is used when configured, reachable and fresh; the
output says which source answered. The kill-switch state comes from Redis, or
else from the last kill-switch line of the audit trail.

Only the ``engine`` and ``store`` sections of the config are read, so status
works without the venue's secrets in the environment.

Why the journal too: after a crash or during a store outage the write-ahead
journal holds fills the store lacks (the next start catches the store up). The
store alone would then print a position short of those fills, with no word of
it; so the journal's fills the store lacks are counted and a note says how many
(:func:`journal_only_fills`, also used by ``mmkit history``). And a store whose
schema is newer than this code is refused (:func:`read_store_or_fail`), never
read with an older idea of its tables.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
from sqlalchemy.engine import make_url

from mmkit.app.config import EngineSection, StoreSection
from mmkit.app.persistence import default_audit_path, default_store_url
from mmkit.app.recovery import InstanceLedger
from mmkit.app.session_clock import clock_went_back
from mmkit.conf import ConfigError, read_yaml, structure
from mmkit.model import NS_PER_S, ZERO, Fill
from mmkit.store.db import create_store_engine, redact_url
from mmkit.store.journal import JournalCorrupt, journal_path_for, read_journal
from mmkit.store.records import to_jsonable
from mmkit.store.schema import SCHEMA_VERSION, current_version

EXIT_OK = 0
EXIT_NO_DATA = 1
#: The store cannot be read: unreachable server, corrupt or foreign file (docs/operations.md).
EXIT_STORE_UNREADABLE = 3
#: A heartbeat older than this means the instance is not running (the key's TTL is 30 s).
STALE_AFTER_S = 30.0


def instance_settings(config_path: str, output_dir: str | None = None) -> tuple[str, Path, StoreSection]:
    """(instance, instance home, store section) from a strategy YAML, without resolving its secrets.

    The home is :func:`mmkit.app.paths.instance_home`, the same as ``start`` and ``backtest`` use, so
    the answer does not depend on the directory the command runs from. Secret references in the store
    section are expanded (a store URL with a password comes from the environment).
    """
    from mmkit.app import paths
    from mmkit.app.config import SECRET_PATHS
    from mmkit.conf import expand_secrets

    file = Path(config_path)
    data = read_yaml(file)
    if not isinstance(data, dict):
        raise ConfigError(file, "", "the file must contain a mapping of sections")
    engine = structure(data.get("engine") or {}, EngineSection, file=file, root="$.engine")
    store_data = expand_secrets({"store": data.get("store") or {}}, set(SECRET_PATHS), file)["store"]
    store = structure(store_data, StoreSection, file=file, root="$.store")
    if store.audit_path is not None:
        store = attrs.evolve(store, audit_path=str(paths.resolve_config_path(file, store.audit_path)))
    home = paths.instance_home(file, engine.instance, output_dir, configured=engine.output_dir or None)
    return engine.instance, home, store


def store_exists(url: str) -> bool:
    """A SQLite store exists when its file does (reading must not create an empty one)."""
    parsed = make_url(url)
    return parsed.get_backend_name() != "sqlite" or Path(parsed.database or "").exists()


def status_from_redis(url: str, instance: str) -> dict[str, Any] | None:
    """The hot state, or None when it has no heartbeat (never published, expired or stale)."""
    from mmkit.store.redis_state import read_hot_state  # the redis client only where Redis is read

    hot = read_hot_state(url, instance)
    if hot.heartbeat is None:
        return None
    age_s = (time.time_ns() - int(hot.heartbeat["ts_ns"])) / NS_PER_S
    if age_s > STALE_AFTER_S:
        return None
    return {
        "source": "redis",
        "heartbeat_ns": int(hot.heartbeat["ts_ns"]),
        "session": hot.heartbeat.get("session", ""),
        "running": True,
        "positions": {k: str(v) for k, v in hot.positions.items()},
        "open_orders": sorted(hot.open_orders.values(), key=lambda o: (o.get("side", ""), o.get("price") or "")),
        "pnl": hot.pnl,
        "fair_values": hot.fair_values,
        "kill_switch": hot.kill_switch,
        "quoting_gates": hot.quoting_gates,
    }


def journal_only_fills(journal: Path | None, instance: str, stored: Iterable[Fill]) -> list[Fill]:
    """The fills the instance's journal holds and the store lacks (a crash, a store outage).

    Raises JournalCorrupt (JournalForeign) when the journal cannot be trusted: the next start refuses too.
    """
    if journal is None:
        return []
    keys = {f.key for f in stored}
    return [f for f in read_journal(journal, instance).fills if f.key not in keys]


def journal_note(count: int, journal: Path) -> str:
    return (f"{count} fill(s) only the journal holds ({journal}): counted here; the store catches up at the "
            f"next start")


def status_from_store(
    url: str, instance: str, audit_path: Path, journal: Path | None = None
) -> dict[str, Any] | None:
    """The same answers from the ledger; None when the store holds nothing of this instance.

    ``journal_fills`` in the answer: how many fills came from the journal (the store lacks them)."""
    ledger = InstanceLedger(url, instance)
    try:
        sessions = ledger.sessions()
        if not sessions:
            return None
        positions: dict[str, Decimal] = defaultdict(lambda: ZERO)
        last_fill = 0
        fills = [stored.fill for stored in ledger.fills()]
        extra = journal_only_fills(journal, instance, fills)
        for f in [*fills, *extra]:
            positions[f"{f.venue}:{f.symbol}"] += f.side.sign * f.qty
            last_fill = max(last_fill, f.ts_recv)
        orders = ledger.open_orders()
        pnl_rows = ledger.latest_pnl_rows()
    finally:
        ledger.close()
    session_id, started, stopped = sessions[-1]
    last_pnl = max((int(r["ts_ns"]) for r in pnl_rows), default=0)
    heartbeat = max(started, stopped or 0, last_pnl, last_fill, max((o.ts_ns for o in orders), default=0))
    return {
        "source": "store",
        "heartbeat_ns": heartbeat,
        "session": session_id,
        "running": stopped is None,
        "positions": {k: str(v) for k, v in positions.items()},
        "open_orders": [to_jsonable(o) for o in orders],
        "pnl": {f"{r['venue']}:{r['symbol']}": to_jsonable(r) for r in pnl_rows},
        "fair_values": {},
        "kill_switch": last_kill_switch(audit_path),
        "journal_fills": len(extra),
        "clock_warning": clock_went_back(sessions),
    }


def last_kill_switch(audit_path: Path) -> dict[str, Any] | None:
    """The last kill-switch trip or resume in the audit trail (None when there is no audit trail)."""
    if not audit_path.exists():
        return None
    last: dict[str, Any] | None = {"active": False, "reason": "no trip in the audit trail", "ts_ns": 0}
    with audit_path.open(encoding="utf-8") as lines:
        for line in lines:
            if '"kill_switch_' not in line:
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash
            data = entry.get("data") or {}
            event = data.get("event", "")
            if event in ("kill_switch_trip", "kill_switch_resume"):
                active = event == "kill_switch_trip"
                last = {"active": active, "reason": data.get("reason", ""), "ts_ns": entry["ts_ns"]}
    return last


def gather_status(config_path: str, output_dir: str | None = None) -> tuple[dict[str, Any] | None, list[str]]:
    """The status of the instance a config names, and notes on the sources tried."""
    instance, out_dir, store = instance_settings(config_path, output_dir)
    notes: list[str] = []
    if store.redis_url:
        import redis  # here, not at the top: a live run imports this module for its report and has no Redis

        try:
            hot = status_from_redis(store.redis_url, instance)
        except redis.RedisError as exc:
            notes.append(f"redis unreachable ({exc}); reading the store")
            hot = None
        else:
            if hot is None:
                notes.append("no fresh heartbeat in redis; reading the store")
        if hot is not None:
            hot["instance"] = instance
            return hot, notes
    url = default_store_url(store, instance, out_dir)
    if not store_exists(url):
        notes.append(f"no store at {redact_url(url)}")
        return None, notes
    audit = default_audit_path(store, instance, out_dir)
    journal = journal_path_for(url, instance, out_dir)
    try:
        status = read_store_or_fail("status", url, lambda: status_from_store(url, instance, audit, journal))
    except JournalCorrupt as exc:  # the positions cannot be told; the next start refuses for the same reason
        notes.append(f"journal unreadable, the next start refuses: {exc}; the store alone follows")
        status = read_store_or_fail("status", url, lambda: status_from_store(url, instance, audit))
    if status is None:
        notes.append(f"the store {redact_url(url)} holds nothing of instance {instance}")
        return None, notes
    if status.get("journal_fills"):
        notes.append(journal_note(status["journal_fills"], journal))
    status["instance"] = instance
    status["store"] = redact_url(url)
    return status, notes


def format_status(status: dict[str, Any], now_ns: int | None = None) -> str:
    """A human-readable block: heartbeat, kill switch, positions, PnL, open orders."""
    now = now_ns if now_ns is not None else time.time_ns()
    beat = int(status["heartbeat_ns"])
    age = (now - beat) / NS_PER_S
    kill = status.get("kill_switch")
    kill_text = "unknown" if kill is None else ("HALTED: " + str(kill.get("reason", ""))) if kill["active"] else "ok"
    state = "running" if status["running"] else "stopped"
    if status["source"] == "store" and status["running"]:
        state = "running, or stopped without a clean stop"
    source = status["source"] + (f" {status['store']}" if "store" in status else "")
    lines = [
        f"instance     {status['instance']} (from {source})",
        f"session      {status['session']} ({state})",
        f"heartbeat    {_utc(beat)} ({age:.1f} s ago)",
        f"kill switch  {kill_text}",
    ]
    for gate in status.get("quoting_gates") or []:  # every gate holding quoting, one line each
        lines.append(f"quoting      HELD by gate {gate.get('gate')} since {_utc(int(gate.get('since_ns', 0)))} "
                     f"({gate.get('ticks')} ticks): {gate.get('reason')}")
    if status.get("clock_warning"):
        lines.append(f"WARNING      {status['clock_warning']}")
    lines += [
        "position",
    ]
    lines += [f"  {k:<24} {v}" for k, v in sorted(status["positions"].items())] or ["  (none)"]
    lines.append("pnl")
    rows = [["venue:symbol", "position", "realized", "unrealized", "fees", "mark"]]
    for key, p in sorted(status["pnl"].items()):
        rows.append([key, *(str(p.get(f, "") or "") for f in ("position", "realized", "unrealized", "fees", "mark"))])
    lines += ["  " + line for line in table(rows)] if len(rows) > 1 else ["  (no snapshot)"]
    orders = status["open_orders"]
    lines.append(f"open orders  {len(orders)}")
    if orders:
        rows = [["client_id", "side", "price", "qty", "filled", "state"]]
        fields = ("client_id", "side", "price", "qty", "filled_qty", "state")
        rows += [[str(o.get(k, "")) for k in fields] for o in orders]
        lines += ["  " + line for line in table(rows)]
    return "\n".join(lines)


def print_status(status: dict[str, Any], out: Any = None, *, terminal: bool | None = None) -> None:
    """The status on ``out``: rich tables on a terminal, the plain block of :func:`format_status` otherwise."""
    import sys

    out = out if out is not None else sys.stdout
    is_tty = bool(getattr(out, "isatty", lambda: False)()) if terminal is None else terminal
    if not is_tty:
        print(format_status(status), file=out)
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(file=out, force_terminal=True)
    head, _, _ = format_status(status).partition("\nposition")
    header = Table.grid(padding=(0, 2))
    for line in head.splitlines():
        key, _, value = line.partition(" ")
        header.add_row(f"[bold]{key}[/]", value.strip())
    console.print(header)
    positions = Table(title="position", title_justify="left")
    positions.add_column("venue:symbol")
    positions.add_column("position", justify="right")
    for key, value in sorted(status["positions"].items()):
        positions.add_row(key, str(value))
    console.print(positions)
    pnl = Table(title="pnl", title_justify="left")
    fields = ("position", "realized", "unrealized", "fees", "mark")
    for name in ("venue:symbol", *fields):
        pnl.add_column(name, justify="left" if name == "venue:symbol" else "right")
    for key, p in sorted(status["pnl"].items()):
        pnl.add_row(key, *(str(p.get(f, "") or "") for f in fields))
    console.print(pnl)
    orders = Table(title=f"open orders ({len(status['open_orders'])})", title_justify="left")
    order_fields = ("client_id", "side", "price", "qty", "filled_qty", "state")
    for name in order_fields:
        orders.add_column(name, justify="right" if name in ("price", "qty", "filled_qty") else "left")
    for o in status["open_orders"]:
        orders.add_row(*(str(o.get(k, "")) for k in order_fields))
    console.print(orders)


def table(rows: list[list[str]]) -> list[str]:
    """Left-aligned first column, right-aligned numbers, columns as wide as their widest cell."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths, strict=True)))
        for r in rows
    ]


def _utc(ts_ns: int) -> str:
    return dt.datetime.fromtimestamp(ts_ns / NS_PER_S, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


class StoreUnreadable(Exception):
    """The store exists (or is configured) but cannot be read; the message is the one line to print."""


def read_store_or_fail(what: str, url: str, read: Any) -> Any:
    """``read()``, with any database error turned into one :class:`StoreUnreadable` line naming the store."""
    import sqlite3

    from sqlalchemy.exc import SQLAlchemyError

    from mmkit.app.paths import one_line

    try:
        at = store_schema_version(url)
        if at > SCHEMA_VERSION:
            raise StoreUnreadable(
                f"mmkit {what}: the store {redact_url(url)} schema is at version {at}, newer than this mmkit's "
                f"{SCHEMA_VERSION}; upgrade mmkit to read it"
            )
        return read()
    except (SQLAlchemyError, sqlite3.Error, OSError) as exc:
        raise StoreUnreadable(f"mmkit {what}: cannot read the store {redact_url(url)}: {one_line(exc)}") from exc


def store_schema_version(url: str) -> int:
    """The store's schema version (0: none yet), read without changing anything."""
    engine = create_store_engine(url)
    try:
        with engine.connect() as conn:
            return current_version(conn)
    finally:
        engine.dispose()


def status_command(args: argparse.Namespace) -> int:
    """Print the status; exit 1 when there is nothing to report (never ran, wrong instance),
    3 when the store cannot be read (one line on stderr, no traceback)."""
    import sys

    if getattr(args, "watch", False):  # operator console (issue 14): redraw in place until Ctrl-C
        from mmkit.app.console.status_view import watch

        watch(lambda: _status_text(args), interval_s=float(getattr(args, "interval", 2.0)))
        return EXIT_OK
    try:
        status, notes = gather_status(args.config, getattr(args, "output_dir", None))
    except StoreUnreadable as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_STORE_UNREADABLE
    live = _live(args)  # the running instance's console: levels, distance from mid, ages, balances, hedge, errors
    if getattr(args, "json", False):
        print(json.dumps({"status": status, "notes": notes, "live": live}, indent=2, default=str))
    else:
        for note in notes:
            print(f"note: {note}")
        if status is not None:
            print_status(status)
        if live is not None:
            from mmkit.app.console.status_view import format_live

            print(format_live(live))
    return EXIT_OK if status is not None or live is not None else EXIT_NO_DATA


def _live(args: argparse.Namespace) -> dict[str, Any] | None:
    from mmkit.app.console.status_view import live_snapshot

    instance, out_dir, _store = instance_settings(args.config, getattr(args, "output_dir", None))
    return live_snapshot(out_dir, instance)


def _status_text(args: argparse.Namespace) -> str:
    """One screen of ``--watch``: the store's status and the live section."""
    from mmkit.app.console.status_view import format_live

    try:
        status, notes = gather_status(args.config, getattr(args, "output_dir", None))
    except StoreUnreadable as exc:
        status, notes = None, [str(exc)]
    live = _live(args)
    parts = [f"note: {note}" for note in notes]
    parts += [format_status(status)] if status is not None else []
    parts += [format_live(live)] if live is not None else []
    return "\n".join(parts) or "nothing to report yet"
