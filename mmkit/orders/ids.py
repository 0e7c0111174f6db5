"""Client order ids: at most 18 characters, unique across restarts.

Scheme: ``<prefix><base36(n)>`` where ``n`` is a strictly increasing integer
that starts at the wall clock in nanoseconds and never goes below it:
``n = max(last + 1, now_ns)``. Why this works:

* within a process, ``n`` strictly increases, and every generator in the
  process shares one sequencer, so two generators created in the same
  nanosecond still never hand out the same id;
* across a restart, the new process seeds from a wall clock that has moved
  on; the old process could only have run ahead of the clock by issuing more
  than one id per nanosecond, which no Python process can do.

base36 of the current epoch in ns is 12 characters (and stays 12 until the
year 2085), so a prefix of up to 6 characters fits in 18. The prefix tells
strategies (or engines sharing an account) apart: :func:`instance_prefix`.
"""

from __future__ import annotations

import hashlib
import string
import threading
import time
from collections.abc import Callable

from mmkit.model import MAX_CLIENT_ID_LEN

_DIGITS = string.digits + string.ascii_lowercase
MAX_PREFIX_LEN = 6


#: All two-digit base36 strings, so that encoding takes one divmod per two digits (ids are on the hot path).
_PAIRS = [a + b for a in _DIGITS for b in _DIGITS]


def base36(value: int) -> str:
    if value < 0:
        raise ValueError("base36 of a negative number")
    if value == 0:
        return "0"
    out = []
    while value:
        value, rem = divmod(value, 1296)
        out.append(_PAIRS[rem])
    text = "".join(reversed(out))
    return text[1:] if text[0] == "0" else text


def instance_prefix(instance: str) -> str:
    """The client-order-id prefix of an instance: two letters of its name and four base36 digits of its hash.

    Why not the two letters alone (as before): ``truex-btc`` and ``truex-eth`` both got ``tr``, so a person
    (or a venue's order blotter) could not tell their orders apart. The hash digits do (36**4 values), the
    letters keep it readable. Safe for orders placed under the old prefix: nothing reads a prefix back
    (restart recovery and start-up reconciliation match orders by their whole client id and adopt whatever the
    venue lists on the symbol), and ids stay unique (the clock part never repeats).
    """
    letters = "".join(ch for ch in instance.lower() if ch.isascii() and ch.isalnum())
    digest = int.from_bytes(hashlib.sha256(b"mmkit-client-id\0" + instance.encode("utf-8")).digest()[:8], "big")
    return (letters[:2] or "mm").ljust(2, "x") + base36(digest % 36**4).rjust(4, "0")


class Sequencer:
    """A strictly increasing counter that never falls behind the wall clock (thread-safe)."""

    def __init__(self, time_source: Callable[[], int] = time.time_ns) -> None:
        self._time_source = time_source
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            value = self._time_source()
            last = self._last
            if value <= last:
                value = last + 1
            self._last = value
            return value


#: Shared by every generator of this process unless a test passes its own.
PROCESS_SEQUENCER = Sequencer()


#: Ids are made as ``<prefix + base36(n // _LOW)><three digit pairs of n % _LOW>``: consecutive ids
#: share the high digits (``_LOW`` ns is about 2 s), so only the low six digits are encoded per id.
_LOW = 1296**3


class ClientIdGenerator:
    """Makes client order ids; see the module docstring for why they are unique."""

    def __init__(self, prefix: str = "mm", sequencer: Sequencer | None = None) -> None:
        if len(prefix) > MAX_PREFIX_LEN or not prefix.isascii() or not (prefix.isalnum() or prefix == ""):
            raise ValueError(f"client id prefix {prefix!r} must be 0..{MAX_PREFIX_LEN} ASCII letters or digits")
        self.prefix = prefix
        self._sequencer = sequencer or PROCESS_SEQUENCER
        #: The window of ``_LOW`` values the last id fell in: (its first value, ``prefix + base36(high)``).
        #: Set only once an id of that window passed the length check (so every id of it passes).
        self._window: tuple[int, str] = (-_LOW, "")
        #: Within the window: (the window's head, the last ``low // 1296``, the id up to its last digit
        #: pair); ids made in the same microsecond-ish (a backtest tick, a burst of orders) differ only in
        #: that pair. Each cache is one tuple, replaced whole and read once into locals: a second thread
        #: calling between two separate stores would otherwise pair one value's digits with another's head
        #: and hand out an id already issued.
        self._mid_cache: tuple[str | None, int, str] = (None, -1, "")

    def next_id(self) -> str:
        value = self._sequencer.next()
        base, head = self._window
        low = value - base
        if 0 <= low < _LOW:  # the window of the last id (the usual case): encode the low six digits
            mid = low // 1296
            cached_head, cached_mid, mid_head = self._mid_cache
            if cached_mid != mid or cached_head is not head:
                mid_head = head + _PAIRS[mid // 1296] + _PAIRS[mid % 1296]
                self._mid_cache = (head, mid, mid_head)
            return mid_head + _PAIRS[low % 1296]
        if value < _LOW:  # small counters (tests with a fake clock): no padded low part
            client_id = self.prefix + base36(value)
        else:
            high, low = divmod(value, _LOW)
            head = self.prefix + base36(high)
            mid, last = divmod(low, 1296)
            client_id = head + _PAIRS[mid // 1296] + _PAIRS[mid % 1296] + _PAIRS[last]
            if len(client_id) <= MAX_CLIENT_ID_LEN:  # every id of this window has this length
                self._window = (value - low, head)
        if len(client_id) > MAX_CLIENT_ID_LEN:  # only if the clock is absurd (year > 2085)
            raise RuntimeError(f"client id {client_id} exceeds {MAX_CLIENT_ID_LEN} characters")
        return client_id

    __call__ = next_id
