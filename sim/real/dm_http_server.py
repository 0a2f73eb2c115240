"""The DM server core behind real sockets (OMA SyncML HTTP binding), in wall-clock time: plain
HTTP and HTTPS (SyncML DM over TLS, seed 000 §9.2.2, PSK-TLS and X.509 modes).

``make_http_server`` and ``make_https_server`` run the same ``DmServer`` core the simulation
drives behind the standard library's threaded HTTP server (one thread per connection, HTTP/1.1
with keep-alive and Content-Length bodies): ``POST <any path>`` with a SyncML DM body goes to
``DmServer.handle`` (a third-party client may post to /funambol/dm). A ``DmService`` holds the
core, the one lock that serialises it (the core is not thread-safe), the audit log and the
authentication backoff, so an HTTP and an HTTPS listener can share it. Over HTTPS each
connection first runs the TLS handshake of ``tls.py`` through ``tls_socket.TlsSocket``, with
``UniformPsks`` (an unknown identity fails like a wrong key, RFC 4279 §2). With a config that
requires client certificates (``tls.server_config(client_ca_pem=...)``, OMA-TS-DM_Security §5.4)
a client without a certificate of that CA fails the handshake, the audit log's ``mechanism``
reads ``https-x509 client=<DevId>``, and a message whose SyncHdr Source is not that DevId is
answered 403 (audit event ``client_cert_mismatch``).

Every socket is hostile, so every resource is bounded (``conn_guard.Limits``): connections in
total and per address (refused by closing before a thread starts), a deadline per TLS handshake
and per HTTP request (not per read), the body size, a listen backlog of 128; the core's sessions
of vanished clients are expired (``core.expire``) at most every ``EXPIRE_EVERY`` seconds when
requests come in (sessions only grow with requests); a peer address failing authentication is
refused for a while (``auth_backoff``); every request and every core event is written to the
audit log (``audit_log``).

The core lock is held only for ``DmServer.handle``: the body is decoded once outside it first, so
a malformed message is refused without the lock; a well-formed one is decoded again by the core
under it, which stays cheap because bodies are bounded by the MaxMsgSize the server advertises
(``MAX_MSG``, 64 KiB, in every SyncHdr; OMA DM Large Objects split anything bigger), a body
above it being refused (413) before it is read. An unknown device is not refused here but by the
core, which answers it like a known one (no device-existence oracle).

Framing (RFC 7230 §3.3.3): a request with Transfer-Encoding and Content-Length (item 3: a
smuggling attempt), several Content-Length fields, or an invalid or absurd (over 18 digits)
Content-Length (item 4) is answered 400 and the connection closed, never parsed further;
Transfer-Encoding alone (this server takes no chunked bodies) and a missing Content-Length get
411, a body above ``max_body`` 413, all closing the connection (the body was not read).

HMAC mode (``syncml:auth-hmac-sha256``, OMA-TS-DM_Security §5.6.1): the request's headers go to
the core, the reply's ``x-syncml-hmac`` comes back as a response header, and ``now`` is
``time.time()``. A request the core refuses for its MAC is answered 401 with an empty body, any
other refusal 400 (``network/dm/server.py`` :func:`http_status`). With a SQLite store the replay
cache survives restarts (``hmac_replay``).

Lab provisioning (``provisioning.py``) is served only by ``make_admin_server``: a separate
listener on a loopback address, with a bearer token.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import socket
import threading
import time
from collections.abc import Mapping, MutableMapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from dmsim.base.errors import DmsimError
from dmsim.network.dm import messages as m
from dmsim.network.dm.account import DmAccount
from dmsim.network.dm.hmac_integrity import DEFAULT_MAX_AGE, HmacVerifier
from dmsim.network.dm.server import DmServer, http_status
from dmsim.network.dm.tls import TlsConfig
from dmsim.network.dm.tls_pki import binding_refusal
from dmsim.sim.real.audit_log import AuditLog, outcome_of
from dmsim.sim.real.auth_backoff import AuthBackoff, is_auth_failure
from dmsim.sim.real.conn_guard import ConnectionGate, Deadline, DeadlineSocket, Limits, drain
from dmsim.sim.real.provisioning import (MAX_REQUEST, PROVISION_PATH, ProvisionConflict, account_to_json,
                                         install_account, token_matches)
from dmsim.sim.real.tls_socket import TlsSocket, UniformPsks

__all__ = ["PROVISION_PATH", "account_to_json", "install_account", "DmService", "Limits", "make_http_server",
           "make_https_server", "make_admin_server", "default_server"]

MAX_BODY = MAX_MSG = Limits.max_body
HANDSHAKE_TIMEOUT = Limits.handshake_deadline
SESSION_IDLE = 300.0
EXPIRE_EVERY = 5.0
_MAX_DIGITS = 18


FREE_OUTCOMES = ("ok", "", "missing_credential")  # attempt outcomes that are no failure for the backoff


def event_fields(event) -> dict:
    """Return the loggable fields of a core event, whatever fields its class has: text fields
    as they are (empty ones left out), ``outcomes`` (command results, device data) as a count."""
    out = {}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if f.name == "kind":
            continue
        if f.name == "outcomes":
            if value:
                out["commands"] = len(value)
        elif value not in ("", None, ()):
            out[f.name] = value if isinstance(value, (str, int, float, bool)) else str(value)
    return out


class FramingError(DmsimError):
    """A request whose body length cannot be trusted; ``status`` is the answer."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status


