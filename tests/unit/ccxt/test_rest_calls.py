"""No ccxt REST call of the connector bypasses the session health (``CcxtBase._rest``).

A call awaited on the exchange directly would be invisible to the REST session's
health: the session would be shown up, and orders sent, while that call fails
(tests/integration/ccxt/test_every_call_health.py shows what each path does).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[3] / "connectors" / "ccxt"
#: Awaited on the exchange without reaching the venue's REST API: closing the client, websocket streams.
NOT_REST = {"close"}


def bare_rest_calls(path: Path) -> list[str]:
    """``await self._exchange.<method>(...)`` / ``await self.exchange.<method>(...)`` that are REST calls."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Await) and isinstance(node.value, ast.Call):
            func = node.value.func
            if (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Attribute)
                    and func.value.attr in ("_exchange", "exchange")
                    and not func.attr.startswith("watch_") and func.attr not in NOT_REST):
                found.append(f"{path.name}:{node.lineno} {func.attr}")
    return found


def test_every_ccxt_rest_call_goes_through_the_session_health() -> None:
    bare = [call for path in sorted(PACKAGE.glob("*.py")) for call in bare_rest_calls(path)]
    assert bare == [], f"ccxt REST calls not made through CcxtBase._rest: {bare}"


def test_the_scan_finds_a_bare_call(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("async def f(self):\n    await self._exchange.fetch_balance()\n    await self.exchange.close()\n")
    assert bare_rest_calls(probe) == ["probe.py:2 fetch_balance"]
