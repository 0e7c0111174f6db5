"""The simulated venue's session plumbing: the two latency legs as heaps, and FIFO delivery of outcomes.

Why a module of its own: how an action travels to the venue (*entry* leg),
how an outcome travels back (*response* leg), and the rule that outcomes are
never delivered out of order are the same for every simulated venue and for
every kind of action; the venue's rules and its accounting only ever call
``_send``/``_emit``/``_local`` and never look inside the heaps.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import Any, Literal

import attrs

from mmkit.model import OrderAccepted, OrderReplaced, VenueEvent
from mmkit.sim.latency import Action, ConstantLatency, LatencyModel

__all__ = ["EventPlumbing", "event_stamper"]

#: Where an outcome was decided: in this process ("local"), at the venue ("order"), or market data ("market").
_Kind = Literal["local", "order", "market"]


#: What the venue does with an action's payload when it arrives, at venue time (the second argument).
Handler = Callable[[Any, int], None]

#: An action on its way to the venue (entry leg): (arrival ns, sequence, handler, payload). A plain tuple:
#: one is made per order action, and the heap compares only the first two fields (the sequence is unique).
#: The handler travels with it (not the action, dispatched again on arrival): one call fewer per action.
_Pending = tuple[int, int, Handler, Any]


class EventPlumbing:
    """Entry and response legs of a simulated venue (a mixin of :class:`mmkit.sim.base_venue.SimulatedVenue`).

    ``_to_venue`` holds actions by arrival time, ``_to_us`` outcomes by the
    time they become visible; both break ties by one shared sequence, so equal
    times keep the order things happened in.
    """

    _now: Callable[[], int]
    _connected: bool

    @property
    def latency(self) -> LatencyModel:
        """The two legs every action and outcome travels (replaceable: the constants below follow it)."""
        return self._latency

    @latency.setter
    def latency(self, model: LatencyModel) -> None:
        self._latency = model
        # A ConstantLatency (frozen) answers the same whatever it is asked: its legs are read once here, not
        # through a method call per action and per outcome. None: ask the model every time.
        self._entry_const: int | None = None
        self._response_const: int | None = None
        if type(model) is ConstantLatency:
            self._entry_const, self._response_const = model.entry, model.response

    def _init_plumbing(self, hold_events_while_disconnected: bool) -> None:
        self._hold = hold_events_while_disconnected
        self._seq = itertools.count()
        self._to_venue: list[_Pending] = []
        self._to_us: list[tuple[int, int, _Kind, VenueEvent]] = []
        self._held: list[VenueEvent] = []
        self._last_visible = 0
        self._venue_time = 0

    def drain(self) -> list[VenueEvent]:
        """Advance the venue to ``now_ns()`` and return every outcome visible by then, in order."""
        now = self._now()
        to_venue, to_us = self._to_venue, self._to_us
        # Called every clock tick; on most ticks nothing has arrived and nothing is visible yet.
        if (not to_venue or to_venue[0][0] > now) and (not to_us or to_us[0][0] > now):
            venue_time = self._venue_time
            self._venue_time = now if now > venue_time else venue_time  # max() without a builtin call per tick
            return []
        self.advance(now)
        out: list[VenueEvent] = []
        to_us = self._to_us  # advance may have replaced the list (a refused ack taken back)
        while to_us and to_us[0][0] <= now:
            _, _, kind, event = heapq.heappop(to_us)
            if self._connected or kind == "local":
                out.append(event)
            elif kind == "order" and self._hold:
                self._held.append(event)
        return out

    def advance(self, now_ns: int) -> None:
        """Let the venue act on every action that has arrived by ``now_ns``, in arrival order."""
        to_venue = self._to_venue
        if to_venue and to_venue[0][0] <= now_ns:
            pop = heapq.heappop
            while to_venue and to_venue[0][0] <= now_ns:
                ts, _, handler, payload = pop(to_venue)
                venue_time = self._venue_time
                self._venue_time = ts if ts > venue_time else venue_time
                handler(payload, ts)
        venue_time = self._venue_time
        self._venue_time = now_ns if now_ns > venue_time else venue_time

    def _send(self, action: Action, handler: Handler, payload: Any, now: int) -> None:
        """Send ``action`` on the entry leg: ``handler(payload, ts)`` runs when it arrives at the venue."""
        entry = self._entry_const
        arrival = now + (self._latency.entry_ns(action, now) if entry is None else entry)
        heapq.heappush(self._to_venue, (arrival, next(self._seq), handler, payload))

    def _emit(self, action: Action, ts: int, make: Callable[[int], VenueEvent], kind: _Kind = "order") -> None:
        """Queue the outcome ``make(visible)`` of ``action`` decided at ``ts`` (response leg, FIFO)."""
        visible = self._visible(action, ts)
        heapq.heappush(self._to_us, (visible, next(self._seq), kind, make(visible)))

    def _visible(self, action: Action, ts: int) -> int:
        """When an outcome of ``action`` decided at ``ts`` becomes visible; the caller must ``_push`` it next.

        ``_emit`` without the factory: the venue's own order outcomes build
        their event directly with this receive time (a closure per event cost
        more than the event). FIFO: never before the last outcome queued.
        """
        response = self._response_const
        visible = ts + (self._latency.response_ns(action, ts) if response is None else response)
        last = self._last_visible
        self._last_visible = visible = visible if visible > last else last  # max() without a builtin call
        return visible

    def _push(self, visible: int, event: VenueEvent) -> None:
        """Queue an order outcome at the time ``_visible`` just gave."""
        heapq.heappush(self._to_us, (visible, next(self._seq), "order", event))

    def _local(self, event: VenueEvent) -> None:
        """Outcome decided in this process (never sent): visible at once, ahead of later venue outcomes."""
        now = self._now()
        visible = max(now, self._last_visible)
        self._last_visible = visible
        heapq.heappush(self._to_us, (visible, next(self._seq), "local", event))

    def _drop_queued(self, drop: Callable[[VenueEvent], bool]) -> None:
        """Take back outcomes not yet delivered (an ack or replace the venue then refused after all)."""
        self._to_us = [item for item in self._to_us if not drop(item[3])]
        heapq.heapify(self._to_us)


def _with_recv(event: VenueEvent, ts: int) -> VenueEvent:
    return attrs.evolve(event, ts_recv=ts)


def event_stamper(event: VenueEvent) -> Callable[[int], VenueEvent]:
    """A factory that stamps ``event`` with its receive time (avoids late-binding lambdas in loops)."""
    return lambda recv: _with_recv(event, recv)


def is_ack_of(client_id: str) -> Callable[[VenueEvent], bool]:
    return lambda event: isinstance(event, OrderAccepted) and event.client_id == client_id


def is_replace_of(client_id: str) -> Callable[[VenueEvent], bool]:
    return lambda event: isinstance(event, OrderReplaced) and event.client_id == client_id
