"""The TrueX logon signature, as one swappable function.

TrueX authenticates a FIX logon with an API key in Username (553) and an HMAC
in Password (554). What a third-party client reported working against UAT is
HMAC-SHA256 keyed by the secret (UTF-8) over the plain concatenation
``SendingTime + "A" + MsgSeqNum + SenderCompID + TargetCompID + Username``,
Base64-encoded. Because that recipe is second-hand, it lives here as the
*default* of a signer that the config can replace by dotted name
(``signer: "package.module:function"``) without touching the session code.

The same function verifies logons in the local TrueX exchange, so the client
and the simulator cannot silently disagree.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
from typing import Protocol

import attrs


@attrs.frozen(slots=True)
class LogonFields:
    """The header/body values a logon signature covers (all as sent on the wire)."""

    sending_time: str
    msg_type: str
    msg_seq_num: str
    sender_comp_id: str
    target_comp_id: str
    username: str


class Signer(Protocol):
    """Compute the Password (554) for a logon from its fields and the secret."""

    def __call__(self, fields: LogonFields, secret: str) -> str: ...


def hmac_sha256_base64(fields: LogonFields, secret: str) -> str:
    """TrueX's default: Base64(HMAC-SHA256(secret, 52 + 35 + 34 + 49 + 56 + 553))."""
    payload = (
        fields.sending_time
        + fields.msg_type
        + fields.msg_seq_num
        + fields.sender_comp_id
        + fields.target_comp_id
        + fields.username
    )
    digest = hmac.new(secret.encode("utf-8"), payload.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


DEFAULT_SIGNER = "connectors.truex.signing:hmac_sha256_base64"


def load_signer(dotted: str) -> Signer:
    """Resolve ``"package.module:function"`` to a signer; errors say what was wrong."""
    module_name, sep, attr = dotted.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"signer {dotted!r} must look like 'package.module:function'")
    module = importlib.import_module(module_name)
    signer = getattr(module, attr, None)
    if signer is None or not callable(signer):
        raise ValueError(f"signer {dotted!r}: {attr} is not a callable in {module_name}")
    return signer  # type: ignore[no-any-return,unused-ignore]


def verify(fields: LogonFields, secret: str, signature: str, signer: Signer = hmac_sha256_base64) -> bool:
    """Constant-time check of a received signature (used by the local exchange)."""
    return hmac.compare_digest(signer(fields, secret), signature)
