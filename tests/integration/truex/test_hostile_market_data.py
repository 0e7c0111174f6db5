"""Market data a hostile TrueX sends (crafted 35=W / 35=X on the MD session), against the real client on loopback.

Each message is one the book must not take as it stands: a negative size,
an MDUpdateAction the connector does not apply (3 = delete thru), an
MDEntryType or MDUpdateAction outside the dictionary, an MDReqID we never
sent, a price of 20 decimals or a size finer than the instrument's grid (the
book raises OffGridError on those, out of the engine's event router). Each
is counted and reported (``MalformedMessage``), nothing of it reaches the
book, and a fresh snapshot is asked for at once (the part of the book it
touched is unknown). Before: the negative size and the delete-thru
reached the book tracker as levels (a negative size raises inside the book,
a delete-thru was set as a level), the foreign MDReqID's book was applied,
and the refused ones vanished without a word.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from connectors.truex import fix_tags
from connectors.truex.sim.tamper import send_crafted
from mmkit.model import BookDelta, BookSnapshot, MalformedMessage
from tests.integration.truex.test_truex_loopback import SYMBOL, Pair

pytestmark = pytest.mark.integration

_W, _X = "W", "X"


def _snapshot_fields(md_req_id: str | None = None) -> list[tuple[int, str]]:
    fields = [(fix_tags.T_APPL_SEQ_NUM, "1"), (fix_tags.T_SYMBOL, SYMBOL)]
    return [(fix_tags.T_MD_REQ_ID, md_req_id), *fields] if md_req_id else fields


def _level(kind: str, price: str, size: str) -> list[tuple[int, str]]:
    return [(fix_tags.T_MD_ENTRY_TYPE, kind), (fix_tags.T_MD_ENTRY_PX, price), (fix_tags.T_MD_ENTRY_SIZE, size)]


def _change(action: str, kind: str, price: str, size: str) -> list[tuple[int, str]]:
    return [(fix_tags.T_MD_UPDATE_ACTION, action), (fix_tags.T_MD_ENTRY_TYPE, kind), (fix_tags.T_SYMBOL, SYMBOL),
            (fix_tags.T_MD_ENTRY_PX, price), (fix_tags.T_MD_ENTRY_SIZE, size)]  # fmt: skip


CASES = {
    "negative_snapshot_size": (_W, _snapshot_fields(), [_level("0", "59990", "-1"), _level("1", "60010", "1")]),
    "negative_delta_size": (_X, [(fix_tags.T_APPL_SEQ_NUM, "2")], [_change("1", "0", "59990", "-0.5")]),
    "delete_thru": (_X, [(fix_tags.T_APPL_SEQ_NUM, "2")], [_change("3", "0", "59990", "1")]),
    "entry_type_not_in_spec": (_X, [(fix_tags.T_APPL_SEQ_NUM, "2")], [_change("0", "q", "59990", "1")]),
    "update_action_not_in_spec": (_X, [(fix_tags.T_APPL_SEQ_NUM, "2")], [_change("7", "0", "59990", "1")]),
    "price_of_20_decimals": (_W, _snapshot_fields(), [_level("0", "59990.00000000000000000001", "1"),
                                                      _level("1", "60010", "1")]),
    "size_off_the_lot": (_X, [(fix_tags.T_APPL_SEQ_NUM, "2")], [_change("0", "0", "59990", "0.0000000000001")]),
    "foreign_md_req_id": (_W, _snapshot_fields("not-ours-7"), [_level("0", "59990", "7"), _level("1", "60010", "7")]),
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_hostile_market_data_is_counted_kept_from_the_book_and_resynced(pair: Pair, case: str) -> None:
    exchange, connector, collector = pair
    exchange.requote_maker([(Decimal("59995"), Decimal("0.5"))], [(Decimal("60005"), Decimal("0.5"))])
    connector.subscribe_book(SYMBOL)
    await collector.wait_for(lambda e: isinstance(e, BookSnapshot))
    before = len(collector.events)
    msg_type, fields, entries = CASES[case]
    send_crafted(exchange, connector.config.md.sender_comp_id, msg_type, fields, entries)

    bad = await collector.wait_for(lambda e: isinstance(e, MalformedMessage))
    assert f"35={msg_type}" in bad.error or "MD" in bad.error
    fresh = await collector.wait_for(lambda e: isinstance(e, BookSnapshot) and collector.events.index(e) > before)
    assert fresh.bids == ((Decimal("59995"), Decimal("0.5")),) and fresh.asks == ((Decimal("60005"), Decimal("0.5")),)
    assert connector.malformed == 1
    for event in collector.events[before:]:
        if isinstance(event, BookSnapshot | BookDelta):
            levels = [*event.bids, *event.asks]
            prices = {price for price, _ in levels}
            assert prices <= {Decimal(59995), Decimal(60005)}, f"a crafted level reached the book: {event}"
