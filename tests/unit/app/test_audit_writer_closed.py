"""A line handed to the audit writer after it closed cannot be written: it is counted and said, not lost silently.

Before: ``AuditWriter.put`` after ``close`` dropped the line without a word (the refused-request summaries of
mmkit.app.console.refusals were such lines until their closer was put before persistence's).
"""

from __future__ import annotations

import json
from pathlib import Path

from loguru import logger

from mmkit.app.audit_writer import AuditWriter
from mmkit.store.audit import AuditTrail


def test_lines_after_close_are_counted_and_logged_once(tmp_path: Path) -> None:
    writer = AuditWriter(AuditTrail(tmp_path / "a.jsonl", instance="t", fsync="never"))
    writer.put("risk", {"event": "before"}, 1)
    writer.close()
    errors: list[str] = []
    sink = logger.add(lambda m: errors.append(m.record["message"]), level="ERROR")
    try:
        for i in range(3):
            writer.put("control", {"phase": "refused_summary", "n": i}, 2)
    finally:
        logger.remove(sink)
    assert writer.dropped == 3
    assert len(errors) == 1 and "'control' after the audit trail" in errors[0] and "a.jsonl" in errors[0], errors
    lines = [json.loads(line)["data"] for line in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert lines == [{"event": "before"}]
