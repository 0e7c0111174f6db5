"""FIX messages from pre-rendered text: one QuickFIX parse instead of a dozen ``setField`` calls.

WHY: on the order path every Python -> QuickFIX call costs about a
microsecond and a NewOrderSingle built field by field (``builders.new_order_single``)
takes ~50 µs, the largest single cost of a round trip on loopback (bench/bench_fix.py).
Rendering the same fields as FIX text in Python and letting QuickFIX parse
it with the session's own data dictionaries takes a few µs.

The text is laid out exactly as QuickFIX serialises the field-by-field
message (header 8, 9, 35; body fields in ascending tag order, a repeating
group's entries right after its count tag), so the venue receives the same
bytes: tests/unit/truex/test_templates.py compares both for many random
orders. BodyLength(9) and CheckSum(10) are placeholders that QuickFIX
recomputes when it serialises the message for sending.

A value that cannot be carried in FIX text (empty, or holding the SOH
delimiter) makes the renderer return ``None`` and the caller fall back to the
field-by-field builder, so such input is as (in)valid as it was before.

Thread-safety: a ``DataDictionary`` fills some caches lazily, so each owner
(one connector, one simulated exchange) loads its own ``Templates`` and uses
it from one thread at a time (the connector's loop; the exchange under its lock).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

import quickfix as fix

from connectors.truex import builders, fix_tags, fix_values
from connectors.truex.dictionary_subset import load_subset
from mmkit.model import OrderRequest, OrderType

SOH = fix_tags.SOH
_HEAD = f"8={fix_tags.BEGIN_STRING}{SOH}9=0{SOH}35="
_TAIL = f"10=000{SOH}"
_SIDE = fix_tags._SIDE_CODES
_TIF = fix_tags._TIF_CODES


def _clean(value: str) -> bool:
    return bool(value) and SOH not in value


def render(msg_type: str, fields: list[tuple[int, str]], groups: Sequence[tuple[int, str]] = ()) -> str | None:
    """FIX text for a message of flat ``fields`` plus pre-rendered ``groups`` ((count tag, text)).

    Body fields are sorted by tag (QuickFIX's body order); a group's text goes
    at its count tag. ``None`` (use ``field_by_field``) if a value is empty or
    contains SOH, or a tag repeats (``setField`` would keep only the last).
    """
    if len(dict(fields)) != len(fields):
        return None
    if groups:
        items = [(tag, f"{tag}={value}{SOH}") for tag, value in fields]
        items.extend(groups)
        items.sort()
        body = "".join([text for _, text in items])
        flat_fields = len(fields) + sum(text.count(SOH) for _, text in groups)
    else:
        body = "".join([f"{tag}={value}{SOH}" for tag, value in sorted(fields)])
        flat_fields = len(fields)
    if body.count(SOH) != flat_fields or f"={SOH}" in body:
        return None  # "=" + SOH also catches a value ending in "=": harmless, it only takes the slow path
    return _HEAD + msg_type + SOH + body + _TAIL


def new_order_single_text(order: OrderRequest, party_id: str, symbol: str, ts_ns: int) -> str | None:
    """The text of ``builders.new_order_single(order, party_id, symbol, ts_ns)`` (None: use the builder).

    Written out in QuickFIX's order (11, 18, 38, 40, 44, 54, 55, 59, 60, then
    the Parties group at 453) rather than sorted: this is the hot path.
    """
    if not (_clean(order.client_id) and _clean(symbol) and _clean(party_id)):
        return None
    if order.order_type is OrderType.LIMIT:
        if order.price is None:
            return None
        typed = f"40={fix_tags.ORD_TYPE_LIMIT}{SOH}44={fix_values.fmt_decimal(order.price)}{SOH}"
    else:
        typed = f"40={fix_tags.ORD_TYPE_MARKET}{SOH}"
    exec_inst = f"18={fix_tags.EXEC_INST_POST_ONLY}{SOH}" if order.post_only else ""
    return (
        f"{_HEAD}D{SOH}11={order.client_id}{SOH}{exec_inst}38={fix_values.fmt_decimal(order.qty)}{SOH}{typed}"
        f"54={_SIDE[order.side]}{SOH}55={symbol}{SOH}59={_TIF[order.tif]}{SOH}"
        f"60={fix_values.format_utc_timestamp(ts_ns)}{SOH}453=1{SOH}448={party_id}{SOH}452={fix_tags.PARTY_ROLE_CLIENT_ID}{SOH}{_TAIL}"
    )


def execution_report_new_text(
    order_id: str, client_id: str, exec_id: str, symbol: str, side_code: str, qty: str, price: str, transact_time: str
) -> str | None:
    """The text of a plain ExecutionReport New (150=0, 39=0, nothing filled), as ``render`` would lay it out.

    WHY a renderer of its own: it is the simulated exchange's answer to every
    resting order (connectors/truex/sim), and building the generic field
    list, sorting it and checking it for repeats cost as much as the parse.
    Fields in ascending tag order: 11, 14, 17, 37, 38, 39, 44, 54, 55, 60,
    150, 151 (what ``ReportBuilder._exec_report`` sends for such an order;
    tests/unit/truex/test_templates.py compares the two). ``None``: a value
    cannot be carried in FIX text, use the generic path.
    """
    if not (_clean(order_id) and _clean(client_id) and _clean(exec_id) and _clean(symbol) and _clean(qty)
            and _clean(price)):
        return None
    return (
        f"{_HEAD}8{SOH}11={client_id}{SOH}14=0{SOH}17={exec_id}{SOH}37={order_id}{SOH}38={qty}{SOH}39=0{SOH}"
        f"44={price}{SOH}54={side_code}{SOH}55={symbol}{SOH}60={transact_time}{SOH}150=0{SOH}151={qty}{SOH}{_TAIL}"
    )


def field_by_field(msg_type: str, fields: list[tuple[int, str]]) -> fix.Message:
    """The reference builder for flat messages: one ``setField`` per field (what ``render`` must equal)."""
    message = fix.Message()
    header = message.getHeader()
    header.setField(fix.BeginString(fix_tags.BEGIN_STRING))
    header.setField(fix.MsgType(msg_type))
    for tag, value in fields:
        message.setField(tag, value)
    return message


class Templates:
    """Parses rendered text into ``fix.Message`` with one owner's copy of the session dictionaries.

    ``msg_types`` are the message types this owner renders: its application
    dictionary holds only those (:mod:`connectors.truex.dictionary_subset`,
    ~1 MB instead of ~6 MB of resident memory). Rendering any other type is a
    :class:`ValueError`: parsed with a dictionary that does not define it, a
    repeating group would be flattened into the body.
    """

    def __init__(self, dictionary_dir: str | Path, msg_types: Collection[str]) -> None:
        directory = Path(dictionary_dir)
        self.msg_types = frozenset(msg_types)
        self._transport = fix.DataDictionary(str(directory / "FIXT11.xml"))
        self._app = load_subset(directory / "TRUEX-FIX50SP2.xml", self.msg_types)

    def _check(self, msg_type: str) -> None:
        if msg_type not in self.msg_types:
            raise ValueError(f"these templates render {sorted(self.msg_types)}, not 35={msg_type}")

    def message(self, text: str) -> fix.Message:
        """One QuickFIX parse; not validated here (the receiving session validates, as for any message)."""
        start = len(_HEAD)
        self._check(text[start : text.find(SOH, start)])
        return fix.Message(text, self._transport, self._app, False)

    def build(self, msg_type: str, fields: list[tuple[int, str]]) -> fix.Message:
        """A message of flat ``fields``: rendered and parsed, or field by field if a value cannot be rendered."""
        self._check(msg_type)
        text = render(msg_type, fields)
        if text is None:
            return field_by_field(msg_type, fields)
        return self.message(text)

    def new_order_single(self, order: OrderRequest, party_id: str, symbol: str, ts_ns: int) -> fix.Message:
        """35=D, byte for byte what ``builders.new_order_single`` builds."""
        self._check("D")
        text = new_order_single_text(order, party_id, symbol, ts_ns)
        if text is None:
            return builders.new_order_single(order, party_id, symbol, ts_ns)
        return self.message(text)
