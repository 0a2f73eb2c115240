"""One request at a time per device over the replica's ``ip`` links, and its answer.

No spec clause: simulation plumbing shared by the transports that carry a device's requests to a
simulated agent (DM sessions over HTTP, ``transports.SimulatedHttp``; GBA bootstrapping over
Ub, ``ub_transport.SimulatedUb``). A request goes up with ``(device, token)`` as its meta; the
agent's answer comes down and ends the device's wait only if it carries the token of the
request the device is still waiting for, so a late, duplicated or replayed answer is dropped.
Every message up and down counts in the device's ``ip_msgs``/``ip_bytes``. ``decode`` turns an
answer's bytes into what the device gets; a DmsimError from it counts as a lost answer (the
device times out and retries). The wait for an answer or the timeout is a ``Deadlines`` wait
(``deadline.py``): no SimPy timer per request.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from dmsim.base.errors import DmsimError
from dmsim.sim.links.deadline import Deadlines
from dmsim.sim.links.link import Message

if TYPE_CHECKING:  # pragma: no cover
    from dmsim.sim.model.replica import Replica


class IpExchange:
    """The pending requests (device index -> (token, event)) of one transport."""

    def __init__(self, model: "Replica", kind: str, dst: str, decode: Callable[[bytes], object] = bytes):
        self.model, self.kind, self.dst, self.decode = model, kind, dst, decode
        self.pending: dict[int, tuple[object, object]] = {}
        self.deadlines = Deadlines(model.env)

    def request(self, dev, payload: bytes, receive: Callable[[Message], None], timeout: float):
        """SimPy generator: send ``payload`` from ``dev`` to ``receive``; return the decoded
        answer, or None when none came within ``timeout``."""
        env = self.model.env
        token, done = object(), env.event()
        self.pending[dev.ident.index] = (token, done)
        dev.ip_msgs += 1
        dev.ip_bytes += len(payload)
        self.model.ip_up.send(Message(payload, dev.ident.uri, self.dst, self.kind, (dev, token)), receive)
        yield self.deadlines.first(done, timeout)
        self.pending.pop(dev.ident.index, None)
        return done.value if done.triggered else None

    def respond(self, msg: Message) -> None:
        """Carry the agent's answer ``msg`` (meta: the request's) back to the device."""
        dev = msg.meta[0]
        dev.ip_msgs += 1
        dev.ip_bytes += len(msg.payload)
        self.model.ip_down.send(msg, self.deliver)

    def deliver(self, msg: Message) -> None:
        """An answer copy arrived: end the device's wait if it is the answer it waits for."""
        dev, token = msg.meta
        waiting = self.pending.get(dev.ident.index)
        if waiting is None or waiting[0] is not token or waiting[1].triggered:
            return  # a late, duplicated or replayed answer: the exchange is over
        try:
            waiting[1].succeed(self.decode(msg.payload))
        except DmsimError:
            pass  # a mangled answer counts as lost

    def forget(self, dev) -> None:
        """The device stopped waiting (its session is over)."""
        self.pending.pop(dev.ident.index, None)
