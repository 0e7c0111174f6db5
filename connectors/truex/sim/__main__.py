"""``mmkit sim truex`` / ``python -m connectors.truex.sim``: run the local TrueX FIX exchange.

The client's API key and secret come from the same environment variables
the connector reads (TRUEX_API_KEY / TRUEX_SECRET_KEY), so a demo only sets
them once. The exchange runs until interrupted and prints its own view of
open orders on the way out.

For tests that run it as a separate process, ``--fills-log PATH`` appends
one JSON line per execution of a client order (flushed per line, so it
survives a kill of either side), and ``--state-out PATH`` writes the
exchange's final view (open orders and every order record) as JSON on exit.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from decimal import Decimal
from pathlib import Path

from loguru import logger

from connectors.truex.sim.driver import MarketDriver, RandomWalk, RecordingPrices
from connectors.truex.sim.exchange import ExchangeAccount, ExchangeConfig, TrueXExchange
from connectors.truex.sim.hostile import KINDS
from connectors.truex.sim.tamper import KINDS as TAMPER_KINDS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmkit sim truex", description="Local TrueX FIX exchange on loopback")
    parser.add_argument("--oe-port", type=int, default=9876)
    parser.add_argument("--md-port", type=int, default=9877)
    parser.add_argument("--oe-comp-id", default="MMKIT_OE", help="the client's OE SenderCompID")
    parser.add_argument("--md-comp-id", default="MMKIT_MD", help="the client's MD SenderCompID")
    parser.add_argument("--start-price", default="60000")
    parser.add_argument("--volatility-bps", default="5")
    parser.add_argument("--recording", type=Path, default=None, help="replay a Binance recording directory")
    parser.add_argument("--speed", type=float, default=1.0, help="replay speed of --recording")
    parser.add_argument("--interval-ms", type=int, default=250)
    parser.add_argument("--taker-reach-bps", default="15", help="how far from the reference takers will trade")
    parser.add_argument("--taker-probability", type=float, default=0.3, help="chance of a taker each step")
    parser.add_argument("--taker-qty", default="0.001", help="size of each simulated taker")
    parser.add_argument("--no-rate-limits", action="store_true", help="lift the 10/s and 300/min limits")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--extended",
        action="store_true",
        help="also answer 35=H and 35=AF (by default only TrueX's published set D, F, G -> 8, 9 is served)",
    )
    parser.add_argument(
        "--hostile",
        choices=KINDS,
        default=None,
        help="fault tests: after each client's first real fill, send one bad trade report of this kind",
    )
    parser.add_argument(
        "--tamper",
        choices=TAMPER_KINDS,
        default=None,
        help="fault tests: damage each client's first real trade report this way (connectors/truex/sim/tamper.py)",
    )
    parser.add_argument(
        "--omit-commission", action="store_true", help="send fills without Commission(12), as TrueX may"
    )
    parser.add_argument(
        "--fills-log",
        type=Path,
        default=None,
        metavar="PATH",
        help="append one JSON line per execution of a client order (the venue's own record)",
    )
    parser.add_argument(
        "--state-out",
        type=Path,
        default=None,
        metavar="PATH",
        help="on exit, write the exchange's open orders and order records as JSON",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    api_key, secret = os.environ.get("TRUEX_API_KEY"), os.environ.get("TRUEX_SECRET_KEY")
    if not api_key or not secret:
        logger.error("set TRUEX_API_KEY and TRUEX_SECRET_KEY (the keys the simulated venue accepts)")
        return 2
    exchange = TrueXExchange(
        ExchangeConfig(
            oe_port=args.oe_port,
            md_port=args.md_port,
            accounts=(ExchangeAccount(args.oe_comp_id, args.md_comp_id, api_key, secret),),
            enforce_rate_limits=not args.no_rate_limits,
            fills_log=str(args.fills_log) if args.fills_log is not None else None,
            strict=not args.extended,
            omit_commission=args.omit_commission,
            hostile=args.hostile,
            tamper=args.tamper,
        )
    )
    prices: RandomWalk | RecordingPrices
    if args.recording is not None:
        prices = RecordingPrices(args.recording, speed=args.speed)
    else:
        prices = RandomWalk(Decimal(args.start_price), Decimal(args.volatility_bps), seed=args.seed)
    driver = MarketDriver(
        exchange,
        prices,
        interval_s=args.interval_ms / 1000,
        taker_probability=args.taker_probability,
        taker_qty=Decimal(args.taker_qty),
        taker_reach_bps=Decimal(args.taker_reach_bps),
        seed=args.seed,
    )
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    exchange.start()
    driver.step()
    driver.start()
    logger.info("TrueX sim: OE on 127.0.0.1:{}, MD on 127.0.0.1:{}", args.oe_port, args.md_port)
    try:
        stop.wait()
    finally:
        driver.stop()
        open_orders = exchange.open_orders()
        logger.info("client orders still open on the exchange: {}", len(open_orders))
        if args.state_out is not None:
            exchange.write_state(args.state_out)
        exchange.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
