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
from typing import Literal

import attrs

from mmkit.model import OrderAccepted, OrderReplaced, VenueEvent
from mmkit.sim.latency import Action, LatencyModel

__all__ = ["EventPlumbing", "event_stamper"]

#: Where an outcome was decided: in this process ("local"), at the venue ("order"), or market data ("market").
_Kind = Literal["local", "order", "market"]


@attrs.frozen(slots=True)
class _Pending:
    """An action on its way to the venue (entry leg)."""

    kind: Action
    payload: object


class EventPlumbing:
    """Entry and response legs of a simulated venue (a mixin of :class:`mmkit.sim.base_venue.SimulatedVenue`).

    ``_to_venue`` holds actions by arrival time, ``_to_us`` outcomes by the
    time they become visible; both break ties by one shared sequence, so equal
    times keep the order things happened in.
    """

    _now: Callable[[], int]
    latency: LatencyModel
    _connected: bool

    def _init_plumbing(self, hold_events_while_disconnected: bool) -> None:
        self._hold = hold_events_while_disconnected
        self._seq = itertools.count()
        self._to_venue: list[tuple[int, int, _Pending]] = []
        self._to_us: list[tuple[int, int, _Kind, VenueEvent]] = []
        self._held: list[VenueEvent] = []
        self._last_visible = 0
        self._venue_time = 0

    def _process(self, pending: _Pending, ts: int) -> None:
        raise NotImplementedError

    def drain(self) -> list[VenueEvent]:
        """Advance the venue to ``now_ns()`` and return every outcome visible by then, in order."""
        now = self._now()
        self.advance(now)
        out: list[VenueEvent] = []
        while self._to_us and self._to_us[0][0] <= now:
            _, _, kind, event = heapq.heappop(self._to_us)
            if self._connected or kind == "local":
                out.append(event)
            elif kind == "order" and self._hold:
                self._held.append(event)
        return out

    def advance(self, now_ns: int) -> None:
        """Let the venue act on every action that has arrived by ``now_ns``, in arrival order."""
        while self._to_venue and self._to_venue[0][0] <= now_ns:
            ts, _, pending = heapq.heappop(self._to_venue)
            self._venue_time = max(self._venue_time, ts)
            self._process(pending, ts)
        self._venue_time = max(self._venue_time, now_ns)

    def _send(self, action: Action, payload: object, now: int) -> None:
        arrival = now + self.latency.entry_ns(action, now)
        heapq.heappush(self._to_venue, (arrival, next(self._seq), _Pending(action, payload)))

    def _emit(self, action: Action, ts: int, make: Callable[[int], VenueEvent], kind: _Kind = "order") -> None:
        visible = max(ts + self.latency.response_ns(action, ts), self._last_visible)
        self._last_visible = visible
        heapq.heappush(self._to_us, (visible, next(self._seq), kind, make(visible)))

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
