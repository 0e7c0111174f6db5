"""ccxt / ccxt.pro connector for Kraken, Coinbase and Gemini (see docs/connectors/ccxt.md)."""

from connectors.ccxt.connector import CcxtConnector, CcxtConnectorConfig, build_exchange
from connectors.ccxt.profiles import PROFILES, BookCheck, VenueProfile, profile_for

__all__ = [
    "PROFILES",
    "BookCheck",
    "CcxtConnector",
    "CcxtConnectorConfig",
    "VenueProfile",
    "build_exchange",
    "profile_for",
]
