"""The starting balances of a simulated account: given, or the documented default, checked and reported.

Given by, in order (the first that is there wins): ``mmkit backtest --balance ASSET=AMOUNT``; the
strategy file's ``simulation.balances`` (also what a sweep file's ``balances`` key and a swept
``simulation.balances.<ASSET>`` parameter write into each trial's config); else the default below (a
backtest) or the demo account (mmkit.app.build: the sim connector and paper trading). Every way in goes
through :func:`check_amounts` and :func:`check_balances`, so a bad amount or an asset the quoted
instrument does not have is refused the same way, naming the option or key, before anything runs.

Why a module of its own: a simulated spot venue refuses an order its
balances cannot pay for (:mod:`mmkit.sim.venue_accounts`), so what the
account starts with decides which orders the backtest may fill. Before
this, a backtest's venue started with nothing and let balances go
negative, booking sells of coins it never held. A run that names no
balances must not become unlimited either: it gets the default below,
stated in ``report["balances"]`` with where it came from.

The default (spot instruments): the strategy's own inventory limit in the
base asset (``risk.inventory.max_position``: the executor keeps our
position and resting orders within it, so a maker that keeps its limit
never sells a coin it does not hold), and twice that position's value at
the first recorded price in the quote asset (room for buying the whole
limit, its fees, and a price that rises meanwhile). Contracts (perpetuals,
futures) are margined; margin is not modelled, so they get no default
and no check (``Instrument.spot``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from loguru import logger

from mmkit.backtest.replay import ReplayEvent
from mmkit.conf import ConfigError
from mmkit.connector import VenueRules, load_venue_rules
from mmkit.instrument import Instrument
from mmkit.model import BookSnapshot, Trade
from mmkit.sim.base_venue import SimulatedVenue

if TYPE_CHECKING:
    from mmkit.app.backtest_setup_choice import SetupChoice
    from mmkit.app.config import LoadedConfig

__all__ = [
    "DEFAULT_RULE",
    "DEMO_FUNDS_BASE",
    "DEMO_FUNDS_QUOTE",
    "BalanceError",
    "balances_section",
    "check_amounts",
    "check_balances",
    "default_balances",
    "demo_funds",
    "file_source",
    "format_balances",
    "parse_balances",
    "simulated_account",
    "starting_balances",
]

#: How the default is worked out, as the report and docs/backtesting.md state it.
DEFAULT_RULE = ("default: risk.inventory.max_position of the base asset, and twice that position's value "
                "at the first recorded price of the quote asset, rounded up to a whole unit")


#: Where ``mmkit backtest --balance`` balances come from, as the report states it.
CLI_SOURCE = "--balance"


def file_source(config_path: Path) -> str:
    """How the report names balances read from a strategy file's ``simulation.balances``."""
    return f"simulation.balances ({config_path.name})"


@attrs.define(eq=False)
class BalanceError(ValueError):
    """A starting balance that cannot be used: ``key`` (``simulation.balances.BTC``) and why."""

    key: str
    reason: str

    def __str__(self) -> str:
        return f"{self.key}: {self.reason}"


