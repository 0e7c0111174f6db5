"""TrueX over FIX (FIXT.1.1 / FIX 5.0 SP2): ``connectors.truex:TrueXConnector``. See docs/connectors/truex.md."""

from connectors.truex.config import TrueXConfig
from connectors.truex.connector import TrueXConnector

__all__ = ["TrueXConfig", "TrueXConnector"]
