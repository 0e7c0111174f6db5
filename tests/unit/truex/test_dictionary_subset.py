"""A dictionary cut down to some message types parses those messages exactly as the whole one does.

connectors/truex/dictionary_subset.py gives the order templates a ~1 MB dictionary
instead of the ~6 MB one. These tests fail if the cut loses a component, group or
field that a kept message reaches (the parse would then differ: a group's entries
flattened into the body), or if it hands QuickFIX a dictionary it aborts on.
"""

from __future__ import annotations

import random
import xml.etree.ElementTree as ET

import pytest
import quickfix as fix

from connectors.truex.dictionary import APP_DICTIONARY, TRANSPORT_DICTIONARY
from connectors.truex.dictionary_subset import load_subset, subset_xml

SOH = "\x01"


@pytest.fixture(scope="module")
def transport() -> fix.DataDictionary:
    return fix.DataDictionary(str(TRANSPORT_DICTIONARY))


@pytest.fixture(scope="module")
def whole() -> fix.DataDictionary:
    return fix.DataDictionary(str(APP_DICTIONARY))


def _message(msg_type: str, body: list[tuple[int, str]]) -> str:
    text = "".join(f"{tag}={value}{SOH}" for tag, value in body)
    return f"8=FIXT.1.1{SOH}9=0{SOH}35={msg_type}{SOH}{text}10=000{SOH}"


def _parsed(text: str, transport: fix.DataDictionary, app: fix.DataDictionary) -> fix.Message:
    return fix.Message(text, transport, app, False)


def _parties(rng: random.Random) -> list[tuple[int, str]]:
    count = rng.randint(1, 3)
    entries: list[tuple[int, str]] = [(453, str(count))]
    for index in range(count):
        entries += [(448, f"party{index}"), (447, "D"), (452, str(rng.choice([1, 3, 24])))]
    return entries


def test_kept_messages_parse_as_with_the_whole_dictionary(transport: fix.DataDictionary,
                                                            whole: fix.DataDictionary) -> None:
    subset = load_subset(APP_DICTIONARY, ("D", "8"))
    rng = random.Random(11)
    grouped = 0
    for _ in range(300):
        msg_type = rng.choice(["D", "8"])
        body = [(11, f"c{rng.randint(0, 10**6)}")]
        if rng.random() < 0.7:
            body += _parties(rng)
            grouped += 1
        body += [(38, str(rng.randint(1, 99))), (44, f"{rng.randint(1, 10**6)}.5"), (54, "1"), (55, "BTC-PYUSD")]
        text = _message(msg_type, body)
        ours, theirs = _parsed(text, transport, subset), _parsed(text, transport, whole)
        assert ours.toString() == theirs.toString(), text
        assert ours.groupCount(453) == theirs.groupCount(453), text  # the group was recognised as a group
    assert grouped > 150


def test_a_group_is_a_group_only_for_kept_messages(transport: fix.DataDictionary) -> None:
    """Guards the test above: the dictionary, not luck, decides the parse."""
    subset = load_subset(APP_DICTIONARY, ("D",))
    text = _message("D", [(11, "c"), (453, "1"), (448, "p"), (447, "D"), (452, "3")])
    assert _parsed(text, transport, subset).groupCount(453) == 1
    other = _message("AE", [(571, "r"), (453, "1"), (448, "p"), (447, "D"), (452, "3")])
    assert _parsed(other, transport, subset).groupCount(453) == 0  # AE was cut: its parties stay flat


def test_the_subset_keeps_what_the_kept_message_reaches_and_drops_the_rest() -> None:
    root = ET.fromstring(subset_xml(APP_DICTIONARY, ("D",)))
    assert [m.get("msgtype") for m in root.iter("message")] == ["D"]
    components = {c.get("name") for c in root.find("components") or []}
    assert {"Parties", "Instrument"} <= components
    fields = {f.get("name") for f in root.find("fields") or []}
    assert {"ClOrdID", "NoPartyIDs", "PartyID", "Symbol", "OrderQty"} <= fields
    assert "MDReqID" not in fields  # market data only
    whole_fields = ET.parse(APP_DICTIONARY).getroot().find("fields")
    assert whole_fields is not None and len(fields) < len(whole_fields) / 2


def test_an_unknown_message_type_is_named_before_quickfix_sees_anything() -> None:
    with pytest.raises(ValueError, match="no message type ZZ"):
        load_subset(APP_DICTIONARY, ("D", "ZZ"))
    with pytest.raises(ValueError, match="at least one message type"):
        subset_xml(APP_DICTIONARY, ())


def test_a_file_that_is_not_a_dictionary_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bogus = tmp_path / "bogus.xml"
    bogus.write_text("<fix><header/></fix>")
    with pytest.raises(ValueError, match="not a QuickFIX data dictionary"):
        load_subset(bogus, ("D",))


def test_no_temporary_file_is_left_behind(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    load_subset(APP_DICTIONARY, ("D",))
    assert list(tmp_path.iterdir()) == []
