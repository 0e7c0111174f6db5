"""The final report carries what the connectors caught and handled by themselves (``venue_counters``).

Why: a connector survives malformed answers, failed ledger sweeps and dead loops on its own; each is
logged once, and a log scrolls. Before, those counts lived on the connector object and nothing read
them, so a run that went wrong underneath reported clean.
"""

from __future__ import annotations

from mmkit.app.report import format_report, venue_counters
from mmkit.connector import load_venue_rules
from mmkit.testing.fake_connector import FakeConnector


class CountingVenue:
    venue = "kraken"

    def __init__(self) -> None:
        self.malformed_trades = 0

    def health_counters(self) -> dict[str, int]:
        return {"malformed_trades": self.malformed_trades, "loop_restarts": 0}


def test_a_connector_that_keeps_counters_is_in_the_report_and_one_that_keeps_none_is_not() -> None:
    plain = FakeConnector(load_venue_rules("sim"))
    assert venue_counters([plain]) == {}  # a simulated run's report is unchanged
    counting = CountingVenue()
    counting.malformed_trades = 3
    found = venue_counters([plain, counting])
    assert found == {"venue_counters": {"kraken": {"malformed_trades": 3, "loop_restarts": 0}}}
    text = format_report({"fills": 0, **found})
    assert "venue_counters" in text and "kraken: malformed_trades 3" in text and "loop_restarts" not in text
    counting.malformed_trades = 0
    assert "kraken: all 0" in format_report({"fills": 0, **venue_counters([counting])})
