"""Alert webhooks: a small JSON document POSTed when a person must act.

Why a queue and a task: an alert is raised on the tick (a kill-switch trip,
a problem recorded on the run's outcome), and the tick must never wait on
the network. :meth:`AlertSender.alert` only appends to a bounded queue; one
asyncio task on the engine's loop posts each alert to every webhook, with
retries and exponential backoff on a failure (connection error, timeout,
HTTP 5xx or 429; a 4xx other than 429 is not retried: the receiver refused
the document itself). A full queue drops the new alert and counts it.

Rate limit: the same alert (``kind`` + ``subject``) is sent at most once per
``min_interval_s``; the repeats in between are counted and reported in the
next one's ``suppressed``, so a flapping condition does not flood a pager
but is not hidden either.

Payload (version 1), one format for every kind::

    {"version": 1, "source": "mmkit", "instance": "truex-btc", "kind": "kill_switch",
     "severity": "critical", "subject": "...", "message": "...", "details": {...},
     "ts_ns": 1765000000000000000, "time": "2026-12-06T18:00:00.000Z", "host": "...",
     "suppressed": 0}

Kinds: ``kill_switch``, ``venue_down``, ``start_refused``, ``ledger``,
``store``, ``hedge``, ``problem``, ``test``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import socket
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs
from loguru import logger

if TYPE_CHECKING:  # the client (~10 MB resident with its deps) is imported when the first alert is posted
    import aiohttp

PAYLOAD_VERSION = 1
SEVERITIES = ("info", "warning", "critical")


@attrs.frozen
class Webhook:
    url: str
    headers: dict[str, str] = attrs.Factory(dict)


@attrs.frozen
class AlertSettings:
    webhooks: tuple[Webhook, ...]
    retries: int = 3
    backoff_s: float = 0.5
    timeout_s: float = 5.0
    min_interval_s: float = 60.0
    max_queued: int = 1000

    @classmethod
    def from_section(cls, section: Any) -> AlertSettings:
        return cls(
            webhooks=tuple(Webhook(w.url, dict(w.headers)) for w in section.webhooks),
            retries=int(section.retries),
            backoff_s=float(section.backoff_s),
            timeout_s=float(section.timeout_s),
            min_interval_s=float(section.min_interval_s),
            max_queued=int(section.max_queued),
        )


def build_payload(
    instance: str,
    kind: str,
    severity: str,
    subject: str,
    message: str,
    details: dict[str, Any] | None = None,
    ts_ns: int | None = None,
    suppressed: int = 0,
) -> dict[str, Any]:
    """The documented alert document (version 1)."""
    ts = time.time_ns() if ts_ns is None else ts_ns
    when = datetime.datetime.fromtimestamp(ts / 1e9, tz=datetime.UTC)
    return {
        "version": PAYLOAD_VERSION,
        "source": "mmkit",
        "instance": instance,
        "kind": kind,
        "severity": severity,
        "subject": subject,
        "message": message,
        "details": {k: _jsonable(v) for k, v in (details or {}).items()},
        "ts_ns": ts,
        "time": when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z",
        "host": socket.gethostname(),
        "suppressed": suppressed,
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


class AlertSender:
    """Queues alerts from the tick and posts them from a background task (see the module doc)."""

    def __init__(self, settings: AlertSettings, instance: str) -> None:
        self.settings = settings
        self.instance = instance
        self._queue: collections.deque[dict[str, Any]] = collections.deque()
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._last_sent: dict[tuple[str, str], float] = {}
        self._suppressed: collections.Counter[tuple[str, str]] = collections.Counter()
        self._busy = False
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self.rate_limited = 0
        self._log = logger.bind(component="alerts", instance=instance)

    # -- from the tick (never blocks) -------------------------------------

    def alert(
        self,
        kind: str,
        subject: str,
        message: str,
        *,
        severity: str = "critical",
        details: dict[str, Any] | None = None,
        ts_ns: int | None = None,
    ) -> bool:
        """Queue one alert; False when rate-limited or dropped (the queue is full)."""
        key = (kind, subject)
        now = time.monotonic()
        last = self._last_sent.get(key)
        if last is not None and now - last < self.settings.min_interval_s:
            self._suppressed[key] += 1
            self.rate_limited += 1
            return False
        if len(self._queue) >= self.settings.max_queued:
            self.dropped += 1
            self._log.error("alert queue full ({} queued): dropped {} alert: {}", len(self._queue), kind, message)
            return False
        self._last_sent[key] = now
        suppressed = self._suppressed.pop(key, 0)
        self._queue.append(build_payload(self.instance, kind, severity, subject, message, details, ts_ns, suppressed))
        if self._wakeup is not None:
            self._wakeup.set()
        return True

    # -- the background task ----------------------------------------------

    def start(self) -> None:
        """Start the posting task on the running loop."""
        self._wakeup = asyncio.Event()
        if self._queue:
            self._wakeup.set()
        self._task = asyncio.create_task(self._run(), name="alerts")

    async def drain(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything queued has been posted (or given up); True if the queue emptied in time."""
        deadline = time.monotonic() + timeout_s
        while (self._queue or self._busy) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return not (self._queue or self._busy)

    async def close(self, timeout_s: float = 10.0) -> None:
        """Post what is queued (bounded by ``timeout_s``), then stop the task."""
        if self._task is not None:
            await self.drain(timeout_s)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self) -> None:
        assert self._wakeup is not None
        while True:
            while not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            self._busy = True
            try:
                payload = self._queue.popleft()
                await self.post(payload)
            finally:
                self._busy = False

    async def post(self, payload: dict[str, Any]) -> bool:
        """POST ``payload`` to every webhook with retries; True if every webhook accepted it."""
        import aiohttp  # only a run with webhooks configured posts (the demo's console has none)

        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.settings.timeout_s))
        ok = True
        for hook in self.settings.webhooks:
            if await self._post_one(hook, payload):
                self.sent += 1
            else:
                self.failed += 1
                ok = False
        return ok

    async def _post_one(self, hook: Webhook, payload: dict[str, Any]) -> bool:
        import aiohttp

        assert self._session is not None
        delay = self.settings.backoff_s
        target = _redact(hook.url)
        for attempt in range(self.settings.retries + 1):
            problem = ""
            try:
                async with self._session.post(hook.url, json=payload, headers=hook.headers) as response:
                    if response.status < 300:
                        return True
                    problem = f"HTTP {response.status}"
                    if 400 <= response.status < 500 and response.status != 429:
                        self._log.error("alert webhook {} refused the {} alert: {}", target, payload["kind"], problem)
                        return False
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            if attempt < self.settings.retries:
                self._log.warning(
                    "alert webhook {} failed ({}); retry {} in {:.1f} s", target, problem, attempt + 1, delay
                )
                await asyncio.sleep(delay)
                delay *= 2
            else:
                self._log.error(
                    "alert webhook {} failed {} times, giving up on the {} alert: {}",
                    target,
                    attempt + 1,
                    payload["kind"],
                    problem,
                )
        return False


