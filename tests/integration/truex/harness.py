"""Client-against-exchange plumbing for the TrueX loopback tests (and the FIX bench)."""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
from collections.abc import Callable
from decimal import Decimal

from connectors.truex.config import SessionEndpoint, TrueXConfig
from connectors.truex.connector import TrueXConnector
from connectors.truex.sim.exchange import ExchangeAccount, ExchangeConfig, TrueXExchange
from mmkit.model import VenueEvent

API_KEY = "test-key"
SECRET = "test-secret"
_counter = itertools.count(1)


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports, for servers started next.

    Why all at once: the sockets are held together while the kernel picks, so the ports differ. Picked one
    after the other (bind to 0, close, again), the same port came back about once in 9,000 pairs, and an
    exchange given it for both its acceptors could not bind the second: a failure of pure chance.
    """
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port() -> int:
    return free_ports(1)[0]


def unique_comp_ids() -> tuple[str, str]:
    """QuickFIX keeps a process-wide session registry: every test gets its own comp ids."""
    n = f"{os.getpid()}x{next(_counter)}"
    return f"MMK{n}OE", f"MMK{n}MD"


def make_pair(
    *,
    secret: str = SECRET,
    enforce_rate_limits: bool = True,
    cancel_on_disconnect: bool | None = None,
    reference_price: Decimal | None = Decimal(60000),
    strict: bool = False,
    omit_commission: bool = False,
    id_epoch: str | None = None,
    hostile: str | None = None,
) -> tuple[TrueXExchange, TrueXConnector]:
    """An exchange and a client for it. ``strict``: TrueX's published set only (no 35=H/35=AF) on both sides."""
    oe_comp, md_comp = unique_comp_ids()
    oe_port, md_port = free_ports(2)
    exchange = TrueXExchange(
        ExchangeConfig(
            oe_port=oe_port,
            md_port=md_port,
            accounts=(ExchangeAccount(oe_comp, md_comp, API_KEY, SECRET),),
            enforce_rate_limits=enforce_rate_limits,
            cancel_on_disconnect=cancel_on_disconnect,
            strict=strict,
            omit_commission=omit_commission,
            id_epoch=id_epoch,
            hostile=hostile,
        )
    )
    if reference_price is not None:
        exchange.set_reference_price(reference_price)
    config = TrueXConfig(
        oe=SessionEndpoint("127.0.0.1", oe_port, oe_comp, "TRUEX_UAT_OE"),
        md=SessionEndpoint("127.0.0.1", md_port, md_comp, "TRUEX_UAT_MD"),
        party_id="PARTY1",
        connect_timeout_s=Decimal(5),
        request_timeout_s=Decimal(2),
        heartbeat_s=5,
        status_requests=not strict,
    )
    connector = TrueXConnector(config, env={"TRUEX_API_KEY": API_KEY, "TRUEX_SECRET_KEY": secret})
    return exchange, connector


class Collector:
    """Drains a connector into one list and waits (briefly) for an event matching a predicate."""

    def __init__(self, connector: TrueXConnector) -> None:
        self.connector = connector
        self.events: list[VenueEvent] = []

    async def wait_for(self, predicate: Callable[[VenueEvent], bool], timeout: float = 3.0) -> VenueEvent:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen = 0
        while True:
            self.events.extend(self.connector.drain())
            for event in self.events[seen:]:
                if predicate(event):
                    return event
            seen = len(self.events)
            if loop.time() > deadline:
                raise AssertionError(f"no matching event in {timeout}s; got {self.events[-10:]}")
            await asyncio.sleep(0.002)

    async def settle(self, seconds: float = 0.05) -> list[VenueEvent]:
        await asyncio.sleep(seconds)
        self.events.extend(self.connector.drain())
        return self.events

    def of_type(self, kind: type) -> list[VenueEvent]:
        self.events.extend(self.connector.drain())
        return [e for e in self.events if isinstance(e, kind)]
