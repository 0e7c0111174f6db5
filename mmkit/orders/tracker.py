"""ClientOrderTracker: shadow accounting of every order we sent.

It routes order actions through the connector (submit-only), advances each
order through the state table as events arrive, and makes sure nothing is
left in limbo: an order stuck in PENDING_* past ``rules.pending_timeout_ns``
gets its status queried, with exponential backoff and never while the
session is down.

The rule that matters most (Hummingbot #8457): only a *definitive*
``OrderNotFound`` closes an order. ``OrderQueryFailed`` (timeout, disconnect,
5xx) changes nothing; the order stays as it was and is asked about again
later.

Other guarantees:
* fills are deduplicated by ``(venue, trade_id)`` (a bounded memory), and a
  fill for an order that is already finished is still booked (late fill);
* finished orders are kept in a bounded cache so late events still match;
* illegal transitions are logged and counted, never raised to the caller.

How each venue event moves an order is :mod:`mmkit.orders.order_events`
(a mixin of the tracker); this module sends actions, queries stuck orders
and reconciles with the venue's open-order listing.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from decimal import Decimal

import attrs
from loguru import logger

from mmkit.clock import Clock
from mmkit.connector import Connector, VenueRules, status_capabilities
from mmkit.model import (
    NS_PER_S,
    ZERO,
    Fill,
    OrderRequest,
    OrderStatusReport,
    ReplaceRequest,
)
from mmkit.orders.client_order import ClientOrder, Slot
from mmkit.orders.ids import ClientIdGenerator
from mmkit.orders.order_events import OrderEventHandlers
from mmkit.orders.states import DONE_STATES, PENDING_STATES, IllegalTransition, OrderState, Trigger

#: The PENDING_* states as a tuple: membership by identity (the frozenset would call Enum's Python-level
#: __hash__ per order).
_PENDING = tuple(PENDING_STATES)
_OPEN, _PARTIALLY_FILLED, _PENDING_CREATE = OrderState.OPEN, OrderState.PARTIALLY_FILLED, OrderState.PENDING_CREATE
_REPLACE_SUBMITTED, _CANCEL_SUBMITTED = Trigger.REPLACE_SUBMITTED, Trigger.CANCEL_SUBMITTED
#: "No status query comes due" (later than any clock time).
_NEVER = 2**63
#: Trade-id prefix of a compensating fill ``mmkit reconcile --void-excess`` books: mmkit.store.journal.VOID_PREFIX
#: (orders may not import store; tests/unit/orders/test_ledger_ahead.py checks that the two agree).
VOID_PREFIX = "mmkit-void:"


@attrs.frozen(slots=True)
class ReconcileResult:
    """What a start-up / reconnect reconciliation changed."""

    #: Open at the venue but unknown to us: now tracked (``adopted=True``, no slot).
    adopted: tuple[ClientOrder, ...]
    #: Ours, but absent from the venue's open orders: closed (NOT_FOUND).
    closed: tuple[ClientOrder, ...]
    #: Ours and reported: state brought in line with the report.
    updated: tuple[ClientOrder, ...]
    #: Reports we could not adopt (e.g. a client id we cannot represent).
    flagged: tuple[OrderStatusReport, ...]


class ClientOrderTracker(OrderEventHandlers):
    """Tracks our orders on one connector (one venue). A TimeIterator: ``tick`` handles timeouts."""

    def __init__(
        self,
        connector: Connector,
        rules: VenueRules | None = None,
        *,
        id_generator: ClientIdGenerator | None = None,
        finished_cache_size: int = 10_000,
        fill_memory: int = 200_000,
        max_query_backoff_ns: int = 60 * NS_PER_S,
    ) -> None:
        self.connector = connector
        self.rules = rules or connector.rules
        self.venue = connector.venue
        self.ids = id_generator or ClientIdGenerator()
        self.pending_timeout_ns = self.rules.pending_timeout_ns
        self.max_query_backoff_ns = max_query_backoff_ns
        self._active: dict[str, ClientOrder] = {}
        self._finished: OrderedDict[str, ClientOrder] = OrderedDict()
        self._finished_cache_size = finished_cache_size
        self._fill_keys: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._fill_memory = fill_memory
        #: venue order id -> (quantity, notional) booked on it across its ClOrdIDs (FIX CumQty spans a
        #: replace chain), so a venue's filled quantity can be compared with the ledger's.
        self._chain_filled: OrderedDict[str, tuple[Decimal, Decimal]] = OrderedDict()
        self._log = logger.bind(venue=self.venue, component="orders")
        #: False once this instance may no longer own the market it quotes (its claim was lost, see
        #: mmkit.app.market_claim): a venue cancel-all on the symbol would cancel another instance's orders,
        #: so :meth:`cancel_all` cancels ours one by one instead.
        self.venue_wide_cancel = True
        #: Bumped by every call that may change our orders (see :attr:`version`).
        self._version = 0
        #: Bumped by every change of which orders ``_active`` holds (an order added, filed away or brought
        #: back), and only then: what :meth:`open_orders_view` lists depends on nothing else.
        self._members = 0
        #: ``open_orders_view`` memo per symbol filter: (``_members`` it was built at, the orders).
        self._open_views: dict[str | None, tuple[int, tuple[ClientOrder, ...]]] = {}
        #: Each event's handler, by its class (mmkit.class_routes: the isinstance checks once per class).
        self._event_routes = self._new_event_routes()
        self._event_handlers = self._event_routes.memo
        # counters (health / tests)
        self.illegal_transitions = 0
        self.duplicate_fills = 0
        self.late_fills = 0
        self.overfills = 0
        self.unknown_events = 0
        self.status_queries = 0
        self.transient_query_failures = 0
        self.resyncs = 0
        #: Periodic re-sync of open orders (0: off); only where asking leaves the order alone.
        self.resync_interval_ns = self.rules.resync_interval_ns
        self._next_resync_ns: int | None = None
        #: What the last pending-order scan of :meth:`tick` saw (version, timeout) and when it said the
        #: next status query comes due; until then, with both unchanged, a tick asks nothing.
        self._scanned_version = -1
        self._scanned_timeout = self.pending_timeout_ns
        self._query_due_ns = _NEVER

    # ------------------------------------------------------------------
    # TimeIterator
    # ------------------------------------------------------------------

    def start(self, clock: Clock, ts_ns: int) -> None:
        return None

    def stop(self, clock: Clock) -> None:
        return None

    def tick(self, ts_ns: int) -> None:
        """Query the status of orders stuck in PENDING_* (backoff; not while disconnected); re-sync periodically.

        Most ticks have nothing to ask: the last scan of the open orders noted
        when the earliest pending one comes due (``_query_due_ns``), and what it
        scanned can only change with :attr:`version` (every change to an order
        bumps it) or with ``pending_timeout_ns``. While those stand and that time
        has not come, the scan is skipped.
        """
        if (
            ts_ns < self._query_due_ns
            and self._scanned_version == self._version
            and self._scanned_timeout == self.pending_timeout_ns
        ):
            next_resync = self._next_resync_ns
            if self.resync_interval_ns <= 0 or (next_resync is not None and ts_ns < next_resync):
                return  # no query and no re-sync due: the steps below conclude the same, connected or not
        if not self.connector.connected:
            return
        if self.resync_interval_ns > 0 and (self._next_resync_ns is None or ts_ns >= self._next_resync_ns):
            self._maybe_resync(ts_ns)
        if (
            ts_ns < self._query_due_ns
            and self._scanned_version == self._version
            and self._scanned_timeout == self.pending_timeout_ns
        ):
            return
        self._scanned_version = self._version  # before asking: an answer that arrives while asking rescans
        timeout = self._scanned_timeout = self.pending_timeout_ns
        due = _NEVER
        for order in list(self._active.values()):
            state = order.state
            if state not in _PENDING:
                continue
            if state is OrderState.PENDING_REPLACE and order.replaced_by in self._active:
                continue  # the replacement (PENDING_CREATE) is queried instead; its answer settles both
            ready = max(order.updated_ns + timeout, order.next_query_ns)
            if ts_ns < ready:
                due = min(due, ready)
                continue
            order.query_attempts += 1
            backoff = min(timeout * 2 ** (order.query_attempts - 1), self.max_query_backoff_ns)
            order.next_query_ns = ts_ns + backoff
            due = min(due, order.next_query_ns)
            self.status_queries += 1
            self._log.bind(client_id=order.client_id).info(
                "{} for {} ms: asking status (attempt {})",
                state.value,
                (ts_ns - order.updated_ns) // 1_000_000,
                order.query_attempts,
            )
            self.connector.request_order_status(order.client_id, order.symbol)
        self._query_due_ns = due

    def _maybe_resync(self, ts_ns: int) -> None:
        """Every ``resync_interval_ns``, ask the venue about each resting order.

        Not only at start and reconnect: a status answer carries the venue's
        filled quantity, so fills that never reached us surface within one
        interval (the UserStreamTracker books them, flagged, and halts), and so
        does a ledger ahead of the venue (a fill booked twice: it halts). On a
        venue whose only status query is a cancel (TrueX's published set) this
        would pull every quote, so it is skipped there; that venue's CumQty is
        checked on every report instead (connectors/truex).
        """
        if self.resync_interval_ns <= 0:
            return
        if self._next_resync_ns is None:
            self._next_resync_ns = ts_ns + self.resync_interval_ns
            return
        if ts_ns < self._next_resync_ns:
            return
        self._next_resync_ns = ts_ns + self.resync_interval_ns
        if not status_capabilities(self.connector).passive_status:
            return
        self.resyncs += 1
        for order in list(self._active.values()):
            if order.state is OrderState.OPEN or order.state is OrderState.PARTIALLY_FILLED:
                self.status_queries += 1
                self.connector.request_order_status(order.client_id, order.symbol)

    # ------------------------------------------------------------------
    # Actions
    # ------------------------------------------------------------------

    def new_client_id(self) -> str:
        return self.ids.next_id()

    def submit(self, order: OrderRequest, now_ns: int = 0, slot: Slot | None = None) -> ClientOrder:
        """Track ``order`` as PENDING_CREATE and send it."""
        client_id = order.client_id
        active = self._active
        if client_id in active or client_id in self._finished:  # get() is not None, without the call
            raise ValueError(f"client id {client_id} is already tracked")
        self._version += 1
        self._members += 1
        tracked = ClientOrder(order, _PENDING_CREATE, "", ZERO, None, ZERO, slot, now_ns, now_ns)  # see replace()
        active[client_id] = tracked
        self.connector.place(order)
        return tracked

    def cancel(self, client_id: str, now_ns: int = 0) -> bool:
        """Send a cancel for a live (or not yet acknowledged) order; False if there is nothing to cancel."""
        order = self._active.get(client_id)
        if order is None or order.state in DONE_STATES:  # order.is_done without two property calls
            return False
        self._version += 1
        if not self._apply(order, _CANCEL_SUBMITTED, now_ns):
            return False
        self.connector.cancel(client_id, order.request.symbol)
        return True

    def replace(
        self, client_id: str, price: Decimal, qty: Decimal, now_ns: int = 0, new_client_id: str | None = None
    ) -> ClientOrder | None:
        """Cancel/replace a resting order; ``qty`` is the new *open* quantity.

        The replacement is tracked under a new client id (PENDING_CREATE,
        same slot) and the original goes PENDING_REPLACE. Returns the
        replacement, or None if the order cannot be replaced now.
        """
        orig = self._active.get(client_id)
        if orig is None:
            return None
        state = orig.state
        if state is not _OPEN and state is not _PARTIALLY_FILLED:
            return None
        self._version += 1
        new_id = new_client_id or self.ids.next_id()
        old = orig.request
        venue, symbol, side = old.venue, old.symbol, old.side
        request = OrderRequest(new_id, venue, symbol, side, qty, price, old.order_type, old.tif, old.post_only, now_ns)
        # ``_apply`` without ``_file``: from OPEN / PARTIALLY_FILLED, REPLACE_SUBMITTED leads to PENDING_REPLACE
        # (the table; tests/unit/orders/test_tracker_fast_paths.py checks it), an active state of an order
        # already in the active map, which ``_file`` would leave where it is.
        try:
            orig.apply(_REPLACE_SUBMITTED, now_ns)
        except IllegalTransition as exc:
            self.illegal_transitions += 1
            self._log.bind(client_id=client_id).error("{}", exc)
            return None
        # Positional (request, state, venue_order_id, filled_qty, avg_price, fees, slot, created_ns, updated_ns,
        # replaces), the defaults spelled out: a keyword call of a 16-field __init__ costs more than the build.
        new = ClientOrder(request, _PENDING_CREATE, "", ZERO, None, ZERO, orig.slot, now_ns, now_ns, client_id)
        orig.replaced_by = new_id
        self._members += 1
        self._active[new_id] = new
        self.connector.replace(ReplaceRequest(new_id, client_id, venue, symbol, side, qty, price, now_ns))
        return new

    def cancel_all(self, now_ns: int = 0, symbol: str | None = None) -> list[ClientOrder]:
        """Mark every not-finished order (on ``symbol``) PENDING_CANCEL and send one cancel-all.

        Unless :attr:`venue_wide_cancel` is off: then one cancel per order marked, none for anyone else's.
        """
        self._version += 1
        marked = []
        for order in list(self._active.values()):
            if order.is_done or (symbol is not None and order.symbol != symbol):
                continue
            if order.state is not OrderState.PENDING_CANCEL and self._apply(order, Trigger.CANCEL_SUBMITTED, now_ns):
                marked.append(order)
        if self.venue_wide_cancel:
            self.connector.cancel_all(symbol)
        else:  # ours only: the market may be another instance's now
            for order in marked:
                self.connector.cancel(order.request.client_id, order.request.symbol)
        return marked

    # ------------------------------------------------------------------
    # Views
    # ------------------------------------------------------------------

    @property
    def version(self) -> int:
        """A counter that moves whenever our orders may have changed.

        Every call that can add an order, file one away, change its state or
        book a fill on it (``submit``, ``cancel``, ``replace``, ``cancel_all``,
        ``on_event``, ``reconcile``) bumps it; ``tick`` (status queries) does
        not. While it stands still, what :meth:`open_orders` lists and those
        orders' states, prices and quantities are as they were, so readers on
        the hot path (executor, sampler) may reuse what they derived from them.
        ClientOrders must therefore be changed only through this tracker.
        """
        return self._version

    def open_orders(self, symbol: str | None = None) -> list[ClientOrder]:
        """Every order not finished yet (PENDING_CREATE included), in submission order."""
        return list(self.open_orders_view(symbol))

    def open_orders_view(self, symbol: str | None = None) -> tuple[ClientOrder, ...]:
        """:meth:`open_orders` as a tuple (read it, do not keep it).

        Rebuilt only when the set of not-finished orders changed (``_members``),
        not at every :attr:`version`: an ack, a partial fill or a cancel request
        changes an order in place, and the tuple holds the orders themselves.
        Why: the runner and the sampler ask on most ticks, and most version
        moves (one per order event) leave the list as it was.
        """
        memo = self._open_views.get(symbol)
        if memo is not None and memo[0] == self._members:
            return memo[1]
        if symbol is None:
            orders = tuple(self._active.values())
        else:
            orders = tuple([o for o in self._active.values() if o.request.symbol == symbol])
        self._open_views[symbol] = (self._members, orders)
        return orders

    def finished_orders(self) -> list[ClientOrder]:
        return list(self._finished.values())

    def remember_filled(self, fill: Fill) -> None:
        """Count a fill booked before this run (restart recovery) toward its venue order's filled quantity.

        A void (``mmkit reconcile --void-excess``: the opposite side, for what the venue never filled) takes
        its quantity back: counted as more, it would read as a ledger ahead of the venue at the first report.
        """
        if fill.venue_order_id and fill.venue == self.venue:
            qty, notional = self._chain_filled.get(fill.venue_order_id, (Decimal(0), Decimal(0)))
            signed = -fill.qty if fill.trade_id.startswith(VOID_PREFIX) else fill.qty
            self._chain_filled[fill.venue_order_id] = (qty + signed, notional + signed * fill.price)

    def booked_before(self, fill: Fill) -> Decimal:
        """What the ledger booked on ``fill``'s venue order before it (across its ClOrdIDs), to set against
        the fill's ``venue_cum_qty``.

        The venue order is the fill's own id, else its order's; without either, the order's own filled
        quantity (0 for an order we do not know). One dict lookup on the common path: it runs per fill.
        """
        chain_id = fill.venue_order_id
        if chain_id:
            chain = self._chain_filled.get(chain_id)
            if chain is not None:
                return chain[0]
        order = self.get(fill.client_id)
        if order is None:
            return ZERO
        if not chain_id:
            chain = self._chain_filled.get(order.venue_order_id) if order.venue_order_id else None
            return chain[0] if chain is not None else order.filled_qty
        # Nothing booked under that venue order id (or its entry aged out of the bounded map): the order's own
        # fills count only if they were on that venue order; never more, so no false "already booked".
        return order.filled_qty if order.venue_order_id == chain_id else ZERO

    def ledger_filled(self, client_id: str, venue_order_id: str = "") -> tuple[Decimal, Decimal]:
        """(quantity, notional) the ledger holds for a venue order: per venue order id, else per client id.

        Compare it with a venue's CumQty, which counts the whole order across replaces.
        """
        chain = self._chain_filled.get(venue_order_id) if venue_order_id else None
        if chain is not None:
            return chain
        order = self.get(client_id)
        if order is None:
            return Decimal(0), Decimal(0)
        return order.filled_qty, order.filled_qty * (order.avg_price or Decimal(0))

    # ------------------------------------------------------------------
    # Reconciliation
    # ------------------------------------------------------------------

    def reconcile(
        self,
        reports: Sequence[OrderStatusReport],
        now_ns: int,
        *,
        symbol: str | None = None,
        as_of_ns: int | None = None,
    ) -> ReconcileResult:
        """Bring our book of orders in line with the venue's open-order listing.

        ``reports`` must be the venue's complete list of open orders (on
        ``symbol``). Orders it lists that we do not know are adopted (tracked,
        no slot, so the executor treats them as strays); ours that it does not
        list are closed, except those submitted after ``as_of_ns`` (the
        listing may predate them).
        """
        self._version += 1
        adopted: list[ClientOrder] = []
        updated: list[ClientOrder] = []
        flagged: list[OrderStatusReport] = []
        listed = set()
        for report in reports:
            listed.add(report.client_id)
            order = self.get(report.client_id)
            if order is not None:
                self._on_status(order, report)
                updated.append(order)
                continue
            if not report.status.is_open:
                flagged.append(report)
                continue
            try:
                request = OrderRequest(
                    report.client_id, report.venue, report.symbol, report.side, report.qty, report.price
                )
            except ValueError as exc:
                self._log.error("cannot adopt venue order {}: {}", report.venue_order_id, exc)
                flagged.append(report)
                continue
            state = OrderState.PARTIALLY_FILLED if report.filled_qty > 0 else OrderState.OPEN
            order = ClientOrder(
                request,
                state=state,
                venue_order_id=report.venue_order_id,
                filled_qty=report.filled_qty,
                venue_filled_qty=report.filled_qty,
                # The venue's time for it where it gives one: an adopted order is not new, and a venue that
                # charges cancels of young orders (Kraken) must not see it as brand new.
                created_ns=min(report.ts_event, now_ns) if report.ts_event > 0 else now_ns,
                updated_ns=now_ns,
                adopted=True,
            )
            self._active[order.client_id] = order
            self._members += 1
            self._log.bind(client_id=order.client_id).warning("adopted unknown open order from the venue")
            adopted.append(order)
        closed: list[ClientOrder] = []
        for order in list(self._active.values()):
            if order.client_id in listed or (symbol is not None and order.symbol != symbol):
                continue
            if as_of_ns is not None and order.created_ns > as_of_ns:
                continue
            self._log.bind(client_id=order.client_id).warning("not open at the venue: closing ({})", order.state.value)
            self._apply(order, Trigger.NOT_FOUND, now_ns)
            self._settle_replace(order, False, now_ns)
            closed.append(order)
        return ReconcileResult(tuple(adopted), tuple(closed), tuple(updated), tuple(flagged))

