"""A message on the wrong session is refused without taking the process down.

TrueX treats a market-data message on order entry as a sequence gap, so the
client refuses it. It used to refuse it in QuickFIX's ``toApp`` by raising
DoNotSend, which with this QuickFIX build aborts the whole engine process
("terminate called after throwing an instance of 'FIX::DoNotSend'"): a guard
that killed what it guarded. Now ``_send`` refuses it before QuickFIX, and
``toApp`` only logs one that bypassed ``_send``.
"""

from __future__ import annotations

import pytest

from connectors.truex import builders
from connectors.truex.client_app import OE
from mmkit.model import OrderAccepted, Side
from tests.integration.truex.test_truex_loopback import SYMBOL, Pair, order

pytestmark = pytest.mark.integration


async def test_a_market_data_request_on_order_entry_is_refused_and_the_engine_lives_on(pair: Pair) -> None:
    _, connector, collector = pair
    assert connector._send(OE, builders.market_data_request("v-stray", SYMBOL), "V") is False
    # One that lies about its type gets past _send; toApp logs it and must not abort the process.
    connector._send(OE, builders.market_data_request("v-stray2", SYMBOL), "D")
    connector.place(order("after", Side.BUY, "59990"))
    accepted = await collector.wait_for(lambda e: isinstance(e, OrderAccepted))
    assert accepted.client_id == "after"