def _redact(url: str) -> str:
    """Scheme, host and port only: webhook paths often carry a secret (Slack, PagerDuty)."""
    try:
        from yarl import URL

        parsed = URL(url)
        return f"{parsed.scheme}://{parsed.host}:{parsed.port}/…"
    except (ValueError, TypeError):
        return "<webhook>"


async def send_test_alert(settings: AlertSettings, instance: str, hooks: Sequence[Webhook] | None = None) -> bool:
    """``mmkit alert-test``: one ``test`` alert to every webhook, with the configured retries."""
    sender = AlertSender(attrs.evolve(settings, webhooks=tuple(hooks or settings.webhooks)), instance)
    payload = build_payload(instance, "test", "info", "alert-test", "mmkit alert-test: the webhook is reachable")
    try:
        return await sender.post(payload)
    finally:
        await sender.close()


def alert_test_command(config_path: str) -> int:
    """``mmkit alert-test CONFIG``: post a ``test`` alert to the config's webhooks; 0 if every one accepted it.

    Only the ``console`` section is read (and only its secrets looked up), so
    the command works on a production file without the venue's keys in the
    environment. No webhooks configured is a configuration error (exit 2).
    """
    from pathlib import Path

    from mmkit.app.config import SECRET_PATHS, ConsoleSection
    from mmkit.app.outcome import EXIT_OK
    from mmkit.conf import ConfigError, expand_secrets, read_yaml, structure

    file = Path(config_path)
    data = read_yaml(file)
    if not isinstance(data, dict):
        raise ConfigError(file, "", "the file must contain a mapping of sections")
    console = {"console": data.get("console") or {}}
    expanded = expand_secrets(console, set(SECRET_PATHS), file)
    section = structure(expanded["console"], ConsoleSection, file=file, root="$.console")
    if section.alerts is None or not section.alerts.webhooks:
        raise ConfigError(file, "console.alerts.webhooks", "no webhook configured: nothing to test")
    instance = str((data.get("engine") or {}).get("instance", "mmkit"))
    settings = AlertSettings.from_section(section.alerts)
    ok = asyncio.run(send_test_alert(settings, instance))
    for hook in settings.webhooks:
        print(f"alert-test: {'sent' if ok else 'NOT delivered'} to {_redact(hook.url)}")
    return EXIT_OK if ok else 1
