"""A request/response leg between two network agents over a pair of simulated links (one each
way, with the scenario's delay, loss and tap), for the GBA interfaces (Zpn, the proxy NAF's link).

No spec clause: simulation plumbing. :meth:`RequestLink.call` sends a request; at the far end
``serve(payload)`` returns the answer's payload (or None: no answer), which crosses the other
link back; ``serve`` may instead return a SimPy generator (the far end asks someone else first,
as a proxy does) whose return value is the answer. The caller waits ``timeout`` for it and sends again, at most ``retries`` more times;
a late or duplicated answer to an earlier attempt is ignored (each attempt has its own token).
"""
from __future__ import annotations

import random
import types
from typing import Callable

import simpy

from dmsim.sim.links.deadline import Deadlines
from dmsim.sim.links.link import Message, SimLink, without_tap
from dmsim.sim.links.tap import make_tap


class RequestLink:
    """Two SimLinks named ``name`` (``<name>.up``/``.down`` random streams) from one link ``spec``."""

    def __init__(self, env: simpy.Environment, name: str, spec: dict, up_rng: random.Random,
                 down_rng: random.Random):
        tap = spec.get("tap")
        self.env = env
        self.up = SimLink(env, name, without_tap(spec), up_rng, make_tap(tap, f"{name}.tap"))
        self.down = SimLink(env, name, without_tap(spec), down_rng, make_tap(tap, f"{name}.tap"))
        self.timeouts = 0
        self.deadlines = Deadlines(env)

    def call(self, payload: bytes, serve: Callable, *, src: str, dst: str,
             timeout: float, retries: int):
        """SimPy generator: return the answer's payload, or None when every attempt timed out."""
        for _ in range(retries + 1):
            answered = self.env.event()

            def answer(value: bytes | None, answered=answered) -> None:
                if value is not None:
                    self.down.send(Message(value, dst, src, "answer", answered), _arrived)

            def at_far_end(msg: Message) -> None:
                value = serve(msg.payload)
                if isinstance(value, types.GeneratorType):
                    self.env.process(_then(value, answer))
                else:
                    answer(value)

            self.up.send(Message(payload, src, dst, "request", answered), at_far_end)
            yield self.deadlines.first(answered, timeout)
            if answered.triggered:
                return answered.value
            self.timeouts += 1
        return None

    def stats(self) -> dict[str, int]:
        """Both directions' counters, summed, and the timed-out attempts."""
        up, down = self.up.stats(), self.down.stats()
        return {**{k: up[k] + down[k] for k in up}, "timeouts": self.timeouts}


def _then(generator, answer: Callable[[bytes | None], None]):
    answer((yield from generator))


def _arrived(msg: Message) -> None:
    if not msg.meta.triggered:
        msg.meta.succeed(msg.payload)
