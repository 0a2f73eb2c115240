"""Simulated links: the SimPy side of the transport seam (protocol cores never see them).

No spec clause: a link models the bearer under a protocol (the SMS path of a bootstrap, the
HTTP path of a DM session, OMA-TS-DM_Security 1.3 §5.3 "transport") with a scenario dict::

    delay: <delay model>      # default {kind: fixed, value: 0}
    loss: p                   # probability a message is lost          [0.0]
    duplicate: p              # probability a second copy arrives      [0.0]
    reorder: p                # probability a message is held back     [0.0]
    reorder_delay: <delay>    # how long it is held back   [{kind: exponential, mean: 1.0}]
    bandwidth: bytes/s        # FIFO serialisation, len/bandwidth each [None: instantaneous]
    queue_limit: n            # max messages waiting to be transmitted [None: unbounded]

Stages, in order: queue/bandwidth -> loss -> tap -> delay (+ reorder) -> duplicate. No SimPy
process is created per message: each stage is a ``Timeout`` with a callback appended.

Choices where the brief is silent:
- ``queue_limit`` counts messages waiting behind the one being transmitted; it has no effect
  without ``bandwidth`` (nothing ever waits). A message arriving when the link is idle is
  never refused, even with ``queue_limit: 0``.
- The tap sees a message at the time its transmission ends (``env.now`` then).
- Random draws, per message, in this order (a draw is skipped when its probability is 0, which
  depends only on the spec): loss coin; the tap's draws; then for each payload the tap returns:
  delay sample, reorder coin, reorder sample (if held back), duplicate coin, and for a duplicate
  its own delay sample, reorder coin and reorder sample. Stages that end at the same instant run
  in SimPy's FIFO event order, so a seed reproduces the whole run.
- A duplicate carries the tap's extra delay for its payload plus an independent link delay.
- A payload the tap changed is delivered in a new Message with the same src/dst/kind/meta;
  unchanged payloads are delivered in the sent Message object itself. Negative tap delays
  count as 0.
- ``observer`` (None by default) is told what becomes of each message, for a per-device trace
  or a capture (``sim/results/``, duck-typed so this floor imports nothing above it): ``send``
  calls ``observer.sent(link, msg, deliver)`` and uses the callback it returns (wrap ``deliver``
  to see each copy arrive); ``observer.outcome(link, msg, what)`` says ``queue_full`` or
  ``lost``; ``observer.tapped(link, msg, deliveries)`` gets what the tap returned. With no
  observer this costs an ``is None`` test in ``send`` and one in the tap stage (the other two
  are on the queue-full and loss paths only); the observer draws nothing from ``rng``.
- ``sent``/``bytes_sent`` count every ``send`` call; ``delivered``/``bytes_delivered`` every
  copy handed to ``deliver`` (duplicates and replays included); what a tap drops is counted in
  the tap's ``counts``, not in ``lost``.
"""
from __future__ import annotations

import random
from collections import deque
from typing import Callable

import simpy

from dmsim.sim.links.delays import check_keys, make_delay, require_dict, spec_number, spec_probability
from dmsim.base.errors import ScenarioError
from dmsim.sim.links.tap import Tap

Deliver = Callable[["Message"], None]

_SPEC_KEYS = {"delay", "loss", "duplicate", "reorder", "reorder_delay", "bandwidth", "queue_limit"}
_STAT_KEYS = ("sent", "delivered", "lost", "duplicated", "queue_full", "bytes_sent",
              "bytes_delivered")


def without_tap(spec: dict) -> dict:
    """Return a link spec without its ``tap`` (the tap is built on its own, ``tap.make_tap``)."""
    return {k: v for k, v in spec.items() if k != "tap"}


class Message:
    """One message on a link; ``meta`` is opaque to the link (the sender's own bookkeeping)."""

    __slots__ = ("payload", "src", "dst", "kind", "meta")

    def __init__(self, payload: bytes, src: str, dst: str, kind: str, meta: object = None):
        self.payload = payload
        self.src = src
        self.dst = dst
        self.kind = kind
        self.meta = meta

    def with_payload(self, payload: bytes) -> Message:
        """Return a copy of this message carrying ``payload``."""
        return Message(payload, self.src, self.dst, self.kind, self.meta)

    def __repr__(self) -> str:
        return (f"Message({self.kind!r}, {self.src!r}->{self.dst!r}, "
                f"{len(self.payload)} bytes)")


