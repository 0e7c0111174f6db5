"""The write-ahead journal on its own: format, torn tail, corruption, checkpoint, failure, file modes."""

from __future__ import annotations

import os
import stat
from decimal import Decimal as D
from pathlib import Path

import pytest

from mmkit.model import Fill, Liquidity, Side
from mmkit.store.journal import Journal, JournalCorrupt, read_journal
from mmkit.store.records import OrderRecord


def fill(i: int) -> Fill:
    return Fill("truex", f"T{i}", f"C{i}", "BTC-PYUSD", Side.BUY if i % 2 else Side.SELL, D("60000.5"),
                D("0.00000001") * (i + 1), D("0"), "PYUSD", Liquidity.MAKER, 1_000 + i, 2_000 + i, f"V{i}")


def order(cid: str, state: str) -> OrderRecord:
    return OrderRecord(cid, "truex", "BTC-PYUSD", "BUY", D("60000.5"), D("0.01"), D("0"), state, "", 5, "")


def test_records_round_trip_exactly_and_the_last_order_state_wins(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j" / "x.journal")
    journal.open()
    for i in range(3):
        assert journal.append_fill(fill(i))
    journal.append_order(order("C1", "PENDING_CREATE"))
    journal.append_order(order("C1", "OPEN"))
    journal.append_actions([10, 20])
    assert journal.sync() and journal.syncs >= 2
    journal.close()
    got = read_journal(tmp_path / "j" / "x.journal")
    assert got.fills == tuple(fill(i) for i in range(3))  # Decimals and ints exact
    assert [(o.client_id, o.state) for o in got.orders] == [("C1", "OPEN")]
    assert got.actions == (10, 20) and not got.torn_tail


def test_a_torn_last_line_is_ignored_but_a_corrupt_line_before_it_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.journal"
    journal = Journal(path)
    journal.open()
    journal.append_fill(fill(1))
    journal.append_fill(fill(2))
    journal.close()
    whole = path.read_bytes()
    path.write_bytes(whole[:-20])  # the process died mid-write of the last line
    got = read_journal(path)
    assert got.torn_tail and [f.trade_id for f in got.fills] == ["T1"]
    lines = whole.split(b"\n")
    lines[1] = lines[1].replace(b"60000.5", b"60000.6")  # a flipped byte in the middle: CRC mismatch
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(JournalCorrupt, match="line 2"):
        read_journal(path)


def test_checkpoint_keeps_only_the_rate_window_and_what_the_store_must_hold(tmp_path: Path) -> None:
    path = tmp_path / "x.journal"
    journal = Journal(path)
    journal.open()
    journal.append_fill(fill(1))
    journal.close()
    assert journal.checkpoint([7, 8], fills=1, position=D("-0.00000002"))
    got = read_journal(path)
    assert got.fills == () and got.actions == (7, 8) and got.checkpoint == (1, D("-0.00000002"))
    assert not (tmp_path / "x.journal.tmp").exists()


def test_files_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)  # a permissive umask must not leak the journal
    try:
        journal = Journal(tmp_path / "new" / "x.journal")
        journal.open()
        journal.close()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "new" / "x.journal").stat().st_mode) == 0o600


def test_a_deleted_journal_or_a_failed_write_makes_it_unhealthy_never_raises(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "x.journal")
    journal.open()
    journal.append_fill(fill(1))
    (tmp_path / "x.journal").unlink()
    assert not journal.sync() and not journal.healthy and "deleted" in (journal.error or "")
    assert not journal.append_fill(fill(2))  # stays failed: nothing after a failure counts as durable
    journal.close()

    other = Journal(tmp_path / "y.journal")
    other.open()
    assert other._fd is not None
    os.close(other._fd)  # the descriptor goes bad under it (EBADF, like EIO or ENOSPC would)
    assert not other.append_fill(fill(3)) and not other.healthy and "write failed" in (other.error or "")
    other._fd = None


def test_a_torn_tail_is_cut_before_the_next_process_appends_so_later_starts_still_read_it(tmp_path: Path) -> None:
    """A disk that filled mid-line (or a power cut) leaves a torn last line. The next process used to append
    right after the torn bytes: its first line glued to them, no longer last, and every start after that one
    refused the journal as corrupt (with fills in it that only the journal held)."""
    path = tmp_path / "x.journal"
    journal = Journal(path, instance="mm1")
    journal.open()
    journal.append_fill(fill(1))
    journal.append_fill(fill(2))
    journal.close()
    whole = path.read_bytes()
    path.write_bytes(whole[:-20])  # the write of T2 was cut short
    assert read_journal(path).torn_tail

    restarted = Journal(path, instance="mm1")  # the next start: reads (T1), opens, trades, dies again
    restarted.open()
    restarted.append_fill(fill(3))
    restarted.close()
    got = read_journal(path, "mm1")  # before: JournalCorrupt("line 3 is corrupt")
    assert [f.trade_id for f in got.fills] == ["T1", "T3"] and not got.torn_tail
