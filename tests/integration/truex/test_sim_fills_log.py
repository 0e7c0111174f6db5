"""The local TrueX exchange's own record: a per-execution fills log and a final-state dump.

Out-of-process tests (the SIGKILL restart test) check the engine's ledger
against these, so they must match what the client was told, field by field.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import attrs
import pytest

from connectors.truex.connector import TrueXConnector
from connectors.truex.sim.__main__ import build_parser
from connectors.truex.sim.exchange import TrueXExchange
from mmkit.model import Fill, OrderAccepted, OrderRequest, Side
from tests.integration.truex.harness import Collector, make_pair

pytestmark = pytest.mark.integration


@pytest.fixture
async def logged(tmp_path: Path) -> AsyncIterator[tuple[TrueXExchange, TrueXConnector, Collector, Path]]:
    template, connector = make_pair(cancel_on_disconnect=False)
    log = tmp_path / "venue" / "fills.jsonl"
    exchange = TrueXExchange(attrs.evolve(template.config, fills_log=str(log)))
    exchange.set_reference_price(Decimal(60000))
    exchange.start()
    try:
        await connector.connect()
        yield exchange, connector, Collector(connector), log
    finally:
        await connector.disconnect()
        exchange.stop()


async def test_fills_log_matches_what_the_client_was_told(
    logged: tuple[TrueXExchange, TrueXConnector, Collector, Path], tmp_path: Path
) -> None:
    exchange, connector, collector, log = logged
    connector.place(
        OrderRequest("fl1", "truex", "BTC-PYUSD", Side.SELL, Decimal("0.01"), Decimal("60010"), post_only=True)
    )
    connector.place(
        OrderRequest("fl2", "truex", "BTC-PYUSD", Side.BUY, Decimal("0.01"), Decimal("59990"), post_only=True)
    )
    await collector.wait_for(lambda e: isinstance(e, OrderAccepted) and e.client_id == "fl2")
    exchange.submit_taker(Side.BUY, Decimal("0.004"), Decimal("60010"))  # partial fill of fl1
    exchange.submit_taker(Side.SELL, Decimal("0.01"), Decimal("59990"))  # fills fl2 completely
    exchange.submit_taker(Side.SELL, Decimal("0.01"), Decimal("59000"))  # nothing of ours left on the bid
    await collector.wait_for(lambda e: isinstance(e, Fill) and e.client_id == "fl2")

    lines = [json.loads(line) for line in log.read_text().splitlines()]  # already on disk: flushed per line
    fills = {f.trade_id: f for f in collector.of_type(Fill) if isinstance(f, Fill)}
    assert [line["exec_id"] for line in lines] == list(fills)
    for line in lines:
        fill = fills[line["exec_id"]]
        assert (line["clordid"], line["side"], Decimal(line["price"]), Decimal(line["qty"])) == (
            fill.client_id, fill.side.value, fill.price, fill.qty,
        )  # fmt: skip
        assert line["liquidity"] == "MAKER" and Decimal(line["fee"]) == fill.fee
        assert isinstance(line["ts_ns"], int) and line["ts_ns"] > 0
    assert [(x["clordid"], x["qty"]) for x in lines] == [("fl1", "0.004"), ("fl2", "0.01")]

    state_file = tmp_path / "state.json"
    exchange.write_state(state_file)
    state = json.loads(state_file.read_text())
    assert [(o["clordid"], Decimal(o["leaves_qty"])) for o in state["open_orders"]] == [("fl1", Decimal("0.006"))]
    orders = {o["clordid"]: o for o in state["orders"]}
    assert (orders["fl1"]["status"], Decimal(orders["fl1"]["cum_qty"])) == ("PARTIALLY_FILLED", Decimal("0.004"))
    assert (orders["fl2"]["status"], Decimal(orders["fl2"]["cum_qty"])) == ("FILLED", Decimal("0.01"))
    assert state["fills"] == 2


def test_fills_log_is_off_unless_asked() -> None:
    args = build_parser().parse_args([])
    assert args.fills_log is None and args.state_out is None
    args = build_parser().parse_args(["--fills-log", "/x/fills.jsonl", "--state-out", "/x/state.json"])
    assert args.fills_log == Path("/x/fills.jsonl") and args.state_out == Path("/x/state.json")
