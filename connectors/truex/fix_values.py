"""FIX value formats: UTCTimestamp to and from integer nanoseconds, decimals without floats.

Split out of ``messages.py`` by job: builders, parsers, templates and the
local exchange all format or read these values, and the per-second caches
that make them cheap on an order burst live here, once.
"""

from __future__ import annotations

import calendar
import time
from decimal import Decimal, InvalidOperation

#: (second, its "YYYYMMDD-HH:MM:SS" text): format_utc_timestamp's one-entry cache.
_LAST_SECOND: list[tuple[int, str]] = [(-1, "")]


def format_utc_timestamp(ts_ns: int) -> str:
    """``YYYYMMDD-HH:MM:SS.ffffff`` (microseconds), as FIX UTCTimestamp.

    The date-and-second part is cached for the last second seen (strftime is
    most of the cost, and an order burst falls within one second); the cache
    is one tuple, replaced whole, so threads can share it.
    """
    seconds, rem = divmod(ts_ns, 1_000_000_000)
    cached_second, prefix = _LAST_SECOND[0]
    if cached_second != seconds:
        prefix = time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(seconds))
        _LAST_SECOND[0] = (seconds, prefix)
    return f"{prefix}.{rem // 1000:06d}"


#: ("YYYYMMDD-HH:MM:SS", its epoch second): parse_utc_timestamp's one-entry cache.
_LAST_PARSED: list[tuple[str, int]] = [("", 0)]


def parse_utc_timestamp(text: str) -> int:
    """FIX UTCTimestamp (second to nanosecond precision) to integer ns since the epoch.

    The seconds part is cached for the last text seen (one tuple, replaced
    whole): the reports of a burst share their second.
    """
    if len(text) < 17 or text[8] != "-":
        raise ValueError(f"not a UTCTimestamp: {text!r}")
    head = text[:17]
    cached_head, whole = _LAST_PARSED[0]
    if cached_head != head:
        whole = calendar.timegm(
            (int(text[0:4]), int(text[4:6]), int(text[6:8]), int(text[9:11]), int(text[12:14]), int(text[15:17]),
             0, 0, 0)
        )  # fmt: skip
        _LAST_PARSED[0] = (head, whole)
    frac = text[18:] if len(text) > 18 and text[17] == "." else ""
    if frac and not frac.isdigit():
        raise ValueError(f"not a UTCTimestamp: {text!r}")
    return whole * 1_000_000_000 + (int(frac.ljust(9, "0")[:9]) if frac else 0)


def fmt_decimal(value: Decimal) -> str:
    """Plain notation (never ``1E-5``), no float on the way."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def _dec(text: str | None) -> Decimal | None:
    if text is None or text == "":
        return None
    try:
        return Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(f"not a decimal: {text!r}") from exc
