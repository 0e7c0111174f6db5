"""The dashboard server on the real engine (mmkit.testing.Harness) with the real ControlChannel, over real HTTP.

Covered here (the browser test covers the page itself): read-only without a token (every control
request refused and audited, the page offers no buttons), the token checked, an accepted action going through
ControlChannel.execute (and audited there), the SSE stream, and a prompt close with a page open.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from decimal import Decimal as D
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest

from mmkit.app.config import ConsoleDashboardSection, EngineSection
from mmkit.app.console.dashboard import Dashboard
from mmkit.app.control.channel import ControlChannel, TickWaiter
from mmkit.store.audit import AuditTrail
from mmkit.testing.harness import Harness
from strategies.simple import SimpleConfig, SimpleController

pytestmark = pytest.mark.integration


class Rig:
    def __init__(self, tmp_path: Path, token: str | None) -> None:
        self.h = Harness(SimpleController(SimpleConfig(half_spread_bps=D(10), order_size=D("0.5"))))
        self.ticks = TickWaiter()
        self.h.clock.add_iterator(self.ticks, name="control")
        self.audit_path = tmp_path / "audit.jsonl"
        self.trail = AuditTrail(self.audit_path, instance="t", fsync="never")
        self.channel = ControlChannel(self.h.engine, audit=self.trail.write, ticks=self.ticks, instance="t")
        self.h.set_fair("60000")
        self.h.tick(2)
        config = SimpleNamespace(engine=EngineSection(instance="t", output_dir=str(tmp_path)))
        built = SimpleNamespace(engine=self.h.engine, config=config, hedge=None)
        section = ConsoleDashboardSection(port=0, control_token=token, push_interval_ms=100)
        self.dashboard = Dashboard(built, section, self.channel)

    async def post(self, action: str, token: str | None = None) -> tuple[int, dict[str, Any]]:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.dashboard.url + "api/control", json={"action": action}, headers=headers) as response,
        ):
            return response.status, await response.json()

    async def state(self) -> dict[str, Any]:
        async with aiohttp.ClientSession() as session, session.get(self.dashboard.url + "api/state") as response:
            return dict(await response.json())


async def _rig(tmp_path: Path, token: str | None) -> AsyncIterator[Rig]:
    r = Rig(tmp_path, token)

    async def drive() -> None:  # the live loop: a tick, then the loop runs whatever waits
        while True:
            r.h.tick()
            await asyncio.sleep(0.001)

    r.h.tick()
    r.ticks.start(r.h.clock, r.h.clock.now_ns)
    task = asyncio.create_task(drive())
    await r.dashboard.start()
    try:
        yield r
    finally:
        task.cancel()
        await r.dashboard.close()
        r.trail.close()


@pytest.fixture
async def readonly(tmp_path: Path) -> AsyncIterator[Rig]:
    async for r in _rig(tmp_path, None):
        yield r


@pytest.fixture
async def controlled(tmp_path: Path) -> AsyncIterator[Rig]:
    async for r in _rig(tmp_path, "s3cret-token"):
        yield r


async def test_without_a_token_the_page_is_read_only(readonly: Rig) -> None:
    state = await readonly.state()
    assert state["controls"] is False and state["control_actions"] == []
    assert state["orders"] and state["instance"] == "t"
    for action in ("pause", "flatten", "cancel-all", "resume"):
        status, body = await readonly.post(action, "anything")
        assert status == 403 and "read-only" in body["message"], body
    assert readonly.h.engine.runner.quoting_enabled
    status, body = await readonly.post("trip", "anything")
    assert status == 400  # never offered on the page
    # Refused attempts are audited (they used not to be): the first from the address in full, the other four
    # counted in one summary line written when the window ends or, here, when the dashboard closes.
    await readonly.dashboard.close()
    readonly.trail.close()
    audited = [json.loads(line)["data"] for line in readonly.audit_path.read_text().splitlines()]
    assert [a["phase"] for a in audited] == ["refused", "refused_summary"], audited
    first, summary = audited
    assert first["source"] == "web 127.0.0.1" and first["action"] == "pause" and first["status"] == 403
    assert "read-only" in first["reason"]
    assert (summary["refused"], summary["suppressed"]) == (5, 4)
    assert summary["actions"] == [["flatten", 1], ["cancel-all", 1], ["resume", 1], ["trip", 1]]


async def test_with_a_token_actions_go_through_the_channel(controlled: Rig) -> None:
    status, body = await controlled.post("pause")
    assert status == 403 and "token" in body["message"]
    status, body = await controlled.post("pause", "wrong")
    assert status == 403
    assert controlled.h.engine.runner.quoting_enabled
    status, body = await controlled.post("pause", "s3cret-token")
    assert status == 200 and body["ok"] and body["action"] == "pause", body
    assert not controlled.h.engine.runner.quoting_enabled
    state = await controlled.state()
    assert state["quoting"] is False and state["controls"] is True
    assert [(a["action"], a["ok"]) for a in state["actions"]] == [("pause", True), ("pause", False), ("pause", False)]
    controlled.trail.close()
    audited = [json.loads(line)["data"] for line in controlled.audit_path.read_text().splitlines()]
    # The missing-token refusal in full (the wrong-token one is counted for the window's summary), then the
    # accepted action's two lines from the channel.
    assert [(a["action"], a["phase"]) for a in audited] == [("pause", "refused"), ("pause", "request"),
                                                            ("pause", "result")]
    assert audited[0]["reason"] == "wrong or missing control token" and audited[0]["status"] == 403
    assert audited[2]["source"].startswith("web 127.0.0.1")


@pytest.mark.parametrize(
    "body",
    [{"action": "cancel-all", "symbol": "ETH-USD"}, {"action": "pause", "params": {"symbol": "ETH-USD"}},
     {"action": "pause", "dry_run": True}],
)
async def test_a_control_request_with_fields_the_page_never_sends_is_refused(
    controlled: Rig, body: dict[str, Any]
) -> None:
    """`cancel-all` for one symbol must not cancel the whole instance's quotes: what is not understood is refused."""
    before = len(controlled.h.venue.open_orders)
    async with (
        aiohttp.ClientSession() as session,
        session.post(controlled.dashboard.url + "api/control", json=body,
                     headers={"Authorization": "Bearer s3cret-token"}) as response,
    ):
        status, answer = response.status, await response.json()
    assert status == 400 and not answer["ok"], answer
    extra = sorted(set(body) - {"action"})
    assert f"unknown field(s) {', '.join(repr(k) for k in extra)}" in answer["message"]
    await controlled.ticks.next_tick()
    assert controlled.h.engine.runner.quoting_enabled and len(controlled.h.venue.open_orders) == before
    assert [(a["action"], a["ok"]) for a in controlled.dashboard.actions] == [(body["action"], False)]


