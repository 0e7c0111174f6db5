"""Steps 4-6 of the tick (DESIGN.md §2): fair value, risk gates, controller, executor.

Why a module of its own: the StrategyRunner is where the controller is
called, so it holds everything about calling it safely: the risk gates no
controller can bypass, the failure policy (count, record, halt after too many
failures in a row), the check of what ``on_tick`` returns, and the idle-tick
memo (``on_tick`` is not asked again while nothing it reads has changed).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from time import perf_counter_ns

import attrs
from loguru import logger

from mmkit.app import logs
from mmkit.app.fair_value_source import FairValueSource
from mmkit.app.outcome import ProblemKind, RunOutcome
from mmkit.book.tracker import OrderBookTracker
from mmkit.clock import Clock, ClockMode
from mmkit.execution.executor import Executor
from mmkit.instrument import Instrument
from mmkit.model import FairValue, Fill, Side, TargetQuote
from mmkit.orders.tracker import ClientOrderTracker
from mmkit.risk.inventory import InventoryManager
from mmkit.risk.kill_switch import KillSwitch
from mmkit.risk.pnl import PnLTracker
from mmkit.strategy import Controller, QuoteMode, StrategyContext

#: Enum members looked up once: ``Side.BUY`` goes through the enum metaclass, and the gate runs every tick.
_BUY, _SELL, _STOP = Side.BUY, Side.SELL, QuoteMode.STOP


@attrs.define
class RunnerStats:
    ticks: int = 0
    quoting_ticks: int = 0
    halted_ticks: int = 0
    disconnected_ticks: int = 0
    #: Every exception a controller raised (on_start, on_tick, on_fill, on_stop) and every bad on_tick result.
    controller_errors: int = 0
    #: Failed on_tick calls in a row; a good tick resets it. At the runner's limit quoting halts for good.
    consecutive_errors: int = 0
    #: Ticks in a row on which the executor raised (the same limit halts quoting and pulls the quotes).
    consecutive_step_errors: int = 0
    last_targets: tuple[TargetQuote, ...] = ()
    #: The last strategy step's wall time and the actions it sent (read by the console's metrics).
    last_decision_ns: int = 0
    last_actions: Sequence[object] = ()


@attrs.define
class GateHold:
    """One runner gate holding quoting now: which gate, its latest reason, since when (clock time), for how long.

    Why the runner keeps it: a gate's reason used to halt the tick and be dropped, so the status
    block, the control channel and the dashboard showed a healthy engine that quoted nothing. One
    hold lasts while the same gate answers with a reason, whether other gates hold too or not; its
    text may change from tick to tick (the dead man's switch says how long ago it was refreshed)
    without starting a new one. Every gate holding at once has its own (``StrategyRunner.gate_holds``).
    """

    gate: str
    reason: str
    since_ns: int
    ticks: int = 0
    #: The gate callable itself (compared by identity on the hold path, never shown).
    source: object = None

    def as_dict(self) -> dict[str, object]:
        """What the control channel, the dashboard and ``mmkit status`` show."""
        return {"gate": self.gate, "reason": self.reason, "since_ns": self.since_ns, "ticks": self.ticks}


@attrs.define
class GateTally:
    """One gate's holds over the run, for the final report: ticks held, separate holds, first/last held tick."""

    gate: str
    ticks: int = 0
    holds: int = 0
    first_ns: int = 0
    last_ns: int = 0
    last_reason: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"gate": self.gate, "ticks": self.ticks, "holds": self.holds, "first_ns": self.first_ns,
                "last_ns": self.last_ns, "last_reason": self.last_reason}


#: Gate transitions (held, handed over, quoting again) logged at most this many times per window of clock
#: time; the rest are counted and the count goes with the next line. Why: a gate that flaps every tick
#: would otherwise write two lines a tick, and the state is on every status display anyway.
GATE_LOG_LINES = 4
GATE_LOG_WINDOW_NS = 60_000_000_000


#: Consecutive failed ticks after which the engine pulls quotes and halts (``engine.controller_max_failures``).
DEFAULT_MAX_CONSECUTIVE_FAILURES = 10


class ControllerResultError(TypeError):
    """``on_tick`` returned something that is not a sequence of TargetQuote (checked where it comes back)."""


