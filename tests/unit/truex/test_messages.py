"""Builders and parsers of TrueX FIX messages, the reject vocabulary and the TrueX dictionary."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
import quickfix as fix

from connectors.truex import builders, fix_values, parsers, raw_message, rejects
from connectors.truex.dictionary import APP_DICTIONARY, derive, stock_dictionary_dir
from mmkit.model import (
    BookDelta,
    BookSnapshot,
    Fill,
    Liquidity,
    OrderAccepted,
    OrderCanceled,
    OrderNotFound,
    OrderRejected,
    OrderReplaced,
    OrderRequest,
    OrderStatusReport,
    RejectReason,
    Side,
    Trade,
    VenueOrderStatus,
)

SOH = "\x01"


def raw(*pairs: tuple[int, str]) -> raw_message.RawMessage:
    return raw_message.RawMessage(SOH.join(f"{t}={v}" for t, v in pairs) + SOH)


#: A TrueX-shaped snapshot: 167=CSPOT, 1023 per level, full timestamp in 273, no 779.
REAL_W = (
    SOH.join(
        [
            "8=FIXT.1.1",
            "9=000",
            "35=W",
            "34=7",
            "49=TRUEX_UAT_MD",
            "52=20240809-00:00:01.250",
            "56=ME_MD",
            "1181=41",
            "262=v1",
            "55=BTC-PYUSD",
            "167=CSPOT",
            "268=3",
            "269=0",
            "270=61000.1",
            "271=0.5",
            "273=20240809-00:00:01.249123",
            "1023=1",
            "269=0",
            "270=60999.5",
            "271=1.25",
            "273=20240809-00:00:01.249123",
            "1023=2",
            "269=1",
            "270=61001",
            "271=0.0002",
            "273=20240809-00:00:01.249123",
            "1023=1",
        ]
    )
    + SOH
)
REAL_X = (
    SOH.join(
        [
            "8=FIXT.1.1",
            "9=000",
            "35=X",
            "34=8",
            "49=TRUEX_UAT_MD",
            "52=20240809-00:00:01.300",
            "56=ME_MD",
            "1181=42",
            "262=v1",
            "268=3",
            "279=2",
            "269=0",
            "55=BTC-PYUSD",
            "270=61000.1",
            "271=0",
            "273=20240809-00:00:01.299",
            "279=0",
            "269=1",
            "55=BTC-PYUSD",
            "270=61000.5",
            "271=0.3",
            "273=20240809-00:00:01.299",
            "279=0",
            "269=2",
            "278=T99",
            "55=BTC-PYUSD",
            "270=61000.1",
            "271=0.5",
            "273=20240809-00:00:01.299",
        ]
    )
    + SOH
)


def _with_length_and_checksum(text: str) -> str:
    body = text.split(SOH, 2)[2]
    head = f"8=FIXT.1.1{SOH}9={len(body)}{SOH}"
    total = sum((head + body).encode()) % 256
    return f"{head}{body}10={total:03d}{SOH}"


def _validate(text: str, app_dictionary: str) -> None:
    """Full QuickFIX validation. A failure raises a C++ exception that aborts the process
    (QuickFIX's static validate is not exception-safe in Python), so failing cases run in a subprocess."""
    transport = fix.DataDictionary(str(APP_DICTIONARY.parent / "FIXT11.xml"))
    app = fix.DataDictionary(app_dictionary)
    message = fix.Message(_with_length_and_checksum(text), transport, app, True)
    fix.DataDictionary.validate(message, transport, app)


def test_truex_dictionary_accepts_real_shaped_w_and_x() -> None:
    _validate(REAL_W, str(APP_DICTIONARY))
    _validate(REAL_X, str(APP_DICTIONARY))


def test_stock_dictionary_rejects_real_shaped_w() -> None:
    code = (
        "import sys; from tests.unit.truex.test_messages import _validate, REAL_W; "
        f"_validate(REAL_W, {str(stock_dictionary_dir() / 'FIX50SP2.xml')!r})"
    )
    root = Path(__file__).resolve().parents[3]
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": str(root)},
        check=False,
    )
    assert result.returncode != 0
    assert "IncorrectTagValue" in result.stderr or "IncorrectDataFormat" in result.stderr


def test_shipped_dictionary_is_the_derived_one() -> None:
    stock = (stock_dictionary_dir() / "FIX50SP2.xml").read_text(encoding="utf-8")
    assert APP_DICTIONARY.read_text(encoding="utf-8") == derive(stock)


