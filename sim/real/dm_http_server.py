"""The DM server core behind real sockets (OMA SyncML HTTP binding), in wall-clock time: plain
HTTP and HTTPS (SyncML DM over TLS, seed 000 §9.2.2, PSK-TLS and X.509 modes).

``make_http_server`` and ``make_https_server`` run the same ``DmServer`` core the simulation
drives behind the standard library's threaded HTTP server (one thread per connection, HTTP/1.1
with keep-alive and Content-Length bodies): ``POST <any path>`` with a SyncML DM body goes to
``DmServer.handle``. A ``DmService`` holds the core and the one lock that serialises it (the
core is not thread-safe), so an HTTP and an HTTPS listener can share it. Over HTTPS each
connection first runs the TLS handshake of ``tls.py`` through ``tls_socket.TlsSocket``; a
failed handshake, malformed HTTP or a broken connection closes that connection only.

Lab extension (not part of OMA DM): ``POST /dmsim/provision`` with a JSON account
(``account_to_json``) installs the account a simulated bootstrap gave a device, and, when the
JSON has ``psk_identity`` and ``psk`` (hex), the device's TLS PSK into the server's PSK table, so that a scenario with
``components.dm_server: {kind: socket}`` can run its sessions against this server. Bind it to
loopback or a lab network only.

HMAC mode (``syncml:auth-hmac-sha256``, OMA-TS-DM_Security §5.6.1): the request's headers go to
the core, the reply's ``x-syncml-hmac`` comes back as a response header, and ``now`` is
``time.time()`` (UTC seconds since the Unix epoch, the clock of the header's Timestamp; the
client's clock must agree within the verifier's window). A request the core refuses for its
MAC (``client_integrity_failed``) is answered 401 with an empty body, any other refusal 400
(``network/dm/server.py`` :func:`http_status`).

Choices where the binding is silent: a connection idle for ``IDLE_TIMEOUT`` seconds is closed;
a request without Content-Length gets 411, one above ``MAX_BODY`` 413, and both close the
connection (the body was not read).
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Mapping, MutableMapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from dmsim.network.dm.account import DmAccount
from dmsim.network.dm.hmac_integrity import DEFAULT_MAX_AGE, HmacVerifier
from dmsim.network.dm.server import DmServer, http_status
from dmsim.network.dm.tls import TlsConfig
from dmsim.sim.real.tls_socket import TlsSocket
from dmsim.base.errors import DmsimError

PROVISION_PATH = "/dmsim/provision"
MAX_BODY = 1 << 20
IDLE_TIMEOUT = 60.0
HANDSHAKE_TIMEOUT = 10.0


def account_to_json(device_uri: str, account: DmAccount) -> dict:
    """Return the JSON form of a device's account (its TLS PSK included) for the provisioning endpoint."""
    out = {"device": device_uri, "client_name": account.client_name, "client_password": account.client_password,
           "server_name": account.server_name, "server_password": account.server_password,
           "client_nonce": account.client_nonce.hex(), "server_nonce": account.server_nonce.hex(),
           "auth_scheme": account.auth_scheme}
    if account.has_psk:
        out["psk_identity"], out["psk"] = account.psk_identity.decode("utf-8"), account.psk_key.hex()
    return out


def install_account(server: DmServer, obj: dict, psks: MutableMapping[bytes, bytes] | None = None) -> str:
    """Install an account from its JSON form, and its PSK (``psk_identity``, ``psk``) into ``psks``;
    return the device URI. DmsimError when malformed, or for a PSK when there is no PSK table."""
    try:
        device = str(obj["device"])
        psk_identity, psk = b"", b""
        if "psk_identity" in obj or "psk" in obj:
            psk_identity, psk = str(obj["psk_identity"]).encode("utf-8"), bytes.fromhex(obj["psk"])
        account = DmAccount(
            server_id=server.server_id, server_uri=server.server_uri, client_name=str(obj["client_name"]),
            client_password=str(obj["client_password"]), server_name=str(obj.get("server_name", server.server_id)),
            server_password=str(obj["server_password"]), client_nonce=bytes.fromhex(obj["client_nonce"]),
            server_nonce=bytes.fromhex(obj["server_nonce"]), auth_scheme=str(obj["auth_scheme"]),
            psk_identity=psk_identity, psk_key=psk)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DmsimError(f"provisioning request: bad or missing field: {exc}") from None
    if psk_identity or psk:
        if psks is None:
            raise DmsimError("provisioning request: this server keeps no TLS PSKs")
        if not account.has_psk:
            raise DmsimError("provisioning request: empty psk_identity or psk")
        psks[psk_identity] = psk
    server.accounts[device] = account
    return device


