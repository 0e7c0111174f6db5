"""Template-built FIX messages are byte-for-byte the field-by-field builders' messages.

connectors/truex/templates.py renders a message as text and lets QuickFIX
parse it (a few µs instead of ~50); these tests fail if the text drifts from
what the builders produce, for many random orders and adversarial values.
"""

from __future__ import annotations

import random
import time
from decimal import Decimal

import pytest
import quickfix as fix

from connectors.truex import builders, fix_tags, fix_values
from connectors.truex import templates as t
from connectors.truex.dictionary import CONF_FIX_DIR
from mmkit.model import OrderRequest, OrderType, Side, TimeInForce

_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/=| #é€"


@pytest.fixture(scope="module")
def templates() -> t.Templates:
    return t.Templates(CONF_FIX_DIR, ("D", "8", "9"))


def _text(rng: random.Random, low: int = 1, high: int = 36) -> str:
    return "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(low, high)))


def _decimal(rng: random.Random) -> Decimal:
    digits = rng.randint(1, 10**9)
    exponent = rng.randint(-12, 4)
    value = Decimal(digits).scaleb(exponent)
    return value if rng.random() < 0.8 else Decimal(f"{value}000")  # trailing zeros too


def _random_order(rng: random.Random) -> OrderRequest:
    order_type = OrderType.LIMIT if rng.random() < 0.85 else OrderType.MARKET
    return OrderRequest(
        client_id=_text(rng, 1, 18),
        venue="truex",
        symbol="BTC-PYUSD",
        side=rng.choice(list(Side)),
        qty=_decimal(rng),
        price=_decimal(rng) if order_type is OrderType.LIMIT or rng.random() < 0.5 else None,
        order_type=order_type,
        tif=rng.choice(list(TimeInForce)),
        post_only=rng.random() < 0.5,
    )


def _as_sent(message: fix.Message) -> str:
    """What the session adds before it serialises (comp ids, sequence number, sending time)."""
    header = message.getHeader()
    header.setField(49, "MMKOE")
    header.setField(56, "TRUEX_UAT_OE")
    header.setField(34, "12345")
    header.setField(52, "20261206-20:00:00.123456")
    return str(message.toString())


def test_new_order_single_matches_the_builder_for_random_orders(templates: t.Templates) -> None:
    rng = random.Random(20261206)
    for _ in range(2000):
        order = _random_order(rng)
        party = _text(rng, 1, 12)
        symbol = _text(rng, 3, 12)
        ts_ns = rng.randint(0, 4_000_000_000) * 1_000_000_000 + rng.randint(0, 999_999_999)
        expected = builders.new_order_single(order, party, symbol, ts_ns)
        built = templates.new_order_single(order, party, symbol, ts_ns)
        assert built.toString() == expected.toString(), order
        assert _as_sent(built) == _as_sent(expected), order


def test_the_template_path_is_taken_for_ordinary_orders() -> None:
    """Guards the test above: ordinary orders must render (not silently fall back to the builder)."""
    order = OrderRequest("c1", "truex", "BTC-PYUSD", Side.SELL, Decimal("0.5"), Decimal("60000.1"), post_only=True)
    text = t.new_order_single_text(order, "PARTY1", "BTC-PYUSD", 1_765_000_000_123_456_789)
    assert text is not None
    assert "|".join(text.split(t.SOH)) == (
        "8=FIXT.1.1|9=0|35=D|11=c1|18=6|38=0.5|40=2|44=60000.1|54=2|55=BTC-PYUSD|59=1|"
        "60=20251206-05:46:40.123456|453=1|448=PARTY1|452=3|10=000|"
    )


@pytest.mark.parametrize(
    ("field", "bad"),  # an empty client id never gets here: OrderRequest refuses it
    [("client_id", "a\x01b"), ("party", ""), ("party", "a\x01b"), ("symbol", ""), ("symbol", "a\x01b")],
)
def test_values_fix_text_cannot_carry_fall_back_to_the_builder(templates: t.Templates, field: str, bad: str) -> None:
    client_id = bad if field == "client_id" else "c1"
    order = OrderRequest(client_id, "truex", "BTC-PYUSD", Side.BUY, Decimal(1), Decimal(2))
    party = bad if field == "party" else "P"
    symbol = bad if field == "symbol" else "S"
    assert t.new_order_single_text(order, party, symbol, 0) is None
    assert templates.new_order_single(order, party, symbol, 0).toString() == (
        builders.new_order_single(order, party, symbol, 0).toString()
    )


