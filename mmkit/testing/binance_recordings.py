"""Small synthetic Binance recordings (spot, USD-M, COIN-M) in the recorder's line format, for tests.

Why generated and not copied: recordings are licensed data and large; a
test needs a few hundred lines whose every property (chaining rule, symbol,
tick, where the snapshot sits, where a gap is) it controls. The messages
have the fields the real streams carry:

* spot diff: ``{"e":"depthUpdate","E","s","U","u","b","a"}``, ids contiguous (``U == previous u + 1``);
* futures diff: adds ``"T"`` and ``"pu"`` (the previous diff's ``u``); ids jump between diffs (futures
  update ids are shared across symbols), COIN-M adds the pair ``"ps"`` and sizes in contracts;
* REST snapshot (``lastUpdateId``, ``bids``, ``asks``; futures add ``E``/``T``, COIN-M ``symbol``/``pair``),
  written a few diffs *after* the diff it corresponds to, as in real recordings;
* trades (``@trade`` for spot and USD-M, ``@aggTrade`` for COIN-M) at the best bid/ask.

The book is a random walk of the mid with ``levels`` levels a side, each diff
restating the levels near the top (absolute quantities, as Binance sends).
"""

from __future__ import annotations

import gzip
import json
import random
from decimal import Decimal
from pathlib import Path
from typing import Literal

import attrs

Market = Literal["spot", "usdm", "coinm"]

_SYMBOL = {"spot": "BTCUSDT", "usdm": "BTCUSDT", "coinm": "BTCUSD_PERP"}
_TICK = {"spot": Decimal("0.01"), "usdm": Decimal("0.1"), "coinm": Decimal("0.1")}
_PRICE_FMT = {"spot": "{:.8f}", "usdm": "{:.2f}", "coinm": "{:.1f}"}


