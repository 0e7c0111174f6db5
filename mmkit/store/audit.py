"""Append-only JSONL audit trail of every order, fill, hedge and risk event.

This is the record a desk reads after an incident, so it favours being
complete and plain over being clever: one JSON object per line, written in
the order the engine saw things, never rewritten. Each line is::

    {"ts_ns": 1714000000000000000, "seq": 17, "kind": "fill", "instance": "mm1", "data": {...}}

``seq`` is monotonic within the process (a gap means lines were lost);
``data`` holds the event's fields with money as exact decimal strings.

Secrets never reach the file: any key whose name looks like a credential
(secret, password, api_key, token, passphrase, signature, private key...) or
is a FIX credential tag (553 Username, 554 Password, 925 NewPassword, 96
RawData which carries logon signatures) has its value replaced by ``"***"``,
at any depth.

Rotation: when the active file would exceed ``max_bytes``, it is closed and
renamed ``<stem>.<UTC timestamp>.jsonl`` next to it, and a new active file
is started; rotated files are kept (deleting evidence is the operator's call).

Durability (``fsync``): ``always`` fsyncs after every line (safest, slowest);
``interval`` (default) flushes every line to the OS and fsyncs at most every
``fsync_interval_s`` seconds, so a power loss may cost that window but a
process crash costs nothing; ``never`` leaves fsync to the OS.

A write failure (disk full, permissions) is logged and counted in ``errors``,
never raised into the engine; risk can read ``healthy`` and halt if it wants.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, Literal

from loguru import logger

from mmkit.model import Fill
from mmkit.store.private import open_private_append, private_dir
from mmkit.store.records import to_jsonable

FsyncPolicy = Literal["always", "interval", "never"]
FSYNC_POLICIES: tuple[str, ...] = ("always", "interval", "never")
REDACTED = "***"

_SECRET_KEY = re.compile(
    r"secret|passw(or)?d|passphrase|api[_-]?key|apikey|token|signature|private[_-]?key|credential|auth",
    re.IGNORECASE,
)
#: FIX tags that carry credentials: 553 Username, 554 Password, 925 NewPassword, 96 RawData (logon signature).
_SECRET_FIX_TAGS = frozenset({"553", "554", "925", "96"})
#: The same tags inside a raw FIX string ("554=hunter2<SOH>").
_FIX_SECRET_FIELD = re.compile(r"(?:^|(?<=[\x01|]))(553|554|925|96)=[^\x01|]*")


def is_secret_key(key: str) -> bool:
    """True when a field named ``key`` may hold a credential."""
    text = str(key)
    return text in _SECRET_FIX_TAGS or _SECRET_KEY.search(text) is not None


def redact(value: Any) -> Any:
    """Return ``value`` (JSON-safe data) with every credential replaced by ``***``."""
    if isinstance(value, Mapping):
        return {k: (REDACTED if is_secret_key(k) else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, str) and "=" in value:
        return _FIX_SECRET_FIELD.sub(lambda m: f"{m.group(1)}={REDACTED}", value)
    return value


class AuditTrail:
    """Append-only JSONL writer with size rotation, an fsync policy and redaction."""

    def __init__(
        self,
        path: str | Path,
        *,
        instance: str = "default",
        max_bytes: int = 64 * 1024 * 1024,
        fsync: str = "interval",
        fsync_interval_s: float = 1.0,
    ) -> None:
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"audit fsync policy must be one of {', '.join(FSYNC_POLICIES)}, got {fsync!r}")
        if max_bytes < 1024:
            raise ValueError(f"audit max_bytes must be at least 1024, got {max_bytes}")
        self.path = Path(path)
        self.instance = instance
        self.max_bytes = max_bytes
        self.fsync_policy = fsync
        self.fsync_interval_s = fsync_interval_s
        self.errors = 0
        self.rotations = 0
        self._seq = 0
        self._lock = threading.Lock()
        self._last_fsync = time.monotonic()
        self._log = logger.bind(audit=str(self.path), instance=instance)
        private_dir(self.path.parent)
        self._file: IO[bytes] | None = None
        self._size = 0
        self._open()

    @property
    def healthy(self) -> bool:
        return self.errors == 0

    # ------------------------------------------------------------------ typed helpers

    def order(self, event: Any, ts_ns: int | None = None) -> bool:
        """An order event (any mmkit.model order event or an OrderRecord)."""
        return self.write("order", event, ts_ns=ts_ns if ts_ns is not None else _event_ts(event))

    def fill(self, fill: Fill) -> bool:
        return self.write("fill", fill, ts_ns=fill.ts_recv or fill.ts_event)

    def hedge(self, hedge: Any, ts_ns: int | None = None) -> bool:
        return self.write("hedge", hedge, ts_ns=ts_ns if ts_ns is not None else _event_ts(hedge))

    def risk(self, event: str, ts_ns: int | None = None, **fields: Any) -> bool:
        """A risk event: kill switch, limit breach, veto, reconciliation outcome."""
        return self.write("risk", {"event": event, **fields}, ts_ns=ts_ns)

    # ------------------------------------------------------------------ core

    def write(self, kind: str, payload: Any, ts_ns: int | None = None) -> bool:
        """Append one line; returns False (and counts an error) if it could not be written."""
        data = redact(to_jsonable(payload))
        with self._lock:
            self._seq += 1
            line = {
                "ts_ns": ts_ns if ts_ns is not None else time.time_ns(),
                "seq": self._seq,
                "kind": kind,
                "instance": self.instance,
                "data": data,
            }
            encoded = (json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8")
            try:
                if self._size and self._size + len(encoded) > self.max_bytes:
                    self._rotate()
                assert self._file is not None
                self._file.write(encoded)
                self._file.flush()
                self._size += len(encoded)
                self._maybe_fsync()
            except (OSError, AssertionError) as exc:
                self.errors += 1
                self._log.error("audit write failed ({} errors so far): {}", self.errors, exc)
                return False
        return True

    def sync(self) -> None:
        """Flush and fsync now (call on clean stop)."""
        with self._lock:
            if self._file is not None:
                self._file.flush()
                os.fsync(self._file.fileno())
                self._last_fsync = time.monotonic()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.flush()
                if self.fsync_policy != "never":
                    os.fsync(self._file.fileno())
                self._file.close()
                self._file = None

    def rotated_files(self) -> list[Path]:
        """Rotated files, oldest first (their names sort by time)."""
        return sorted(self.path.parent.glob(f"{self.path.stem}.*{self.path.suffix}"))

    def _open(self) -> None:
        # 0600 whatever the umask: the trail names every order and fill of the desk.
        self._file = os.fdopen(open_private_append(self.path), "ab")
        self._size = self._file.tell()

    def _rotate(self) -> None:
        assert self._file is not None
        self._file.flush()
        if self.fsync_policy != "never":
            os.fsync(self._file.fileno())
        self._file.close()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"{time.time_ns() % 1_000_000_000:09d}"
        target = self.path.with_name(f"{self.path.stem}.{stamp}{self.path.suffix}")
        os.replace(self.path, target)
        self.rotations += 1
        self._log.info("audit rotated to {}", target.name)
        self._open()

    def _maybe_fsync(self) -> None:
        assert self._file is not None
        if self.fsync_policy == "always":
            os.fsync(self._file.fileno())
        elif self.fsync_policy == "interval":
            now = time.monotonic()
            if now - self._last_fsync >= self.fsync_interval_s:
                os.fsync(self._file.fileno())
                self._last_fsync = now


def _event_ts(event: Any) -> int | None:
    for name in ("ts_recv", "ts_ns", "ts_event"):
        value = getattr(event, name, None)
        if isinstance(value, int) and value:
            return value
    return None