def test_parse_real_shaped_snapshot() -> None:
    snap = parsers.parse_snapshot(raw_message.RawMessage(REAL_W), "truex", 5)
    assert isinstance(snap, BookSnapshot)
    assert snap.seq == 41 and snap.symbol == "BTC-PYUSD"
    assert snap.bids == ((Decimal("61000.1"), Decimal("0.5")), (Decimal("60999.5"), Decimal("1.25")))
    assert snap.asks == ((Decimal("61001"), Decimal("0.0002")),)
    assert snap.ts_event == fix_values.parse_utc_timestamp("20240809-00:00:01.249123")


def test_parse_real_shaped_incremental() -> None:
    events = parsers.parse_incremental(raw_message.RawMessage(REAL_X), "truex", "BTC-PYUSD", 9)
    delta, trade = events
    assert isinstance(delta, BookDelta) and isinstance(trade, Trade)
    assert (delta.first_seq, delta.seq) == (42, 42)
    assert delta.bids == ((Decimal("61000.1"), Decimal(0)),)
    assert delta.asks == ((Decimal("61000.5"), Decimal("0.3")),)
    assert (trade.trade_id, trade.price, trade.qty) == ("T99", Decimal("61000.1"), Decimal("0.5"))


def test_md_sequence_falls_back_to_msg_seq_num() -> None:
    assert parsers.md_sequence(raw((35, "X"), (34, "17"))) == 17


def test_new_order_single_fields_and_party_order() -> None:
    order = OrderRequest("abc", "truex", "BTC-PYUSD", Side.BUY, Decimal("0.00010"), Decimal("61000.50"), post_only=True)
    text = builders.new_order_single(order, "CLIENT9", "BTC-PYUSD", 0).toString()
    fields = text.split(SOH)
    assert "35=D" in fields and "11=abc" in fields and "55=BTC-PYUSD" in fields
    assert "18=6" in fields and "59=1" in fields and "40=2" in fields
    assert "44=61000.5" in fields and "38=0.0001" in fields and "54=1" in fields
    start = fields.index("453=1")
    assert fields[start : start + 3] == ["453=1", "448=CLIENT9", "452=3"]


def test_cancel_is_a_real_35_f_and_replace_a_35_g() -> None:
    cancel = builders.order_cancel_request("c1", "abc", side=Side.SELL, symbol="BTC-PYUSD", party_id="P", ts_ns=0)
    fields = cancel.toString().split(SOH)
    assert "35=F" in fields and "41=abc" in fields and "11=c1" in fields and "54=2" in fields
    assert not any(f.startswith("38=") for f in fields)
    replace = builders.cancel_replace_request(
        "n1",
        "abc",
        side=Side.SELL,
        symbol="BTC-PYUSD",
        price=Decimal("1E+5"),
        qty=Decimal("1E-5"),
        party_id="P",
        ts_ns=0,
    )
    fields = replace.toString().split(SOH)
    assert "35=G" in fields and "44=100000" in fields and "38=0.00001" in fields


def test_market_data_request_is_full_depth_snapshot_plus_updates() -> None:
    fields = builders.market_data_request("v1", "BTC-PYUSD").toString().split(SOH)
    for expected in ("35=V", "263=1", "264=0", "265=1", "269=0", "269=1", "146=1", "55=BTC-PYUSD"):
        assert expected in fields


ER_BASE = ((35, "8"), (37, "O1"), (11, "abc"), (54, "2"), (55, "BTC-PYUSD"), (60, "20240809-00:00:01.000"))


def test_execution_reports_to_events() -> None:
    [acc] = parsers.parse_execution_report(raw(*ER_BASE, (150, "0"), (39, "0")), "truex", 1)  # type: ignore[misc]
    assert isinstance(acc, OrderAccepted) and acc.venue_order_id == "O1"
    [fill] = parsers.parse_execution_report(  # type: ignore[misc]
        raw(
            *ER_BASE,
            (150, "F"),
            (39, "1"),
            (17, "E1"),
            (31, "61000"),
            (32, "0.1"),
            (851, "2"),
            (12, "6.1"),
            (479, "PYUSD"),
        ),
        "truex",
        1,
    )
    assert isinstance(fill, Fill)
    assert (fill.trade_id, fill.qty, fill.fee, fill.liquidity, fill.side) == (
        "E1",
        Decimal("0.1"),
        Decimal("6.1"),
        Liquidity.TAKER,
        Side.SELL,
    )
    [canceled] = parsers.parse_execution_report(  # type: ignore[misc]
        raw(*ER_BASE[:2], (11, "c9"), (41, "abc"), *ER_BASE[3:], (150, "4"), (39, "4"), (151, "0")), "truex", 1
    )
    assert isinstance(canceled, OrderCanceled) and canceled.client_id == "abc"
    [replaced] = parsers.parse_execution_report(  # type: ignore[misc]
        raw(*ER_BASE[:2], (11, "n1"), (41, "abc"), *ER_BASE[3:], (150, "5"), (39, "0"), (44, "61000.5"), (38, "0.2")),
        "truex",
        1,
    )
    assert isinstance(replaced, OrderReplaced) and (replaced.client_id, replaced.orig_client_id) == ("n1", "abc")
    [rejected] = parsers.parse_execution_report(  # type: ignore[misc]
        raw(*ER_BASE, (150, "8"), (39, "8"), (103, "99"), (58, "Rate limit exceeded")), "truex", 1
    )
    assert isinstance(rejected, OrderRejected) and rejected.reason is RejectReason.RATE_LIMIT