@attrs.define
class SyntheticRecording:
    """The lines of one synthetic recording and where its landmarks are (for assertions)."""

    market: Market
    symbol: str
    lines: list[bytes]
    #: Line index (0-based) of each REST snapshot, and of each diff written after an injected gap.
    snapshot_lines: list[int] = attrs.Factory(list)
    gap_lines: list[int] = attrs.Factory(list)
    diffs: int = 0
    trades: int = 0

    def write(self, directory: Path, parts: int = 1, stem: str = "rec") -> list[Path]:
        """Write the lines as ``parts`` consecutive gzip files (``<stem>_0.gz``, ...); returns their paths."""
        directory.mkdir(parents=True, exist_ok=True)
        size = -(-len(self.lines) // parts)
        paths = []
        for index in range(parts):
            chunk = self.lines[index * size : (index + 1) * size]
            path = directory / f"{stem}_{index}.gz"
            with gzip.open(path, "wb") as handle:
                handle.write(b"\n".join(chunk) + b"\n")
            paths.append(path)
        return paths


def synthetic_recording(
    market: Market,
    *,
    seconds: float = 60.0,
    start_ns: int = 1_723_161_260_000_000_000,
    seed: int = 1,
    levels: int = 20,
    snapshot_after_diffs: int = 3,
    gap_after_s: float | None = None,
    snapshot_again_after_s: float | None = None,
    step_ticks: int = 10,
    trades_per_s: float = 8.0,
    sweep_ticks: int = 40,
) -> SyntheticRecording:
    """A recording of ``seconds`` of one market: a diff every 100 ms, trades, one REST snapshot.

    ``gap_after_s``: one diff is left out there (the chain breaks); ``snapshot_again_after_s``: a second
    REST snapshot there (a resync). ``step_ticks``: the largest move of the mid per 100 ms, in ticks;
    ``sweep_ticks``: how far from the mid a trade may print (takers that sweep several levels).
    """
    rng = random.Random(seed)
    symbol = _SYMBOL[market]
    tick = _TICK[market]
    price_fmt = _PRICE_FMT[market]
    stream = symbol.lower()
    mid_ticks = int(Decimal(61_000) / tick)
    book: dict[str, dict[int, str]] = {"b": {}, "a": {}}
    rec = SyntheticRecording(market, symbol, [])
    last_u = 50_000_000_000
    latency_ns = 3_000_000
    pending_snapshot: tuple[int, dict[str, dict[int, str]]] | None = None
    snapshot_due: int | None = None
    snapshot_taken = False
    gap_done = gap_after_s is None
    resync_done = snapshot_again_after_s is None
    trade_id = 1_000_000

    def price_text(ticks: int) -> str:
        return price_fmt.format(Decimal(ticks) * tick)

    def size_text() -> str:
        if market == "coinm":
            return str(rng.randint(1, 400))
        if market == "usdm":
            return f"{rng.randint(1, 4000) / 1000:.3f}"
        return f"{rng.randint(1, 400_000) / 100_000:.8f}"

    def line(ts: int, message: dict[str, object]) -> bytes:
        return f"{ts} {json.dumps(message, separators=(',', ':'))}".encode()

    def snapshot_message(lid: int, state: dict[str, dict[int, str]], ts_ms: int) -> dict[str, object]:
        bids = [[price_text(p), q] for p, q in sorted(state["b"].items(), reverse=True)]
        asks = [[price_text(p), q] for p, q in sorted(state["a"].items())]
        message: dict[str, object] = {"lastUpdateId": lid}
        if market != "spot":
            message.update({"E": ts_ms, "T": ts_ms})
        if market == "coinm":
            message.update({"symbol": symbol, "pair": "BTCUSD"})
        message.update({"bids": bids, "asks": asks})
        return message

    steps = int(seconds * 10)
    for step in range(steps):
        ts_ms = start_ns // 1_000_000 + step * 100
        local = ts_ms * 1_000_000 + latency_ns
        mid_ticks += rng.randint(-step_ticks, step_ticks)
        changes: dict[str, list[list[str]]] = {"b": [], "a": []}
        for side, sign in (("b", -1), ("a", 1)):
            wanted = {mid_ticks + sign * (k + 1) for k in range(levels)}
            for price in sorted(set(book[side]) - wanted):
                del book[side][price]
                changes[side].append([price_text(price), "0" if market == "coinm" else "0.00000000"])
            for price in sorted(wanted):
                if price not in book[side] or rng.random() < 0.3:
                    book[side][price] = size_text()
                    changes[side].append([price_text(price), book[side][price]])
        count = len(changes["b"]) + len(changes["a"])
        first = last_u + 1 if market == "spot" else last_u + rng.randint(2, 60)
        u = first + count - 1
        data: dict[str, object] = {"e": "depthUpdate", "E": ts_ms}
        if market != "spot":
            data["T"] = ts_ms
        data["s"] = symbol
        if market == "coinm":
            data["ps"] = "BTCUSD"
        data.update({"U": first, "u": u})
        if market != "spot":
            data["pu"] = last_u
        data.update({"b": changes["b"], "a": changes["a"]})
        skip = not gap_done and step * 0.1 >= (gap_after_s or 0.0)
        if skip:
            gap_done = True  # this diff is lost: the next one does not follow on
        else:
            if rec.gap_lines and rec.gap_lines[-1] == -1:
                rec.gap_lines[-1] = len(rec.lines)
            rec.lines.append(line(local, {"stream": f"{stream}@depth@100ms", "data": data}))
            rec.diffs += 1
        if skip:
            rec.gap_lines.append(-1)
        last_u = u
        # The REST snapshot corresponds to this diff but arrives a few diffs later.
        take = (not snapshot_taken and step == 0) or (
            not resync_done and step * 0.1 >= (snapshot_again_after_s or 0.0)
        )
        if take:
            if snapshot_taken:
                resync_done = True
            snapshot_taken = True
            lid = u if market == "spot" else first + (u - first) // 2
            pending_snapshot = (lid, {"b": dict(book["b"]), "a": dict(book["a"])})
            snapshot_due = step + snapshot_after_diffs
        if pending_snapshot is not None and step == snapshot_due:
            rec.snapshot_lines.append(len(rec.lines))
            rec.lines.append(line(local + 40_000_000, snapshot_message(*pending_snapshot, ts_ms)))
            pending_snapshot = None
        for _ in range(_poisson(rng, trades_per_s / 10)):
            buy = rng.random() < 0.5
            price = mid_ticks + (1 if buy else -1) * rng.randint(1, sweep_ticks)
            trade_id += 1
            qty = size_text()
            tdata: dict[str, object]
            if market == "coinm":
                tdata = {"e": "aggTrade", "E": ts_ms + 5, "a": trade_id, "s": symbol, "p": price_text(price),
                         "q": qty, "f": trade_id, "l": trade_id, "T": ts_ms + 5, "m": not buy}
                name = f"{stream}@aggTrade"
            else:
                tdata = {"e": "trade", "E": ts_ms + 5, "T": ts_ms + 5, "s": symbol, "t": trade_id,
                         "p": price_text(price), "q": qty, "m": not buy}
                name = f"{stream}@trade"
            rec.lines.append(line(local + 5_000_000 + rng.randint(0, 50_000_000), {"stream": name, "data": tdata}))
            rec.trades += 1
    # Lines in receive-time order, as a recorder writes them.
    order = sorted(range(len(rec.lines)), key=lambda i: (int(rec.lines[i].split(b" ", 1)[0]), i))
    position = {old: new for new, old in enumerate(order)}
    rec.lines = [rec.lines[i] for i in order]
    rec.snapshot_lines = [position[i] for i in rec.snapshot_lines]
    rec.gap_lines = [position[i] for i in rec.gap_lines if i >= 0]
    return rec


def _poisson(rng: random.Random, mean: float) -> int:
    count, total = 0, rng.expovariate(1.0)
    while total < mean:
        count += 1
        total += rng.expovariate(1.0)
    return count



__all__ = ["SyntheticRecording", "synthetic_recording"]
