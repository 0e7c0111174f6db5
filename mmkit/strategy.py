"""The controller API: what a strategy author subclasses and what it may see.

A controller is pure: it gets a read-only :class:`StrategyContext` (settled
state of this tick) and returns the full set of :class:`TargetQuote` it wants
resting. It never places or cancels orders itself; the executor reconciles
targets with live orders, within the venue's rules and rate limits. That is
what makes a controller testable in isolation and identical live and in a
backtest.

Strategies import only this module and :mod:`mmkit.model` (plus whatever
helpers of mmkit they like); never a connector.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, ClassVar, Protocol

import attrs

from mmkit.instrument import Instrument
from mmkit.model import FairValue, Fill, Level, RejectReason, Side, TargetQuote


class QuoteSizeError(ValueError):
    """A configured quote size the venue would refuse: a configuration error, never a quiet gap in the quotes.

    Why: the built-in strategies dropped such a level without a word (their
    ``check_order`` filter), so a size below the venue's lot, minimum size or
    minimum notional started, ran "healthy" and quoted nothing, for ever.
    Raised from ``on_tick`` it is a controller failure (counted, named in the
    log, quoting halted after ``engine.controller_max_failures``); from the
    start-up check (``mmkit check``, ``mmkit start``) a config error naming
    ``strategy.params.<param>``.
    """

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        #: The strategy parameter the size comes from (a key under ``strategy.params``).
        self.param = param


def venue_size(instrument: Instrument, price: Decimal, size: Decimal, *, param: str) -> Decimal:
    """``size`` rounded down to the venue's lot at ``price``; :class:`QuoteSizeError` if the venue refuses it there.

    For the size a strategy's configuration asks for (its innermost level): a
    level that *by design* may fall below the minimum (a decaying ladder's
    outer levels) is filtered by the strategy, not checked here.
    """
    qty = instrument.round_qty(size, price)
    reason = instrument.check_order(price, qty)
    if reason is RejectReason.INVALID_QTY or reason is RejectReason.MIN_NOTIONAL:
        raise QuoteSizeError(param, f"{param} {size} at {price} ({instrument.venue} {instrument.symbol}): "
                                    f"{instrument.explain(price, qty, reason)}; nothing could be quoted")
    return qty


class BookView(Protocol):
    """Read-only L2 book, as the controller sees it."""

    def best_bid(self) -> Level | None: ...

    def best_ask(self) -> Level | None: ...

    def mid(self) -> Decimal | None: ...

    def depth(self, side: Side, levels: int) -> list[Level]: ...

    def vwap(self, side: Side, qty: Decimal) -> Decimal | None:
        """Average price to take ``qty`` from ``side`` (BUY side = bids), None if too thin."""

    def price_for_volume(self, side: Side, qty: Decimal) -> Decimal | None:
        """Worst price reached when taking ``qty`` from ``side``."""


class QuoteMode(enum.Enum):
    """What inventory limits allow on one side."""

    NORMAL = "NORMAL"
    WIDEN = "WIDEN"  # near the limit: quote, but further away
    STOP = "STOP"  # at the limit: do not add to the position on this side


class InventoryView(Protocol):
    """Read-only inventory state (implemented by mmkit.risk.InventoryManager)."""

    @property
    def position(self) -> Decimal: ...

    @property
    def max_position(self) -> Decimal: ...

    def skew_ticks(self) -> Decimal:
        """Signed skew in ticks: positive when long (quotes shift down)."""

    def quote_mode(self, side: Side) -> QuoteMode: ...


class OpenOrderView(Protocol):
    """One of our live orders, read-only."""

    @property
    def client_id(self) -> str: ...

    @property
    def side(self) -> Side: ...

    @property
    def price(self) -> Decimal | None: ...

    @property
    def qty(self) -> Decimal: ...

    @property
    def filled_qty(self) -> Decimal: ...


@attrs.frozen(slots=True)
class StrategyContext:
    """Everything a controller may read on one tick; nothing it may change."""

    now_ns: int
    instrument: Instrument
    book: BookView | None
    fair: FairValue
    position: Decimal
    inventory: InventoryView | None = None
    open_orders: tuple[OpenOrderView, ...] = ()
    #: True while the engine forbids quoting (kill switch, reconciliation); controllers may skip work.
    halted: bool = False

    @property
    def fair_price(self) -> Decimal | None:
        return self.fair.price


class Controller(abc.ABC):
    """Base class of every strategy.

    Subclasses set ``config_class`` to an attrs class describing their
    parameters (validated from YAML, unknown keys rejected) and implement
    :meth:`on_tick`. ``on_tick`` must return the complete set of quotes the
    controller wants; an empty list means "nothing resting".

    ``on_tick`` is abstract, so a controller that forgot it cannot even be
    instantiated (``mmkit check`` says so). When a hook raises, or
    ``on_tick`` returns anything but a list or tuple of TargetQuote, the
    engine counts it, quotes nothing that tick, halts quoting after
    ``engine.controller_max_failures`` failed ticks in a row, and the run
    exits with code 4 (see docs/writing-a-strategy.md).
    """

    config_class: ClassVar[type[Any] | None] = None
    #: What ``on_tick`` reads beyond the fair value, position, inventory, our open orders, ``halted``
    #: and the instrument: ``"book"`` (``ctx.book``) and/or ``"time"`` (``ctx.now_ns``, ``ctx.fair.ts``,
    #: or any state that moves with time). The engine asks ``on_tick`` again only when one of the inputs it reads
    #: changed (or a fill arrived); otherwise the tick reuses its last answer, so a tick that changes
    #: nothing costs nearly nothing. The default declares both, so a controller that says nothing is
    #: asked every tick; declare ``frozenset()`` only when ``on_tick`` is a function of those inputs
    #: (and of the fills it heard in ``on_fill``).
    reads: ClassVar[frozenset[str]] = frozenset({"book", "time"})

    def __init__(self, config: Any = None) -> None:
        if self.config_class is not None and config is None:
            config = self.config_class()
        self.config = config

    @property
    def name(self) -> str:
        return type(self).__name__

    def on_start(self, ctx: StrategyContext) -> None:  # noqa: B027 (an optional hook)
        """Called once before the first tick (optional hook)."""

    @abc.abstractmethod
    def on_tick(self, ctx: StrategyContext) -> Sequence[TargetQuote]:
        """The complete list of quotes wanted now (``[]`` = nothing resting); must not place orders itself."""

    def on_fill(self, fill: Fill) -> None:  # noqa: B027 (an optional hook)
        """Called for each new (deduplicated) fill of this controller's orders, before the next on_tick."""

    def on_stop(self, ctx: StrategyContext) -> None:  # noqa: B027 (an optional hook)
        """Called once when the engine stops."""
