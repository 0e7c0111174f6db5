"""The FIX order path's shortcuts each equal the general path they stand in for (issue 16, bench/bench_fix.py).

* the simulated exchange's ExecutionReport New (``ReportBuilder._new_report``)
  equals its generic ``_exec_report`` byte for byte, and falls back to it;
* ``_publish_md`` with nobody subscribed keeps the same MD sequence number and
  published set as the full diff would;
* ``RawMessage`` builds its ordered pairs lazily: same pairs, same first
  occurrences, malformed input still refused at once;
* ``ClientApp.on_to_app`` reads one ``toString()`` copy: PossDup=N still goes
  out, a D on the MD session is still refused;
* the handoff names a message's session by its comp ids, and the outbox reuses
  a known session text only for that very object.
"""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal

import pytest
import quickfix as fix

from connectors.truex import raw_message
from connectors.truex.client_app import MD, OE, field_value
from connectors.truex.fix_tags import SOH
from connectors.truex.sim import reports
from connectors.truex.sim.exchange import ExchangeAccount, ExchangeConfig, TrueXExchange
from connectors.truex.sim.outbox import Outbox
from connectors.truex.sim.records import _Record
from mmkit.model import Side, VenueOrderStatus
from tests.unit.truex.test_session_and_rules import _app, _message
from tests.unit.truex.test_templates import _as_sent, _decimal, _text


def _exchange() -> TrueXExchange:
    exchange = TrueXExchange(ExchangeConfig(1, 2, (ExchangeAccount("CLI", "CLIMD", "k", "s"),)))
    exchange.set_reference_price(Decimal(60000))
    return exchange


def test_new_report_equals_the_generic_report_for_random_records(monkeypatch: pytest.MonkeyPatch) -> None:
    exchange = _exchange()
    monkeypatch.setattr(reports.time, "time_ns", lambda: 1_765_000_000_123_456_789)  # one TransactTime for both
    rng = random.Random(16)
    for i in range(300):
        record = _Record(
            f"O{i}-{_text(rng, 1, 8)}", _text(rng, 1, 18), "client:CLI", rng.choice(list(Side)),
            _decimal(rng), _decimal(rng), Decimal(0), VenueOrderStatus.NEW,
        )  # fmt: skip
        exec_id = f"{record.order_id}-0"
        fast = _as_sent(exchange._new_report(record, exec_id))
        generic = _as_sent(exchange._exec_report(record, "0", exec_id=exec_id))
        assert fast == generic