def content_length(headers, max_body: int) -> int:
    """Return the body length of a request with the parsed ``headers`` (RFC 7230 §3.3.3);
    FramingError with the status to answer otherwise."""
    lengths = headers.get_all("Content-Length") or []
    if headers.get_all("Transfer-Encoding"):
        if lengths:
            raise FramingError(400, "Transfer-Encoding with Content-Length (RFC 7230 §3.3.3 item 3)")
        raise FramingError(411, "no chunked bodies here: send Content-Length")
    if not lengths:
        raise FramingError(411, "Content-Length required")
    if len(lengths) > 1:
        raise FramingError(400, "several Content-Length fields (RFC 7230 §3.3.3 item 4)")
    value = lengths[0].strip()
    if not (value.isascii() and value.isdigit()) or len(value.lstrip("0")) > _MAX_DIGITS:
        raise FramingError(400, "invalid Content-Length (RFC 7230 §3.3.3 item 4)")
    if int(value) > max_body:
        raise FramingError(413, f"body above {max_body} octets")
    return int(value)


def request_headers(items) -> dict[str, str]:
    """Return the (name, value) header ``items`` as {lower-case name: value}; a repeated name's
    values are joined with ", " (RFC 7230 §3.2.2), so two x-syncml-hmac headers fail to parse."""
    out: dict[str, str] = {}
    for name, value in items:
        key = name.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