def request_headers(items) -> dict[str, str]:
    """Return the (name, value) header ``items`` as {lower-case name: value}; a repeated name's
    values are joined with ", " (RFC 7230 §3.2.2), so two x-syncml-hmac headers fail to parse."""
    out: dict[str, str] = {}
    for name, value in items:
        key = name.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


class DmService:
    """The DM server core, its TLS PSK table (identity -> key, or None) and the lock that
    serialises the core, shared by every listener."""

    def __init__(self, core: DmServer, psks: MutableMapping[bytes, bytes] | None = None):
        self.core = core
        self.psks = psks
        self.lock = threading.Lock()

    def post(self, path: str, body: bytes, content_type: str,
             headers: Mapping[str, str] | None = None) -> tuple[int, bytes, str, dict[str, str]]:
        """Return (HTTP status, body, Content-Type, extra response headers) answering a POST of
        ``body`` with the request ``headers`` to ``path``."""
        with self.lock:
            if path == PROVISION_PATH:
                try:
                    device = install_account(self.core, json.loads(body), self.psks)
                except (DmsimError, ValueError) as exc:
                    return 400, str(exc).encode(), "text/plain", {}
                return 200, json.dumps({"device": device}).encode(), "application/json", {}
            reply = self.core.handle(body, content_type, time.time(), headers=headers or {})
        return http_status(reply), reply.body, reply.content_type, dict(reply.headers)


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 POST handler; the service is the server's ``dm_service``."""

    protocol_version = "HTTP/1.1"
    server_version = "dmsim"
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stall
    timeout = IDLE_TIMEOUT

    def log_message(self, fmt, *args):  # quiet: the CLI reports sessions, not requests
        pass

    def _answer(self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):  # noqa: N802 - http.server's naming
        length = self.headers.get("Content-Length", "")
        if not (length.isascii() and length.isdigit()) or int(length) > MAX_BODY:
            self.close_connection = True
            self._answer(411 if not (length.isascii() and length.isdigit()) else 413, b"", "text/plain")
            return
        body = self.rfile.read(int(length))
        if len(body) < int(length):  # the peer went away mid-body
            self.close_connection = True
            return
        self._answer(*self.server.dm_service.post(self.path, body, self.headers.get("Content-Type", ""),
                                                  request_headers(self.headers.items())))


class _DmHttpServer(ThreadingHTTPServer):
    """The threaded HTTP server; a broken connection or a handler error is not printed."""

    def __init__(self, address: tuple[str, int], service: DmService):
        self.dm_service = service
        super().__init__(address, _Handler)

    def handle_error(self, request, client_address) -> None:
        pass  # one connection's failure (peer reset, TLS failure, malformed bytes) ends that connection only


class _DmHttpsServer(_DmHttpServer):
    """The same server with a TLS handshake opening every connection."""

    def __init__(self, address: tuple[str, int], service: DmService, config: TlsConfig, handshake_timeout: float):
        self.tls_config, self.handshake_timeout = config, handshake_timeout
        super().__init__(address, service)

    def finish_request(self, request: socket.socket, client_address) -> None:
        request.settimeout(self.handshake_timeout)
        conn = TlsSocket(request, self.tls_config)
        try:
            conn.handshake()
        except (DmsimError, OSError):
            return  # the alert (if any) is sent; shutdown_request closes the socket
        try:
            self.RequestHandlerClass(conn, client_address, self)
        finally:
            conn.shutdown(socket.SHUT_WR)  # close_notify, then FIN


def _service(server: DmServer | DmService) -> DmService:
    return server if isinstance(server, DmService) else DmService(server)


def make_http_server(host: str, port: int, server: DmServer | DmService) -> ThreadingHTTPServer:
    """Return a bound (not yet serving) HTTP server around ``server``."""
    return _DmHttpServer((host, port), _service(server))


def make_https_server(host: str, port: int, server: DmServer | DmService, config: TlsConfig, *,
                      handshake_timeout: float = HANDSHAKE_TIMEOUT) -> ThreadingHTTPServer:
    """Return a bound (not yet serving) HTTPS server around ``server`` with the TLS ``config``
    (``tls.server_config``; its PSK table is read live, so provisioned PSKs work at once)."""
    return _DmHttpsServer((host, port), _service(server), config, handshake_timeout)


def default_server(server_id: str, host: str, port: int, *, scheme: str = "http",
                   accounts: MutableMapping[str, DmAccount] | None = None,
                   hmac_window: float = DEFAULT_MAX_AGE) -> DmServer:
    """Return a DM server core with OS-random nonces, addressed as ``scheme://host:port/dm``,
    refusing x-syncml-hmac Timestamps older than ``hmac_window`` seconds."""
    return DmServer(server_id, f"{scheme}://{host}:{port}/dm", os.urandom, accounts=accounts,
                    hmac_verifier=HmacVerifier(max_age=hmac_window))
