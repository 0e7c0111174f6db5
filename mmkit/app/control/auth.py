"""Authentication helpers for control transports that are not the local socket.

The Unix socket is authenticated by filesystem permissions and the peer's
uid (see :mod:`mmkit.app.control.server`). A transport reachable over the
network (the dashboard of issue 14) must present a token: it compares with
:func:`token_matches` before calling :meth:`ControlChannel.execute`, and names
itself in ``source`` (e.g. ``"web 127.0.0.1:53122"``).
"""

from __future__ import annotations

import hmac


def token_matches(presented: str | None, expected: str | None) -> bool:
    """Constant-time comparison; no token configured (``expected`` empty) refuses every request."""
    if not expected or presented is None:
        return False
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))