def test_status_answers() -> None:
    answer = parsers.parse_execution_report(
        raw(*ER_BASE, (150, "I"), (39, "1"), (38, "0.3"), (14, "0.1"), (151, "0.2"), (44, "61000"), (790, "s1")),
        "truex",
        1,
    )
    assert isinstance(answer, parsers.StatusAnswer) and answer.status_req_id == "s1"
    assert isinstance(answer.event, OrderStatusReport)
    assert answer.event.status is VenueOrderStatus.PARTIALLY_FILLED and answer.event.filled_qty == Decimal("0.1")
    missing = parsers.parse_execution_report(raw(*ER_BASE, (150, "I"), (39, "8"), (103, "5")), "truex", 1)
    assert isinstance(missing, parsers.StatusAnswer) and isinstance(missing.event, OrderNotFound)
    empty = parsers.parse_execution_report(
        raw(*ER_BASE, (150, "I"), (39, "8"), (584, "m1"), (911, "0"), (912, "Y")), "truex", 1
    )
    assert isinstance(empty, parsers.StatusAnswer) and empty.event is None and empty.last_report


@pytest.mark.parametrize(
    ("reject", "reason"),
    [
        (rejects.VenueReject.RATE_LIMIT, RejectReason.RATE_LIMIT),
        (rejects.VenueReject.TICK, RejectReason.INVALID_PRICE),
        (rejects.VenueReject.LOT, RejectReason.INVALID_QTY),
        (rejects.VenueReject.MIN_NOTIONAL, RejectReason.MIN_NOTIONAL),
        (rejects.VenueReject.PRICE_BAND, RejectReason.PRICE_BAND),
        (rejects.VenueReject.POST_ONLY, RejectReason.POST_ONLY_WOULD_CROSS),
        (rejects.VenueReject.DUPLICATE_ORDER, RejectReason.DUPLICATE_ORDER),
        (rejects.VenueReject.DUPLICATE_CLORDID, RejectReason.DUPLICATE_CLIENT_ID),
        (rejects.VenueReject.CLORDID_LENGTH, RejectReason.INVALID_CLIENT_ID),
        (rejects.VenueReject.ORIG_SENDING_TIME, RejectReason.INVALID_MESSAGE),
        (rejects.VenueReject.UNKNOWN_ORDER, RejectReason.UNKNOWN_ORDER),
    ],
)
def test_every_venue_reject_maps_to_its_reason(reject: rejects.VenueReject, reason: RejectReason) -> None:
    assert rejects.map_reject(reject.code, reject.text) is reason


def test_unknown_reject_text_falls_back_to_code_then_other() -> None:
    assert rejects.map_reject("16", "whatever") is RejectReason.PRICE_BAND
    assert rejects.map_reject("0", "broker option") is RejectReason.OTHER


def test_timestamps_and_decimals() -> None:
    ns = 1_723_161_601_249_123_000
    assert fix_values.format_utc_timestamp(ns) == "20240809-00:00:01.249123"
    assert fix_values.parse_utc_timestamp("20240809-00:00:01.249123") == ns
    assert fix_values.parse_utc_timestamp("20240809-00:00:01") == ns - 249_123_000
    assert fix_values.fmt_decimal(Decimal("1E-6")) == "0.000001"
    assert fix_values.fmt_decimal(Decimal("100.500")) == "100.5"
    with pytest.raises(ValueError, match="UTCTimestamp"):
        fix_values.parse_utc_timestamp("yesterday")


def test_redact_hides_key_and_signature() -> None:
    text = raw_message.redact(f"35=A{SOH}553=my-key{SOH}554=c2lnbmF0dXJl{SOH}")
    assert "my-key" not in text and "c2lnbmF0dXJl" not in text and "553=***" in text


def test_raw_message_rejects_garbage() -> None:
    with pytest.raises(raw_message.ParseError):
        raw_message.RawMessage("35=8\x01garbage\x01")
