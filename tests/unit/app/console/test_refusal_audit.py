"""Refused dashboard control requests in the audit trail, bounded against a flood (mmkit.app.console.refusals).

Hostile client: 10,000 refused requests, from one address, over several minutes, and from 10,000 rotating
addresses. The audit lines stay bounded (a few per address and minute, at most 2 x 16 + 1 a minute), every
refusal is counted in them, and the log is bounded the same way. The clock here is a plain function the test
advances (the module reads wall time through it); the trail is the real file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from mmkit.app.console.refusals import MAX_OTHER_ADDRESSES, MAX_PEERS, TEXT_LIMIT, RefusalAudit
from mmkit.model import NS_PER_S
from mmkit.store.audit import AuditTrail

MINUTE = 60 * NS_PER_S
T0 = 1_765_000_000 * NS_PER_S - (1_765_000_000 * NS_PER_S) % MINUTE  # on a minute


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


def _rows(trail: AuditTrail) -> list[dict[str, Any]]:
    trail.close()
    return [json.loads(line) for line in trail.path.read_text().splitlines()]


def _counted(rows: list[dict[str, Any]]) -> int:
    """Refusals the lines account for: a summary's ``refused`` includes its address's full line."""
    full = {(r["data"]["source"], r["data"]["window_start_ns"]) for r in rows if r["data"]["phase"] == "refused"}
    summed = {(r["data"]["source"], r["data"]["window_start_ns"]): r["data"]["refused"]
              for r in rows if r["data"]["phase"] == "refused_summary"}
    return sum(summed.values()) + len(full - set(summed))


@pytest.fixture
def log_lines() -> Any:
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(m.record["message"]), level="WARNING")
    yield lines
    logger.remove(sink)


def test_ten_thousand_refusals_from_one_address_are_two_lines_and_the_count_is_kept(
    tmp_path: Path, log_lines: list[str]
) -> None:
    clock = Clock()
    trail = AuditTrail(tmp_path / "a.jsonl", instance="t", fsync="never")
    audit = RefusalAudit(trail.write, now_ns=clock)
    for i in range(10_000):
        clock.now = T0 + i * 5_000_000  # 50 s in all: one window
        audit.record("203.0.113.9", "pause", 403, "wrong or missing control token")
    audit.flush()
    assert audit.lines == 1, "the window has not ended: only the first line so far"
    clock.now = T0 + MINUTE + 1
    audit.flush()
    rows = _rows(trail)
    assert [r["data"]["phase"] for r in rows] == ["refused", "refused_summary"]
    first, summary = rows[0]["data"], rows[1]["data"]
    assert first == {"phase": "refused", "source": "web 203.0.113.9", "action": "pause", "status": 403,
                     "reason": "wrong or missing control token", "window_start_ns": T0}
    assert rows[0]["kind"] == "control" and rows[0]["ts_ns"] == T0
    assert (summary["refused"], summary["suppressed"]) == (10_000, 9_999)
    assert summary["window_start_ns"] == T0 and summary["window_end_ns"] == T0 + MINUTE
    assert summary["actions"] == [["pause", 9_999]]
    assert summary["reasons"] == [["wrong or missing control token", 9_999]], "not redacted as a key named token"
    assert audit.refused == 10_000
    assert len([line for line in log_lines if "refused" in line]) == 2, "the log is bounded the same way"


def test_a_flood_over_five_minutes_writes_two_lines_a_minute_and_counts_every_refusal(tmp_path: Path) -> None:
    clock = Clock()
    trail = AuditTrail(tmp_path / "a.jsonl", instance="t", fsync="never")
    audit = RefusalAudit(trail.write, now_ns=clock)
    for i in range(10_000):
        clock.now = T0 + i * 30_000_000  # 300 s: five windows
        audit.record("198.51.100.7", ("pause", "flatten")[i % 2], 403, "wrong or missing control token")
    audit.close()  # the run ends inside the fifth window: its summary is written then
    rows = _rows(trail)
    assert len(rows) == 10
    assert [r["data"]["phase"] for r in rows] == ["refused", "refused_summary"] * 5
    assert _counted(rows) == 10_000
    assert [r["data"]["window_start_ns"] for r in rows[::2]] == [T0 + k * MINUTE for k in range(5)]


def test_rotating_source_addresses_cannot_buy_a_line_each(tmp_path: Path) -> None:
    """Past 16 addresses a minute, further ones share one summary line (with how many there were, capped)."""
    clock = Clock()
    trail = AuditTrail(tmp_path / "a.jsonl", instance="t", fsync="never")
    audit = RefusalAudit(trail.write, now_ns=clock)
    for i in range(10_000):
        audit.record(f"2001:db8::{i:x}", "pause", 403, "read-only: no control token is configured")
    audit.close()
    rows = _rows(trail)
    phases = [r["data"]["phase"] for r in rows]
    assert phases == ["refused"] * MAX_PEERS + ["refused_summary"]
    other = rows[-1]["data"]
    assert other["source"] == "web (other addresses)" and other["refused"] == 10_000 - MAX_PEERS
    assert other["addresses"] == MAX_OTHER_ADDRESSES and other["addresses_capped"] is True
    assert _counted(rows) == 10_000


def test_attacker_chosen_text_is_clipped_and_its_variety_capped(tmp_path: Path) -> None:
    clock = Clock()
    trail = AuditTrail(tmp_path / "a.jsonl", instance="t", fsync="never")
    audit = RefusalAudit(trail.write, now_ns=clock)
    for i in range(500):
        audit.record("192.0.2.1", str(i) + "x" * 60_000, 400, f"unknown field(s) '{i}{'y' * 60_000}'")
    audit.close()
    rows = _rows(trail)
    assert len(trail.path.read_bytes()) < 6_000
    assert len(rows[0]["data"]["action"]) == TEXT_LIMIT + 1
    actions = dict(rows[1]["data"]["actions"])
    assert len(actions) == 9 and actions["(other)"] == 499 - 8 and sum(actions.values()) == 499
    reasons = dict(rows[1]["data"]["reasons"])
    assert len(reasons) == 9 and all(len(reason) <= 201 for reason in reasons), "the quoted field names are cut"


def test_after_close_nothing_more_is_written(tmp_path: Path) -> None:
    """The run's closers close it before the audit writer: a line after that would be dropped silently."""
    clock = Clock()
    trail = AuditTrail(tmp_path / "a.jsonl", instance="t", fsync="never")
    audit = RefusalAudit(trail.write, now_ns=clock)
    audit.close()
    audit.record("192.0.2.1", "pause", 403, "wrong or missing control token")
    assert audit.lines == 0 and audit.refused == 1
    assert _rows(trail) == []
