"""Derive the TrueX application data dictionary from QuickFIX's stock FIX50SP2.xml.

Why a derived file rather than a hand-written one: TrueX speaks standard FIX
5.0 SP2 with a handful of deviations, and QuickFIX validates every incoming
message against its dictionary. Starting from the stock file keeps every
standard message intact and makes the deviations an explicit, tested list:

* ``MDEntryTime`` (273) carries a full UTC timestamp, not a time of day;
* ``SecurityType`` (167) may be ``CSPOT`` (crypto spot), not in the stock enum;
* ``LastUpdateTime`` (779) may appear in 35=W / 35=X but is optional (TrueX
  usually omits it);
* ``MDPriceLevel`` (1023) is allowed in the entry groups of both W and X.

Run ``python -m connectors.truex.dictionary`` to regenerate
``conf/fix/TRUEX-FIX50SP2.xml`` (and copy ``FIXT11.xml``) after a quickfix upgrade.
"""

from __future__ import annotations

import shutil
import sys
import sysconfig
import xml.etree.ElementTree as ET
from pathlib import Path

from mmkit.conf import shipped_conf_dir

#: conf/fix: where the shipped dictionaries live (the checkout's, or the installed package's copy).
CONF_FIX_DIR = shipped_conf_dir("fix")
APP_DICTIONARY = CONF_FIX_DIR / "TRUEX-FIX50SP2.xml"
TRANSPORT_DICTIONARY = CONF_FIX_DIR / "FIXT11.xml"


def stock_dictionary_dir() -> Path:
    """Where the quickfix-ssl wheel installed its spec files (``<prefix>/share/quickfix``)."""
    candidates = [Path(sysconfig.get_paths()["data"]) / "share" / "quickfix", Path(sys.prefix) / "share" / "quickfix"]
    for candidate in candidates:
        if (candidate / "FIX50SP2.xml").exists():
            return candidate
    raise FileNotFoundError("quickfix spec files (FIX50SP2.xml) not found under share/quickfix")


def _field_def(root: ET.Element, name: str) -> ET.Element:
    for field in root.iter("field"):
        if field.get("name") == name and field.get("number") is not None:
            return field
    raise KeyError(f"field {name} not defined in the stock dictionary")


def _ensure_member(parent: ET.Element, field_name: str) -> None:
    """Add ``<field name=... required='N'/>`` to a message/group unless it is already there."""
    if any(child.tag == "field" and child.get("name") == field_name for child in parent):
        return
    ET.SubElement(parent, "field", {"name": field_name, "required": "N"})


def derive(stock_xml: str) -> str:
    """Apply TrueX's deviations to the stock FIX50SP2 dictionary text and return the new text."""
    root = ET.fromstring(stock_xml)
    _field_def(root, "MDEntryTime").set("type", "UTCTIMESTAMP")
    security_type = _field_def(root, "SecurityType")
    if not any(v.get("enum") == "CSPOT" for v in security_type):
        ET.SubElement(security_type, "value", {"enum": "CSPOT", "description": "CRYPTO_SPOT"})
    for message in root.iter("message"):
        if message.get("msgtype") in ("W", "X"):
            _ensure_member(message, "LastUpdateTime")
    for component in root.iter("component"):
        if component.get("name") in ("MDFullGrp", "MDIncGrp"):
            for group in component.iter("group"):
                if group.get("name") == "NoMDEntries":
                    _ensure_member(group, "MDPriceLevel")
                    _ensure_member(group, "LastUpdateTime")
    for element in root.iter():  # drop indentation so the rewrite is deterministic
        element.tail = None
        if element.text is not None and not element.text.strip():
            element.text = None
    ET.indent(root, space=" ")
    return ET.tostring(root, encoding="unicode") + "\n"


def write(target_dir: Path = CONF_FIX_DIR) -> None:
    """Regenerate the shipped dictionaries from the installed quickfix wheel."""
    stock = stock_dictionary_dir()
    target_dir.mkdir(parents=True, exist_ok=True)
    text = derive((stock / "FIX50SP2.xml").read_text(encoding="utf-8"))
    (target_dir / APP_DICTIONARY.name).write_text(text, encoding="utf-8")
    shutil.copyfile(stock / "FIXT11.xml", target_dir / TRANSPORT_DICTIONARY.name)


if __name__ == "__main__":
    write()
