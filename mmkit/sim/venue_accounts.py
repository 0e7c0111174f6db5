"""The simulated venue's accounts: exchange truth about our orders, fills, fees and balances.

Why a module of its own: what the venue knows about each order (filled,
status), what a fill does to the wallet (fee by liquidity, per-asset
balances, an inverse contract's coin-margined position) and what open orders
reserve are the same for every simulated venue, whatever decided the fill.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal
from heapq import heappush

import attrs
from loguru import logger

from mmkit.connector import VenueRules
from mmkit.instrument import Instrument
from mmkit.model import (
    ZERO,
    Balance,
    BalanceUpdate,
    Fill,
    Liquidity,
    OrderCanceled,
    OrderStatusReport,
    RejectReason,
    Side,
    TimeInForce,
    VenueOrderStatus,
)
from mmkit.risk.pnl import Book
from mmkit.risk.settlement import Settlement
from mmkit.sim.fees import FeeModel
from mmkit.sim.latency import Action
from mmkit.sim.venue_plumbing import EventPlumbing

__all__ = ["Accounts", "VenueOrder"]

#: Looked up once: an enum member access goes through the enum metaclass, and every fill asks.
_BUY = Side.BUY
_FILL, _PLACE = Action.FILL, Action.PLACE
_NEW, _PARTIALLY_FILLED, _FILLED = VenueOrderStatus.NEW, VenueOrderStatus.PARTIALLY_FILLED, VenueOrderStatus.FILLED
_CANCELED = VenueOrderStatus.CANCELED

#: The running commitment totals add and subtract here: exactly (no operation rounds), so a total is always the
#: exact sum of what the open orders commit, however many orders came and went (a rounding total would drift).
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)
exact_add, exact_subtract = _EXACT.add, _EXACT.subtract


@attrs.define(slots=True)
class VenueOrder:
    """Exchange truth about one of our orders (one per client id)."""

    client_id: str
    venue_order_id: str
    symbol: str
    side: Side
    price: Decimal | None
    qty: Decimal
    post_only: bool
    tif: TimeInForce
    ts_event: int
    filled: Decimal = ZERO
    status: VenueOrderStatus = VenueOrderStatus.NEW
    #: The asset this order commits while open (a spot limit buy: its quote; a spot sell: its base), or None:
    #: it commits nothing (a market buy, a contract). Set when the order opens at the venue.
    commit_asset: str | None = None
    #: What it commits of ``commit_asset`` now, as counted in the venue's running total (``Accounts._commitments``).
    commitment: Decimal = ZERO

    @property
    def leaves(self) -> Decimal:
        # VenueOrderStatus.is_open spelled out: read several times per order action and per fill.
        status = self.status
        return self.qty - self.filled if status is _NEW or status is _PARTIALLY_FILLED else ZERO


class Accounts(EventPlumbing):
    """Order truth, fills and balances of a simulated venue (mixin of :class:`mmkit.sim.base_venue.SimulatedVenue`)."""

    _rules: VenueRules
    fees: FeeModel

    @property
    def venue(self) -> str:
        return self._venue_name

    def _init_accounts(self, initial_balances: Mapping[str, Decimal] | None) -> None:
        #: ``rules.venue``, read once (every outcome event names it; the rules are frozen and never replaced).
        self._venue_name = self._rules.venue
        self._fill_seq = itertools.count(1)
        self._orders: dict[str, VenueOrder] = {}
        # The orders of ``_orders`` that may still be open, in the same order. Why: every fill asks for
        # balances, which reserve for open orders; scanning every order ever placed made a long
        # backtest quadratic. Closed ones are dropped lazily by ``_open_orders``.
        self._open: dict[str, VenueOrder] = {}
        #: Per asset, what the open spot orders of ``_open`` commit (buys with their worst fee): the sum of their
        #: ``commitment``, kept as they open, fill and close (``_open_commitment``, ``_recommit``, ``_release``).
        #: Why: every order's funds check asks, and summing the open orders each time made it O(open orders).
        self._commitments: dict[str, Decimal] = {}
        self._fills: list[Fill] = []
        # None is an empty account, not an unlimited one: a spot order it cannot pay for is refused.
        self._balances: dict[str, Decimal] = {k: Decimal(v) for k, v in (initial_balances or {}).items()}
        negative = sorted(k for k, v in self._balances.items() if v < 0)
        if negative:
            raise ValueError(f"{self._venue_name}: a starting balance cannot be negative ({', '.join(negative)})")
        #: What one unit of a buy's notional commits from the quote wallet: itself and the worst fee rate (the
        #: fill may be maker or taker), so that no fill of an order the check let in takes the quote below zero.
        schedule = self.fees.schedule
        worst_bps = max(schedule.maker_bps, schedule.taker_bps, ZERO)
        self._buy_commit = 1 + worst_bps / 10_000
        #: Fills of spot orders that took a balance below zero anyway (a market buy that walked the book past
        #: what its check priced it at, or fee rounding): each is logged as an error; a backtest reports them.
        self.overdrafts = 0
        #: Per inverse symbol, the venue's own FIFO book of the position (realized PnL paid into the coin wallet).
        self._contract_books: dict[str, Book] = {}
        #: The rules' instruments by symbol, the first of a symbol listed twice, as ``VenueRules.instrument``.
        #: Never stale: VenueRules is frozen and a venue's rules are never replaced.
        self._instruments: dict[str, Instrument] = {}
        for inst in self._rules.instruments:
            self._instruments.setdefault(inst.symbol, inst)
        #: Per spot symbol, (quote, base): what its buys and its sells commit (contracts commit nothing here).
        self._commit_assets: dict[str, tuple[str, str]] = {
            symbol: (inst.quote, inst.base) for symbol, inst in self._instruments.items() if inst.spot
        }

    def balances(self) -> list[Balance]:
        """Per-asset totals, with what open orders reserve taken out of ``available``.

        Linear: a buy reserves its quote (price x leaves), a sell its base. An
        inverse contract (COIN-M) is margined in the coin on either side: an
        open order reserves the coin value of its contracts (leaves x size /
        price), i.e. margin at 1x leverage, the most a venue would hold, since
        leverage is not modelled. It used to reserve ``price x contracts`` of
        the quote currency, which showed a "USD" wallet no COIN-M account has,
        with a negative balance available.
        """
        return self._balances_of(None)

    def _balances_of(self, wanted: tuple[str, ...] | None) -> list[Balance]:
        """:meth:`balances`, or only its entries for the assets ``wanted`` (what a fill's BalanceUpdate carries).

        Each asset's reservation adds the same orders in the same order either
        way; leaving the other assets out only saves the Decimal work on them.
        """
        reserved: dict[str, Decimal] = {}
        instrument = self._instrument
        index = self._open
        closed: list[str] = []
        # ``_open_orders(None)`` in one pass: every fill asks, and the walk is over the orders still open.
        for client_id, rec in index.items():
            status = rec.status
            if status is not _NEW and status is not _PARTIALLY_FILLED:
                closed.append(client_id)
                continue
            inst = instrument(rec.symbol)
            leaves = rec.qty - rec.filled  # ``rec.leaves`` of an open order, without the property call
            if inst.inverse:
                if rec.price is not None and (wanted is None or inst.base in wanted):
                    margin = Settlement.of(inst).value(rec.price, leaves)
                    reserved[inst.base] = reserved.get(inst.base, ZERO) + margin
            elif rec.side is _BUY:
                if rec.price is not None and (wanted is None or inst.quote in wanted):
                    reserved[inst.quote] = reserved.get(inst.quote, ZERO) + rec.price * leaves
            elif wanted is None or inst.base in wanted:
                reserved[inst.base] = reserved.get(inst.base, ZERO) + leaves
        for client_id in closed:
            del index[client_id]
        balances = self._balances
        if wanted is None:
            assets = set(balances) | set(reserved)
        else:  # the same assets, without a set of every asset held
            assets = {a for a in wanted if a in balances or a in reserved}
        return [
            Balance(a, balances.get(a, ZERO), balances.get(a, ZERO) - reserved.get(a, ZERO))
            for a in sorted(assets)
        ]

    def _funds_problem(
        self, inst: Instrument, side: Side, price: Decimal | None, qty: Decimal, replacing: VenueOrder | None = None,
    ) -> tuple[RejectReason, str] | None:
        """Why a spot venue refuses this order for want of funds, or None (INSUFFICIENT_FUNDS, as real ones do).

        A sell needs the base it sells, a buy the quote of ``price x qty`` and the worst fee on it; what the
        other open orders commit is not available (two sells of 0.6 with 1.0 held: the second is refused).
        ``replacing``: the order a replace cancels, whose commitment is released. A market buy costs what it
        would take from the offers now (every fill is checked again when it is booked: ``overdrafts``).
        Contracts are margined and not checked here (``Instrument.spot``). Cost: a few Decimal operations
        (what the other open orders commit is a running total: ``_committed``).
        """
        assets = self._commit_assets.get(inst.symbol)  # (quote, base) of a spot instrument: ``inst.spot``
        if assets is None:
            return None
        if side is _BUY:
            asset = assets[0]
            if price is None:
                cost = self._market_buy_cost(inst.symbol, qty)
                if cost is None:  # nothing offered: the venue's own rules refuse it (no liquidity)
                    return None
                need = cost * self._buy_commit
            else:
                need = price * qty * self._buy_commit
        else:
            asset, need = assets[1], qty
        held = self._balances.get(asset, ZERO)
        # ``_committed`` spelled out (a call per order).
        committed = self._commitments.get(asset, ZERO)
        if replacing is not None and replacing.commit_asset == asset and replacing.commitment:
            committed = exact_subtract(committed, replacing.commitment)
        available = held - committed
        if need <= available:
            return None
        return (RejectReason.INSUFFICIENT_FUNDS,
                f"insufficient {asset}: needs {need.normalize():f}, {available.normalize():f} available "
                f"({held.normalize():f} held)")

    def _market_buy_cost(self, symbol: str, qty: Decimal) -> Decimal | None:
        """What a market buy of ``qty`` would pay taking the offers now (what it cannot fill is canceled), or None."""
        cost, left = ZERO, qty
        for price, size in self._ask_levels(symbol):
            took = size if size < left else left
            cost += price * took
            left -= took
            if left <= 0:
                break
        return None if left == qty else cost

    def _ask_levels(self, symbol: str) -> list[tuple[Decimal, Decimal]]:
        """The offers a buy of ours could take now, best first (each venue's book)."""
        raise NotImplementedError

    def _committed(self, asset: str, skip: VenueOrder | None) -> Decimal:
        """What the open spot orders other than ``skip`` commit of ``asset`` (buys with their worst fee).

        The running total of ``_commitments`` (``_funds_problem`` spells this out): equal to summing
        ``price x leaves x (1 + worst fee)`` of the open buys and ``leaves`` of the open sells
        (tests/unit/sim/test_venue_commitments.py checks it against that sum after every step of random
        order flows).
        """
        total = self._commitments.get(asset, ZERO)
        if skip is not None and skip.commit_asset == asset and skip.commitment:
            total = exact_subtract(total, skip.commitment)
        return total

    def _open_commitment(self, rec: VenueOrder) -> None:
        """``rec`` opened at the venue (placed, or a replacement, nothing counted yet): count what it commits."""
        assets = self._commit_assets.get(rec.symbol)
        if assets is None:  # a contract: margined, not checked
            return
        if rec.side is _BUY:
            price = rec.price
            if price is None:  # a market buy commits nothing (its cost was checked on the book)
                return
            asset = assets[0]
            now = price * (rec.qty - rec.filled) * self._buy_commit  # the product the sum made (see _recommit)
        else:
            asset = assets[1]
            now = rec.qty - rec.filled
        rec.commit_asset = asset
        rec.commitment = now
        totals = self._commitments
        totals[asset] = exact_add(totals.get(asset, ZERO), now)

    def _recommit(self, rec: VenueOrder) -> None:
        """Bring ``rec``'s part of the running total in line with its status and fills (call after every change)."""
        asset = rec.commit_asset
        if asset is None:
            return
        status = rec.status
        if status is _NEW or status is _PARTIALLY_FILLED:
            price = rec.price
            leaves = rec.qty - rec.filled
            # The same product the sum over open orders made, so that the total is that sum exactly.
            now = price * leaves * self._buy_commit if rec.side is _BUY and price is not None else leaves
        else:
            now = ZERO
        before = rec.commitment
        if now != before:
            totals = self._commitments
            totals[asset] = exact_add(exact_subtract(totals.get(asset, ZERO), before), now)
            rec.commitment = now

    def _release(self, rec: VenueOrder) -> None:
        """``rec`` commits nothing any more: closed, or taken out of ``_open`` (lost, refused after all)."""
        before = rec.commitment
        if before:
            asset = rec.commit_asset
            assert asset is not None
            totals = self._commitments
            totals[asset] = exact_subtract(totals[asset], before)
            rec.commitment = ZERO

    def _instrument(self, symbol: str) -> Instrument:
        """``rules.instrument(symbol)`` from a table (the rules are frozen; their lookup is a linear scan)."""
        inst = self._instruments.get(symbol)
        return self._rules.instrument(symbol) if inst is None else inst

    def order_truth(self, client_id: str) -> OrderStatusReport | None:
        """What the venue knows about ``client_id`` right now (for tests and drivers)."""
        rec = self._orders.get(client_id)
        return None if rec is None else self._report(rec, self._venue_time)

    @property
    def fills(self) -> list[Fill]:
        return list(self._fills)

    def fills_since(self, index: int) -> list[Fill]:
        """The venue's fills from the ``index``-th on, in the order it executed them (a reader that keeps its
        place: the backtest's funding settler reads the venue's account as it grows, without copying it all)."""
        return self._fills[index:]

    def _book_fill(
        self, rec: VenueOrder, price: Decimal, qty: Decimal, *, liquidity: Liquidity, trade_id: str, ts: int
    ) -> None:
        """Apply one execution of our order: order truth, fee, balances, Fill + BalanceUpdate events."""
        inst = self._instrument(rec.symbol)
        fee, fee_currency = self.fees.charge(inst, price, qty, liquidity)
        rec.filled += qty
        if rec.filled >= rec.qty:
            rec.status = _FILLED
        elif rec.status is _NEW:
            rec.status = _PARTIALLY_FILLED
        if rec.commit_asset is not None:
            self._recommit(rec)
        side = rec.side
        sign = 1 if side is _BUY else -1
        if inst.inverse:  # COIN-M: the coin wallet pays the fee and takes realized PnL; the position is contracts
            book = self._contract_books.get(inst.symbol) or Book(self._venue_name, False,
                                                                 inverse_size=inst.contract_size)
            self._contract_books[inst.symbol] = book
            self._balances[inst.base] = self._balances.get(inst.base, ZERO) + book.apply(rec.side, qty, price) - fee
            self._balances[inst.symbol] = self._balances.get(inst.symbol, ZERO) + sign * qty
        else:
            wallet = self._balances
            base = wallet[inst.base] = wallet.get(inst.base, ZERO) + sign * qty
            quote = wallet[inst.quote] = wallet.get(inst.quote, ZERO) - sign * price * qty - fee
            if (base < 0 or quote < 0) and inst.spot:
                self._overdrawn(rec, base, quote, inst)
        venue = self._venue_name
        client_id, symbol, venue_order_id = rec.client_id, rec.symbol, rec.venue_order_id
        # The venue's record (received at ``ts``) and the event (received when visible) differ only in ts_recv.
        self._fills.append(
            Fill(venue, trade_id, client_id, symbol, side, price, qty, fee, fee_currency, liquidity, ts, ts,
                 venue_order_id)
        )
        # ``_visible`` + ``_push`` spelled out for both events (four calls per fill): FIFO, on the response leg.
        response = self._response_const
        visible = ts + (self._latency.response_ns(_FILL, ts) if response is None else response)
        last = self._last_visible
        visible = visible if visible > last else last
        to_us, seq = self._to_us, self._seq
        heappush(to_us, (visible, next(seq), "order",
                         Fill(venue, trade_id, client_id, symbol, side, price, qty, fee, fee_currency, liquidity, ts,
                              visible, venue_order_id)))
        balances = tuple(self._balances_of((inst.base, inst.quote, inst.symbol)))
        second = ts + (self._latency.response_ns(_FILL, ts) if response is None else response)
        visible = second if second > visible else visible
        self._last_visible = visible
        heappush(to_us, (visible, next(seq), "order", BalanceUpdate(venue, balances, visible)))

    def _overdrawn(self, rec: VenueOrder, base: Decimal, quote: Decimal, inst: Instrument) -> None:
        """A spot fill took a balance below zero (the checks at entry should make this impossible): said loudly."""
        self.overdrafts += 1
        logger.bind(venue=self._venue_name, symbol=rec.symbol).error(
            "fill of {} left {} {} and {} {}: a spot account cannot go below zero (overdraft {})",
            rec.client_id, base, inst.base, quote, inst.quote, self.overdrafts,
        )

    def _close_remainder(self, rec: VenueOrder, ts: int) -> None:
        """An IOC/FOK/market remainder that did not rest: the venue cancels it."""
        leaves = rec.leaves
        if leaves <= 0:
            return
        rec.status = _CANCELED
        self._release(rec)
        visible = self._visible(_PLACE, ts)
        self._push(visible, OrderCanceled(self._venue_name, rec.client_id, ts, visible, leaves))

    def _next_fill_id(self) -> str:
        return f"{self._venue_name}-F{next(self._fill_seq)}"

    def _open_orders(self, symbol: str | None) -> list[VenueOrder]:
        """Our open orders (of ``symbol``, or all), in the order they were placed."""
        index = self._open
        closed = [cid for cid, r in index.items() if not r.status.is_open]
        for cid in closed:
            del index[cid]
        return [r for r in index.values() if symbol is None or r.symbol == symbol]

    def _report(self, rec: VenueOrder, ts: int) -> OrderStatusReport:
        return OrderStatusReport(
            self.venue, rec.client_id, rec.venue_order_id, rec.symbol, rec.side, rec.price, rec.qty, rec.filled,
            rec.status, rec.ts_event, ts,
        )
