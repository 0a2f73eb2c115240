"""How a server agent serves DM requests in simulated time: admission, service time, slots.

No spec clause: the capacity model of a deployment. At most ``server.max_sessions`` sessions run
at once; a request of a new session waits (FIFO) for a slot; each request takes a
``server.service_time`` sample before the sans-IO core (``network/dm/server.py``) handles it. A
slot is freed when the core holds no session for the requester after an answer (the session
ended, or the request was refused before one opened: :meth:`Serving.frees_slot`) or when the
device gives up (its connection closes, :meth:`Serving.connection_closed`). The DM server and the bootstrap server are both made
of this (``dm_server.py``, ``bootstrap_server.py``).
"""
from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

import simpy

from dmsim.base.errors import DmsimError
from dmsim.network.dm import http_binding
from dmsim.network.dm.server import DmServer
from dmsim.sim.links.delays import make_delay
from dmsim.sim.links.link import Message

if TYPE_CHECKING:  # pragma: no cover
    from dmsim.sim.links.transports import IpTransport
    from dmsim.sim.model.replica import Replica


class Serving:
    """The serving half of a server agent around its ``core``; ``transport`` carries the answers."""

    def __init__(self, replica: "Replica", core: DmServer, stream: str):
        srv = replica.data["server"]
        self.replica, self.env, self.core = replica, replica.env, core
        self.service_time = make_delay(srv["service_time"], "server.service_time")
        self.service_rng = replica.stream(stream)
        self.max_sessions = srv["max_sessions"]
        self.active: set[str] = set()
        self.waiting: deque = deque()
        # told each ServerReply (its audit and events: what a real driver writes to its audit log)
        self.audit_observers: list = []

    @property
    def transport(self) -> "IpTransport":
        """The transport the requests came over (the replica's DM-server transport)."""
        return self.replica.transport

    def receive(self, msg: Message) -> None:
        """A request reached the server: admit its session or queue it, then serve it."""
        dev = msg.meta[0]
        uri = dev.ident.uri
        if self._gone(dev):
            return  # the device gave up: its connection is closed
        if uri in self.active or len(self.active) < self.max_sessions:
            self.active.add(uri)
            self._serve(msg)
        else:
            self.waiting.append(msg)

    def _serve(self, msg: Message) -> None:
        delay = self.service_time.sample(self.service_rng)
        self.env.timeout(delay, msg).callbacks.append(self._served)

    def _served(self, event: simpy.Event) -> None:
        msg: Message = event.value
        dev, token = msg.meta
        transport = self.transport
        try:
            req = http_binding.decode(msg.payload)
            reply = self.core.handle(req.body, req.content_type, transport.unix_now(), headers=req.headers)
            for observe in self.audit_observers:
                observe(reply)
            payload = transport.server_response(reply)
            over = self.frees_slot(reply, dev.ident.uri)
        except DmsimError:
            payload, over = http_binding.encode_response(400, b"", "text/plain"), True
        if over:
            self.release(dev.ident.uri)
        transport.respond(Message(payload, "server", dev.ident.uri, "dm", (dev, token)))

    def frees_slot(self, reply, uri: str) -> bool:
        """Return whether the request just answered leaves ``uri`` without a slot: the core holds no
        session for it. A session that ended frees its slot; so does a refused request that opened
        none (a 401/407 challenge to an unauthenticated package 1 creates no state in the core,
        network/dm/server.py, and must not hold capacity either: a stranger's unanswered package
        1s would otherwise fill ``max_sessions`` for good). A refused forgery or replay inside a
        live session leaves that session, and its slot, in place."""
        return uri not in self.core.sessions

    def connection_closed(self, uri: str) -> None:
        """The device's connection closed: the core forgets its session, its slot is freed."""
        self.core.connection_closed(uri)
        self.release(uri)

    def _gone(self, dev) -> bool:
        """Return whether the requester's life is over (an adversary's endpoint, index < 0, never ends)."""
        return dev.ident.index >= 0 and dev.ident.index not in self.replica.live

    def release(self, uri: str) -> None:
        """Free the session slot of ``uri`` and admit the next waiting session."""
        if uri not in self.active:
            return
        self.active.discard(uri)
        while self.waiting and len(self.active) < self.max_sessions:
            msg = self.waiting.popleft()
            if self._gone(msg.meta[0]):
                continue
            self.active.add(msg.meta[0].ident.uri)
            self._serve(msg)
