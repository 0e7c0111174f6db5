"""Finding an order by our client id where ccxt cannot: Kraken's QueryOrders by ``cl_ord_id``.

Why: when a create call's outcome is unknown (a timeout, an answer that was no answer:
answers.py) the order has no venue id yet, and the poller asks by client id. ccxt's
Kraken ``fetchOrder(None, symbol, {"cl_ord_id": ...})`` sends the question but then looks
the answer up under the id ``None`` and fails with a TypeError (``'...' + None``), every
poll, for good: the order, live at the venue, was never found. Here the endpoint is
called as ccxt would and its one order parsed by ccxt.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from connectors.ccxt.answers import MalformedAnswer
from connectors.ccxt.lazy import ccxt_errors

#: Kraken's own name of the client order id (ccxt's unified ``clientOrderId`` is sent as it by ``createOrder``).
KRAKEN_CLIENT_ID = "cl_ord_id"


async def kraken_order_by_client_id(exchange: Any, rest: Callable[..., Awaitable[Any]], client_id: str) -> Any:
    """The ccxt order Kraken holds under ``client_id``; OrderNotFound if it answers with none, MalformedAnswer
    if its answer holds orders of other client ids or is not an answer."""
    response = await rest(exchange.privatePostQueryOrders, {KRAKEN_CLIENT_ID: client_id, "trades": True})
    result = response.get("result") if isinstance(response, dict) else None
    if not isinstance(result, dict):
        raise MalformedAnswer(f"QueryOrders by {KRAKEN_CLIENT_ID}: no result in {str(response)[:80]!r}")
    ours = [(txid, order) for txid, order in result.items()
            if isinstance(order, dict) and order.get(KRAKEN_CLIENT_ID) in (None, client_id)]
    if len(ours) != len(result) or len(ours) > 1:
        raise MalformedAnswer(f"QueryOrders by {KRAKEN_CLIENT_ID} {client_id!r}: answered orders {sorted(result)}")
    if not ours:
        raise ccxt_errors().OrderNotFound(f"kraken: no order with {KRAKEN_CLIENT_ID} {client_id}")
    txid, order = ours[0]
    return exchange.parse_order(exchange.extend({"id": txid}, order))
