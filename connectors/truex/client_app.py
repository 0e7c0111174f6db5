"""The QuickFIX-thread side of the TrueX client: sign logons, guard outgoing messages, hand incoming ones over.

Split out of connector.py by job. Everything here runs on a QuickFIX thread;
it never parses or acts on a message, only copies it out (``toString()``)
with a receive timestamp for the connector's asyncio loop (see the
connector's module docstring for the threading rules).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import quickfix as fix

from connectors.truex import fix_tags
from connectors.truex.config import Credentials
from connectors.truex.session import GuardedApplication, now_ns, strip_orig_sending_time
from connectors.truex.signing import LogonFields, Signer

if TYPE_CHECKING:
    from connectors.truex.connector import TrueXConnector

OE, MD = "OE", "MD"
_OE_TYPES = frozenset({"D", "F", "G", "H", "AF"})
_MD_TYPES = frozenset({"V"})
#: The application messages each session carries (TrueXConnector._send refuses any other, before QuickFIX).
SESSION_TYPES = {OE: _OE_TYPES, MD: _MD_TYPES}
SOH = fix_tags.SOH
#: "<SOH>tag=" markers for reading a few fields out of one toString() copy (``ClientApp.on_to_app``).
_ORIG_SENDING_TIME = f"{SOH}{fix_tags.T_ORIG_SENDING_TIME}="
_POSS_DUP = f"{SOH}{fix_tags.T_POSS_DUP}="
_MSG_TYPE = f"{SOH}{fix_tags.T_MSG_TYPE}="
_SEQ = f"{SOH}{fix_tags.T_SEQ}="
_CLORDID = f"{SOH}{fix_tags.T_CLORDID}="
_SENDER, _TARGET = f"{SOH}49=", f"{SOH}56="


def field_value(text: str, marker: str) -> str:
    """The value after the first ``marker`` ("<SOH>tag=") in FIX text; "" if the tag is absent."""
    start = text.find(marker)
    if start < 0:
        return ""
    start += len(marker)
    end = text.find(SOH, start)
    return text[start:] if end < 0 else text[start:end]  # never raises: it runs inside QuickFIX callbacks


class ClientApp(GuardedApplication):
    """QuickFIX-thread side: sign logons, guard outgoing messages, copy incoming ones to the loop."""

    def __init__(self, owner: TrueXConnector, credentials: Credentials, signer: Signer, log_messages: bool) -> None:
        super().__init__("truex.client", log_messages)
        self._owner = owner
        self._credentials = credentials
        self._signer = signer
        #: MsgSeqNum -> (MsgType, ClOrdID) of recent OE sends, to attribute a session Reject (35=3).
        self.sent: dict[int, tuple[str, str]] = {}

    def on_to_admin(self, message: fix.Message, session_id: fix.SessionID) -> None:
        strip_orig_sending_time(message)
        header = message.getHeader()
        msg_type = header.getField(35)
        if msg_type == "3":  # QuickFIX refuses a venue message it could not validate: the app never sees it
            self._owner.post_refused(session_id, message.toString(), now_ns())
            return
        if msg_type != "A":
            return
        username = self._credentials.api_key
        fields = LogonFields(
            sending_time=header.getField(52),
            msg_type="A",
            msg_seq_num=header.getField(34),
            sender_comp_id=header.getField(49),
            target_comp_id=header.getField(56),
            username=username,
        )
        message.setField(fix_tags.T_USERNAME, username)
        message.setField(fix_tags.T_PASSWORD, self._signer(fields, self._credentials.secret))

    def on_from_admin(self, message: fix.Message, session_id: fix.SessionID) -> None:
        self._owner.note_recv(session_id, now_ns())
        msg_type = message.getHeader().getField(35)
        if msg_type in ("5", "3", "4"):  # 4: a SequenceReset may skip messages we never saw (unreadable.py)
            self._owner.post(session_id, message.toString(), now_ns())

    def on_to_app(self, message: fix.Message, session_id: fix.SessionID) -> None:
        """Refuse a replayed (PossDup) or misrouted message; note an OE send's MsgSeqNum for ``sent``.

        Runs for every order on the caller's thread, inside ``sendToTarget``:
        the fields are read from one ``toString()`` copy (one call into
        QuickFIX instead of ten, each ~1 µs and a chance for another thread to take the GIL; the session
        is named by the header's comp ids); QuickFIX writes the header
        (8, 9, 35, then the rest) before the body, so the first ``<SOH>34=``
        and ``<SOH>35=`` are the header's.
        """
        text = message.toString()
        if _ORIG_SENDING_TIME in text:
            strip_orig_sending_time(message)
        if _POSS_DUP in text:
            header = message.getHeader()
            if header.isSetField(fix_tags.T_POSS_DUP) and header.getField(fix_tags.T_POSS_DUP) == "Y":
                # A stale order must never be replayed. Unreachable: PersistMessages=N (session.py) makes QuickFIX
                # answer every resend request with gap fills, never a resent order. Were it reached, this abort of
                # the process (DoNotSend raised from Python, see session.py) is still better than the replay.
                raise fix.DoNotSend()
        msg_type = field_value(text, _MSG_TYPE)
        kind = self._owner.kind_of_comp_ids(field_value(text, _SENDER), field_value(text, _TARGET)) or (
            self._owner.kind_of(session_id))
        if (kind == OE and msg_type not in _OE_TYPES) or (kind == MD and msg_type not in _MD_TYPES):
            # Refused earlier (TrueXConnector._send); one that got here bypassed it. Not DoNotSend: raised from
            # Python it aborts the whole process with this QuickFIX build ("terminate called after throwing an
            # instance of 'FIX::DoNotSend'"), which is worse than the stray message.
            self._log.error("sending {} on the {} session: it bypassed TrueXConnector._send", msg_type, kind)
        if kind == OE:
            self.sent[int(field_value(text, _SEQ))] = (msg_type, field_value(text, _CLORDID))
            if len(self.sent) > 10_000:
                for seq in sorted(self.sent)[:5_000]:
                    del self.sent[seq]

    def on_from_app(self, message: fix.Message, session_id: fix.SessionID) -> None:
        self._owner.received(session_id, message.toString(), now_ns())

    def on_logon(self, session_id: fix.SessionID) -> None:
        self._owner.post_status(session_id, True, now_ns())

    def on_logout(self, session_id: fix.SessionID) -> None:
        self._owner.post_status(session_id, False, now_ns())
