"""The client's shortcut for ExecutionReport New (``OrderAnswers._on_order_accepted``) equals the general path.

For every report, random in what a venue may put in it (CumQty 0, absent or
not 0; TransactTime, SendingTime, neither or garbage; ids present or not; the
order known to the connector or not), a connector that takes the shortcut
ends with the same events, the same order registry, the same watchdog state
and the same CumQty checks as one forced down the general path. Malformed
text is still counted and reported, never raised.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest

from connectors.truex import raw_message
from connectors.truex.client_app import OE
from connectors.truex.connector import TrueXConnector
from connectors.truex.fix_tags import SOH
from connectors.truex.order_answers import OrderAnswers
from connectors.truex.order_entry import _OrderInfo
from mmkit.model import MalformedMessage, OrderAccepted, Side
from tests.unit.truex.test_session_and_rules import CONFIG

KNOWN = ("C1", "C2", "C3")


def _connector(connector: TrueXConnector | None = None) -> TrueXConnector:
    """A connector knowing orders C1..C3 (sent, unanswered) and one fill of O2; ``connector`` reset to that."""
    if connector is None:
        connector = TrueXConnector(CONFIG, env={"TRUEX_API_KEY": "k", "TRUEX_SECRET_KEY": "s"})
    connector.drain()
    connector._orders.clear()
    connector._passed_fills.clear()
    connector._watchdog.reset(0)
    connector.cum_qty_mismatches = connector.malformed = 0
    for client_id in KNOWN:
        connector._orders[client_id] = _OrderInfo("BTC-PYUSD", Side.BUY, Decimal("58000.5"), Decimal("0.01"))
        connector._watchdog.sent(client_id, 1_000)
    connector._orders["C2"].cum_qty = Decimal("0.003")  # a report without CumQty leaves it; one with 14=0 resets it
    connector._passed_fills["O2"] = ({"T1"}, Decimal("0.002"))
    return connector


def _report(rng: random.Random) -> str:
    fields: list[tuple[int, str]] = [(35, "8"), (34, str(rng.randint(1, 999))), (49, "TRUEX_UAT_OE"), (56, "ME_OE")]
    fields.append((52, rng.choice(["20261207-10:00:00.123", "20261207-10:00:01", "bad"])))
    if rng.random() < 0.9:
        fields.append((11, rng.choice([*KNOWN, "C9", ""])))
    fields.append((14, rng.choice(["0", "0", "0", "0.001", "0.002", "00", ""]))) if rng.random() < 0.8 else None
    fields.append((17, f"E{rng.randint(1, 99)}"))
    if rng.random() < 0.9:
        fields.append((37, rng.choice(["O1", "O2", "NONE", ""])))
    fields.append((39, rng.choice(["0", "1"])))
    if rng.random() < 0.8:
        fields.append((60, rng.choice(["20261207-10:00:00.123456", "20261207-10:00:00", "x", ""])))
    fields.append((150, rng.choice(["0", "0", "0", "4", "F", "I"])))
    if rng.random() < 0.2:
        fields.append((41, rng.choice([*KNOWN, "C9"])))
    fields += [(54, "1"), (55, "BTC-PYUSD"), (38, "0.01"), (44, "58000.5"), (151, "0.01"), (31, "58000.5"),
               (32, "0.001"), (6, "58000.5")]  # fmt: skip
    rng.shuffle(fields[4:])
    return SOH.join(f"{tag}={value}" for tag, value in fields if value != "") + SOH


def _state(connector: TrueXConnector) -> dict[str, Any]:
    watchdog = connector._watchdog
    return {
        "events": connector.drain(),
        "orders": {k: (v.cum_qty, v.qty, v.price) for k, v in connector._orders.items()},
        "watchdog": (watchdog.last_recv_ns, watchdog.last_answer_ns, watchdog.answered_sent_ns,
                     dict(watchdog._unanswered)),
        "passed": dict(connector._passed_fills),
        "mismatches": connector.cum_qty_mismatches,
        "malformed": connector.malformed,
    }  # fmt: skip


def test_the_shortcut_ends_where_the_general_path_ends_for_random_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(1616)
    taken = 0
    original = OrderAnswers._on_order_accepted

    def counting(self: OrderAnswers, msg: raw_message.RawMessage, ts_recv: int) -> bool:
        nonlocal taken
        done = original(self, msg, ts_recv)
        taken += done
        return done

    fast, general = _connector(), _connector()
    for i in range(600):
        text = _report(rng)
        _connector(fast), _connector(general)
        monkeypatch.setattr(OrderAnswers, "_on_order_accepted", counting)
        fast._on_message(OE, text, 5_000 + i)
        monkeypatch.setattr(OrderAnswers, "_on_order_accepted", lambda self, msg, ts: False)
        general._on_message(OE, text, 5_000 + i)
        assert _state(fast) == _state(general), text.replace(SOH, "|")
    # both paths were exercised (the shortcut takes only a New whose OrdStatus is New, on an order we sent,
    # side and symbol as sent: connectors/truex/report_checks.py)
    assert 30 < taken < 600


def test_an_ordinary_new_report_is_one_order_accepted_and_notes_cum_qty_zero() -> None:
    connector = _connector()
    connector._orders["C1"].cum_qty = Decimal("7")  # the venue's word replaces it
    text = SOH.join(["35=8", "11=C1", "14=0", "37=O1", "39=0", "60=20261207-10:00:00.000001", "150=0"]) + SOH
    connector._on_message(OE, text, 42)
    (event,) = connector.drain()
    assert event == OrderAccepted(connector.venue, "C1", "O1", 1_796_637_600_000_001_000, 42)
    assert connector._orders["C1"].cum_qty == 0
    assert "C1" not in connector._watchdog._unanswered


@pytest.mark.parametrize(
    "text",
    [
        "35=8" + SOH + "garbage" + SOH + "150=0" + SOH,
        "35=8" + SOH + "x1=2" + SOH,
        "35=8" + SOH + "150=F" + SOH + "11=C1" + SOH + "54=9" + SOH + "31=1" + SOH + "32=1" + SOH + "17=E" + SOH,
    ],
)
def test_malformed_answers_are_counted_and_reported_never_raised(text: str) -> None:
    connector = _connector()
    connector._on_message(OE, text, 7)
    assert connector.malformed == 1
    (event,) = connector.drain()
    assert isinstance(event, MalformedMessage) and event.ts_recv == 7