def _amount(value: object, key: str) -> Decimal:
    """One amount, read as the config reads numbers (mmkit.conf: exact Decimals from text, never a float)."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise BalanceError(key, f"expected a number, got {value!r}")
    if isinstance(value, float):  # a library caller's float: not what was meant, exactly (0.1 is 0.1000000000000000055)
        raise BalanceError(key, f"{value!r} is a float, not exact: give a Decimal or the number's text")
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise BalanceError(key, f"not a number: {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise BalanceError(key, f"a starting balance is a finite amount of at least 0, got {value}")
    return amount


def check_amounts(raw: object, key: str) -> dict[str, Decimal]:
    """``raw`` (asset -> amount) as exact Decimals; BalanceError naming ``key.ASSET`` for the first bad one."""
    if not isinstance(raw, Mapping):
        raise BalanceError(key, f"expected a mapping of asset to amount, e.g. {{BTC: 1, USDT: 100000}}, got {raw!r}")
    amounts: dict[str, Decimal] = {}
    for asset, value in raw.items():
        if not isinstance(asset, str) or not asset.strip():
            raise BalanceError(key, f"{asset!r} is not an asset name")
        amounts[asset] = _amount(value, f"{key}.{asset}")
    return amounts


def check_balances(raw: object, inst: Instrument, key: str) -> dict[str, Decimal]:
    """:func:`check_amounts`, and every asset one of ``inst``'s two (BalanceError naming ``key.ASSET`` otherwise).

    Why an asset of neither side is refused, not ignored: the simulated venue books only the instrument's
    base and quote, so a third asset is a misspelling (XBT for BTC) or a file written for another market,
    and the asset meant would start at 0 with every order refused for a reason nobody reads.
    """
    amounts = check_amounts(raw, key)
    for asset in amounts:
        if asset not in (inst.base, inst.quote):
            raise BalanceError(f"{key}.{asset}", f"{asset} is not an asset of {inst.symbol} "
                                                 f"({inst.base} or {inst.quote})")
    return amounts


def parse_balances(texts: Iterable[str], inst: Instrument) -> dict[str, Decimal]:
    """``--balance ASSET=AMOUNT`` options as a mapping; ValueError (naming the option) for a bad one.

    Only the quoted instrument's two assets are accepted: a misspelt asset would otherwise leave the real
    one at zero and every order refused, with the cause hidden in a mapping nobody reads.
    """
    balances: dict[str, Decimal] = {}
    for text in texts:
        asset, sep, amount = text.partition("=")
        asset = asset.strip()
        if not sep or not asset:
            raise ValueError(f"--balance {text}: expected ASSET=AMOUNT, e.g. --balance {inst.base}=1")
        if asset not in (inst.base, inst.quote):
            raise ValueError(f"--balance {text}: {asset} is not an asset of {inst.symbol} "
                             f"({inst.base} or {inst.quote})")
        if asset in balances:
            raise ValueError(f"--balance {text}: {asset} is given twice")
        try:
            value = Decimal(amount.strip())
        except InvalidOperation:
            raise ValueError(f"--balance {text}: {amount.strip()!r} is not a number") from None
        if not value.is_finite() or value < 0:
            raise ValueError(f"--balance {text}: a starting balance is a finite amount of at least 0")
        balances[asset] = value
    return balances


def given_balances(loaded: LoadedConfig, options: Sequence[str] | None, choice: SetupChoice,
                    events: Sequence[ReplayEvent]) -> tuple[dict[str, Decimal] | None, str]:
    """(starting balances, source) of a backtest of ``loaded`` (setup ``choice``); (None, "") for the default.

    ``--balance`` options win over the file's ``simulation.balances``, and replace them whole (an asset
    the options leave out starts at 0, as ``--balance`` documents, whatever the file says). ValueError
    naming the option for a bad one; ConfigError naming the file and ``simulation.balances.<ASSET>``
    for a file's balances that do not fit the quoted instrument.
    """
    if options:
        return parse_balances(options, quoted_instrument(choice, events)), CLI_SOURCE
    configured = loaded.config.simulation.balances
    if configured is None:
        return None, ""
    try:
        return (check_balances(configured, quoted_instrument(choice, events), "simulation.balances"),
                file_source(loaded.path))
    except BalanceError as exc:
        raise ConfigError(loaded.path, exc.key, f"{exc.reason}, the instrument this backtest quotes") from None


def quoted_instrument(choice: SetupChoice, events: Sequence[ReplayEvent]) -> Instrument:
    """The instrument a backtest will quote, as :func:`mmkit.app.backtest_cmd.run_backtest` picks it."""
    if choice.rules is not None:
        rules = choice.rules
    else:
        rules = load_venue_rules("sim" if choice.setup == "sim" else events[0].venue)
    symbol = choice.symbol or (rules.instruments[0].symbol if choice.setup == "sim" else events[0].symbol)
    return rules.instrument(symbol)


def first_price(events: Sequence[ReplayEvent]) -> Decimal | None:
    """The first recorded price: a snapshot's mid (both sides listed), or a trade's price, whichever comes first."""
    for event in events:
        if isinstance(event, BookSnapshot) and event.bids and event.asks:
            return (event.bids[0][0] + event.asks[0][0]) / 2
        if isinstance(event, Trade):
            return event.price
    return None


def default_balances(inst: Instrument, max_position: Decimal, price: Decimal | None) -> dict[str, Decimal]:
    """The documented default (:data:`DEFAULT_RULE`) for spot ``inst``; ValueError without a price to value it."""
    if price is None or price <= 0:
        raise ValueError("no recorded price to set the default starting balances from: "
                         f"give them (--balance {inst.base}=AMOUNT --balance {inst.quote}=AMOUNT)")
    quote = (2 * max_position * price).to_integral_value(rounding=ROUND_CEILING)
    return {inst.base: max_position, inst.quote: quote}


def starting_balances(
    inst: Instrument, given: Mapping[str, Decimal] | None, max_position: Decimal, events: Sequence[ReplayEvent],
    source: str = "given",
) -> tuple[dict[str, Decimal], str]:
    """(balances, where they came from) for a backtest quoting ``inst``.

    ``given`` (even empty: an account that holds nothing) is used as it is, an asset not named starting at 0,
    after :func:`check_balances` (ValueError naming the asset); ``source`` says where it came from.
    None: the default for a spot instrument; nothing for a contract (margin is not modelled).
    """
    if given is not None:
        full = {inst.base: Decimal(0), inst.quote: Decimal(0)}
        full.update(check_balances(given, inst, "balances"))
        return full, source
    if not inst.spot:
        return {}, "none: a margined contract (balances are not checked)"
    return default_balances(inst, max_position, first_price(events)), DEFAULT_RULE


def balances_section(venue: SimulatedVenue, inst: Instrument, start: Mapping[str, Decimal], source: str
                     ) -> dict[str, Any]:
    """``report["balances"]``: what the account started and ended with, and whether orders were held to it."""
    end = {b.asset: str(b.total) for b in venue.balances()}
    return {
        "enforced": inst.spot,
        "note": ("spot: an order the balances cannot pay for is rejected INSUFFICIENT_FUNDS" if inst.spot
                 else "margined contract: balances are not checked (margin is not modelled)"),
        "source": source,
        "start": {asset: str(amount) for asset, amount in sorted(start.items())},
        "end": dict(sorted(end.items())),
        "overdrafts": venue.overdrafts,
    }


#: The account of a simulated venue in a demo, ``mmkit start`` on the sim connector, paper trading and a simulated
#: hedge venue: a funded desk's, in the instrument's base and quote. A spot order is checked against it as a real
#: venue checks it (mmkit.sim.venue_accounts); backtests set theirs apart (mmkit.app.backtest_balances).
DEMO_FUNDS_BASE = Decimal(1_000)
DEMO_FUNDS_QUOTE = Decimal(1_000_000_000)


def demo_funds(rules: VenueRules, symbol: str) -> dict[str, Decimal]:
    """The funded demo account (:data:`DEMO_FUNDS_BASE`, :data:`DEMO_FUNDS_QUOTE`) of ``symbol``'s assets."""
    instrument = rules.instrument(symbol)
    return {instrument.base: DEMO_FUNDS_BASE, instrument.quote: DEMO_FUNDS_QUOTE}