def checked_targets(controller: Controller, result: object) -> Sequence[TargetQuote]:
    """``result`` if it is a list or tuple of :class:`TargetQuote`; else an error naming the class and what it got.

    Checked here, where the value comes back, so that a wrong return counts as a controller
    failure (not as an anonymous failure of a later iterator), and the message says whose it is.
    """
    name = type(controller).__name__
    if not isinstance(result, list | tuple):
        raise ControllerResultError(
            f"{name}.on_tick must return a list of TargetQuote, got {_describe(result)}"
        )
    best_bid: Decimal | None = None
    best_ask: Decimal | None = None
    for index, item in enumerate(result):
        if not isinstance(item, TargetQuote):
            raise ControllerResultError(
                f"{name}.on_tick must return a list of TargetQuote, got {_describe(item)} at index {index}"
            )
        price, qty = item.price, item.qty
        if (not (price.is_finite() and qty.is_finite()) or price <= 0 or price.adjusted() >= _ABSURD
                or qty.adjusted() >= _ABSURD):
            raise ControllerResultError(
                f"{name}.on_tick returned a TargetQuote with price {price} and qty {qty} at index {index}: "
                f"not a number an order can carry (NaN, infinite, a price <= 0, or 1e{_ABSURD} or more)"
            )
        if qty > 0:
            if item.side is Side.BUY:
                if best_bid is None or price > best_bid:
                    best_bid = price
            elif best_ask is None or price < best_ask:
                best_ask = price
    if best_bid is not None and best_ask is not None and best_bid >= best_ask:
        # Our own bid at or above our own ask: at a venue the later one would trade with the earlier (a wash
        # trade, or a self-trade-prevention cancel), or be refused as post-only; in a replay both would rest
        # and a print between them would fill both. Never a quote: a controller bug, counted as its failure.
        raise ControllerResultError(
            f"{name}.on_tick returned crossed targets: a bid at {best_bid} and an ask at {best_ask} "
            "(our own quotes would trade with each other)"
        )
    return result


#: Decimal exponent from which a target's price or size is a controller bug, not a quote: nothing trades at
#: 10**15 of anything, and from about 10**26 the executor's rounding to the tick cannot even be represented.
#: Why here: such a target used to raise deep in the executor on every tick (an anonymous iterator failure,
#: counted but never halting, the previous quotes left resting), and a price <= 0 (which no book here can
#: hold) was dropped quietly, a run of them ending with exit 0; as a controller failure it counts, names
#: the controller, and after ``max_consecutive_failures`` pulls the quotes. A size <= 0 stays the
#: executor's to drop (a controller may size a level to nothing).
_ABSURD = 15


def _held_by(holds: Sequence[GateHold]) -> str:
    """``by gate A: why; by gate B: why``: every holding gate with its reason, in gate order."""
    return "; ".join(f"by gate {hold.gate}: {hold.reason}" for hold in holds)


def _describe(value: object) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60] + '...' if len(text) > 60 else text}"


