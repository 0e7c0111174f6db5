"""TrueX connector configuration: endpoints, comp ids, party, TLS, signer.

Secrets are never part of this config: the API key and secret are read from
the environment (``TRUEX_API_KEY`` / ``TRUEX_SECRET_KEY`` by default) when the
connector starts, so a config file can be committed, shown and logged.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from connectors.truex.dictionary import CONF_FIX_DIR
from connectors.truex.signing import DEFAULT_SIGNER
from mmkit.conf import ConfigError, structure

#: TrueX's UAT target comp ids for the two sessions.
UAT_OE_TARGET = "TRUEX_UAT_OE"
UAT_MD_TARGET = "TRUEX_UAT_MD"


def _non_empty(_: object, attribute: attrs.Attribute[Any], value: str) -> None:
    if not value:
        raise ValueError(f"{attribute.name} must not be empty")


def _port(_: object, attribute: attrs.Attribute[Any], value: int) -> None:
    if not 0 < value < 65536:
        raise ValueError(f"{attribute.name} must be a TCP port (1..65535), got {value}")


@attrs.frozen(slots=True)
class SessionEndpoint:
    """One FIX session (order entry or market data): where to connect and as whom."""

    host: str = attrs.field(validator=_non_empty)
    port: int = attrs.field(validator=_port)
    sender_comp_id: str = attrs.field(validator=_non_empty)
    target_comp_id: str = attrs.field(validator=_non_empty)


@attrs.frozen(slots=True)
class TlsConfig:
    """TLS for both sessions. ``ca_file`` verifies the venue; cert/key only for mutual TLS."""

    enabled: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    #: OpenSSL protocol list as QuickFIX spells it (``SSLProtocol``).
    protocols: str = "+TLSv1_2 +TLSv1_3"


@attrs.frozen(slots=True)
class TrueXConfig:
    """Everything the TrueX connector needs except the secrets."""

    oe: SessionEndpoint
    md: SessionEndpoint
    #: PartyID (448) sent with PartyRole 3 (client id) on every order.
    party_id: str = attrs.field(validator=_non_empty)
    venue: str = "truex"
    tls: TlsConfig = TlsConfig()
    #: ``package.module:function`` computing the logon Password (554); see signing.py.
    signer: str = DEFAULT_SIGNER
    api_key_env: str = "TRUEX_API_KEY"
    secret_env: str = "TRUEX_SECRET_KEY"
    heartbeat_s: int = 10
    #: The venue answers OrderStatusRequest (35=H) and OrderMassStatusRequest (35=AF). TrueX's published
    #: order-entry set is D, F, G answered by 8 and 9, so by default the connector learns an order's state
    #: from a cancel's answer instead (see StatusCapabilities in mmkit.connector).
    status_requests: bool = False
    #: OE is treated as down after this many heartbeat intervals without receiving anything
    #: (connectors/truex/watchdog.py), instead of QuickFIX's 2.4.
    down_after_heartbeats: Decimal = Decimal("1.5")
    #: ...or when this many order actions in a row wait longer than ``request_timeout_s`` for any answer.
    max_unanswered_actions: int = 3
    #: QuickFIX reconnect interval (seconds) after a dropped or refused connection.
    reconnect_s: int = 1
    #: How long ``connect()`` waits for both logons, and a fetch_* for its answer.
    connect_timeout_s: Decimal = Decimal(10)
    request_timeout_s: Decimal = Decimal(5)
    #: Directory with the TrueX dictionaries (TRUEX-FIX50SP2.xml, FIXT11.xml).
    dictionary_dir: str = str(CONF_FIX_DIR)
    #: FileStore directory for sequence numbers; None keeps them in memory (ResetOnLogon=Y anyway).
    store_dir: str | None = None
    #: Log every message (with 553/554 redacted) at DEBUG through loguru.
    log_messages: bool = False

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], file: str | Path | None = None) -> TrueXConfig:
        """Build from a config section (e.g. ``venues[].settings``); errors are located ConfigErrors."""
        return structure(dict(data), cls, file=file)


@attrs.frozen(slots=True, repr=False)
class Credentials:
    """API key and secret, from the environment only. ``repr`` never shows them."""

    api_key: str
    secret: str

    def __repr__(self) -> str:
        return "Credentials(api_key=<redacted>, secret=<redacted>)"

    @classmethod
    def from_env(cls, config: TrueXConfig, env: Mapping[str, str] | None = None) -> Credentials:
        source = os.environ if env is None else env
        missing = [name for name in (config.api_key_env, config.secret_env) if not source.get(name)]
        if missing:
            raise ConfigError(None, "truex.credentials", f"environment variable(s) not set: {', '.join(missing)}")
        return cls(api_key=source[config.api_key_env], secret=source[config.secret_env])
