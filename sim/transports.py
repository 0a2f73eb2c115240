"""How a device's DM session reaches the DM server: the seam between simulated and real.

``components.dm_server`` in the scenario picks one (adding a transport is a class here and a
line in ``_KINDS``):

* ``virtual``: HTTP requests and responses cross the simulated ``ip`` links to the simulated
  server core (``Replica.server_receive``);
* ``socket``: the request goes to a real DM server over HTTP (``dmsim server --http``, or any
  server that knows the device's account); the measured wall-clock round trip is added to
  simulated time, so a run with a real server advances at the pace of the real one. Accounts the
  simulated network bootstraps are first handed to the real server through its lab provisioning
  endpoint (``POST /dmsim/provision``, see ``network/dm/http_server.py``).

``exchange`` is a SimPy generator returning the parsed HTTP response, or None on a timeout.
"""
from __future__ import annotations

import http.client
import json
import time
import urllib.parse
from typing import TYPE_CHECKING

from dmsim.network.dm import http_binding
from dmsim.network.dm.http_server import account_to_json
from dmsim.sim.errors import DmsimError
from dmsim.sim.link import Message

if TYPE_CHECKING:  # pragma: no cover
    from dmsim.sim.engine import Replica


class IpTransport:
    """What the device process needs from a transport."""

    def exchange(self, dev, body: bytes, content_type: str, timeout: float):
        raise NotImplementedError

    def deliver_response(self, msg: Message) -> None:
        """Called by the downlink for each response copy that arrives."""

    def closed(self, dev) -> None:
        """The device ended its session (its connection closes)."""


class SimulatedHttp(IpTransport):
    """HTTP over the simulated ``ip`` links to the simulated server."""

    def __init__(self, model: "Replica"):
        self.model = model
        self.pending: dict[int, tuple[object, object]] = {}
        uri = urllib.parse.urlsplit(model.server.server_uri)
        self.host, self.path = uri.netloc, uri.path

    def exchange(self, dev, body: bytes, content_type: str, timeout: float):
        env = self.model.env
        token = object()
        done = env.event()
        self.pending[dev.ident.index] = (token, done)
        payload = http_binding.encode_request(self.host, self.path, body, content_type)
        dev.ip_msgs += 1
        dev.ip_bytes += len(payload)
        self.model.ip_up.send(Message(payload, dev.ident.uri, "server", "dm", (dev, token)), self.model.server_receive)
        yield done | env.timeout(timeout)
        self.pending.pop(dev.ident.index, None)
        return done.value if done.triggered else None

    def deliver_response(self, msg: Message) -> None:
        dev, token = msg.meta
        waiting = self.pending.get(dev.ident.index)
        if waiting is None or waiting[0] is not token or waiting[1].triggered:
            return  # a late, duplicated or replayed response: the exchange is over
        try:
            waiting[1].succeed(http_binding.decode(msg.payload))
        except DmsimError:
            pass  # a mangled response counts as lost; the client times out and retries

    def closed(self, dev) -> None:
        self.pending.pop(dev.ident.index, None)
        self.model.server.connection_closed(dev.ident.uri)
        self.model.release(dev.ident.uri)


class RealHttp(IpTransport):
    """HTTP over a real socket to ``url``; wall-clock latency becomes simulated time."""

    def __init__(self, model: "Replica", url: str):
        self.model = model
        parts = urllib.parse.urlsplit(url)
        self.scheme, self.netloc, self.path = parts.scheme, parts.netloc, parts.path or "/"
        self.provisioned: set[str] = set()

    def _post(self, path: str, body: bytes, content_type: str, timeout: float) -> http_binding.HttpMessage:
        cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        conn = cls(self.netloc, timeout=timeout)
        try:
            conn.request("POST", path, body, {"Content-Type": content_type, "Cache-Control": "no-store",
                                              "Accept": content_type})
            resp = conn.getresponse()
            return http_binding.HttpMessage(str(resp.status), {"content-type": resp.getheader("Content-Type", "")},
                                            resp.read())
        finally:
            conn.close()

    def exchange(self, dev, body: bytes, content_type: str, timeout: float):
        uri = dev.ident.uri
        started = time.perf_counter()
        try:
            if uri not in self.provisioned:
                account = self.model.server.accounts[uri]
                self._post("/dmsim/provision", json.dumps(account_to_json(uri, account)).encode(),
                           "application/json", timeout)
                self.provisioned.add(uri)
            reply = self._post(self.path, body, content_type, timeout)
        except OSError:
            reply = None
        dev.ip_msgs += 2
        dev.ip_bytes += len(body) + (len(reply.body) if reply else 0)
        yield self.model.env.timeout(time.perf_counter() - started)
        return reply


def make_ip_transport(spec: dict, model: "Replica") -> IpTransport:
    """Return the transport for a validated ``components.dm_server`` spec."""
    if spec["kind"] == "socket":
        return RealHttp(model, spec["url"])
    return SimulatedHttp(model)