class SimLink:
    """A one-way simulated link that schedules deliveries in ``env`` from a seeded ``rng``."""

    def __init__(self, env: simpy.Environment, name: str, spec: dict | None, rng: random.Random,
                 tap: Tap | None = None):
        path = name
        spec = require_dict({} if spec is None else spec, path)
        check_keys(spec, _SPEC_KEYS, path)
        self.env = env
        self.name = name
        self.rng = rng
        self.tap = tap
        self.delay = make_delay(spec.get("delay", {"kind": "fixed", "value": 0}), f"{path}.delay")
        self.loss = spec_probability(spec, "loss", path)
        self.duplicate = spec_probability(spec, "duplicate", path)
        self.reorder = spec_probability(spec, "reorder", path)
        self.reorder_delay = make_delay(spec.get("reorder_delay", {"kind": "exponential",
                                                                   "mean": 1.0}),
                                        f"{path}.reorder_delay")
        bandwidth = spec.get("bandwidth")
        self.bandwidth = (None if bandwidth is None
                          else spec_number(spec, "bandwidth", path, positive=True))
        self.queue_limit = self._queue_limit(spec, path)
        self._busy_until = 0.0
        self._in_transmission: deque[float] = deque()  # finish times, FIFO
        self.sent = self.delivered = self.lost = self.duplicated = self.queue_full = 0
        self.bytes_sent = self.bytes_delivered = 0
        self.observer = None

    @staticmethod
    def _queue_limit(spec: dict, path: str) -> int | None:
        if spec.get("queue_limit") is None:
            return None
        limit = spec_number(spec, "queue_limit", path)
        if limit != int(limit):
            raise ScenarioError(f"{limit!r} is not an integer", path=f"{path}.queue_limit",
                                expected="an integer >= 0")
        return int(limit)

    def stats(self) -> dict[str, int]:
        """Return the link's counters by name."""
        return {key: getattr(self, key) for key in _STAT_KEYS}

    def send(self, msg: Message, deliver: Deliver) -> None:
        """Schedule ``msg`` through the link; ``deliver(copy)`` is called for each copy that arrives."""
        self.sent += 1
        self.bytes_sent += len(msg.payload)
        if self.observer is not None:
            deliver = self.observer.sent(self, msg, deliver)
        if self.bandwidth is None:
            self._on_wire(msg, deliver)
            return
        now = self.env.now
        queue = self._in_transmission
        while queue and queue[0] <= now:
            queue.popleft()
        # queue[0], if any, is being transmitted; the rest are waiting.
        if self.queue_limit is not None and len(queue) > self.queue_limit:
            self.queue_full += 1
            if self.observer is not None:
                self.observer.outcome(self, msg, "queue_full")
            return
        finish = max(now, self._busy_until) + len(msg.payload) / self.bandwidth
        self._busy_until = finish
        queue.append(finish)
        self.env.timeout(finish - now, (msg, deliver)).callbacks.append(self._transmitted)

    def _transmitted(self, event: simpy.Event) -> None:
        msg, deliver = event.value
        self._on_wire(msg, deliver)

    def _on_wire(self, msg: Message, deliver: Deliver) -> None:
        rng = self.rng
        if self.loss and rng.random() < self.loss:
            self.lost += 1
            if self.observer is not None:
                self.observer.outcome(self, msg, "lost")
            return
        tap = self.tap
        if tap is None:
            self._schedule(msg, deliver, 0.0)
            return
        if tap.__class__ is Tap and self.observer is None:
            # the pass-through tap: what Tap.on_message does, [(0.0, msg.payload)], without the list
            tap.counts["seen"] += 1
            self._schedule(msg, deliver, 0.0)
            return
        deliveries = tap.on_message(msg, self.env.now, rng)
        if self.observer is not None:
            self.observer.tapped(self, msg, deliveries)
        for extra, payload in deliveries:
            copy = msg if payload is msg.payload else msg.with_payload(payload)
            self._schedule(copy, deliver, extra if extra > 0.0 else 0.0)

    def _path_delay(self, rng: random.Random) -> float:
        delay = self.delay.sample(rng)
        if self.reorder and rng.random() < self.reorder:
            delay += self.reorder_delay.sample(rng)
        return delay

    def _schedule(self, msg: Message, deliver: Deliver, extra: float) -> None:
        rng = self.rng
        timeout = self.env.timeout
        timeout(extra + self._path_delay(rng), (msg, deliver)).callbacks.append(self._arrive)
        if self.duplicate and rng.random() < self.duplicate:
            self.duplicated += 1
            timeout(extra + self._path_delay(rng), (msg, deliver)).callbacks.append(self._arrive)

    def _arrive(self, event: simpy.Event) -> None:
        msg, deliver = event.value
        self.delivered += 1
        self.bytes_delivered += len(msg.payload)
        deliver(msg)

    def __repr__(self) -> str:
        return f"SimLink({self.name!r}, sent={self.sent}, delivered={self.delivered})"
