"""Waiting for an answer or a timeout without a SimPy timer per wait.

No spec clause: simulation plumbing. A device that sends a request waits for the answer or its
timeout, whichever comes first (``event | env.timeout(t)``). The answer nearly always wins, and
SimPy cannot cancel a Timeout: each wait left one timer in the event queue, processed for
nothing ``t`` seconds later (about three per device), and a ``Condition`` per wait.

:meth:`Deadlines.first` gives the same wait with one plain event, and keeps the deadlines in a
heap of its own: a SimPy timer is only scheduled for the earliest live deadline, so a run of
answered requests costs a timer about once per timeout period instead of once per request.

What stays as with ``event | env.timeout(t)``:

- the waiter triggers when ``event`` is processed (not when it is triggered), through one
  callback, so the process resumes at the same place in the event queue as after the Condition;
  a value given to ``event`` after the deadline but before the waiter is processed is still
  there for the caller to read (``event.triggered``), as it was;
- a deadline passes at exactly ``now + t`` (the float SimPy computes): a timer scheduled later
  for it is set to fire at that instant or before, never after (it looks again if early);
- deadlines that pass at the same instant trigger their waiters in the order they were set.

What differs: the timer of a deadline is an event scheduled when the deadline became the
earliest, not when the wait began, so among other events of that very instant its place can
differ. Only a tie to the exact float instant ``now + t`` can tell.
"""
from __future__ import annotations

import heapq
import itertools
import math

import simpy


def _relay(waiter: simpy.Event, event: simpy.Event) -> None:
    """``event`` was processed: trigger ``waiter`` like it (unless its deadline came first)."""
    if not event.ok:
        event.defused = True  # the waiter carries the failure, as a Condition does
    if not waiter.triggered:
        waiter.trigger(event)


def delay_until(now: float, at: float) -> float:
    """Return the largest delay ``d`` with ``now + d <= at`` in floating point (``now + d == at``
    whenever the sum can be exact: SimPy schedules at ``now + d``)."""
    d = at - now
    while d > 0.0 and now + d > at:
        d = math.nextafter(d, -math.inf)
    return max(d, 0.0)


class Deadlines:
    """The pending deadlines of one waiter kind in ``env`` (see the module doc)."""

    __slots__ = ("env", "_heap", "_order", "_timers")

    def __init__(self, env: simpy.Environment):
        self.env = env
        self._heap: list[tuple[float, int, simpy.Event]] = []  # (deadline, order, waiter)
        self._order = itertools.count()
        self._timers: set[float] = set()  # the deadlines a scheduled timer is for

    def first(self, event: simpy.Event, delay: float) -> simpy.Event:
        """Return an event triggered when ``event`` is processed or ``delay`` seconds from now,
        whichever is first (with no value at the deadline): ``event | env.timeout(delay)``."""
        env = self.env
        waiter = simpy.Event(env)
        if event.callbacks is None:  # processed already
            waiter.trigger(event)
            return waiter
        event.callbacks.append(lambda done, waiter=waiter: _relay(waiter, done))
        at = env.now + delay
        heapq.heappush(self._heap, (at, next(self._order), waiter))
        if not any(t <= at for t in self._timers):
            self._timers.add(at)
            env.timeout(delay, at).callbacks.append(self._wake)
        return waiter

    def pending(self) -> int:
        """Return how many deadlines are held (answered ones included until they are dropped)."""
        return len(self._heap)

    def _wake(self, timer: simpy.Event) -> None:
        """A timer fired: trigger the waiters whose deadline is now, drop the answered ones from
        the top, and set a timer for the earliest deadline left if none is set for it."""
        self._timers.discard(timer.value)
        now, heap = self.env.now, self._heap
        while heap and (heap[0][0] <= now or heap[0][2].triggered):
            waiter = heapq.heappop(heap)[2]
            if not waiter.triggered:
                waiter.succeed()
        if heap:
            at = heap[0][0]
            if not any(t <= at for t in self._timers):
                self._timers.add(at)
                self.env.timeout(delay_until(now, at), at).callbacks.append(self._wake)
