"""Order reports a hostile TrueX crafts on the order-entry session, against the real client on loopback.

A replace answer (150=5) for no replace of ours awaiting its answer (here:
b2's, answered already) whose OrigClOrdID names another of our live orders: believed, it would close that other order
in the engine (OrderReplaced) while it still rests at the venue, and drop it
from the connector's registry so it could not be cancelled. Now it is counted
and reported (``MalformedMessage``), nothing in it reaches the engine, and
every live order is asked about.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from connectors.truex import fix_tags
from connectors.truex.sim.tamper import send_crafted
from mmkit.model import MalformedMessage, OrderAccepted, OrderReplaced, ReplaceRequest, Side
from tests.integration.truex.test_truex_loopback import SYMBOL, Pair, comp_of, order

pytestmark = pytest.mark.integration


async def test_a_replace_answer_naming_another_of_our_orders_is_not_believed(pair: Pair) -> None:
    exchange, connector, collector = pair
    connector.place(order("a1", Side.BUY, "59980"))
    connector.place(order("b1", Side.BUY, "59990"))
    await collector.wait_for(lambda e: isinstance(e, OrderAccepted) and e.client_id == "b1")
    connector.replace(ReplaceRequest("b2", "b1", "truex", SYMBOL, Side.BUY, Decimal("0.01"), Decimal("59995")))
    real = await collector.wait_for(lambda e: isinstance(e, OrderReplaced))
    assert (real.client_id, real.orig_client_id) == ("b2", "b1")
    assert "b2" not in connector._cancels  # answered: the request is not kept for the rest of the run
    [a1] = [o for o in exchange.open_orders(comp_of(connector)) if o.client_id == "a1"]

    send_crafted(exchange, comp_of(connector), "8", [
        (fix_tags.T_ORDER_ID, a1.order_id), (fix_tags.T_CLORDID, "b2"), (fix_tags.T_ORIG_CLORDID, "a1"),
        (fix_tags.T_EXEC_ID, "X-HOSTILE-5"), (fix_tags.T_EXEC_TYPE, "5"), (fix_tags.T_ORD_STATUS, "0"),
        (fix_tags.T_SYMBOL, SYMBOL), (fix_tags.T_SIDE, "1"), (fix_tags.T_QTY, "0.01"), (fix_tags.T_PRICE, "59995"),
        (fix_tags.T_LEAVES_QTY, "0.01"), (fix_tags.T_CUM_QTY, "0"),
    ])  # fmt: skip
    bad = await collector.wait_for(lambda e: isinstance(e, MalformedMessage))
    assert "a replace answer for b2, which is no replace of ours awaiting its answer" in bad.error
    assert connector.malformed == 1
    assert [e.orig_client_id for e in collector.of_type(OrderReplaced)] == ["b1"], "a1 was closed as replaced"
