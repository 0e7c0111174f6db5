"""The trader's files: fills.csv and orders.csv (exact money, levels, states) and report provenance."""

from __future__ import annotations

import csv
import hashlib
from decimal import Decimal as D
from pathlib import Path

import attrs

from mmkit.analytics.execution import OrderRow
from mmkit.backtest.report import (
    data_files,
    git_commit,
    human_duration,
    parameters_of,
    utc_iso,
    write_fills_csv,
    write_orders_csv,
)
from mmkit.model import NS_PER_S, Fill, Liquidity, Side


def test_fills_csv_keeps_exact_decimals_level_and_markouts(tmp_path: Path) -> None:
    from types import SimpleNamespace

    samples = SimpleNamespace(ts=[i * NS_PER_S for i in range(70)],  # the two series write_fills_csv reads
                              mid=[100.0 if i < 3 else 101.0 for i in range(70)])

    fills = [Fill("binance", "t1", "c1", "BTCUSDT", Side.BUY, D("100.00000001"), D("0.00001"), D("0.0000000001"),
                  "USDT", Liquidity.MAKER, 2 * NS_PER_S, 2 * NS_PER_S, "o1")]
    orders = [OrderRow("c1", Side.BUY, 2, D("100.00000001"), D("0.00001"), 0)]
    write_fills_csv(tmp_path / "fills.csv", fills, samples, orders)  # type: ignore[arg-type]
    (row,) = list(csv.DictReader((tmp_path / "fills.csv").open()))
    assert row["price"] == "100.00000001" and row["fee"] == "0.0000000001" and row["qty"] == "0.00001"
    assert row["level"] == "2" and row["ts_utc"] == "1970-01-01T00:00:02.000Z"
    assert float(row["markout_1s_bps"]) > 99  # mid 101 one second later
    assert row["markout_60s_bps"] != "" and row["mid_at_fill"] == "100.00000000"


def test_orders_csv_states_and_lifetimes(tmp_path: Path) -> None:
    orders = [
        OrderRow("a", Side.SELL, 0, D("101.5"), D(1), NS_PER_S, accepted_ns=NS_PER_S, ended_ns=3 * NS_PER_S,
                 state="replaced", replaced_by="b"),
        OrderRow("b", Side.SELL, 0, D("101.6"), D(1), 3 * NS_PER_S, accepted_ns=3 * NS_PER_S, replaces="a"),
        OrderRow("c", Side.BUY, None, D(99), D(1), 0, state="rejected", reason="POST_ONLY_WOULD_CROSS"),
    ]
    write_orders_csv(tmp_path / "orders.csv", orders)
    rows = list(csv.DictReader((tmp_path / "orders.csv").open()))
    assert [r["state"] for r in rows] == ["replaced", "open", "rejected"]
    assert rows[0]["lifetime_s"] == "2.000" and rows[0]["replaced_by"] == "b" and rows[1]["replaces"] == "a"
    assert rows[1]["lifetime_s"] == "" and rows[2]["level"] == "" and rows[2]["reason"] == "POST_ONLY_WOULD_CROSS"


def test_data_files_sizes_and_checksums(tmp_path: Path) -> None:
    (tmp_path / "rec").mkdir()
    (tmp_path / "rec" / "b.gz").write_bytes(b"second")
    (tmp_path / "rec" / "a.gz").write_bytes(b"first file")
    listed = data_files([tmp_path / "rec"])
    assert [Path(d["path"]).name for d in listed] == ["a.gz", "b.gz"]
    assert listed[0]["bytes"] == 10 and listed[0]["sha256"] == hashlib.sha256(b"first file").hexdigest()


def test_git_commit_only_inside_a_checkout(tmp_path: Path) -> None:
    assert git_commit(tmp_path) is None
    here = git_commit()
    assert here is None or len(here) == 40


def test_parameters_of_attrs_config_and_readable_times() -> None:
    @attrs.frozen
    class Config:
        spread_bps: D = D("2.5")
        levels: int = 3

    assert parameters_of(Config()) == {"spread_bps": "2.5", "levels": 3}
    assert parameters_of({"a": D(1)}) == {"a": "1"} and parameters_of(None) is None
    assert utc_iso(1_723_161_255_311_000_000) == "2024-08-08T23:54:15.311Z"
    assert human_duration(650.6) == "00:10:50.6" and human_duration(90061) == "1 d 01:01:01.0"
