"""A data dictionary holding only the messages one owner renders: the order templates' own copy.

Why: :class:`connectors.truex.templates.Templates` parses its rendered text
with its own ``DataDictionary`` (QuickFIX fills some of a dictionary's caches
lazily, so it does not share the session's across threads). Loaded whole,
``TRUEX-FIX50SP2.xml`` costs ~4.6 MB of resident memory for ~120 messages,
while the client's templates only ever render NewOrderSingle (35=D). The
dictionary only decides how QuickFIX parses the text: which tags open a
repeating group and which tags belong to each entry (the body is otherwise
kept in tag order; enumerated values only serve validation, which the
templates' parse skips). A dictionary cut down to the rendered message
types, with every component, group and field they reach and no enumerated
values, parses those messages to exactly the same ``fix.Message``; tests/unit/truex/test_dictionary_subset.py
and the byte-for-byte template tests check that.

The cut is computed from the configured dictionary at start-up (a user may
ship their own), written to a temporary file for QuickFIX to load, and the
file is removed at once. A message type the dictionary does not define is a
:class:`ValueError` naming it: QuickFIX aborts the whole process (a C++
``ConfigError`` thrown through the binding) on a dictionary without fields,
so nothing that could produce one is ever handed to it.
"""

from __future__ import annotations

import os
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Collection
from pathlib import Path

import quickfix as fix


def subset_xml(source: str | Path, msg_types: Collection[str]) -> bytes:
    """The dictionary at ``source`` reduced to ``msg_types``, their components and their fields, as XML.

    Header and trailer are kept whole (every message carries them). A
    message type missing from ``source`` raises :class:`ValueError`.
    """
    if not msg_types:
        raise ValueError("a dictionary subset needs at least one message type")
    root = ET.parse(source).getroot()
    messages = root.find("messages")
    fields = root.find("fields")
    if messages is None or fields is None:
        raise ValueError(f"{source}: not a QuickFIX data dictionary (no <messages> or <fields>)")
    components_el = root.find("components")
    components = {c.get("name"): c for c in (components_el if components_el is not None else [])}
    defined = {m.get("msgtype") for m in messages}
    missing = sorted(set(msg_types) - defined)
    if missing:
        raise ValueError(f"{source}: no message type {', '.join(missing)} in this dictionary")
    for message in list(messages):
        if message.get("msgtype") not in msg_types:
            messages.remove(message)
    used_components: set[str] = set()
    used_fields: set[str] = set()

    def reach(element: ET.Element) -> None:
        for child in element:
            name = child.get("name") or ""
            if child.tag == "field":
                used_fields.add(name)
            elif child.tag == "group":  # a group's name is its count field
                used_fields.add(name)
                reach(child)
            elif child.tag == "component" and name not in used_components:
                if name not in components:
                    raise ValueError(f"{source}: component {name} is used but not defined")
                used_components.add(name)
                reach(components[name])
            elif child.tag == "message":
                reach(child)

    for part in ("header", "trailer", "messages"):
        element = root.find(part)
        if element is not None:
            reach(element)
    if components_el is not None:
        for component in list(components_el):
            if component.get("name") not in used_components:
                components_el.remove(component)
    for field in list(fields):
        if field.get("name") not in used_fields:
            fields.remove(field)
        else:  # a field's enumerated values only serve validation, which a template's parse skips
            for value in field.findall("value"):
                field.remove(value)
    return ET.tostring(root, encoding="utf-8")


def load_subset(source: str | Path, msg_types: Collection[str]) -> fix.DataDictionary:
    """A QuickFIX ``DataDictionary`` of :func:`subset_xml` (loaded from a temporary file, removed after)."""
    data = subset_xml(source, msg_types)
    handle, path = tempfile.mkstemp(prefix="mmkit-fix-subset-", suffix=".xml")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        return fix.DataDictionary(path)
    finally:
        os.unlink(path)


__all__ = ["load_subset", "subset_xml"]
