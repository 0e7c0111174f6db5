"""Checks a start makes on the instance's store and journal before it trusts them as its ledger.

Why a module of its own: each answers one question about *whose* ledger this
is, and each refuses with EngineStartError (exit 3) before anything is sent:

* is another process using the instance (:func:`claim_instance`: the store's
  instance lock, mmkit.store.instance_lock, and the journal lock)?
* does the store belong to this venue account (:func:`check_store`;
  mmkit.app.venue_account)? The journal's account is checked by the caller
  as soon as it is read, before it is appended to.
* did the wall clock go backwards since the last session (a warning, not a
  refusal: mmkit.app.session_clock)?

And one about the strategy, asked by ``mmkit check`` and by ``mmkit start``
before anything is built (:func:`check_first_quotes`, :func:`preflight`):
would the venue take the quotes the controller hands over? Its first ladder,
on a synthetic tick, must fit the venue's lot, minimum size and notional and
price band, and one side of it must fit ``risk.inventory.max_position``.
Otherwise the executor drops every target on every tick and the instance
runs "healthy" quoting nothing: a ConfigError naming ``strategy.params``.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger

from mmkit.app.engine import EngineStartError
from mmkit.app.session_clock import clock_warning_at_start
from mmkit.app.venue_account import store_account_refusal
from mmkit.conf import ConfigError
from mmkit.model import Side
from mmkit.store.db import redact_url
from mmkit.store.instance_lock import InstanceInUse, StoreInstanceLock
from mmkit.store.journal import Journal, JournalInUse

if TYPE_CHECKING:
    from mmkit.app.config import EngineConfig, LoadedConfig
    from mmkit.instrument import Instrument
    from mmkit.model import TargetQuote
    from mmkit.risk.inventory import InventoryManager
    from mmkit.strategy import Controller


def claim_instance(lock: StoreInstanceLock | None, journal: Journal | None, instance: str) -> None:
    """Take the instance on its store and its journal for this process; EngineStartError if another holds one."""
    try:
        if lock is not None:
            lock.acquire()
        if journal is not None:
            journal.lock()  # before it is read: no other process may append to (or checkpoint) it
    except (InstanceInUse, JournalInUse) as exc:
        raise EngineStartError(str(exc)) from exc
    except Exception as exc:
        raise EngineStartError(f"cannot lock instance {instance!r} for this process: {exc}") from exc


def check_store(recorder: Any, instance: str, session_id: str, accounts: dict[str, str]) -> str | None:
    """Refuse a store of another account; return the clock warning to log and audit (None: none)."""
    refusal = store_account_refusal(recorder.engine, instance, accounts, redact_url(recorder.url))
    if refusal is not None:
        raise EngineStartError(refusal)
    clock = clock_warning_at_start(recorder.engine, instance, session_id)
    if clock is not None:  # the ledger is whole, the times are out of order: say so (mmkit status does too)
        logger.bind(instance=instance, session=session_id).warning("{}", clock)
    return clock


#: Fair price of the synthetic tick when the config names none (BTC-PYUSD territory); ``--fair`` overrides it.
DEFAULT_CHECK_FAIR = Decimal(60000)


def synthetic_fair(config: EngineConfig) -> Decimal:
    """The fair price of the synthetic tick: the random walk's start, else :data:`DEFAULT_CHECK_FAIR`."""
    walk = config.reference.random_walk
    return walk.start_price if walk is not None else DEFAULT_CHECK_FAIR


def preflight(loaded: LoadedConfig, fair: Decimal | None = None) -> None:
    """``mmkit start``'s check of the strategy, before anything is built or connected.

    Why a controller of its own: the synthetic tick calls ``on_start`` and ``on_tick``, which may keep
    state (a volatility window, the time of the last update); the controller that trades must not start
    with a made-up price in it.
    """
    from mmkit.app.build import build_controller, risk_settings, venue_rules
    from mmkit.risk.inventory import InventoryManager

    controller = build_controller(loaded)
    risk = risk_settings(loaded)
    instrument = venue_rules(loaded.config.venue, loaded.path, "venue").instrument(loaded.config.venue.symbol)
    inventory = InventoryManager(risk.inventory, symbol_base=instrument.base)
    check_first_quotes(controller, instrument, inventory, loaded.path,
                       fair if fair is not None else synthetic_fair(loaded.config))


def check_first_quotes(
    controller: Controller, instrument: Instrument, inventory: InventoryManager, file: Path, fair: Decimal,
    now_ns: int = 0,
) -> None:
    """One ``on_tick`` on a synthetic context (a one-level book around ``fair``, full confidence, flat).

    A raise or a malformed result names ``strategy.controller``; quotes the venue would refuse, or a
    ladder side larger than ``max_position``, name ``strategy.params``.
    """
    from mmkit.app.strategy_runner import checked_targets
    from mmkit.book.book import OrderBook
    from mmkit.model import BookSnapshot, FairValue
    from mmkit.strategy import QuoteSizeError, StrategyContext

    tick, lot = instrument.finest_increments()
    step = max(tick, fair * Decimal("0.0001"))
    bid = instrument.round_price(fair - step, Side.BUY)
    ask = instrument.round_price(fair + step, Side.SELL)
    size = max(lot, instrument.min_qty) * 100
    book = OrderBook(tick, lot, instrument.venue, instrument.symbol)
    book.apply_snapshot(BookSnapshot(instrument.venue, instrument.symbol, 1, ((bid, size),), ((ask, size),), 0, 0))
    ctx = StrategyContext(now_ns=now_ns, instrument=instrument, book=book, fair=FairValue(fair, 1.0, now_ns, sources=1),
                          position=Decimal(0), inventory=inventory)
    name = controller.name
    try:
        controller.on_start(ctx)
        targets = checked_targets(controller, controller.on_tick(ctx))
    except QuoteSizeError as exc:  # a configured size the venue refuses: the parameter is the mistake
        raise ConfigError(file, f"strategy.params.{exc.param}",
                          f"the first quotes of {name} (synthetic tick at fair {fair}): {exc}") from exc
    except Exception as exc:
        raise ConfigError(file, "strategy.controller",
                          f"{name} failed on a synthetic tick (fair {fair}): {type(exc).__name__}: {exc}") from exc
    for target in targets:
        problem = quote_refusal(instrument, target, fair)
        if problem is not None:
            raise ConfigError(file, "strategy.params",
                              f"the first quotes of {name} (synthetic tick at fair {fair}) would be refused by "
                              f"{instrument.venue}: {problem}; nothing would be quoted")
    limit = inventory.max_position
    for side in (Side.BUY, Side.SELL):
        total = sum((t.qty for t in targets if t.side is side), Decimal(0))
        if total > limit:
            raise ConfigError(file, "strategy.params",
                              f"one side of the ladder quotes {total} ({side.value}) at once, more than "
                              f"risk.inventory.max_position ({limit}): a single sweep would breach the limit")


def quote_refusal(instrument: Instrument, target: TargetQuote, fair: Decimal) -> str | None:
    """Why the venue would refuse ``target`` once snapped to its grid as the executor does (None: it would not)."""
    price = instrument.round_price(target.price, target.side)
    qty = instrument.round_qty(target.qty, price) if price > 0 else target.qty
    reason = instrument.check_order(price, qty, fair)
    if reason is None:
        return None
    what = f"{target.side.value} L{target.level} {target.qty} @ {target.price}"
    return f"{what}: {instrument.explain(price, qty, reason)}"

