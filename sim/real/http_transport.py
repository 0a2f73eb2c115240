"""A real DM server as the replica's ``components.dm_server`` (kind ``socket``): HTTP, or
PSK-TLS for an ``https://`` URL (seed 000 §9.2.2), over real sockets.

Registered in ``sim/real/components.py``; the simulated world never imports this module. The
measured wall-clock round trip is added to simulated time, so a run with a real server advances
at the pace of the real one. Accounts the simulated network bootstraps are first handed to the
real server through its admin listener (``components.dm_server.admin``: the URL of ``dmsim
server --admin`` and the file of its token; ``POST /dmsim/provision`` with ``Authorization:
Bearer``, see ``sim/real/provisioning.py``). The simulation owns the fleet it provisions, so it
asks to replace an account a previous run left (``"replace": true``); the server still never lets
it change a PSK identity of its own (``--psk``).
"""
from __future__ import annotations

import dataclasses
import http.client
import json
from pathlib import Path
import time
import urllib.parse
from typing import TYPE_CHECKING

from dmsim.base.errors import DmsimError
from dmsim.devices.dm_client import Done
from dmsim.network.dm import http_binding
from dmsim.network.dm.tls import psk_client_config
from dmsim.sim.links.transports import IpTransport, fresh_psk, parse_psk
from dmsim.sim.real.provisioning import PROVISION_PATH, account_to_json, read_token
from dmsim.sim.real.tls_socket import TlsHttpConnection

if TYPE_CHECKING:  # pragma: no cover
    from dmsim.sim.model.replica import Replica


