"""A real BSF as the replica's ``components.bsf`` (kind ``socket``): the devices' Ub requests
(3GPP TS 24.109 §4, HTTP GET with Digest AKAv1-MD5) go to ``dmsim bsf serve`` (or another BSF
speaking Ub over plain HTTP) over real sockets.

Registered in ``sim/real/components.py``; the simulated world never imports this module. The
measured wall-clock round trip is added to simulated time, so a fleet loads the real BSF at its
own pace and the Ub latency recorded (``t_ub_start``/``t_ub_ok``) includes the real server's.

Subscribers: the real BSF's HSS must know each device's IMPI, K and OPc. The simulation's virtual
cards get fresh keys when they are issued at power-on, so with ``components.bsf.db`` (the real
BSF's SQLite store, ``dmsim bsf serve --db``) the simulation writes each card's subscriber there
through ``network/gba/hss_store`` (insert or replace: the simulation owns the fleet it issues) as
the card is issued, before the device's first Ub request. This stands in for the operator's
provisioning system; it needs the file to be reachable (same host or a shared volume) and
SQLite's locking serialises it with the BSF's own writes (SEQ updates). Without ``db`` the
operator is assumed to have provisioned the subscribers, which only works for cards whose keys
the operator knows: the virtual ones will be refused (``ub_refused``).

Choices: one HTTP/1.1 connection per device bootstrap (kept alive across its requests, closed
when the device's Ub step ends or after any failure); ``client.request_timeout`` is the socket
timeout; a connection failure or timeout reads as a lost response (the device resends). The
B-TIDs end in the real BSF's FQDN (``--fqdn``), not ``gba.bsf_fqdn``.
"""
from __future__ import annotations

import http.client
import time
import urllib.parse
from typing import TYPE_CHECKING

from dmsim.network.gba.hss_store import Subscriber, SubscriberStore
from dmsim.sim.links.ub_transport import UbTransport

if TYPE_CHECKING:  # pragma: no cover
    from dmsim.sim.model.replica import Replica


def _request_parts(request: bytes) -> tuple[str, str, dict[str, str], bytes]:
    """Return (method, target, headers, body) of the request octets ``UbClient`` wrote."""
    head, _, body = request.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target = lines[0].split(" ")[:2]
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return method, target, headers, body


class RealUb(UbTransport):
    """Ub over real sockets to the BSF at ``url`` (see the module docstring)."""

    def __init__(self, model: "Replica", url: str, db: str | None = None):
        self.model = model
        parts = urllib.parse.urlsplit(url)
        self.netloc = parts.netloc
        self.host = parts.netloc
        self.uri = parts.path or "/"
        self.db = db
        self._store: SubscriberStore | None = None
        self.conns: dict[int, http.client.HTTPConnection] = {}

    def subscriber_issued(self, sub: Subscriber) -> None:
        if self.db is None:
            return
        if self._store is None:
            self._store = SubscriberStore(self.db)
        self._store.put([sub])

    def exchange(self, dev, request: bytes, timeout: float):
        index = dev.ident.index
        started = time.perf_counter()
        method, target, headers, body = _request_parts(request)
        headers.pop("Host", None)  # http.client sends the connection's own
        response = None
        try:
            conn = self.conns.get(index)
            if conn is None:
                conn = self.conns[index] = http.client.HTTPConnection(self.netloc, timeout=timeout)
            conn.request(method, target, body or None, headers)
            resp = conn.getresponse()
            data = resp.read()
            head = f"HTTP/1.1 {resp.status} {resp.reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in resp.getheaders())
            response = head.encode("latin-1") + b"\r\n" + data
            if resp.will_close:
                self._drop(index)
        except (OSError, http.client.HTTPException, ValueError):
            self._drop(index)
        dev.ip_msgs += 2 if response is not None else 1
        dev.ip_bytes += len(request) + (len(response) if response is not None else 0)
        yield self.model.env.timeout(time.perf_counter() - started)
        return response

    def _drop(self, index: int) -> None:
        conn = self.conns.pop(index, None)
        if conn is not None:
            conn.close()

    def closed(self, dev) -> None:
        self._drop(dev.ident.index)

    def close(self) -> None:
        for index in list(self.conns):
            self._drop(index)
        if self._store is not None:
            self._store.close()
            self._store = None


def real_ub(spec: dict, model: "Replica") -> RealUb:
    """Return the Ub transport to the real BSF of a validated ``components.bsf`` spec of kind ``socket``."""
    return RealUb(model, spec["url"], spec.get("db"))
