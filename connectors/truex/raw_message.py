"""Tag/value access to one raw FIX message text, and its redaction for logs.

Split out of ``messages.py`` by job. Parsers work on the raw text copied out
of a QuickFIX callback (``message.toString()``): the copy is taken on the
QuickFIX thread, the parse happens on the asyncio loop, so no QuickFIX object
crosses threads. QuickFIX has already validated the message against the
TrueX dictionary by then, so a flat tag/value scan is enough; repeating
groups are walked by their delimiter tag.
"""

from __future__ import annotations

from collections.abc import Iterator

from connectors.truex.fix_tags import SOH, T_MSG_TYPE


class ParseError(ValueError):
    """A message that QuickFIX accepted but we cannot turn into an event."""


class RawMessage:
    """Tag/value view of one raw FIX message: first occurrence lookups plus ordered pairs for groups.

    WHY the pairs are lazy: every order answer is read through this class on
    the loop (and every order on the simulated exchange), and only market
    data walks repeating groups; building a tuple per field for each report
    was a third of the parse (bench/bench_fix.py). The first-occurrence map is
    built eagerly, so a malformed field is still refused here, at once.
    """

    __slots__ = ("_first", "_items", "_pairs")

    def __init__(self, raw: str) -> None:
        items = raw.split(SOH)
        first: dict[int, str] = {}
        remember = first.setdefault
        for item in items:
            tag_text, sep, value = item.partition("=")
            if not sep or not tag_text.isdigit():
                if not item:
                    continue
                raise ParseError(f"bad field {item[:40]!r}")
            remember(int(tag_text), value)
        self._items = items
        self._first = first
        self._pairs: list[tuple[int, str]] | None = None

    @property
    def pairs(self) -> list[tuple[int, str]]:
        """Every field in message order (built on first use; the fields were validated in ``__init__``)."""
        pairs = self._pairs
        if pairs is None:
            pairs = self._pairs = [
                (int(tag_text), value)
                for tag_text, _, value in (item.partition("=") for item in self._items if item)
            ]
        return pairs

    def get(self, tag: int) -> str | None:
        return self._first.get(tag)

    def req(self, tag: int) -> str:
        value = self._first.get(tag)
        if value is None:
            raise ParseError(f"tag {tag} missing in {self.msg_type}")
        return value

    @property
    def msg_type(self) -> str:
        return self._first.get(T_MSG_TYPE, "?")

    def group(self, count_tag: int, delimiter: int) -> Iterator[dict[int, str]]:
        """Yield each entry of a repeating group as {tag: value} (first occurrence within the entry)."""
        entry: dict[int, str] | None = None
        started = False
        for tag, value in self.pairs:
            if tag == count_tag:
                started = True
                continue
            if not started:
                continue
            if tag == delimiter:
                if entry is not None:
                    yield entry
                entry = {}
            if entry is not None:
                if tag in (10,):
                    break
                entry.setdefault(tag, value)
        if entry is not None:
            yield entry


def redact(raw: str) -> str:
    """Replace the values of 553/554 so that a message can be logged or stored."""
    parts = raw.split(SOH)
    for i, item in enumerate(parts):
        tag, sep, _ = item.partition("=")
        if sep and tag in ("553", "554"):
            parts[i] = f"{tag}=***"
    return "|".join(parts)
