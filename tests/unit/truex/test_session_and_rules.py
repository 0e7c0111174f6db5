"""Session settings, the guarded client callbacks, and the exchange's rule pieces."""

from __future__ import annotations

from decimal import Decimal

import pytest
import quickfix as fix

from connectors.truex import rejects
from connectors.truex.client_app import ClientApp
from connectors.truex.config import Credentials, SessionEndpoint, TrueXConfig
from connectors.truex.connector import TrueXConnector
from connectors.truex.session import SessionSpec, build_settings, strip_orig_sending_time
from connectors.truex.signing import LogonFields, hmac_sha256_base64
from connectors.truex.sim.rules import DuplicateGuard, SlidingWindowLimiter, check_clordid, check_static
from mmkit.connector import RateLimit, load_venue_rules
from mmkit.model import NS_PER_MS, NS_PER_S, OrderRejected, OrderRequest, RejectReason, Side

CONFIG = TrueXConfig(
    oe=SessionEndpoint("127.0.0.1", 1, "ME_OE", "TRUEX_UAT_OE"),
    md=SessionEndpoint("127.0.0.1", 2, "ME_MD", "TRUEX_UAT_MD"),
    party_id="P1",
)


def _app() -> tuple[TrueXConnector, ClientApp]:
    connector = TrueXConnector(CONFIG, env={"TRUEX_API_KEY": "k", "TRUEX_SECRET_KEY": "s"})
    return connector, ClientApp(connector, Credentials("k", "s"), hmac_sha256_base64, False)


def _message(msg_type: str, seq: int = 5) -> fix.Message:
    message = fix.Message()
    header = message.getHeader()
    header.setField(fix.BeginString("FIXT.1.1"))
    header.setField(fix.MsgType(msg_type))
    header.setField(34, str(seq))
    header.setField(49, "ME_OE")
    header.setField(56, "TRUEX_UAT_OE")
    header.setField(52, "20240809-00:00:00.123")
    return message


def test_settings_reset_on_logon_and_never_persist() -> None:
    settings = build_settings("initiator", [SessionSpec("ME_OE", "TRUEX_UAT_OE", 9876, "10.0.0.1")], "/x")
    defaults = settings.get()
    assert defaults.getString("ResetOnLogon") == "Y"
    assert defaults.getString("PersistMessages") == "N"
    assert defaults.getString("AppDataDictionary").endswith("TRUEX-FIX50SP2.xml")
    session = settings.get(SessionSpec("ME_OE", "TRUEX_UAT_OE", 9876).session_id)
    assert session.getString("SocketConnectHost") == "10.0.0.1"
    assert session.getString("SocketConnectPort") == "9876"


def test_signature_in_logon_matches_signer() -> None:
    _, app = _app()
    logon = _message("A", seq=1)
    app.toAdmin(logon, fix.SessionID("FIXT.1.1", "ME_OE", "TRUEX_UAT_OE"))
    expected = hmac_sha256_base64(LogonFields("20240809-00:00:00.123", "A", "1", "ME_OE", "TRUEX_UAT_OE", "k"), "s")
    assert logon.getField(554) == expected
    assert logon.getField(553) == "k"
    assert not logon.isSetField(141)  # ResetOnLogon=Y in the settings does that, without breaking the signature


def test_to_app_drops_poss_dup_and_strips_122() -> None:
    _, app = _app()
    oe = fix.SessionID("FIXT.1.1", "ME_OE", "TRUEX_UAT_OE")
    stale = _message("D")
    stale.getHeader().setField(43, "Y")
    with pytest.raises(fix.DoNotSend):
        app.toApp(stale, oe)
    app.toApp(_message("V"), oe)  # logged, not refused here: TrueXConnector._send refuses it before QuickFIX
    fresh = _message("D", seq=9)
    fresh.setField(11, "abc")
    fresh.getHeader().setField(122, "20240101-00:00:00")
    app.toApp(fresh, oe)
    assert not fresh.getHeader().isSetField(122)
    assert app.sent[9] == ("D", "abc")


def test_gap_fill_loses_122_in_to_admin() -> None:
    _, app = _app()
    gap_fill = _message("4")
    gap_fill.getHeader().setField(122, "20240101-00:00:00")
    app.toAdmin(gap_fill, fix.SessionID("FIXT.1.1", "ME_OE", "TRUEX_UAT_OE"))
    assert not gap_fill.getHeader().isSetField(122)
    strip_orig_sending_time(gap_fill)  # idempotent


def test_callback_exceptions_never_escape() -> None:
    _, app = _app()

    def boom(*_: object) -> None:
        raise RuntimeError("bug in a hook")

    app.on_from_app = boom  # type: ignore[method-assign]
    app.fromApp(_message("8"), fix.SessionID("FIXT.1.1", "ME_OE", "TRUEX_UAT_OE"))
    assert app.callback_errors == 1


def test_place_while_logged_out_is_not_connected() -> None:
    connector, _ = _app()
    connector.place(OrderRequest("x1", "truex", "BTC-PYUSD", Side.BUY, Decimal("0.01"), Decimal("60000")))
    [event] = connector.drain()
    assert isinstance(event, OrderRejected) and event.reason is RejectReason.NOT_CONNECTED


def test_sliding_window_limits() -> None:
    limiter = SlidingWindowLimiter([RateLimit(10, 1000), RateLimit(300, 60_000)])
    t0 = 10 * NS_PER_S
    assert all(limiter.allow(t0 + i) for i in range(10))
    assert not limiter.allow(t0 + 20)
    assert limiter.allow(t0 + NS_PER_S + 1)  # the 1 s window has moved on
    many = SlidingWindowLimiter([RateLimit(300, 60_000)])
    assert sum(many.allow(t0 + i * 100 * NS_PER_MS) for i in range(400)) == 300


def test_duplicate_guard_window() -> None:
    guard = DuplicateGuard(500 * NS_PER_MS)
    assert not guard.is_duplicate(("a", 1), 0)
    assert guard.is_duplicate(("a", 1), 499 * NS_PER_MS)
    assert not guard.is_duplicate(("a", 1), 1000 * NS_PER_MS)
    assert not guard.is_duplicate(("b", 1), 1000 * NS_PER_MS)


def test_static_checks_use_the_price_bucket() -> None:
    inst = load_venue_rules("truex").instrument("BTC-PYUSD")
    mid = Decimal(150000)
    assert check_static(inst, Decimal("150000.5"), Decimal("0.00001"), mid) is None  # $0.50 / 0.00001 bucket
    assert check_static(inst, Decimal("150000.1"), Decimal("0.00001"), mid) is rejects.VenueReject.TICK
    assert check_static(inst, Decimal("60000.1"), Decimal("0.00001"), Decimal(60000)) is rejects.VenueReject.LOT
    assert check_static(inst, Decimal("600000"), Decimal("0.000002"), Decimal(600000)) is None  # $1 bucket
    too_small = check_static(inst, Decimal("600000"), Decimal("0.000001"), Decimal(600000))
    assert too_small is rejects.VenueReject.MIN_NOTIONAL
    assert check_clordid("a" * 18) is None and check_clordid("a" * 19) is rejects.VenueReject.CLORDID_LENGTH