@dataclasses.dataclass
class Answer:
    """One HTTP answer, and the device the request claimed to come from (for the audit log)."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain"
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    device: str | None = None


class DmService:
    """The DM server core, its TLS PSK table (identity -> key, or None), the lock that
    serialises the core, the audit log and the authentication backoff, shared by every
    listener. ``protected`` PSK identities (the server's own) are never replaced by provisioning."""

    def __init__(self, core: DmServer, psks: MutableMapping[bytes, bytes] | None = None, *,
                 audit: AuditLog | None = None, backoff: AuthBackoff | None = None,
                 session_idle: float = SESSION_IDLE, protected: set[bytes] | None = None):
        self.core = core
        self.psks = psks
        self.lock = threading.Lock()
        self.audit = audit if audit is not None else AuditLog(None)
        self.backoff = backoff if backoff is not None else AuthBackoff()
        self.session_idle = session_idle
        self.protected = protected if protected is not None else set()
        self._last_expire = 0.0

    def post(self, path: str, body: bytes, content_type: str,
             headers: Mapping[str, str] | None = None) -> tuple[int, bytes, str, dict[str, str]]:
        """Return (HTTP status, body, Content-Type, extra response headers) answering a POST of
        ``body`` with the request ``headers`` to ``path`` (any path)."""
        a = self.answer(body, content_type, headers or {}, peer="", mechanism="direct")
        return a.status, a.body, a.content_type, a.headers

    def refusal(self, peer: str) -> Answer | None:
        """Return the 429 answer for a peer address in backoff, None when it may go on."""
        wait = self.backoff.retry_after(peer)
        if wait <= 0:
            return None
        return Answer(429, b"too many authentication failures", headers={"Retry-After": str(int(wait) + 1)})

    def answer(self, body: bytes, content_type: str, headers: Mapping[str, str], *, peer: str,
               mechanism: str, client_identity: str | None = None) -> Answer:
        """Answer one DM message from ``peer``: pre-decoded outside the core lock, handled under it.

        ``client_identity`` is the DevId of the connection's verified client certificate (X.509
        mode, OMA-TS-DM_Security §5.4): a message claiming another DevId is refused with 403 and
        never reaches the core (``tls_pki.binding_refusal``)."""
        try:
            device = m.read_header(m.decode(body, content_type)).source
        except DmsimError as exc:
            self.audit.write("bad_request", peer=peer, outcome="failure", mechanism=mechanism, detail=str(exc))
            return Answer(400)
        refusal = binding_refusal(client_identity, device)
        if refusal is not None:
            self.audit.write("client_cert_mismatch", peer=peer, device=device, outcome="failure",
                             mechanism=mechanism, detail=refusal)
            return Answer(403, b"client certificate does not name this device", device=device)
        now = time.time()
        with self.lock:
            self._expire(now)
            reply = self.core.handle(body, content_type, now, headers=headers)
        self._record(reply, peer, device, mechanism)
        return Answer(http_status(reply), reply.body, reply.content_type, dict(reply.headers), device)

    def _record(self, reply, peer: str, device: str, mechanism: str) -> None:
        """Write every event of ``reply`` to the audit log, generically (``event_fields``), and
        count its failed authentication attempts for the backoff: the per-attempt ``audit``
        events when the core gives them (outcome other than ok or missing_credential, the normal
        first challenge), else the failure kinds of ``events`` (``is_auth_failure``)."""
        attempts = list(getattr(reply, "audit", None) or ())
        for event in list(reply.events) + attempts:
            fields = event_fields(event)
            fields.setdefault("outcome", outcome_of(event.kind))
            self.audit.write(event.kind, peer=peer, mechanism=mechanism, **{"device": device, **fields})
        if attempts:
            failures = sum(getattr(e, "outcome", "") not in FREE_OUTCOMES for e in attempts)
        else:
            failures = sum(is_auth_failure(e.kind) for e in reply.events)
        for _ in range(failures):
            self.backoff.failed(peer)

    def _expire(self, now: float) -> None:
        """Call the core's expiry (if it has one) at most every EXPIRE_EVERY seconds; under the lock."""
        expire = getattr(self.core, "expire", None)
        if expire is None or now - self._last_expire < EXPIRE_EVERY:
            return
        self._last_expire = now
        try:
            gone = expire(now, idle=self.session_idle)
        except TypeError:  # a core whose expire takes its own idle time
            gone = expire(now)
        for device in gone or ():
            self.audit.write("session_expired", device=device, outcome="info")

    def provision(self, obj, *, peer: str) -> Answer:
        """Install the account of a provisioning request (the admin listener checked its token)."""
        try:
            if not isinstance(obj, dict):
                raise DmsimError("provisioning request: expected a JSON object")
            with self.lock:
                device = install_account(self.core, obj, self.psks, protected=self.protected)
        except ProvisionConflict as exc:
            self.audit.write("provision_refused", peer=peer, device=str(obj.get("device", "")), outcome="failure",
                             mechanism="admin", detail=str(exc))
            return Answer(409, str(exc).encode())
        except DmsimError as exc:
            self.audit.write("provision_refused", peer=peer, outcome="failure", mechanism="admin", detail=str(exc))
            return Answer(400, str(exc).encode())
        self.audit.write("account_installed", peer=peer, device=device, outcome="success", mechanism="admin")
        return Answer(200, json.dumps({"device": device}).encode(), "application/json", device=device)


class _GuardedHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 POST handler with a deadline per request, strict framing and an access log."""

    protocol_version = "HTTP/1.1"
    server_version = "dmsim"
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stall
    timeout = None  # the connection's deadline governs (conn_guard)

    def log_message(self, fmt, *args):  # quiet: the audit log records requests
        pass

    def handle_one_request(self):
        deadline = getattr(self.connection, "deadline", None)
        if deadline is not None:
            deadline.arm(self.server.limits.request_deadline)
        super().handle_one_request()

    @property
    def peer(self) -> str:
        return str(self.client_address[0]) if self.client_address else ""

    def _answer(self, a: Answer) -> None:
        if a.status >= 400 and a.status not in (400, 401) or a.status == 429:
            self.close_connection = True
        self.server.dm_service.audit.write("access", peer=self.peer, device=a.device, status=a.status,
                                           path=self.path, mechanism=self.server.mechanism(self.connection),
                                           outcome="success" if a.status < 400 else "failure")
        self.send_response(a.status)
        self.send_header("Content-Type", a.content_type)
        self.send_header("Content-Length", str(len(a.body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in a.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(a.body)

    def _body(self, max_body: int) -> bytes | None:
        """Return the request body, or None after answering (framing error) or when the peer left."""
        try:
            length = content_length(self.headers, max_body)
        except FramingError as exc:
            self._refuse_unread(Answer(exc.status, str(exc).encode()))
            return None
        body = self.rfile.read(length)
        if len(body) < length:  # the peer went away mid-body
            self.close_connection = True
            return None
        return body

    def _refuse_unread(self, a: Answer) -> None:
        """Answer ``a`` to a request whose body is not read, then close the connection lingering."""
        self.close_connection = True
        self._answer(a)
        self._linger()

    def _linger(self) -> None:
        """After answering a request whose body was left unread, discard what the peer still
        sends (bounded, ``conn_guard.drain``) so that it reads the answer instead of a reset. The
        answer is followed by FIN (over TLS close_notify first) so a peer that has finished sending
        closes at once; the rest of the request is discarded as it arrives (as ciphertext)."""
        conn = self.connection
        raw = conn.sock if isinstance(conn, TlsSocket) else conn
        if not isinstance(raw, DeadlineSocket):
            return
        try:
            self.wfile.flush()
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            return
        drain(raw, self.server.limits.linger_bytes, self.server.limits.linger_seconds)

    def _refused(self, service: "DmService") -> bool:
        """Answer and close when the peer's address is backing off; return whether it was refused."""
        refused = service.refusal(self.peer)
        if refused is None:
            return False
        self._refuse_unread(refused)
        return True

    def do_POST(self):  # noqa: N802 - http.server's naming
        service: DmService = self.server.dm_service
        if self._refused(service):
            return
        body = self._body(self.server.limits.max_body)
        if body is None:
            return
        session = getattr(self.connection, "session", None)
        self._answer(service.answer(body, self.headers.get("Content-Type", ""), request_headers(self.headers.items()),
                                    peer=self.peer, mechanism=self.server.mechanism(self.connection),
                                    client_identity=getattr(session, "peer_identity", None)))


class _AdminHandler(_GuardedHandler):
    """The provisioning endpoint: a bearer token, then ``DmService.provision``."""

    def do_POST(self):  # noqa: N802
        service: DmService = self.server.dm_service
        if self._refused(service):
            return
        if self.path != PROVISION_PATH:
            self._refuse_unread(Answer(404, b"not found"))
            return
        if not token_matches(self.headers.get("Authorization"), self.server.admin_token):
            service.backoff.failed(self.peer)
            service.audit.write("admin_auth_failed", peer=self.peer, outcome="failure", mechanism="admin bearer")
            self._refuse_unread(Answer(401, b"admin token required", headers={"WWW-Authenticate": "Bearer"}))
            return
        body = self._body(MAX_REQUEST)
        if body is None:
            return
        try:
            obj = json.loads(body)
        except ValueError as exc:
            self._answer(Answer(400, f"provisioning request: not JSON: {exc}".encode()))
            return
        self._answer(service.provision(obj, peer=self.peer))


class _GuardedServer(ThreadingHTTPServer):
    """The threaded HTTP server with the connection gate and deadlines of ``limits``; a TLS
    handshake opens every connection when ``tls_config`` is given. A broken connection or a
    handler error ends that connection only and is not printed."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler, service: DmService, limits: Limits,
                 tls_config: TlsConfig | None = None):
        self.dm_service, self.limits, self.tls_config = service, limits, tls_config
        self.request_queue_size = limits.backlog
        self.gate = ConnectionGate(limits.max_connections, limits.max_per_address)
        super().__init__(address, handler)

    def mechanism(self, conn) -> str:
        """Return how ``conn`` authenticated: http, https-psk, https-x509, or
        ``https-x509 client=<DevId>`` with the identity of a verified client certificate."""
        session = getattr(conn, "session", None)
        if self.tls_config is None:
            return "http"
        if session is not None and session.psk_identity is not None:
            return "https-psk"
        identity = getattr(session, "peer_identity", None)
        return f"https-x509 client={identity}" if identity is not None else "https-x509"

    def process_request(self, request, client_address) -> None:
        address = str(client_address[0])
        if not self.gate.enter(address):
            self.shutdown_request(request)  # refused cheaply: no thread, no read, no answer
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.gate.leave(address)
            self.shutdown_request(request)
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.gate.leave(str(client_address[0]))

    def finish_request(self, request: socket.socket, client_address) -> None:
        deadline = Deadline()
        conn = DeadlineSocket(request, deadline)
        if self.tls_config is None:
            self.RequestHandlerClass(conn, client_address, self)
            return
        deadline.arm(self.limits.handshake_deadline)
        tls_conn = TlsSocket(conn, self.tls_config)
        try:
            tls_conn.handshake()
        except (DmsimError, OSError):
            return  # the alert (if any) is sent; shutdown_request closes the socket
        try:
            self.RequestHandlerClass(tls_conn, client_address, self)
        finally:
            tls_conn.shutdown(socket.SHUT_WR)  # close_notify, then FIN

    def handle_error(self, request, client_address) -> None:
        pass  # one connection's failure (peer reset, TLS failure, deadline, malformed bytes) ends it only


def _service(server: DmServer | DmService) -> DmService:
    return server if isinstance(server, DmService) else DmService(server)


def make_http_server(host: str, port: int, server: DmServer | DmService, *,
                     limits: Limits | None = None) -> ThreadingHTTPServer:
    """Return a bound (not yet serving) HTTP server around ``server``."""
    return _GuardedServer((host, port), _GuardedHandler, _service(server), limits or Limits())


def make_https_server(host: str, port: int, server: DmServer | DmService, config: TlsConfig, *,
                      handshake_timeout: float | None = None, limits: Limits | None = None) -> ThreadingHTTPServer:
    """Return a bound (not yet serving) HTTPS server around ``server`` with the TLS ``config``
    (``tls.server_config``; its PSK table is read live, so provisioned PSKs work at once, and
    wrapped in ``UniformPsks``; with ``client_ca_pem`` it requires client certificates, module
    docstring); ``handshake_timeout`` overrides ``limits.handshake_deadline``."""
    limits = limits or Limits()
    if handshake_timeout is not None:
        limits = dataclasses.replace(limits, handshake_deadline=handshake_timeout)
    if config.psks is not None and not isinstance(config.psks, UniformPsks):
        config = dataclasses.replace(config, psks=UniformPsks(config.psks))
    return _GuardedServer((host, port), _GuardedHandler, _service(server), limits, config)


def is_loopback(host: str) -> bool:
    """Return True for a loopback IP address literal or ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def make_admin_server(host: str, port: int, service: DmService, token: str, *,
                      limits: Limits | None = None) -> ThreadingHTTPServer:
    """Return a bound provisioning listener (``provisioning.py``) on the loopback ``host``;
    DmsimError for any other address or an empty token."""
    if not is_loopback(host):
        raise DmsimError(f"the admin listener must be on a loopback address, not {host!r}")
    if not token:
        raise DmsimError("the admin listener needs a token")
    httpd = _GuardedServer((host, port), _AdminHandler, service,
                           limits or Limits(max_connections=8, max_per_address=8))
    httpd.admin_token = token
    return httpd


def default_server(server_id: str, host: str, port: int, *, scheme: str = "http",
                   accounts: MutableMapping[str, DmAccount] | None = None,
                   hmac_window: float = DEFAULT_MAX_AGE) -> DmServer:
    """Return a DM server core with OS-random nonces, addressed as ``scheme://host:port/dm``,
    refusing x-syncml-hmac Timestamps older than ``hmac_window`` seconds; with a SQLite store as
    ``accounts`` the replay cache is kept in it too (``hmac_replay``)."""
    from dmsim.sim.real.dm_store import SqliteAccounts
    from dmsim.sim.real.hmac_replay import PersistentHmacVerifier
    verifier = (PersistentHmacVerifier(accounts, max_age=hmac_window) if isinstance(accounts, SqliteAccounts)
                else HmacVerifier(max_age=hmac_window))
    return DmServer(server_id, f"{scheme}://{host}:{port}/dm", os.urandom, accounts=accounts,
                    hmac_verifier=verifier, max_msg_size=MAX_MSG)
