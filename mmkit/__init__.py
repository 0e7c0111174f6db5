"""mmkit: a framework for market making. See docs/architecture.md for the map."""

__version__ = "0.1.0"

# Our connectors/strategies are installed as mmkit.connectors / mmkit.strategies and keep their short names
# without shadowing a user's packages of the same names (see mmkit/app/bundled.py).
from mmkit.app import bundled

bundled.install()
