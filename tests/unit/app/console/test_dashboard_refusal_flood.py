"""10,000 refused control requests over real HTTP against a running dashboard: bounded audit, engine unaffected.

The dashboard runs on the engine's loop (mmkit.testing.Harness ticking it), with the audit trail behind the
real writer thread (mmkit.app.audit_writer, as Persistence wires it). The hostile client sends 10,000 control
requests with a wrong token, 50 connections at a time. Afterwards: the audit trail holds two lines for them
(the first in full, one summary with the count of all 10,000), the engine kept ticking through the flood and
did nothing it was asked.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from mmkit.app.audit_writer import AuditWriter
from mmkit.app.config import ConsoleDashboardSection, EngineSection
from mmkit.app.console.dashboard import Dashboard
from tests.unit.app.console.test_dashboard import Rig

pytestmark = pytest.mark.integration

FLOOD = 10_000
CONNECTIONS = 50
BODY = b'{"action": "pause"}'


async def _refused(host: str, port: int) -> int:
    """One control request with a wrong token on its own connection; the HTTP status."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"POST /api/control HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer guess\r\n"
                 b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY))
    await writer.drain()
    status = int((await reader.readline()).split()[1])
    await reader.read()
    writer.close()
    return status


async def test_a_flood_of_refused_requests_is_audited_bounded_and_the_engine_keeps_ticking(tmp_path: Path) -> None:
    rig = Rig(tmp_path, "s3cret-token")
    writer = AuditWriter(rig.trail)
    config = SimpleNamespace(engine=EngineSection(instance="t", output_dir=str(tmp_path)))
    built = SimpleNamespace(engine=rig.h.engine, config=config, hedge=None)
    section = ConsoleDashboardSection(port=0, control_token="s3cret-token", push_interval_ms=100)
    dashboard = Dashboard(built, section, rig.channel, SimpleNamespace(audit=writer))
    engine = rig.h.engine
    orders_before = len(rig.h.venue.open_orders)
    assert orders_before and engine.runner.quoting_enabled

    async def drive() -> None:  # the live loop: a tick, then the loop runs whatever waits
        while True:
            rig.h.tick()
            await asyncio.sleep(0.001)

    rig.h.tick()
    rig.ticks.start(rig.h.clock, rig.h.clock.now_ns)
    task = asyncio.create_task(drive())
    await dashboard.start()
    host, port = section.host, int(dashboard.url.rsplit(":", 1)[1].rstrip("/"))
    statuses: list[int] = []
    ticks_seen: list[int] = []
    try:
        for start in range(0, FLOOD, CONNECTIONS):
            statuses += await asyncio.gather(*(_refused(host, port) for _ in range(min(CONNECTIONS, FLOOD - start))))
            if start % (20 * CONNECTIONS) == 0:  # every 1,000 requests: the engine must have ticked since
                await rig.ticks.next_tick()
                ticks_seen.append(rig.h.clock.tick_count)
        await rig.ticks.next_tick()
        assert statuses == [403] * FLOOD
        assert ticks_seen == sorted(set(ticks_seen)) and len(ticks_seen) == FLOOD // (20 * CONNECTIONS)
        # Nothing the flood asked for happened.
        assert engine.runner.quoting_enabled and len(rig.h.venue.open_orders) == orders_before
        assert engine.runner.kill_switch is None or not engine.runner.kill_switch.halted
        assert len(dashboard.actions) == dashboard.actions.maxlen  # the page's list stays bounded too
    finally:
        task.cancel()
        await dashboard.close()  # writes the summary of the window still open
        writer.close()
    rows = [json.loads(line) for line in rig.audit_path.read_text().splitlines()]
    refused = [r["data"] for r in rows if r["kind"] == "control"]
    # Two lines, unless the flood straddled a minute boundary (then two a minute): bounded either way.
    assert 2 <= len(refused) <= 4, refused
    assert {r["phase"] for r in refused} == {"refused", "refused_summary"}
    assert all(r["source"] == "web 127.0.0.1" for r in refused)
    counted = sum(r["refused"] for r in refused if r["phase"] == "refused_summary")
    windows_without_summary = {r["window_start_ns"] for r in refused if r["phase"] == "refused"} - {
        r["window_start_ns"] for r in refused if r["phase"] == "refused_summary"}
    assert counted + len(windows_without_summary) == FLOOD, "every refusal is counted"
    assert dashboard.refusals.refused == FLOOD and dashboard.refusals.lines == len(refused)


async def test_the_last_summary_reaches_the_audit_trail_before_the_run_closes_it(tmp_path: Path) -> None:
    """The run's closers close the audit writer (persistence) before the console closes the page: the
    refusals' closer is put first, so the summary of the minute still open is written, not dropped."""
    from mmkit.app.build import build
    from mmkit.app.config import load_engine_config
    from mmkit.app.console.runtime import start_console
    from mmkit.app.persistence import default_audit_path, persist_built
    from mmkit.clock import Clock, ClockMode

    repo = Path(__file__).resolve().parents[4]
    config = tmp_path / "c.yml"
    config.write_text((repo / "strategies" / "layered_example.yml").read_text()
                      + "console: {dashboard: {port: 0, push_interval_ms: 100}}\n")
    built = build(load_engine_config(config), Clock(ClockMode.REALTIME))
    persistence = persist_built(built)
    console = await start_console(built)
    await console.open(persistence, None)
    host, port = "127.0.0.1", int(console.addresses["dashboard"].rsplit(":", 1)[1].rstrip("/"))
    assert await asyncio.gather(*(_refused(host, port) for _ in range(7))) == [403] * 7
    engine = built.engine
    while engine.closers:  # what the lifecycle's _run_closers does when the run ends, in order
        engine.closers.pop(0)()
    await console.close()
    audit = default_audit_path(built.config.store, built.config.engine.instance, built.config.engine.output_dir)
    refused = [json.loads(line)["data"] for line in audit.read_text().splitlines()
               if json.loads(line)["kind"] == "control"]
    assert [(r["phase"], r.get("refused")) for r in refused] == [("refused", None), ("refused_summary", 7)], refused