def test_render_places_a_group_at_its_count_tag_among_sorted_fields() -> None:
    text = t.render("X", [(500, "b"), (11, "a")], [(453, "453=1\x01448=p\x01")])
    assert text == "8=FIXT.1.1\x019=0\x0135=X\x0111=a\x01453=1\x01448=p\x01500=b\x0110=000\x01"
    assert t.render("X", [(11, "")]) is None


#: The tags the simulator's ExecutionReports and cancel rejects carry (connectors/truex/sim/reports.py).
_REPORT_TAGS = [
    fix_tags.T_ORDER_ID, fix_tags.T_CLORDID, fix_tags.T_EXEC_ID, fix_tags.T_EXEC_TYPE, fix_tags.T_ORD_STATUS,
    fix_tags.T_SYMBOL, fix_tags.T_SIDE, fix_tags.T_QTY, fix_tags.T_PRICE, fix_tags.T_LEAVES_QTY, fix_tags.T_CUM_QTY,
    fix_tags.T_TRANSACT_TIME, fix_tags.T_AVG_PX, fix_tags.T_ORIG_CLORDID, fix_tags.T_TEXT, fix_tags.T_ORD_REJ_REASON,
    fix_tags.T_LAST_PX, fix_tags.T_LAST_QTY, fix_tags.T_LIQUIDITY, fix_tags.T_COMMISSION, fix_tags.T_COMM_CCY,
    fix_tags.T_CXL_REJ_RESPONSE_TO, fix_tags.T_CXL_REJ_REASON,
]  # fmt: skip


@pytest.mark.parametrize("msg_type", ["8", "9"])
def test_flat_reports_match_field_by_field_for_random_values(templates: t.Templates, msg_type: str) -> None:
    rng = random.Random(7)
    rendered = 0
    for _ in range(1500):
        tags = rng.sample(_REPORT_TAGS, rng.randint(1, len(_REPORT_TAGS)))  # any subset, in any order
        values = [(tag, str(_decimal(rng)) if rng.random() < 0.4 else _text(rng, 1, 30)) for tag in tags]
        if rng.random() < 0.05:
            values.append((fix_tags.T_TEXT if fix_tags.T_TEXT not in tags else 9999, rng.choice(["", "x\x01y"])))
        rendered += t.render(msg_type, values) is not None
        built = templates.build(msg_type, values)
        assert built.toString() == t.field_by_field(msg_type, values).toString(), values
        assert _as_sent(built) == _as_sent(t.field_by_field(msg_type, values)), values
    assert rendered > 1300  # most went through the template path, not the fallback


def test_utc_timestamp_cache_follows_the_second() -> None:
    """format_utc_timestamp caches the last second's text: it must change with the second, both ways."""

    rng = random.Random(3)
    base = 1_765_000_000
    stamps = [base * 10**9 + k for k in (0, 999_999_999, 1_000_000_000, 1, 86_400 * 10**9 + 5)]
    stamps += [rng.randint(0, 4_000_000_000) * 10**9 + rng.randint(0, 10**9 - 1) for _ in range(500)]
    for ts in stamps:
        seconds, rem = divmod(ts, 10**9)
        expected = time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(seconds)) + f".{rem // 1000:06d}"
        assert fix_values.format_utc_timestamp(ts) == expected


def test_utc_timestamp_parse_cache_follows_the_second() -> None:
    """parse_utc_timestamp caches the last second it parsed: alternating seconds must still parse right."""
    import calendar

    rng = random.Random(5)
    for _ in range(500):
        seconds = rng.randint(0, 4_000_000_000)
        micros = rng.randint(0, 999_999)
        for second in (seconds, seconds + 1, seconds):  # in, out of and back into the cached second
            text = fix_values.format_utc_timestamp(second * 10**9 + micros * 1000)
            expected = calendar.timegm(time.strptime(text[:17], "%Y%m%d-%H:%M:%S")) * 10**9 + micros * 1000
            assert fix_values.parse_utc_timestamp(text) == expected


def test_a_message_type_outside_the_owners_subset_is_refused() -> None:
    """The owner's dictionary holds only its message types: another one would parse with its groups flattened."""
    client = t.Templates(CONF_FIX_DIR, ("D",))
    with pytest.raises(ValueError, match="not 35=8"):
        client.build("8", [(11, "a")])
    with pytest.raises(ValueError, match="not 35=AE"):
        client.message(t.render("AE", [(571, "r")]) or "")
    order = OrderRequest("c1", "truex", "BTC-PYUSD", Side.BUY, Decimal(1), Decimal(100))
    assert client.new_order_single(order, "p", "BTC-PYUSD", 0).getHeader().getField(35) == "D"
    with pytest.raises(ValueError, match="not 35=D"):
        t.Templates(CONF_FIX_DIR, ("8", "9")).new_order_single(order, "p", "BTC-PYUSD", 0)