def simulated_account(loaded: LoadedConfig, rules: VenueRules, symbol: str) -> dict[str, Decimal]:
    """The starting account of the simulated quoting venue (sim connector, paper): the file's
    ``simulation.balances`` (an asset left out at 0), else :func:`demo_funds`; logged with its source.

    A balance of an asset ``symbol`` does not have is a ConfigError naming ``simulation.balances.<ASSET>``
    (mmkit.app.backtest_balances.check_balances says why), raised while building: before anything runs.
    """
    configured = loaded.config.simulation.balances
    if configured is None:
        funds, source = demo_funds(rules, symbol), "the demo account (no simulation.balances in the file)"
    else:
        instrument = rules.instrument(symbol)
        try:
            given = check_balances(configured, instrument, "simulation.balances")
        except BalanceError as exc:
            raise ConfigError(loaded.path, exc.key, exc.reason) from None
        funds, source = {instrument.base: Decimal(0), instrument.quote: Decimal(0), **given}, file_source(loaded.path)
    logger.info("simulated {} account starts with {} ({})", symbol,
                ", ".join(f"{asset} {amount}" for asset, amount in funds.items()), source)
    return funds


def format_balances(report: Mapping[str, Any]) -> list[str]:
    """The terminal's lines: starting and ending balances, and orders refused by reason (loud when for funds)."""
    lines: list[str] = []
    section = report.get("balances")
    if section:
        start = ", ".join(f"{a} {v}" for a, v in section["start"].items()) or "nothing"
        end = ", ".join(f"{a} {v}" for a, v in section["end"].items()) or "nothing"
        checked = "spot, enforced" if section["enforced"] else "not checked (margined contract)"
        lines.append(f"  {'balances'.ljust(31)}  start {start} ({section['source']}); end {end}; {checked}")
    rejections = report.get("rejections")
    if rejections and (rejections["orders"] or rejections["replaces"]):
        by_reason = {**rejections["orders_by_reason"]}
        for reason, count in rejections["replaces_by_reason"].items():
            by_reason[f"{reason} (replace)"] = count
        text = ", ".join(f"{reason} {count:,}" for reason, count in by_reason.items())
        mark = "!!" if any(r.startswith("INSUFFICIENT_FUNDS") for r in by_reason) else "  "
        lines.append(f"{mark}{'rejected by the venue'.ljust(31)}  {text}")
    return lines
