"""A reference source that is down at start is retried, as one that drops at run time reconnects (issue 13).

Real parts: the Harness's engine and FakeConnectors; only the source's first connects are made to fail.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from mmkit.app import engine as engine_module
from mmkit.connector import load_venue_rules
from mmkit.testing.fake_connector import FakeConnector
from mmkit.testing.harness import Harness
from strategies.simple import SimpleConfig, SimpleController


class FlakySource(FakeConnector):
    """A source whose first ``failures`` connects raise, as an unreachable venue's do."""

    def __init__(self, failures: int) -> None:
        super().__init__(load_venue_rules("kraken"), "kraken", connected=False)
        self.failures = failures
        self.attempts = 0

    def connect(self):  # type: ignore[no-untyped-def]
        self.attempts += 1
        if self.attempts <= self.failures:
            raise ConnectionError("connection refused")
        return super().connect()


async def wait_for(predicate, timeout_s: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout_s)


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_module, "FEED_RETRY_FIRST_S", 0.01)
    monkeypatch.setattr(engine_module, "FEED_RETRY_MAX_S", 0.02)


def harness() -> Harness:
    return Harness(SimpleController(SimpleConfig(half_spread_bps=Decimal(10), order_size=Decimal("0.01"))))


async def test_a_source_down_at_start_is_retried_and_its_book_subscribed_once_up() -> None:
    h = harness()
    source = FlakySource(failures=3)
    h.engine.add_feed(source, ["BTC/USD"])
    await h.engine.start()  # degrades: the engine starts without it
    assert not source.connected and source.book_subscriptions == []
    await wait_for(lambda: source.connected)
    assert source.attempts == 4
    assert source.book_subscriptions == ["BTC/USD"]


async def test_retries_stop_when_the_run_ends() -> None:
    h = harness()
    source = FlakySource(failures=10**6)
    h.engine.add_feed(source, ["BTC/USD"])
    await h.engine.start()
    await wait_for(lambda: source.attempts >= 2)
    for close in h.engine.closers:
        close()
    await asyncio.sleep(0)  # let the cancellation land
    attempts = source.attempts
    await asyncio.sleep(0.1)  # several retry periods: none may run after the stop
    assert source.attempts == attempts
