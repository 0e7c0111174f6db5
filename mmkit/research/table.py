"""The results table of a sweep: one row per trial (per phase and fold in walk-forward), Parquet and CSV.

Columns: ``trial`` (the key), ``status``, ``error``, ``phase``, ``fold``,
``point`` (the parameter set's number), ``dataset``, ``data_path``,
``start_ns``/``end_ns``, ``seed``, ``setup``, ``mmkit_version``, ``wall_s``,
``objective``, ``feasible``, ``violations``, ``problems`` (report.json's, e.g. a
controller failure or data unhealthy: what ``mmkit backtest`` exits 4 or 7 for), one ``param.<path>`` column per
parameter and one column per scalar of report.json by its dotted path
(``pnl.total``, ``fills.count``, ``data_health...``). Decimal figures, which
report.json keeps as exact strings, become floats here: the table is for
ranking and plotting; report.json stays the exact record. Rows are in a fixed
order, so two runs of the same sweep give the same table but for ``wall_s``.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmkit.research.metrics import as_number, flatten, report_problems
from mmkit.research.search import Evaluation

#: Report keys that repeat what the table already has in its own columns (and ``params.*``).
_SKIPPED = frozenset({"config", "data"})


def rows(evaluations: Sequence[Evaluation], parameters: Sequence[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for ev in evaluations:
        result = ev.result
        row: dict[str, Any] = {
            "trial": ev.key,
            "status": result["status"],
            "error": result.get("error", ""),
            "phase": ev.phase,
            "fold": ev.fold,
            "point": ev.point,
            "dataset": ev.dataset.label,
            "data_path": str(ev.dataset.path),
            "start_ns": ev.dataset.start_ns,
            "end_ns": ev.dataset.end_ns,
            "mmkit_version": result.get("mmkit_version", ""),
            "wall_s": result.get("wall_s"),
            "objective": ev.objective,
            "feasible": ev.feasible,
            "violations": "; ".join(ev.broken),
        }
        for name in parameters:
            row[f"param.{name}"] = ev.params.get(name)
        report = result.get("report") or {}
        # What `mmkit backtest` would exit non-zero for: a controller failure (4), data unhealthy (7), ...
        row["problems"] = "; ".join(report_problems(report))
        for path, raw in flatten(report).items():
            if path in _SKIPPED or path.startswith("params."):
                continue
            number = as_number(raw) if isinstance(raw, str) else None
            row.setdefault(path, raw if number is None else number)
        out.append(row)
    return out


def _columns(table: list[dict[str, Any]]) -> list[str]:
    columns: list[str] = []
    for row in table:
        for name in row:
            if name not in columns:
                columns.append(name)
    return columns


def _arrow_type(values: list[Any]) -> Any:
    import pyarrow as pa

    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return pa.bool_()
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return pa.int64()
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return pa.float64()
    return pa.string()


def write(table: list[dict[str, Any]], out_dir: Path) -> tuple[Path, Path]:
    """results.parquet and results.csv in ``out_dir`` (same columns, same rows)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = _columns(table)
    arrays = {}
    for name in columns:
        values = [row.get(name) for row in table]
        kind = _arrow_type(values)
        if kind == pa.string():
            values = [None if v is None else str(v) for v in values]
        elif kind == pa.float64():
            values = [None if v is None else float(v) for v in values]
        arrays[name] = pa.array(values, type=kind)
    parquet = out_dir / "results.parquet"
    pq.write_table(pa.table(arrays) if arrays else pa.table({}), parquet)
    csv_path = out_dir / "results.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in table:
            writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in columns})
    return parquet, csv_path