class RealHttp(IpTransport):
    """HTTP, or PSK-TLS for an ``https://`` URL, over real sockets to ``url``; wall-clock
    latency becomes simulated time, and x-syncml-hmac uses the wall clock (:meth:`unix_now`).

    PSK-TLS (seed 000 §9.2.2): when the simulated server provisions a device, a fresh PSK and
    identity are set on its account as :class:`SimulatedHttps` does, so the bootstrap carries them
    in ``<x>/Auth/Trsp`` and the provisioning request hands them to the real server's PSK
    table; the device then connects with :class:`TlsHttpConnection` and the PSK of its own
    account. The provisioning request goes to ``admin`` (``url``, ``token_file``) over plain HTTP
    on loopback. An ``https://`` URL whose device account has no PSK uses the standard library's HTTPS.

    Choices: one connection per device session (HTTP/1.1 keep-alive), dropped after any failure
    and closed when the session ends; a provisioning request the server refuses, or no
    ``admin``, ends the session (``provision_failed``), a failed TLS handshake too
    (``tls_failed``); a connection failure or timeout reads as a lost response (the device
    retries). The token is read when the first device is provisioned and never logged.
    """

    def __init__(self, model: "Replica", url: str, tls: dict | None = None, admin: dict | None = None):
        self.model = model
        self.refused = {}
        parts = urllib.parse.urlsplit(url)
        self.url = url
        self.scheme, self.netloc, self.path = parts.scheme, parts.netloc, parts.path or "/"
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (443 if self.scheme == "https" else 80)
        self.lab_psk = parse_psk((tls or {}).get("lab_psk"), "components.dm_server.tls.lab_psk")
        self.rng = model.stream("tls")
        self.admin = admin
        self._token: str | None = None
        self.provisioned: set[str] = set()
        self.conns: dict[int, http.client.HTTPConnection] = {}
        self.observers: list = []

    def unix_now(self) -> float:
        """Return ``time.time()``: the real server checks Timestamps against its wall clock."""
        return time.time()

    def account_provisioned(self, device_uri: str) -> None:
        if self.scheme != "https":
            return
        accounts = self.model.server.core.accounts
        identity, key = fresh_psk(self.rng)
        accounts[device_uri] = dataclasses.replace(accounts[device_uri], server_uri=self.url, psk_identity=identity,
                                                   psk_key=key)

    def _connect(self, psk: tuple[bytes, bytes] | None, timeout: float) -> http.client.HTTPConnection:
        if self.scheme != "https":
            return http.client.HTTPConnection(self.netloc, timeout=timeout)
        if psk is None:
            return http.client.HTTPSConnection(self.netloc, timeout=timeout)
        return TlsHttpConnection(self.host, self.port, psk_client_config(*psk), timeout=timeout)

    @staticmethod
    def _post(conn: http.client.HTTPConnection, path: str, body: bytes, content_type: str,
              headers=None) -> http_binding.HttpMessage:
        conn.request("POST", path, body, {"Content-Type": content_type, "Cache-Control": "no-store",
                                          "Accept": content_type, **(headers or {})})
        resp = conn.getresponse()
        return http_binding.HttpMessage(str(resp.status), {k.lower(): v for k, v in resp.getheaders()}, resp.read())

    def _provision(self, uri: str, timeout: float) -> Done | None:
        """Hand ``uri``'s account to the real server; return the Done that ends the session if refused."""
        account = self.model.server.core.accounts[uri]
        if self.admin is None:
            return Done(False, "provision_failed: a real server is provisioned through its admin listener: "
                               "set components.dm_server.admin (url, token_file)")
        if self._token is None:
            try:
                self._token = read_token(str(Path(self.admin["token_file"])))
            except DmsimError as exc:
                return Done(False, f"provision_failed: {exc}")
        parts = urllib.parse.urlsplit(self.admin["url"])
        conn = http.client.HTTPConnection(parts.netloc, timeout=timeout)
        try:
            reply = self._post(conn, PROVISION_PATH, json.dumps(account_to_json(uri, account, replace=True)).encode(),
                               "application/json", {"Authorization": f"Bearer {self._token}"})
        finally:
            conn.close()
        if reply.start != "200":
            return Done(False, f"provision_failed: http_{reply.start} {reply.body[:200]!r}")
        self.provisioned.add(uri)
        return None

    def exchange(self, dev, body: bytes, content_type: str, timeout: float, headers=None):
        uri, index = dev.ident.uri, dev.ident.index
        account = dev.account
        psk = (account.psk_identity, account.psk_key) if account is not None and account.has_psk else None
        started = time.perf_counter()
        reply = None
        try:
            if uri not in self.provisioned and index >= 0:  # an adversary's endpoint (index < 0) is never provisioned
                reply = self._provision(uri, timeout)
            if reply is None:
                conn = self.conns.get(index)
                if conn is None:
                    conn = self.conns[index] = self._connect(psk, timeout)
                reply = self._post(conn, self.path, body, content_type, headers)
        except (OSError, http.client.HTTPException):
            self._drop(index)
            reply = None
        except DmsimError as exc:  # the TLS handshake failed (or the PSK config was refused)
            self._drop(index)
            reply = Done(False, f"tls_failed: {exc}")
        dev.ip_msgs += 2
        dev.ip_bytes += len(body) + (len(reply.body) if isinstance(reply, http_binding.HttpMessage) else 0)
        yield self.model.env.timeout(time.perf_counter() - started)
        if self.observers and not isinstance(reply, Done):
            self._observed(dev, body, content_type, headers, reply)
        return reply

    def hang_up(self, endpoint) -> None:
        self._drop(endpoint.ident.index)

    def observe(self, hook) -> bool:
        """An eavesdropper on the path to a real server reads plain HTTP only."""
        if self.scheme != "http":
            return False
        self.observers.append(hook)
        return True

    def _drop(self, index: int) -> None:
        conn = self.conns.pop(index, None)
        if conn is not None:
            conn.close()

    def closed(self, dev) -> None:
        self._drop(dev.ident.index)


def real_transport(spec: dict, model: "Replica") -> RealHttp:
    """Return the transport to the real server of a validated ``components.dm_server`` spec of kind ``socket``."""
    return RealHttp(model, spec["url"], spec.get("tls"), spec.get("admin"))
