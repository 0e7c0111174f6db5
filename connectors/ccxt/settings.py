"""Settings of a ccxt connector and the construction of its ccxt.pro exchange.

Why apart from the connector: this is the only code that touches what a
config may hand to ccxt (options, URLs, market files, credentials), and it
must fail with a located ConfigError before anything connects.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from connectors.ccxt.profiles import VenueProfile
from mmkit.conf import ConfigError
from mmkit.connector import (
    ConnectorContext,
)


@attrs.frozen(slots=True)
class CcxtConnectorConfig:
    """Timeouts and cadences; tests shrink them, production keeps the defaults."""

    #: A feed that delivered nothing for this long is stale: reported down and resubscribed.
    stale_s: float = 10.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    #: REST polling of our open orders (the fallback that always runs).
    poll_interval_s: float = 2.0
    #: Also use ccxt's watch_orders (private websocket); REST polling stays on as the fallback.
    use_private_ws: bool = False
    #: Private ws failures in a row before we stop trying and rely on polling alone.
    private_ws_max_failures: int = 3
    #: Levels per side put into each BookSnapshot event.
    emit_levels: int = 10
    #: Venue-side dead man's switch (Kraken CancelAllOrdersAfter, Gemini heartbeat); 0 turns it off.
    dead_man_timeout_s: float = 60.0
    #: How often the timer is pushed back (capped at a third of the timeout).
    dead_man_refresh_s: float = 15.0
    #: The timer is only pushed back while the engine drained within this many seconds.
    dead_man_tick_grace_s: float = 5.0
    #: Quoting halts once no refresh sent within this many seconds was answered (default: two refresh
    #: periods, at most half the timeout): the switch is lapsing, or gone (connectors/ccxt/deadman.py).
    dead_man_halt_after_s: float | None = None
    #: In-run ledger check (connectors/ccxt/ledger_check.py) every this many seconds (0: off), and at once
    #: after a gap in a private stream: the trade history is swept for trades of ours not passed on, and
    #: finished orders that got a trade since the venue last agreed are read again.
    ledger_check_s: float = 30.0
    #: Order reads one check may make (the rest wait for the next round): the venues count every request.
    ledger_check_max_reads: int = 5
    #: The venue counting more filled on an order than its trade history explains for this long is a
    #: finding (reported: the engine books the difference flagged and halts); shorter is trade-history lag.
    ledger_behind_grace_s: float = 30.0
    #: A status answer above the trades passed on waits this long for the trade history before it is reported.
    trade_wait_s: float = 5.0



#: ccxt constructor keys that carry secrets: only the env-only settings may set them.
_SECRET_OPTIONS = frozenset({"apiKey", "secret", "password", "uid", "privateKey", "walletAddress", "token"})


def _ccxt_options(options: Any, context: ConnectorContext) -> dict[str, Any]:
    """Validate ``settings.ccxt_options``: a mapping of ccxt constructor options, without secrets."""
    if options is None:
        return {}
    key = f"{context.key_path}.ccxt_options"
    if not isinstance(options, Mapping):
        raise ConfigError(context.file, key, "must be a mapping of ccxt constructor options")
    secret = sorted(str(k) for k in options if k in _SECRET_OPTIONS)
    if secret:
        raise ConfigError(context.file, f"{key}.{secret[0]}", "credentials go in api_key / secret_key / password")
    if "urls" in options:
        raise ConfigError(context.file, f"{key}.urls", "use settings.urls")
    if "enableRateLimit" in options:
        raise ConfigError(context.file, f"{key}.enableRateLimit", "ccxt's rate limiter is always on (tune rateLimit)")
    return {str(k): _json_number(v) for k, v in options.items()}


def _json_number(value: Any) -> Any:
    """The config reads numbers as Decimal; ccxt expects JSON numbers (int or float)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {k: _json_number(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_number(v) for v in value]
    return value


def _markets_from(path_text: Any, context: ConnectorContext) -> dict[str, Any]:
    """Read ``settings.markets_file``: ccxt market definitions keyed by unified symbol."""
    key = f"{context.key_path}.markets_file"
    try:
        markets = json.loads(Path(str(path_text)).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(context.file, key, f"cannot read {path_text}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ConfigError(context.file, key, f"{path_text} is not JSON: {exc}") from exc
    if not isinstance(markets, dict) or not markets:
        raise ConfigError(context.file, key, f"{path_text} must map ccxt symbols to market definitions")
    return markets


def build_exchange(profile: VenueProfile, credentials: dict[str, str] | None = None, **overrides: Any) -> Any:
    """Construct the ccxt.pro exchange for a profile with ``enableRateLimit`` on.

    Credentials come from the caller (the app reads them from the environment);
    ``overrides`` are merged into ccxt's constructor config (tests pass
    ``markets=`` to skip market loading).
    """
    from connectors.ccxt.lazy import pro_exchange_class  # this exchange's modules, not all of ccxt's

    config: dict[str, Any] = {"enableRateLimit": True, **profile.ccxt_options, **(credentials or {}), **overrides}
    return pro_exchange_class(profile.ccxt_id)(config)
