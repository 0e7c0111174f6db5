"""report_checks.problem: which ExecutionReports the TrueX connector refuses to believe, and which it takes."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connectors.truex.fix_tags import SOH
from connectors.truex.order_entry import _OrderInfo
from connectors.truex.raw_message import RawMessage
from connectors.truex.report_checks import problem
from mmkit.model import Side

ORDERS = {
    "s1": _OrderInfo("BTC-PYUSD", Side.SELL, Decimal(60005), Decimal("0.03")),
    "b2": _OrderInfo("BTC-PYUSD", Side.BUY, Decimal(59995), Decimal("0.01")),
}
REQUESTS = {"b2": "b1", "c7": "s1"}  # replace b1 -> b2 and cancel c7 of s1, both awaiting their answer


def report(**fields: str) -> RawMessage:
    base = {"35": "8", "11": "s1", "150": "F", "39": "1", "54": "2", "55": "BTC-PYUSD"}
    base.update({k.lstrip("_"): v for k, v in fields.items()})
    return RawMessage(SOH.join(f"{k}={v}" for k, v in base.items() if v != "") + SOH)


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"_150": "0", "_39": "2"}, "ExecType 0 with OrdStatus '2' is impossible"),
        ({"_39": "0"}, "ExecType F with OrdStatus '0' is impossible"),
        ({"_150": "4", "_39": "0"}, "ExecType 4 with OrdStatus '0' is impossible"),
        ({"_11": ""}, "ExecType F names no order"),
        ({"_54": "1"}, "Side BUY on s1, which we sent as SELL"),
        ({"_55": "ETH-PYUSD"}, "Symbol ETH-PYUSD on s1, which we sent on BTC-PYUSD"),
        ({"_150": "5", "_39": "0", "_11": "b2", "_41": "s1", "_54": "1"}, "OrigClOrdID s1 on b2, which we sent for b1"),
        ({"_150": "5", "_39": "0", "_11": "s1", "_41": "b1"}, "a replace answer for s1, which is no replace of ours"),
    ],
)
def test_a_report_that_cannot_be_true_of_our_order_is_refused_with_the_reason(fields: dict[str, str], why: str) -> None:
    found = problem(report(**fields), ORDERS, REQUESTS)
    assert found is not None and why in found


@pytest.mark.parametrize(
    "fields",
    [
        {},  # a partial fill of s1
        {"_39": "2"},  # the last fill
        {"_150": "0", "_39": "0"},  # accepted
        {"_150": "4", "_39": "4", "_11": "c7", "_41": "s1"},  # our cancel's answer
        {"_150": "5", "_39": "0", "_11": "b2", "_41": "b1", "_54": "1"},  # our replace's answer
        {"_11": "x9"},  # an order this run never sent: the engine decides (it counts it as unknown)
        {"_150": "I", "_39": "0"},  # a status answer: read by its own parser
    ],
)
def test_a_report_true_of_our_order_is_taken(fields: dict[str, str]) -> None:
    assert problem(report(**fields), ORDERS, REQUESTS) is None