class StrategyRunner:
    """Builds the controller's context, asks for targets, applies risk gates, hands them to the executor.

    Risk gates sit here, between the controller and the executor, so no
    controller can bypass them: a tripped kill switch or an emergency
    position turns any targets into "nothing resting", and inventory STOP
    removes the accumulating side.

    A broken controller must not look like a working one (DESIGN.md §3b):
    every exception it raises and every malformed ``on_tick`` result is
    counted and recorded on the run's outcome as an engine failure (exit
    code 4); after ``max_consecutive_failures`` failed ticks in a row the
    runner pulls the quotes and halts quoting for the rest of the run, with
    the reason in the status block and the report. Failures of the other
    iterators (counted by the clock) are recorded on the outcome at stop.
    """

    def __init__(
        self,
        controller: Controller,
        instrument: Instrument,
        executor: Executor,
        orders: ClientOrderTracker,
        fair_source: FairValueSource,
        inventory: InventoryManager,
        pnl: PnLTracker,
        kill_switch: KillSwitch | None = None,
        book: OrderBookTracker | None = None,
    ) -> None:
        self.controller = controller
        self.instrument = instrument
        self.executor = executor
        self.orders = orders
        self.fair_source = fair_source
        self.inventory = inventory
        self.pnl = pnl
        self.kill_switch = kill_switch
        self.book = book
        self.stats = RunnerStats()
        self.quoting_enabled = True
        #: Checked first every tick, before the controller and the executor act; a returned reason halts
        #: quoting this tick. The write-ahead journal's fsync runs here (mmkit.app.persistence_iterator).
        #: Every gate with a reason has a hold in :attr:`gate_holds` (name it with :meth:`add_gate`).
        self.gates: list[Callable[[int], str | None]] = []
        #: Every gate holding quoting now, in gate order (empty while none does): shown by every status
        #: display. Why all of them: showing only the first, the operator fixed it and only then learnt
        #: of the second. Replaced (never changed in place) when the set of holding gates changes.
        self.gate_holds: list[GateHold] = []
        #: Every gate that held quoting in this run, in the order they first did (the final report); a
        #: gate's ticks count every tick it answered with a reason, whether another gate held too or not.
        self.gate_tallies: dict[str, GateTally] = {}
        self._gate_names: dict[object, str] = {}
        #: True while a hold is current or a transition's log line is still owed (the only check on a
        #: tick no gate holds: nothing is allocated there).
        self._gate_owed = False
        self._gate_window_ns = -(1 << 62)
        self._gate_lines = 0
        self._gate_unlogged = 0
        self.last_fair = FairValue(None, 0.0, 0)
        #: Called every tick with (now, this tick's fair value) right after the PnL is marked and before the
        #: kill switch and the controller: what books money into the PnL at a moment of the run (a backtest's
        #: funding settlements, mmkit.backtest.funding_settler) is then seen by both on the same tick.
        self.after_mark: list[Callable[[int, FairValue], None]] = []
        self.max_consecutive_failures = DEFAULT_MAX_CONSECUTIVE_FAILURES
        #: Set when the controller failed too often: quoting stays off for the rest of the run.
        self.failure_halt: str | None = None
        #: The run's outcome (the Engine hands its own over); problems found here make the exit code non-zero.
        self.outcome = RunOutcome()
        #: The last controller exception, kept for callers that want it raised (the test Harness).
        self.last_error: BaseException | None = None
        self._started = False
        self._log = logger.bind(strategy=controller.name, venue=instrument.venue, symbol=instrument.symbol)
        reads = controller.reads
        unknown = set(reads) - {"book", "time"}
        if unknown:
            raise ValueError(f"{controller.name}.reads names unknown inputs {sorted(unknown)} (book, time)")
        #: Skipping on_tick when its inputs did not change is impossible for a controller that reads time.
        self._memo_ticks = "time" not in reads
        self._reads_book = "book" in reads
        #: The inputs of the last good on_tick and its (checked) answer; None: ask again next tick.
        self._last_inputs: tuple[object, ...] | None = None
        self._last_answer: tuple[TargetQuote, ...] = ()
        #: on_tick calls saved because nothing it reads had changed (for tests and the bench).
        self.skipped_ticks = 0

    def context(self, now_ns: int, fair: FairValue, halted: bool) -> StrategyContext:
        book = self.book.book if (self.book is not None and self.book.is_valid) else None
        return StrategyContext(
            now_ns=now_ns,
            instrument=self.instrument,
            book=book,
            fair=fair,
            position=self.inventory.position,
            inventory=self.inventory,
            open_orders=self.orders.open_orders_view(self.instrument.symbol),
            halted=halted,
        )

    def halted_reason(self, now_ns: int, fair: FairValue) -> str | None:
        if self.failure_halt is not None:
            return self.failure_halt
        if not self.quoting_enabled:
            return "quoting disabled"
        emergency = self.inventory.emergency()
        kill_switch = self.kill_switch
        # figures().total is total() over every book, one call less (this runs every tick).
        if kill_switch is not None and kill_switch.evaluate(now_ns, fair, self.pnl.figures().total, emergency):
            return f"kill switch: {kill_switch.reason}"
        if emergency:
            return f"emergency position {self.inventory.position}"
        return None

    def start(self, clock: Clock, ts_ns: int) -> None:
        if clock.mode is ClockMode.BACKTEST:
            logs.use_simulated_time(lambda: clock.now_ns)  # log lines of a backtest carry simulated time
        fair = self.fair_source.fair(ts_ns)
        try:
            self.controller.on_start(self.context(ts_ns, fair, halted=False))
        except Exception as exc:
            self._controller_failed("on_start", exc, ts_ns)
        self._started = True

    def stop(self, clock: Clock) -> None:
        if self._started:
            try:
                self.controller.on_stop(self.context(clock.now_ns, self.last_fair, halted=True))
            except Exception as exc:
                self._controller_failed("on_stop", exc, clock.now_ns)
            self._started = False
        if self._gate_unlogged:  # a flapping gate's last transitions: where it ended, once
            self._gate_window_ns = -(1 << 62)
            holds = self.gate_holds
            self._gate_line(clock.now_ns, f"quoting still held {_held_by(holds)}" if holds
                            else "quoting again: no gate holds")
        for label, count in clock.iterator_errors.items():
            self.outcome.record(ProblemKind.ENGINE_FAILURE, f"iterator {label} failed ({count} times)", clock.now_ns)
        if clock.mode is ClockMode.BACKTEST:
            logs.use_simulated_time(None)

    def on_fill(self, fill: Fill) -> None:
        """Hands a fill to the controller; an exception is counted like any other controller failure."""
        self._last_inputs = None  # the controller heard something: ask it again
        try:
            self.controller.on_fill(fill)
        except Exception as exc:
            self._controller_failed("on_fill", exc, fill.ts_recv)

    def tick(self, ts_ns: int) -> None:
        stats = self.stats
        stats.ticks += 1
        gated: list[tuple[object, str]] | None = None  # built only on a tick some gate holds
        for gate in self.gates:  # every gate runs (each may have work to do, e.g. an fsync)
            why = gate(ts_ns)
            if why:
                if gated is None:
                    gated = [(gate, why)]
                else:
                    gated.append((gate, why))
        if gated is not None:
            self._gates_held(gated, ts_ns)
        elif self._gate_owed:
            self._gate_clear(ts_ns)
        if not self.executor.connector.connected:
            # Nothing can be sent; the venue pulls our quotes where it supports it, and the order
            # tracker re-syncs on reconnect. Acting now would only produce NOT_CONNECTED rejects.
            stats.disconnected_ticks += 1
            return
        began = perf_counter_ns()
        self.last_fair = fair = self.fair_source.fair(ts_ns)
        price = fair.price
        if price is not None:
            self.pnl.mark(price, ts_ns)
        for hook in self.after_mark:
            hook(ts_ns, fair)
        targets: tuple[TargetQuote, ...] = ()
        if (gated or self.halted_reason(ts_ns, fair)) is None:
            last = self._last_inputs
            # The memo's key, compared in place (no tuple built on an idle tick): prices by identity (an
            # equal Decimal of another exponent could change the answer's digits), the rest by value.
            if (
                last is not None
                and price is last[0]
                and self.inventory.position is last[1]
                and fair.confidence == last[2]
                and fair.sources == last[3]
                and self.orders.version == last[4]
                and (not self._reads_book or self._book_key() == last[5])
            ):
                self.skipped_ticks += 1
                targets = self._last_answer  # already through the inventory gate (same position)
            else:
                targets = self._ask_controller(ts_ns, fair)
            stats.quoting_ticks += 1
        else:
            stats.halted_ticks += 1
        stats.last_targets = targets  # a tuple: the memo's answer, _ask_controller's, or ()
        try:
            stats.last_actions = self.executor.reconcile(targets, ts_ns, price)
        except Exception as exc:
            self._step_failed(exc, ts_ns)
            raise  # the clock counts and logs it as this iterator's failure (exit 4 at the end)
        if stats.consecutive_step_errors:
            stats.consecutive_step_errors = 0
        stats.last_decision_ns = perf_counter_ns() - began

    def add_gate(self, gate: Callable[[int], str | None], name: str) -> None:
        """Append ``gate`` to :attr:`gates` under ``name`` (what status displays and the report call it).

        A name or a gate already added is refused: two gates under one name would share one tally and one
        metrics series (both holding, each tick counted twice, and no telling which of the two holds).
        """
        if any(gate is known for known in self.gates):
            raise ValueError(f"gate {name!r} was already added (as {self.gate_name(gate)!r}): a gate runs once a tick")
        if name in self._gate_names.values():
            raise ValueError(f"a gate named {name!r} was already added: each gate needs its own name")
        self.gates.append(gate)
        self._gate_names[gate] = name

    def gate_name(self, gate: object) -> str:
        """The name a gate was added under; else its class (a bound method's owner), e.g. ``MarketClaimGate``."""
        named = self._gate_names.get(gate)
        if named is not None:
            return named
        owner = getattr(gate, "__self__", None)
        if owner is not None:
            return type(owner).__name__
        name = getattr(gate, "__name__", None)
        return name if isinstance(name, str) and name != "<lambda>" else type(gate).__name__

    @property
    def gate_hold(self) -> GateHold | None:
        """The first gate holding quoting (in gate order), or None: for a caller that only asks *whether*.

        Every display shows :attr:`gate_holds`, all of them.
        """
        holds = self.gate_holds
        return holds[0] if holds else None

    def _gates_held(self, gated: list[tuple[object, str]], ts_ns: int) -> None:
        """This tick these gates hold quoting (gate order): extend their holds, start new ones, end the others.

        Every start and release is a transition and logged (rate-limited by :meth:`_gate_line`), whether
        or not another gate holds too; a changed reason is not. Each holding gate's tally counts the tick.
        """
        before = self.gate_holds
        tallies = self.gate_tallies
        if len(before) == len(gated) and all(h.source is g for h, (g, _why) in zip(before, gated, strict=True)):
            for hold, (_gate, reason) in zip(before, gated, strict=True):  # the same gates as last tick
                hold.reason = reason
                hold.ticks += 1
                tally = tallies[hold.gate]
                tally.ticks += 1
                tally.last_ns = ts_ns
                tally.last_reason = reason
            if self._gate_unlogged and ts_ns - self._gate_window_ns >= GATE_LOG_WINDOW_NS:
                self._gate_line(ts_ns, f"quoting still held {_held_by(before)}")
            return
        current = {id(hold.source): hold for hold in before}  # by identity, as the fast path above compares
        holds: list[GateHold] = []
        started: list[GateHold] = []
        for gate, reason in gated:
            if id(gate) in current:
                hold = current.pop(id(gate))
                tally = tallies[hold.gate]
            else:
                name = self.gate_name(gate)
                hold = GateHold(name, reason, ts_ns, 0, gate)
                started.append(hold)
                tally = tallies.get(name) or tallies.setdefault(name, GateTally(name, first_ns=ts_ns))
                tally.holds += 1
            hold.reason = reason
            hold.ticks += 1
            tally.ticks += 1
            tally.last_ns = ts_ns
            tally.last_reason = reason
            holds.append(hold)
        self.gate_holds = holds
        self._gate_owed = True
        for hold in current.values():  # held last tick, not this one (in gate order: dicts keep it)
            self._gate_line(ts_ns, f"gate {hold.gate} released after {hold.ticks} ticks (last reason: "
                                   f"{hold.reason}); quoting still held {_held_by(holds)}")
        for hold in started:
            others = [h for h in holds if h is not hold]
            also = f" (also held {_held_by(others)})" if others else ""
            self._gate_line(ts_ns, f"quoting held by gate {hold.gate}: {hold.reason}{also}")

    def _gate_clear(self, ts_ns: int) -> None:
        """No gate holds this tick: end the holds (logged), or log the line a flapping gate still owes."""
        holds = self.gate_holds
        if holds:
            self.gate_holds = []
            for hold in holds:
                self._gate_line(ts_ns, f"quoting again: gate {hold.gate} released after {hold.ticks} ticks "
                                       f"(last reason: {hold.reason})")
        elif ts_ns - self._gate_window_ns >= GATE_LOG_WINDOW_NS:
            self._gate_line(ts_ns, "quoting again: no gate holds")
        self._gate_owed = self._gate_unlogged > 0

    def _gate_line(self, ts_ns: int, text: str) -> None:
        """Log a gate transition, at most :data:`GATE_LOG_LINES` per window; count the ones left out."""
        if ts_ns - self._gate_window_ns >= GATE_LOG_WINDOW_NS:
            self._gate_window_ns = ts_ns
            self._gate_lines = 0
        if self._gate_lines >= GATE_LOG_LINES:
            self._gate_unlogged += 1
            return
        self._gate_lines += 1
        if self._gate_unlogged:
            text += (f" [{self._gate_unlogged} gate transitions not logged in the "
                     f"{GATE_LOG_WINDOW_NS / 1e9:g} s before]")
            self._gate_unlogged = 0
        self._log.warning("{}", text)

    def _step_failed(self, exc: Exception, ts_ns: int) -> None:
        """The executor could not reconcile: after the failure limit in a row, halt and pull the quotes.

        Why: the clock counts an iterator's exception and carries on, which is right for a passing fault;
        but an executor that fails on every tick can no longer move or pull our orders, and the quotes
        of the last good tick would stay at the venue while the market moves. The same limit as a
        controller's failures (``engine.controller_max_failures``) decides when that is no longer passing.
        """
        stats = self.stats
        stats.consecutive_step_errors += 1
        limit = self.max_consecutive_failures
        if self.failure_halt is not None or limit <= 0 or stats.consecutive_step_errors < limit:
            return
        self._halt(f"the strategy step failed {limit} ticks in a row ({type(exc).__name__}: {exc})", ts_ns)

    def _halt(self, reason: str, ts_ns: int) -> None:
        """Halt quoting for the rest of the run with ``reason`` (status block, report, exit 4) and pull the quotes.

        A cancel-all that fails too is recorded: the orders may still rest, and the operator must know.
        """
        self.failure_halt = reason
        self.outcome.record(ProblemKind.ENGINE_FAILURE, f"quoting halted: {reason}", ts_ns)
        self._log.error("quoting halted: {}; pulling quotes", reason)
        try:
            self.executor.cancel_all(ts_ns)
        except Exception:
            self._log.opt(exception=True).error("the cancel-all after the halt failed too: our orders may still rest")
            self.outcome.record(ProblemKind.ENGINE_FAILURE, "cancel-all after a quoting halt failed", ts_ns)

    def _ask_controller(self, ts_ns: int, fair: FairValue) -> tuple[TargetQuote, ...]:
        """``on_tick``'s checked answer through the inventory gate, remembered with its inputs; () if it failed."""
        self._last_inputs = None
        inputs = self._inputs(fair)  # read before on_tick, as on_tick saw them
        try:
            targets = checked_targets(self.controller, self.controller.on_tick(self.context(ts_ns, fair, False)))
        except Exception as exc:
            self.stats.consecutive_errors += 1
            self._controller_failed("on_tick", exc, ts_ns)
            return ()
        self.stats.consecutive_errors = 0
        # The gate reads the inventory's quote modes, a function of the position (in the key).
        self._last_answer = answer = tuple(self._apply_inventory_gate(targets))
        self._last_inputs = inputs
        return answer

    def _inputs(self, fair: FairValue) -> tuple[object, ...] | None:
        """Everything ``on_tick`` may read this tick, as values; None when it reads time (never skipped).

        The fair value is its price, confidence and source count; its ``ts`` (when the source last
        moved) is time, which a controller that reads it declares.

        The open orders are the order tracker's version (bumped by every change to our orders); the
        book, for a controller that reads it, is its validity, sequence number and venue time. A fill
        resets the memo in :meth:`on_fill` (the controller may keep state of its own).
        """
        if not self._memo_ticks:
            return None
        return (fair.price, self.inventory.position, fair.confidence, fair.sources, self.orders.version,
                self._book_key() if self._reads_book else None)

    def _book_key(self) -> object:
        """The book as an input of ``on_tick`` (None for a controller that does not read it)."""
        if self._reads_book and self.book is not None:
            return (self.book.is_valid, self.book.book.seq, self.book.book.ts_event)
        return None

    def _controller_failed(self, where: str, exc: Exception, ts_ns: int) -> None:
        """Count, record and log (the log sink folds repeats into one line with a count)."""
        self.stats.controller_errors += 1
        self.last_error = exc
        name = self.controller.name
        reason = f"controller {name}.{where} failed: {type(exc).__name__}"
        self.outcome.record(ProblemKind.ENGINE_FAILURE, reason, ts_ns)
        self._log.opt(exception=exc).error("controller {}.{} failed; no quotes this tick", name, where)
        limit = self.max_consecutive_failures
        if self.failure_halt is None and limit > 0 and self.stats.consecutive_errors >= limit:
            self._halt(f"controller {name} failed {limit} ticks in a row ({type(exc).__name__}: {exc})", ts_ns)

    def take_error(self) -> BaseException | None:
        """The last controller exception since the previous call (the Harness re-raises it)."""
        error, self.last_error = self.last_error, None
        return error

    def _apply_inventory_gate(self, targets: Sequence[TargetQuote]) -> Sequence[TargetQuote]:
        stop_bids = self.inventory.quote_mode(_BUY) is _STOP
        stop_asks = self.inventory.quote_mode(_SELL) is _STOP
        if not (stop_bids or stop_asks):
            return targets
        return [t for t in targets if not (stop_bids if t.side is _BUY else stop_asks)]
