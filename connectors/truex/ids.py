"""Short, unique ids for the requests the connector itself originates.

Cancel requests, status requests and market data requests need their own
ClOrdID / request id. TrueX caps ClOrdID at 18 characters and ids must not
collide across restarts, so an id is a one-letter kind, the process start
time in base 36 (6 characters, unique per second for ~70 years) and a
base-36 counter.
"""

from __future__ import annotations

import itertools
import time

from mmkit.model import MAX_CLIENT_ID_LEN

_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def base36(value: int) -> str:
    if value == 0:
        return "0"
    out = []
    while value:
        value, rem = divmod(value, 36)
        out.append(_DIGITS[rem])
    return "".join(reversed(out))


class IdGenerator:
    """``<kind><start time b36><counter b36>``: at most 18 characters, unique across restarts."""

    def __init__(self, start_s: int | None = None) -> None:
        self._stem = base36(int(time.time()) if start_s is None else start_s)[-6:]
        self._counter = itertools.count(1)

    def next(self, kind: str) -> str:
        ident = f"{kind}{self._stem}{base36(next(self._counter))}"
        if len(ident) > MAX_CLIENT_ID_LEN:
            raise OverflowError(f"id {ident!r} exceeds {MAX_CLIENT_ID_LEN} characters")
        return ident