@pytest.mark.parametrize("case", ["filled part", "not new", "soh in id"])
def test_new_report_falls_back_to_the_generic_report(monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    exchange = _exchange()
    monkeypatch.setattr(reports.time, "time_ns", lambda: 1_765_000_000_123_456_789)
    record = _Record("O1", "C1", "client:CLI", Side.SELL, Decimal("60000.5"), Decimal("0.002"), Decimal(0),
                     VenueOrderStatus.NEW)
    if case == "filled part":
        record.cum_qty, record.notional, record.status = Decimal("0.001"), Decimal("60.0005"), VenueOrderStatus.NEW
    elif case == "not new":
        record.status = VenueOrderStatus.PARTIALLY_FILLED
    else:
        record.client_id = f"C{SOH}1"
    calls: list[str] = []
    generic = exchange._exec_report
    monkeypatch.setattr(exchange, "_exec_report", lambda *a, **k: calls.append("generic") or generic(*a, **k))
    exchange._new_report(record, "O1-0")
    assert calls == ["generic"]


def _fed(subscribed: bool) -> list[tuple[int, dict[Side, set[Decimal]]]]:
    """Book changes through the engine; (MD sequence, published set) after each, with or without a subscriber."""
    exchange = _exchange()
    if subscribed:
        exchange._md_subscribers["NOBODY"] = "req"  # a subscriber without a session: the 35=X is built, not sent
    states = []
    steps = [
        lambda: exchange.requote_maker([(Decimal(59990), Decimal("0.01"))], [(Decimal(60010), Decimal("0.01"))]),
        lambda: exchange.requote_maker([(Decimal(59990), Decimal("0.01"))], [(Decimal(60010), Decimal("0.01"))]),
        lambda: exchange.submit_taker(Side.BUY, Decimal("0.004"), Decimal(60010)),
        lambda: exchange.requote_maker([(Decimal(59980), Decimal("0.02"))], []),
        lambda: exchange.submit_taker(Side.SELL, Decimal("0.02"), Decimal(59980)),
        lambda: exchange.submit_taker(Side.SELL, Decimal("0.01"), Decimal(1)),  # nothing left: no change
        lambda: exchange.requote_maker([], []),
    ]
    for step in steps:
        step()
        states.append((exchange.md_seq, {side: set(prices) for side, prices in exchange._published.items()}))
    return states


def test_unsubscribed_publication_keeps_the_subscribed_sequence_and_published_set() -> None:
    with_subscriber, without = _fed(True), _fed(False)
    assert without == with_subscriber
    assert with_subscriber[-1][0] > 3  # the steps did change the book


def test_raw_message_pairs_are_every_field_in_order_and_lookups_the_first() -> None:
    text = f"8=FIXT.1.1{SOH}35=W{SOH}268=2{SOH}269=0{SOH}270=1{SOH}{SOH}269=1{SOH}270=2{SOH}10=000{SOH}"
    msg = raw_message.RawMessage(text)
    assert msg.pairs == [(8, "FIXT.1.1"), (35, "W"), (268, "2"), (269, "0"), (270, "1"), (269, "1"), (270, "2"),
                         (10, "000")]
    assert (msg.get(269), msg.get(270), msg.msg_type) == ("0", "1", "W")
    assert list(msg.group(268, 269)) == [{269: "0", 270: "1"}, {269: "1", 270: "2"}]
    for bad in (f"35=8{SOH}garbage{SOH}", f"35=8{SOH}x1=2{SOH}", f"35=8{SOH}=2{SOH}"):
        with pytest.raises(raw_message.ParseError):
            raw_message.RawMessage(bad)


def test_field_value_reads_the_first_occurrence_and_never_raises() -> None:
    text = f"8=FIXT.1.1{SOH}35=D{SOH}34=7{SOH}11=a{SOH}11=b{SOH}"
    assert (field_value(text, f"{SOH}11="), field_value(text, f"{SOH}34="), field_value(text, f"{SOH}41=")) == (
        "a", "7", "")
    assert field_value(f"{SOH}11=tail", f"{SOH}11=") == "tail"


def test_to_app_lets_poss_dup_n_out_and_refuses_order_messages_on_md() -> None:
    _, app = _app()
    oe = fix.SessionID("FIXT.1.1", "ME_OE", "TRUEX_UAT_OE")
    md = fix.SessionID("FIXT.1.1", "ME_MD", "TRUEX_UAT_MD")
    fresh = _message("D", seq=11)
    fresh.getHeader().setField(43, "N")
    fresh.setField(11, "c43=Y")  # a value that looks like the flag is not the flag
    app.toApp(fresh, oe)
    assert app.sent[11] == ("D", "c43=Y")
    def on_md(msg_type: str, seq: int) -> fix.Message:  # as QuickFIX fills the header from the MD session
        message = _message(msg_type, seq)
        message.getHeader().setField(49, "ME_MD")
        message.getHeader().setField(56, "TRUEX_UAT_MD")
        return message

    # An order on MD is refused by TrueXConnector._send before QuickFIX; one that got past it is logged here,
    # not refused: DoNotSend raised from Python aborts the process (tests/integration/truex/test_misrouted_send.py).
    app.toApp(on_md("D", 13), md)
    assert 13 not in app.sent
    app.toApp(on_md("V", 12), md)  # market data request on MD: fine, and not noted as an OE send
    assert 12 not in app.sent


async def test_handoff_names_the_session_by_the_messages_comp_ids() -> None:
    connector, _ = _app()
    seen: list[str] = []
    all_three = asyncio.Event()

    def on_message(kind: str, raw: object, ts: int) -> None:
        seen.append(kind)
        if len(seen) == 3:
            all_three.set()

    connector._loop = asyncio.get_running_loop()
    connector._on_message = on_message  # type: ignore[method-assign]
    oe_text = _message("8").toString().replace("49=ME_OE", "49=TRUEX_UAT_OE").replace("56=TRUEX_UAT_OE", "56=ME_OE")
    md_text = oe_text.replace("49=TRUEX_UAT_OE", "49=TRUEX_UAT_MD").replace("56=ME_OE", "56=ME_MD")
    unknown = fix.SessionID("FIXT.1.1", "ME_OE", "TRUEX_UAT_OE")  # the session object is only the fallback
    connector.received(unknown, md_text, 1)
    connector.received(unknown, oe_text, 2)
    connector.received(unknown, "garbage", 3)  # no comp ids: asks the session object
    await asyncio.wait_for(all_three.wait(), 10)  # delivered on the loop, in arrival order
    assert seen == [MD, OE, OE]


def test_outbox_reuses_a_known_session_text_only_for_that_object() -> None:
    sent: list[tuple[str, str]] = []
    outbox = Outbox("t", lambda sid, msg: sent.append((sid.toString(), msg.getHeader().getField(35))) or True)
    known = fix.SessionID("FIXT.1.1", "A", "B")
    other = fix.SessionID("FIXT.1.1", "A", "C")
    outbox.known_session(known, known.toString())
    outbox.put(known, _message("8"))
    outbox.put(other, _message("9"))
    outbox.session_ended(fix.SessionID("FIXT.1.1", "A", "C"))  # a new object naming the same session
    outbox.flush()
    assert sent == [("FIXT.1.1:A->B", "8")]
    assert outbox.dropped_stale == 1
