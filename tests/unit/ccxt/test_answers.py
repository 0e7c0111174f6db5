"""The order-answer checks alone (connectors/ccxt/answers.py): what is an answer about our order, what is not."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.ccxt.answers import MalformedAnswer, cancel_answer, order_answer

GOOD: dict[str, Any] = {"id": "O1", "clientOrderId": "c1", "status": "open", "amount": 0.01, "filled": 0.0,
                        "price": 60000.0, "info": {}}


@pytest.mark.parametrize("changes", [
    {}, {"amount": "1E-2", "price": "6.0E+4"}, {"filled": None, "price": None, "status": None},
    {"status": "closed"}, {"status": "cancelled"}, {"id": 12345}, {"clientOrderId": None},
])
def test_an_answer_about_our_order_passes(changes: dict[str, Any]) -> None:
    raw = GOOD | changes
    assert order_answer(raw, "t", venue_order_id=str(raw["id"]), client_id="c1") is raw


@pytest.mark.parametrize("raw,why", [
    ("<html>502</html>", "not an order"), (None, "not an order"), ([GOOD], "not an order"),
    (GOOD | {"id": None}, "no order id"), (GOOD | {"id": ""}, "no order id"), (GOOD | {"id": "None"}, "no order id"),
    (GOOD | {"id": True}, "no order id"), (GOOD | {"id": "O2"}, "about order O2"),
    (GOOD | {"clientOrderId": "c9"}, "client id 'c9'"),
    (GOOD | {"filled": float("nan")}, "filled"), (GOOD | {"amount": "-0.01"}, "amount"),
    (GOOD | {"price": "inf"}, "price"), (GOOD | {"filled": "n/a"}, "filled"), (GOOD | {"amount": True}, "amount"),
    (GOOD | {"filled": [1]}, "filled"), (GOOD | {"status": "PENDING_CANCEL"}, "unknown status"),
])
def test_what_is_no_answer_about_our_order_is_refused_naming_why(raw: Any, why: str) -> None:
    with pytest.raises(MalformedAnswer, match=why):
        order_answer(raw, "t", venue_order_id="O1", client_id="c1")


@pytest.mark.parametrize("raw", [{"info": "<html/>"}, {"info": ""}, {"info": None}, {"info": b"{"}, "x"])
def test_a_cancel_answer_without_the_venues_json_is_refused(raw: Any) -> None:
    with pytest.raises(MalformedAnswer, match="not the venue's answer"):
        cancel_answer(raw, "cancel_order")


def test_a_cancel_answer_with_the_venues_json_passes() -> None:
    raw = {"id": None, "info": {"error": [], "result": {"count": 1}}}
    assert cancel_answer(raw, "cancel_order") is raw