async def test_server_sent_events_stream_and_a_prompt_close(controlled: Rig) -> None:
    async with aiohttp.ClientSession() as session:
        response = await session.get(controlled.dashboard.url + "events")
        ticks: list[int] = []
        while len(ticks) < 3:
            line = (await asyncio.wait_for(response.content.readline(), 10)).decode()
            if line.startswith("data: "):
                ticks.append(json.loads(line[6:])["ticks"])
        assert ticks == sorted(ticks) and ticks[-1] > ticks[0]
        began = time.monotonic()
        await controlled.dashboard.close()  # a page still open must not hold the instance's stop
        assert time.monotonic() - began < 5
        response.close()


async def test_a_configured_port_that_is_taken_refuses_the_start(tmp_path: Path) -> None:
    """Someone asked for the instance to be watched: if the console cannot listen, the start is refused."""
    import socket

    from mmkit.app.config import ConsoleMetricsSection, ConsoleSection
    from mmkit.app.console.runtime import Console, ConsoleStartError

    h = Harness(SimpleController(SimpleConfig(half_spread_bps=D(10), order_size=D("0.5"))))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for section in (
            ConsoleSection(metrics=ConsoleMetricsSection(port=port)),
            ConsoleSection(dashboard=ConsoleDashboardSection(port=port)),
        ):
            config = SimpleNamespace(console=section, engine=EngineSection(instance="t", output_dir=str(tmp_path)))
            console = Console(SimpleNamespace(engine=h.engine, config=config, hedge=None))
            with pytest.raises(ConsoleStartError, match=f"127.0.0.1:{port}"):
                await console.open(None, None)
            await console.close()
