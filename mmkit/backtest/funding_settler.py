"""A perpetual's funding settlements, paid into the PnL while the backtest runs.

Why during the run and not after it: the kill switch's loss and drawdown
limits and the equity curve read the PnL tick by tick. Funding booked only
after the run (as it first was) left a USD-M maker whose account funding
drained past its max loss reported as a clean run, when live it would have
halted at the settlement. Booked here, each payment is in the PnL total from
the tick that reaches its ``calc_time``: the kill switch evaluates it on that
very tick (a loss limit crossed by funding halts quoting, and the reason says
"funding") and the sampler's row of that tick steps by the payment.

When: the settler is called by the strategy runner on every tick right after
the PnL is marked at the tick's fair value and before the kill switch and the
controller (``StrategyRunner.after_mark``): a TimeIterator of its own would
run either before the tick's fair value exists (a settlement exactly on a tick
must be priced at that tick's mid, as the post-run computation prices it) or
after the kill switch has already judged the tick. A settlement at ``T`` is
booked on the first tick at or after ``T``; one the clock never reached (the
run's last tick is before it, still inside the span) is booked by
:meth:`FundingSettler.finish` when the run ends.

Position: what the VENUE held at ``T``, i.e. our fills the venue executed
with venue time at or before ``T``, read from the simulated venue's own
account (``SimulatedVenue.fills_since``), not what the engine has heard of:
the engine learns of a fill one response latency later, and funding is paid
by the venue's account on its position, whatever the engine knows. A fill
the venue dates at or before a settlement already booked but executes later
(its market event was delivered late by the feed) adds its share of that
settlement when the venue executes it, booked then; the settlement's row
counts it (``late_fills``). So the booked total is the one the venue's
position at each ``T`` pays, which the post-run computation from the
engine's fills checks independently (:func:`mmkit.backtest.funding.cross_check`).

Price: the file's mark price when it has one, else the fair mid of the last
tick at or before ``T`` (the tick's own when ``T`` is on a tick), the very
mid the sampler records for that tick.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal

import attrs
from loguru import logger

from mmkit.backtest.funding import FundingRate, payment
from mmkit.backtest.report import utc_iso
from mmkit.model import ZERO, FairValue, Fill, Side
from mmkit.risk.pnl import PnLTracker
from mmkit.risk.settlement import Settlement

#: The kind of cash flow funding is booked as in the PnL tracker.
FUNDING = "funding"


@attrs.define
class FundingBooking:
    """One settlement as the run booked it (a row of ``report["funding"]``)."""

    rate: FundingRate
    #: The venue's position at the settlement (late fills included).
    position: Decimal
    price: Decimal | None
    price_source: str
    #: What the position received (negative: paid), in the PnL unit; None: held a position with no price.
    payment: Decimal | None
    #: The tick that booked it.
    booked_ns: int
    #: Fills dated at or before it that the venue executed after it was booked (each added its share then).
    late_fills: int = 0


class FundingSettler:
    """Books the settlements of ``rates`` inside ``(start_ns, end_ns]`` into ``pnl`` as the clock reaches them."""

    def __init__(
        self,
        rates: Sequence[FundingRate],
        settlement: Settlement,
        pnl: PnLTracker,
        venue_fills: Callable[[int], Sequence[Fill]],
        symbol: str,
        start_ns: int,
        end_ns: int,
    ) -> None:
        """``venue_fills(i)``: the venue's fills from the ``i``-th on, in execution order (it only grows)."""
        self._pending = [r for r in rates if start_ns < r.ts_ns <= end_ns]
        self._next = 0
        self._settlement = settlement
        self._pnl = pnl
        self._venue_fills = venue_fills
        self._symbol = symbol
        self.bookings: list[FundingBooking] = []
        #: The PnL booked so far (exact), what the total holds of funding.
        self.total = ZERO
        #: Venue fills read so far; the signed sum of those dated at or before the last booked settlement;
        #: those read but dated after it (signed quantity, venue time).
        self._read = 0
        self._position = ZERO
        self._later: list[tuple[int, Decimal]] = []
        #: The fair price of the last tick seen (the mid "at or before" a settlement between two ticks).
        self._last_fair: Decimal | None = None
        self._log = logger.bind(component="funding")

    @property
    def pending(self) -> int:
        """Settlements inside the span not booked yet."""
        return len(self._pending) - self._next

    def on_tick(self, ts_ns: int, fair: FairValue) -> None:
        """The runner's ``after_mark`` hook: read the venue's new fills, book every settlement now due."""
        self._read_fills(ts_ns)
        pending = self._pending
        while self._next < len(pending) and pending[self._next].ts_ns <= ts_ns:
            rate = pending[self._next]
            self._next += 1
            self._settle(rate, fair.price if rate.ts_ns == ts_ns else self._last_fair, ts_ns)
        self._last_fair = fair.price

    def finish(self, now_ns: int) -> None:
        """After the run: book what the clock never reached (priced at the last tick's mid, the last before it)."""
        self._read_fills(now_ns)
        while self._next < len(self._pending):
            rate = self._pending[self._next]
            self._next += 1
            self._settle(rate, self._last_fair, max(now_ns, rate.ts_ns))

    def note(self) -> str:
        """For the kill switch's PnL reasons: how much of the total is funding ("" before any is booked)."""
        booked = [b for b in self.bookings if b.payment]
        if not booked:
            return ""
        return (f"of which funding {self.total:f} {self._settlement.unit} over {len(booked)} settlement(s), "
                f"the last at {utc_iso(booked[-1].rate.ts_ns)}")

    # -- internals -------------------------------------------------------------------------------------

    def _settle(self, rate: FundingRate, fair: Decimal | None, now_ns: int) -> None:
        keep: list[tuple[int, Decimal]] = []
        for ts, signed in self._later:
            if ts <= rate.ts_ns:
                self._position += signed
            else:
                keep.append((ts, signed))
        self._later = keep
        position = self._position
        price, source = (rate.mark, "mark") if rate.mark is not None else (fair, "recorded mid")
        paid: Decimal | None = ZERO
        if position != 0:
            if price is None:
                paid = None
                self._log.error("funding settlement {} held {} with no price to settle it at: not booked",
                                utc_iso(rate.ts_ns), position)
            else:
                paid = payment(position, price, rate.rate, self._settlement)
                self._book(paid, now_ns)
        self.bookings.append(FundingBooking(rate, position, price, source, paid, now_ns))

    def _read_fills(self, now_ns: int) -> None:
        new = self._venue_fills(self._read)
        if not new:
            return
        self._read += len(new)
        last = self.bookings[-1].rate.ts_ns if self.bookings else None
        for fill in new:
            if fill.symbol != self._symbol or fill.is_hedge:
                continue
            signed = fill.qty if fill.side is Side.BUY else -fill.qty
            if last is None or fill.ts_event > last:
                self._later.append((fill.ts_event, signed))
                continue
            # Dated at or before a settlement already booked: the venue held it then; pay its share now.
            self._position += signed
            for booking in self.bookings:
                if booking.rate.ts_ns < fill.ts_event:
                    continue
                booking.position += signed
                booking.late_fills += 1
                if booking.price is None:
                    booking.payment = None if booking.position != 0 else ZERO
                    continue
                share = payment(signed, booking.price, booking.rate.rate, self._settlement)
                booking.payment = share if booking.payment is None else booking.payment + share
                self._book(share, now_ns)

    def _book(self, amount: Decimal, now_ns: int) -> None:
        if amount == 0:
            return
        self.total += amount
        self._pnl.book_cash_flow(amount, now_ns, FUNDING)
