"""Audit trail: one exact JSON line per event, secrets redacted, rotation, fsync policy."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from mmkit.model import Fill, OrderAccepted
from mmkit.store import audit as audit_mod
from mmkit.store.audit import AuditTrail, redact
from mmkit.store.records import OrderRecord


def _lines(*paths: Path) -> list[dict]:
    out: list[dict] = []
    for path in paths:
        out += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return out


def test_events_are_appended_as_exact_json_lines(tmp_path: Path, make_fill: Callable[..., Fill]) -> None:
    path = tmp_path / "audit" / "audit.jsonl"
    trail = AuditTrail(path, instance="mm1")
    trail.order(OrderAccepted("truex", "c1", "V1", ts_event=5, ts_recv=6))
    trail.fill(make_fill("t1", qty="0.00000001"))
    trail.hedge(OrderRecord("h1", "kraken", "BTC/USD", "SELL", None, Decimal("0.1"), Decimal(0), "NEW", "", 9))
    trail.risk("kill_switch", ts_ns=10, active=True, reason="max position")
    trail.close()
    lines = _lines(path)
    assert [line["kind"] for line in lines] == ["order", "fill", "hedge", "risk"]
    assert [line["seq"] for line in lines] == [1, 2, 3, 4]
    assert [line["ts_ns"] for line in lines] == [6, 1_700_000_000_000_001_000, 9, 10]
    assert {line["instance"] for line in lines} == {"mm1"}
    assert lines[1]["data"]["qty"] == "0.00000001" and lines[1]["data"]["side"] == "BUY"
    assert lines[3]["data"] == {"event": "kill_switch", "active": True, "reason": "max position"}


def test_reopening_appends_and_never_truncates(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    for run in range(2):
        trail = AuditTrail(path)
        trail.risk("started", run=run)
        trail.close()
    assert [line["data"]["run"] for line in _lines(path)] == [0, 1]


def test_secrets_are_redacted_at_any_depth_and_in_raw_fix() -> None:
    soh = "\x01"
    raw = f"8=FIXT.1.1{soh}553=desk{soh}554=hunter2{soh}96=c2lnbmF0dXJl{soh}58=price 1096=x{soh}"
    data = {
        "api_key": "AK",
        "ApiSecret": "S",
        "nested": {"password": "p", "list": [{"passphrase": "pp", "ok": 1}], "554": "p2"},
        "raw": raw,
        "headers": {"Authorization": "Bearer x"},
        "price": "100",
    }
    out = redact(data)
    flat = json.dumps(out)
    for secret in ("AK", '"S"', '"p"', "pp", "p2", "hunter2", "desk", "c2lnbmF0dXJl", "Bearer"):
        assert secret not in flat
    assert out["price"] == "100" and out["nested"]["list"][0]["ok"] == 1
    assert out["raw"] == f"8=FIXT.1.1{soh}553=***{soh}554=***{soh}96=***{soh}58=price 1096=x{soh}"


def test_secrets_never_reach_the_file(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    trail = AuditTrail(path)
    trail.risk("logon", session={"SenderCompID": "MM", "554": "hunter2", "api_secret": "xyz"})
    trail.close()
    text = path.read_text()
    assert "hunter2" not in text and "xyz" not in text and "MM" in text


def test_rotation_by_size_keeps_every_line_in_order(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    trail = AuditTrail(path, max_bytes=2048, fsync="never")
    for i in range(100):
        assert trail.risk("tick", n=i, pad="x" * 50)
    trail.close()
    rotated = trail.rotated_files()
    assert trail.rotations == len(rotated) >= 3
    assert all(p.stat().st_size <= 2048 for p in [*rotated, path])
    assert [line["data"]["n"] for line in _lines(*rotated, path)] == list(range(100))


@pytest.mark.parametrize(("policy", "expected"), [("always", 5), ("never", 0), ("interval", 0)])
def test_fsync_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policy: str, expected: int) -> None:
    calls: list[int] = []
    monkeypatch.setattr(audit_mod.os, "fsync", calls.append)
    trail = AuditTrail(tmp_path / "a.jsonl", fsync=policy, fsync_interval_s=3600)
    for i in range(5):
        trail.risk("x", n=i)
    assert len(calls) == expected
    trail.close()


def test_interval_policy_fsyncs_once_the_interval_has_passed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(audit_mod.os, "fsync", calls.append)
    trail = AuditTrail(tmp_path / "a.jsonl", fsync="interval", fsync_interval_s=0.0)
    trail.risk("x")
    trail.risk("y")
    assert len(calls) == 2
    trail.close()


def test_bad_policy_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="always, interval, never"):
        AuditTrail(tmp_path / "a.jsonl", fsync="sometimes")


def test_a_write_failure_is_counted_not_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trail = AuditTrail(tmp_path / "a.jsonl", fsync="always")

    def failing(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(audit_mod.os, "fsync", failing)
    assert not trail.risk("x")
    assert trail.errors == 1 and not trail.healthy
    monkeypatch.undo()
    trail.close()
