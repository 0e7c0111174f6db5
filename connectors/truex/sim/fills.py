"""The simulated exchange's fill reporting: a match becomes 35=8 trade reports and a fills-log line.

A mixin of :class:`connectors.truex.sim.exchange.TrueXExchange` (split out of
``exchange.py`` by job): after any match (a client's order, the market
driver's taker flow or a requote) both client sides get their trade report,
the fills log gets its line first, and the book change is published. Callers
hold the exchange's lock.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import IO, TYPE_CHECKING, Any

from connectors.truex.session import SessionSpec
from connectors.truex.sim.records import ExchangeConfig, ExchangeStats, _Record
from connectors.truex.sim.reports import ReportBuilder
from connectors.truex.sim.tamper import tamper
from mmkit.model import VenueOrderStatus
from mmkit.sim.matching import Execution, MatchResult


class FillReporter(ReportBuilder):
    """Trade reports and the fills log of the simulated exchange (see the module docstring)."""

    config: ExchangeConfig
    stats: ExchangeStats
    _records: dict[tuple[str, str], _Record]
    _oe_sessions: dict[str, SessionSpec]
    _fills_file: IO[str] | None
    #: Owners whose first trade report was damaged already (``config.tamper``).
    _tampered: set[str]
    _log: Any

    if TYPE_CHECKING:  # provided by TrueXExchange and its other mixins; declared for the type checker only
        # (_send and _exec_report come from ReportBuilder, the base both order mixins share)

        def _maybe_hostile(
            self, owner: str, exec_id: str, record: _Record, execution: Execution, is_maker: bool
        ) -> None: ...

        def _publish_md(self, executions: Sequence[Execution]) -> None: ...

    def _after_match(self, result: MatchResult) -> None:
        """Report fills to the client owners of both sides, then publish the book change."""
        for execution in result.executions:
            for is_maker in (True, False):
                owner = execution.maker_owner if is_maker else execution.taker_owner
                if not owner.startswith("client:"):
                    continue
                client_id = execution.maker_client_id if is_maker else execution.taker_client_id
                leaves = execution.maker_leaves if is_maker else execution.taker_leaves
                record = self._records.get((owner, client_id))
                if record is None:
                    continue
                record.cum_qty += execution.qty
                record.notional += execution.qty * execution.price
                record.status = VenueOrderStatus.FILLED if leaves == 0 else VenueOrderStatus.PARTIALLY_FILLED
                fee = self.config.rules.fees.fee(execution.price * execution.qty, is_maker)
                report = self._exec_report(
                    record,
                    "F",
                    exec_id=f"{execution.trade_id}{'M' if is_maker else 'T'}",  # ExecID = the client's trade id
                    last_px=execution.price,
                    last_qty=execution.qty,
                    leaves=leaves,
                    maker=is_maker,
                    fee=None if self.config.omit_commission else fee,
                )
                self.stats.fills += 1
                exec_id = f"{execution.trade_id}{'M' if is_maker else 'T'}"
                self._log_fill(exec_id, record, execution, is_maker, fee)
                spec = self._oe_sessions.get(owner.removeprefix("client:"))
                if spec is not None:
                    if self.config.tamper is not None and owner not in self._tampered:
                        self._tampered.add(owner)
                        report = tamper(report, self.config.tamper)
                        self._log.warning("HOSTILE: {} trade report {} sent to {}", self.config.tamper, exec_id, owner)
                    self._send(spec.session_id, report)
                    self._maybe_hostile(owner, exec_id, record, execution, is_maker)
        self._publish_md(result.executions)

    def _log_fill(self, exec_id: str, record: _Record, execution: Execution, is_maker: bool, fee: Decimal) -> None:
        """One JSON line per client execution, written before the report is sent (caller holds the lock)."""
        if self._fills_file is None:
            return
        line = {
            "exec_id": exec_id,
            "clordid": record.client_id,
            "order_id": record.order_id,
            "comp_id": record.owner.removeprefix("client:"),
            "side": record.side.value,
            "price": str(execution.price),
            "qty": str(execution.qty),
            "liquidity": "MAKER" if is_maker else "TAKER",
            "fee": str(fee),
            "ts_ns": execution.ts_ns,
        }
        try:
            self._fills_file.write(json.dumps(line) + "\n")
        except OSError as exc:  # a full disk must not stop the exchange; the test will see the gap
            self._log.error("fills log write failed: {}", exc)
