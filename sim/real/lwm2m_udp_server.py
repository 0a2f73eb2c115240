"""The LwM2M bootstrap server and server on real UDP sockets (``dmsim lwm2m server``): the sans-IO
cores (``network/lwm2m/dtls``, ``network/coap/reliability``, ``network/lwm2m/bootstrap_server``,
``network/lwm2m/server``) driven by one single-threaded select loop, which owns the wall clock
(``time.monotonic``) and the randomness (``os.urandom``). Seed 004 §7.1, RFC 7252 §4, §9,
OMA-TS-LightweightM2M-V1_0 §5.1-§5.3.

Listeners (at least one): ``coaps`` is CoAP over DTLS 1.2 in PSK mode, ``coaps_cert`` in
certificate mode (a server certificate; clients present a certificate from ``client_ca``),
``coaps_rpk`` in RPK mode (a server key; clients' keys pinned, ``network/lwm2m/dtls``: RPK is
carried in a minimal self-signed certificate), ``coap`` is NoSec CoAP. One listener, one mode:
python-mbedtls takes a configuration with PSKs and a certificate together (Mbed TLS completes a
PSK handshake on it, as ``network/dm/tls`` "both" does for TLS), but a ``dtls.DtlsConfig`` has
one security mode whose checks it applies to every handshake (a certificate-mode config refuses
a PSK client for sending no certificate), and RPK and certificate clients run the same
ECDHE-ECDSA suites, told apart only by what their certificate should be checked against. Each
listener has its own socket and cookie gate; the bounds below count associations over all.

DTLS (``coaps``). Every datagram from an address without an association goes through the
``DtlsServer`` cookie gate (RFC 6347 §4.2.1): a ClientHello without a valid cookie gets a
HelloVerifyRequest no larger than itself and leaves no state, so spoofed sources cost nothing;
anything else from a new address is dropped. A ClientHello with a cookie opens an association
(one ``DtlsEndpoint``), refused silently when ``max_associations`` exist or its IP address has
``max_per_address`` of them. Once the handshake is done the association gets a CoAP
``Endpoint`` (CON retransmission, duplicate cache of ``dedup_capacity`` Message IDs, NSTART 1)
and its requests are routed by path: ``POST /bs`` to the bootstrap server core, ``/rd...`` to
the server core, ``GET /.well-known/core`` answered here; anything else 4.04. The identity a core
sees is the principal the handshake authenticated (``lwm2m_credentials``: the PSK identity,
``x509:`` and the client certificate's SAN URI or CN, ``rpk:`` and the pinned key's name), never
anything the message claims. The server core asks which identity may register as an endpoint
name; it is told the current association's principal when ``Authorizations`` lets that one
register as the name, None otherwise (4.03).

NoSec (``coap``): nothing there is authenticated, so nothing is provisioned or changed over it,
and it keeps no state per source (which anyone can spoof): each datagram is read by a fresh
``Endpoint``. A CoAP ping (Empty CON) gets its RST (RFC 7252 §4.3); ``GET /.well-known/core``
gets the link format (2.05); every other request gets 4.01 Unauthorized (RFC 7252 §5.9.2.1: the
client must first improve its authentication status, i.e. come back over coaps); a malformed CON
gets a RST. No answer is more than 1.5 times the request it answers (the largest, the link
format, is 31 octets for a request of 21), so the listener is no useful amplifier.

/.well-known/core (RFC 6690 §4): ``</bs>,</rd>;rt="core.rd"`` on both listeners (a discovery
reveals nothing: the same resources refuse NoSec callers with 4.01). Query filters (§4.1) are
optional and ignored: the whole list is always returned.

Bounds (:class:`Lwm2mLimits`, defaults in brackets; ``dmsim lwm2m server --help``):
associations in total [256] and per source IP address [32]; a handshake must complete within
``handshake_deadline`` of its cookie-verified ClientHello [30 s] (the DTLS retransmission timer
alone would hold a silent peer for two minutes); an open association that delivers no
authenticated datagram for ``idle_timeout`` [600 s] is closed with close_notify (LwM2M asks
to keep sessions long, seed 004 §7.1, so this is long; a client comes back with a new
handshake); datagrams over ``max_datagram`` octets [1500] are dropped unread; the CoAP
duplicate cache [128 Message IDs] and open requests [16] per association; bootstrap sessions at
once [64] (5.03 past it) and their answer timeout [60 s]; registrations [1024]; datagrams read
per socket per loop turn [64], so one busy listener cannot starve the timers.

Bootstrap plans (``lwm2m_config.EndpointSpec``) write this server's coaps (PSK) URI into the
client's Security object with the PSK they provision, unless an endpoint names its
``server_uri``; a plan is refused at start when there is no PSK listener or it listens on a
wildcard address (0.0.0.0, ::), which no client could use. A client may bootstrap over any of the
listeners, with the credential its plan names.

Hostile input never stops the loop: the cores are given decoded messages only, a core that raises
on one (it should not) costs that request a 4.00 (DecodeError) or 5.00, counted in
``core_errors``; anything else raised while handling one datagram is counted in
``internal_errors`` and logged, and the loop goes on.

Audit log (``audit_log.AuditLog``, JSON lines): ``server_started``/``server_stopped``, every
handshake (``handshake_ok`` with the listener's mode, the suite and the principal,
``handshake_failed`` with the reason and the alert sent), ``association_closed``, every core
event (``bootstrap_requested``, ``bootstrap_completed``, ``bootstrap_failed``,
``bootstrap_refused``, ``registration_accepted``, ``registration_refused``,
``registration_updated``, ``deregistered``, ``registration_expired``) and
refusals (``association_refused``, ``nosec_refused``: at most one line a second per reason, with
the number left out, so a flood cannot fill the disk). Never key material: PSKs and private keys
are only in the DTLS configurations; the records carry identities, addresses, suites and reasons.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import re
import select
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from dmsim.base.errors import DecodeError, ProtocolError, ScenarioError
from dmsim.network.coap import link_format
from dmsim.network.coap import message as coap
from dmsim.network.coap.message import Code, ContentFormat, Message
from dmsim.network.coap.reliability import (Endpoint, Ignored, QueueFullError, Reset, RequestReceived,
                                            ResponseReceived, Timeout, Transmit)
from dmsim.network.lwm2m import dtls
from dmsim.network.lwm2m.bootstrap_server import BootstrapServer
from dmsim.network.lwm2m.dtls_policy import PskCredential, SecurityMode
from dmsim.network.lwm2m.events import Send, identity_bytes
from dmsim.network.lwm2m.server import Lwm2mServer
from dmsim.sim.real.audit_log import AuditLog
from dmsim.sim.real.dtls_timer import DtlsTimer
from dmsim.sim.real.lwm2m_config import EndpointSpec, psk_store
from dmsim.sim.real.lwm2m_credentials import (MODE_NAMES, Authorizations, CertificateMode, PublicKey, RpkMode,
                                              principal_of, rpk_table)

log = logging.getLogger(__name__)

DEFAULT_COAP_PORT = 5683
DEFAULT_COAPS_PORT = 5684
DTLS_LISTENERS = {"coaps": SecurityMode.PSK, "coaps_cert": SecurityMode.CERTIFICATE, "coaps_rpk": SecurityMode.RPK}
WELL_KNOWN = (".well-known", "core")
LINKS = (link_format.Link("/bs"), link_format.Link("/rd", (("rt", "core.rd"),)))
_MAX_WAIT = 0.2  # seconds: how often the loop looks at its stop flag
_REFUSAL_LOG_INTERVAL = 1.0


@dataclass(frozen=True)
class Lwm2mLimits:
    """The bounds of the server (module docstring)."""

    max_associations: int = 256
    max_per_address: int = 32
    handshake_deadline: float = 30.0
    idle_timeout: float = 600.0
    max_datagram: int = 1500
    dedup_capacity: int = 128
    max_requests: int = 16
    max_bootstraps: int = 64
    bootstrap_timeout: float = 60.0
    max_registrations: int = 1024
    batch: int = 64

    def __post_init__(self):
        for f in dataclasses.fields(self):
            if getattr(self, f.name) <= 0:
                raise ScenarioError(f"{f.name} {getattr(self, f.name)}", path=f"limits.{f.name}", expected="> 0")


def _check_modes(addrs: Mapping[str, tuple], store: Mapping, certificate: CertificateMode | None,
                 rpk: RpkMode | None, table: Mapping) -> None:
    """Refuse a DTLS listener without its credentials, and credentials without their listener."""
    if "coaps" in addrs and not store:
        raise ScenarioError("coaps without any PSK", path="psk",
                            expected="--psk IDENTITY:HEXKEY, --low-entropy-psk or endpoints in --config")
    for name, given, what, options in (("coaps_cert", certificate, "a server certificate",
                                        "--cert, --key and --client-ca"),
                                       ("coaps_rpk", rpk, "an RPK server key", "--rpk-key")):
        if (name in addrs) != (given is not None):
            raise ScenarioError(f"{name} without {what}" if given is None else f"{what} without a {name} listener",
                                path=name, expected=options if given is None else f"--{name.replace('_', '-')} "
                                                                                  "HOST:PORT")
    if "coaps_rpk" in addrs and not table:
        raise ScenarioError("coaps_rpk without any client key", path="rpk_clients",
                            expected="--rpk-client NAME:HEXKEY or endpoints with a public_key")


def address_key(sockaddr: tuple) -> bytes:
    """Return the transport address as the DtlsServer keys it: ``host:port`` (``[host]:port``)."""
    host, port = sockaddr[0], sockaddr[1]
    return (f"[{host}]:{port}" if ":" in host else f"{host}:{port}").encode("ascii")


def uri_of(scheme: str, sockaddr: tuple) -> str:
    return f"{scheme}://{address_key(sockaddr).decode('ascii')}"


def _bind(host: str, port: int) -> socket.socket:
    family = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0][0]
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class _Listener:
    """One DTLS listener: its name (a key of DTLS_LISTENERS), mode, socket and cookie gate."""

    def __init__(self, name: str, sock: socket.socket):
        self.name, self.mode, self.sock = name, DTLS_LISTENERS[name], sock
        self.dtls: dtls.DtlsServer | None = None
        self.reply_to: dict[bytes, tuple] = {}  # addresses of this turn's HelloVerifyRequests


class _Association:
    """One DTLS association and what runs over it."""

    def __init__(self, listener: _Listener, endpoint: dtls.DtlsEndpoint, sockaddr: tuple, now: float):
        self.listener, self.endpoint, self.sockaddr = listener, endpoint, sockaddr
        self.key = address_key(sockaddr)
        self.slot = (listener.name, self.key)
        self.started = self.last_seen = now
        self.timer = DtlsTimer()
        self.coap: Endpoint | None = None
        self.identity: bytes | None = None
        self.tokens: dict[bytes, object] = {}  # our open requests: token -> the core that sent them

    @property
    def ip(self) -> str:
        return str(self.sockaddr[0])


class Lwm2mUdpServer:
    """The listeners, the cores and the loop. The sockets are bound by the constructor (port 0
    picks a free one: see :attr:`addresses`); :meth:`serve` runs the loop in the calling thread,
    :meth:`start`/:meth:`stop` in a thread of its own."""

    def __init__(self, *, coaps_addr: tuple[str, int] | None = None, coap_addr: tuple[str, int] | None = None,
                 coaps_cert_addr: tuple[str, int] | None = None, coaps_rpk_addr: tuple[str, int] | None = None,
                 psks: Sequence[PskCredential] = (), endpoints: Sequence[EndpointSpec] = (),
                 certificate: CertificateMode | None = None, rpk: RpkMode | None = None,
                 limits: Lwm2mLimits = Lwm2mLimits(), audit: AuditLog | None = None,
                 randbytes: Callable[[int], bytes] = os.urandom, clock: Callable[[], float] = time.monotonic):
        dtls_addrs = {"coaps": coaps_addr, "coaps_cert": coaps_cert_addr, "coaps_rpk": coaps_rpk_addr}
        dtls_addrs = {name: addr for name, addr in dtls_addrs.items() if addr is not None}
        if not dtls_addrs and coap_addr is None:
            raise ScenarioError("no listener", path="listeners",
                                expected="coaps, coaps_cert, coaps_rpk and/or coap HOST:PORT")
        store = psk_store([*psks, *(c for s in endpoints for c in s.credentials if isinstance(c, PskCredential))])
        table = rpk_table([*(rpk.clients if rpk is not None else ()),
                           *((s.name, c.spki) for s in endpoints for c in s.credentials if isinstance(c, PublicKey))])
        _check_modes(dtls_addrs, store, certificate, rpk, table)
        self.limits, self.audit = limits, audit if audit is not None else AuditLog(None)
        self._randbytes, self._clock = randbytes, clock
        self.counts: Counter = Counter()
        self._listeners: dict[str, _Listener] = {}
        self._coap_sock = None
        try:
            for name, addr in dtls_addrs.items():
                self._listeners[name] = _Listener(name, _bind(*addr))
            if coap_addr is not None:
                self._coap_sock = _bind(*coap_addr)
            self._cores(store, table, endpoints, certificate, rpk)
        except BaseException:
            self._close_sockets()
            raise
        self._assocs: dict[tuple[str, bytes], _Association] = {}
        self._per_ip: Counter = Counter()
        self._by_identity: dict[bytes, _Association] = {}
        self._principal: bytes | None = None  # of the association whose message a core is reading
        self._refusals: dict[str, tuple[float, int]] = {}
        self._links = link_format.encode(LINKS)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def _cores(self, store: dict[bytes, PskCredential], table: dict[bytes, str], endpoints: Sequence[EndpointSpec],
               certificate: CertificateMode | None, rpk: RpkMode | None) -> None:
        """Make the DTLS servers and the two LwM2M cores (the plans need the bound coaps URI)."""
        limits = self.limits
        self.psks: Mapping[bytes, PskCredential] = store
        self.rpk_clients: Mapping[bytes, str] = table
        configs = {"coaps": lambda: dtls.psk_server_config(store),
                   "coaps_cert": lambda: certificate.server_config(),
                   "coaps_rpk": lambda: rpk.server_config(table)}
        for listener in self._listeners.values():
            listener.dtls = dtls.DtlsServer(configs[listener.name](), max_endpoints=limits.max_associations)
        plans = {}
        if self._listeners:  # nothing bootstraps over NoSec
            if any(s.bootstrap and not s.server_uri for s in endpoints) and \
                    self.addresses.get("coaps", ("0.0.0.0",))[0] in ("0.0.0.0", "::"):
                raise ScenarioError("a bootstrap plan provisions a PSK for this server's coaps listener, but there is "
                                    "none or it listens on a wildcard address", path="endpoints.server_uri",
                                    expected="--coaps on a client-reachable address, or server_uri")
            plans = {s.name: s.plan(self.uris.get("coaps", "")) for s in endpoints if s.bootstrap}
        self.bootstrap = BootstrapServer(plans,
                                         randbytes=self._randbytes, max_sessions=limits.max_bootstraps,
                                         timeout=limits.bootstrap_timeout)
        principals = {s.name: s.principals() for s in endpoints}
        self.authorizations = Authorizations(
            {name: dm for name, (dm, _) in principals.items()},
            [p for pair in principals.values() for p in pair if p is not None],
            psks=store, rpk_names=table.values(), certificates="coaps_cert" in self._listeners)
        self.server = Lwm2mServer(lambda name: self.authorizations.registrar(name, self._principal),
                                  randbytes=self._randbytes, max_registrations=limits.max_registrations)

    # -- addresses and life --------------------------------------------------------------------

    @property
    def addresses(self) -> dict[str, tuple]:
        """Return listener name (``coaps``, ``coaps_cert``, ``coaps_rpk``, ``coap``) -> the bound sockaddr."""
        out = {name: listener.sock.getsockname() for name, listener in self._listeners.items()}
        if self._coap_sock is not None:
            out["coap"] = self._coap_sock.getsockname()
        return out

    @property
    def uris(self) -> dict[str, str]:
        """Return listener name -> URI (``coaps://`` for every DTLS listener)."""
        return {name: uri_of("coap" if name == "coap" else "coaps", addr) for name, addr in self.addresses.items()}

    @property
    def modes(self) -> dict[str, str]:
        """Return DTLS listener name -> the security mode it serves (psk, certificate, rpk)."""
        return {name: MODE_NAMES[listener.mode] for name, listener in self._listeners.items()}

    @property
    def dtls(self) -> dtls.DtlsServer | None:
        """Return the cookie gate of the PSK listener (None without one)."""
        listener = self._listeners.get("coaps")
        return listener.dtls if listener is not None else None

    @property
    def associations(self) -> int:
        return len(self._assocs)

    def start(self) -> dict[str, str]:
        """Serve in a background thread; return :attr:`uris`."""
        self._thread = threading.Thread(target=self.serve, args=(self._stop,), name="lwm2m-udp", daemon=True)
        self._thread.start()
        return self.uris

    def stop(self) -> None:
        """Stop the thread of :meth:`start` (closing every association) and release the ports."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.close()

    def __enter__(self) -> "Lwm2mUdpServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def close(self) -> None:
        """Release the ports (after :meth:`serve` returned)."""
        self._close_sockets()

    def _close_sockets(self) -> None:
        for sock in [listener.sock for listener in self._listeners.values()] + [self._coap_sock]:
            if sock is not None:
                sock.close()

    def serve(self, stop: threading.Event) -> None:
        """Run the loop until ``stop`` is set; then close every association (close_notify)."""
        by_sock = {listener.sock: listener for listener in self._listeners.values()}
        socks = [*by_sock, *([self._coap_sock] if self._coap_sock is not None else [])]
        self.audit.write("server_started", outcome="info",
                         detail=" ".join(f"{name}={uri}" for name, uri in self.uris.items()))
        try:
            while not stop.is_set():
                now = self._clock()
                due = self._next_due(now)
                wait = _MAX_WAIT if due is None else min(_MAX_WAIT, max(0.0, due - now))
                readable = select.select(socks, [], [], wait)[0]
                for sock in readable:
                    self._read(sock, by_sock.get(sock))
                self._tick(self._clock())
                self._flush()
        finally:
            for assoc in list(self._assocs.values()):
                self._close(assoc, "server_stopped")
            self._flush()
            self.audit.write("server_stopped", outcome="info", detail=str(dict(self.counts)))

    # -- input ---------------------------------------------------------------------------------

    def _read(self, sock: socket.socket, listener: _Listener | None) -> None:
        for _ in range(self.limits.batch):
            try:
                data, sockaddr = sock.recvfrom(self.limits.max_datagram + 1)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # an ICMP error reported on the socket: nothing to read
                self.counts["socket_errors"] += 1
                continue
            self.counts["datagrams"] += 1
            if len(data) > self.limits.max_datagram:
                self.counts["oversize"] += 1
                continue
            now = self._clock()
            try:
                if listener is not None:
                    self._dtls_datagram(listener, sockaddr, data, now)
                else:
                    self._nosec_datagram(sock, sockaddr, data, now)
            except Exception:  # a bug of ours must not let one datagram stop the server
                self.counts["internal_errors"] += 1
                log.exception("lwm2m: datagram from %s", address_key(sockaddr))

    def _dtls_datagram(self, listener: _Listener, sockaddr: tuple, data: bytes, now: float) -> None:
        key = address_key(sockaddr)
        gate = listener.dtls
        assoc = self._assocs.get((listener.name, key))
        if assoc is None:
            refusal = None
            if len(self._assocs) >= self.limits.max_associations:
                refusal = "associations_full"
            elif self._per_ip[str(sockaddr[0])] >= self.limits.max_per_address:
                refusal = "address_full"
            if refusal:
                self.counts[refusal] += 1
                self._refused("association_refused", refusal, key, now)
                return
        hello_verify, dropped = gate.hello_verify_sent, gate.dropped
        events = gate.receive_datagram(key, data)
        self.counts["hello_verify"] += gate.hello_verify_sent - hello_verify
        self.counts["dropped"] += gate.dropped - dropped
        endpoint = gate.endpoints.get(key)
        if endpoint is None:
            listener.reply_to[key] = sockaddr
            return
        if assoc is None or assoc.endpoint is not endpoint:
            if assoc is not None:  # a new cookie-verified handshake from the same address
                self.audit.write("association_closed", peer=assoc.key.decode(), outcome="info",
                                 identity=_text(assoc.identity), detail="replaced by a new handshake")
                self._release(assoc)
            assoc = self._admit(listener, endpoint, sockaddr, now)
        self._dtls_events(assoc, events, now)

    def _admit(self, listener: _Listener, endpoint: dtls.DtlsEndpoint, sockaddr: tuple, now: float) -> _Association:
        assoc = _Association(listener, endpoint, sockaddr, now)
        self._assocs[assoc.slot] = assoc
        self._per_ip[assoc.ip] += 1
        self.counts["associations_opened"] += 1
        return assoc

    def _dtls_events(self, assoc: _Association, events: list, now: float) -> None:
        for event in events:
            if isinstance(event, dtls.HandshakeDone):
                self._handshake_done(assoc, event, now)
            elif isinstance(event, dtls.AppData) and assoc.coap is not None:
                assoc.last_seen = now
                self._coap_events(assoc, assoc.coap.receive(event.data, now), now)
            elif isinstance(event, dtls.DtlsFailed):
                kind = "handshake_failed" if assoc.coap is None else "association_failed"
                self.counts[kind] += 1
                self.audit.write(kind, peer=assoc.key.decode(), outcome="failure", identity=_text(
                    assoc.endpoint.psk_identity), detail=event.reason, alert=event.alert)
            elif isinstance(event, dtls.Closed):
                self.audit.write("association_closed", peer=assoc.key.decode(), outcome="info",
                                 identity=_text(assoc.identity), detail="close_notify from the peer")
        assoc.timer.sync(assoc.endpoint, now)

    def _handshake_done(self, assoc: _Association, event: dtls.HandshakeDone, now: float) -> None:
        assoc.identity = principal_of(event)
        assoc.last_seen = now
        limits = self.limits
        assoc.coap = Endpoint(self._randbytes, dedup_capacity=limits.dedup_capacity,
                              max_requests=limits.max_requests, queue_capacity=limits.max_requests)
        if assoc.identity is not None:
            self._by_identity[assoc.identity] = assoc
        self.counts["handshakes"] += 1
        self.audit.write("handshake_ok", peer=assoc.key.decode(), outcome="success", identity=_text(assoc.identity),
                         mode=MODE_NAMES[assoc.listener.mode], suite=event.cipher,
                         seconds=round(now - assoc.started, 3))

    def _coap_events(self, assoc: _Association, events: list, now: float) -> None:
        for event in events:
            if isinstance(event, Transmit):
                self._send_record(assoc, event.datagram)
            elif isinstance(event, RequestReceived):
                self._request(assoc, event.message, now)
            elif isinstance(event, ResponseReceived):
                core = assoc.tokens.pop(event.request_token, None)
                if core is not None:
                    self._to_core(assoc, core, event.message, now)
            elif isinstance(event, (Timeout, Reset)):
                assoc.tokens.pop(event.token, None)
            elif isinstance(event, Ignored):
                self.counts["coap_ignored"] += 1

    def _request(self, assoc: _Association, msg: Message, now: float) -> None:
        try:
            path = msg.uri_path
        except DecodeError:
            self._answer(assoc, msg, Code.BAD_REQUEST, b"", now)
            return
        if path == WELL_KNOWN:
            self._answer(assoc, msg, *self._well_known(msg), now)
        elif assoc.identity is None:  # a certificate naming nobody: no identity for the cores
            self._answer(assoc, msg, Code.UNAUTHORIZED, b"", now)
        elif path == ("bs",):
            self._to_core(assoc, self.bootstrap, msg, now)
        elif path and path[0] == "rd":
            self._to_core(assoc, self.server, msg, now)
        else:
            self._answer(assoc, msg, Code.NOT_FOUND, b"", now)

    def _to_core(self, assoc: _Association, core, msg: Message, now: float) -> None:
        """Give ``msg`` (a request, or the answer to the core's request) to ``core`` under the
        association's identity. A core that raises on it (it should not) costs that message only:
        a request gets 4.00 for bytes it could not decode, 5.00 for anything else."""
        self._principal = assoc.identity
        try:
            events = core.receive(assoc.identity, msg, now)
        except Exception as exc:
            self.counts["core_errors"] += 1
            log.warning("lwm2m: %s raised on a message from %s: %r", type(core).__name__, assoc.key, exc)
            if msg.is_request:
                code = Code.BAD_REQUEST if isinstance(exc, DecodeError) else Code.INTERNAL_SERVER_ERROR
                self._answer(assoc, msg, code, b"", now)
            return
        self._core_events(assoc, core, events, now, msg if msg.is_request else None)

    def _well_known(self, msg: Message) -> tuple[int, bytes]:
        """Return the code and payload answering a request for /.well-known/core (RFC 6690 §4)."""
        if msg.code != Code.GET:
            return Code.METHOD_NOT_ALLOWED, b""
        return Code.CONTENT, self._links

    def _answer(self, assoc: _Association, msg: Message, code: int, payload: bytes, now: float) -> None:
        fmt = ContentFormat.LINK_FORMAT if payload else None
        reply = coap.response(msg, code, payload=payload, content_format=fmt, message_id=0)
        self._coap_events(assoc, assoc.coap.respond(msg, reply, now), now)

    def _core_events(self, assoc: _Association, core, events: list, now: float,
                     request: Message | None = None) -> None:
        for event in events:
            if not isinstance(event, Send):
                self._audit_core(assoc, event)
                continue
            target = assoc if identity_bytes(event.peer) == assoc.identity else self._by_peer(event.peer)
            if target is None or target.coap is None:
                self.counts["unroutable"] += 1
                continue
            try:
                out = target.coap.send(event.message, now, request if target is assoc else None)
            except (QueueFullError, ValueError):
                self.counts["coap_queue_full"] += 1
                continue
            if event.message.is_request:
                target.tokens[event.message.token] = core
            self._coap_events(target, out, now)

    def _by_peer(self, peer) -> _Association | None:
        return self._by_identity.get(identity_bytes(peer))

    def _audit_core(self, assoc: _Association, event) -> None:
        kind = _snake(type(event).__name__)
        fields = {f.name: _text(getattr(event, f.name)) for f in dataclasses.fields(event)}
        identity = fields.pop("identity", None) or (_text(assoc.identity) if assoc is not None else None)
        outcome = ("failure" if kind.endswith(("refused", "failed")) else
                   "success" if kind.endswith(("accepted", "completed")) else "info")
        if outcome == "failure":
            self.counts[kind] += 1
        self.audit.write(kind, peer=assoc.key.decode() if assoc else None, outcome=outcome, identity=identity,
                         **fields)

    def _send_record(self, assoc: _Association, datagram: bytes) -> None:
        try:
            assoc.endpoint.send(datagram)
        except ProtocolError:  # the association failed meanwhile; the datagram is lost
            self.counts["send_failed"] += 1

    def _nosec_datagram(self, sock: socket.socket, sockaddr: tuple, data: bytes, now: float) -> None:
        """Stateless NoSec CoAP (module docstring)."""
        endpoint = Endpoint(self._randbytes, dedup_capacity=1)
        for event in endpoint.receive(data, now):
            if isinstance(event, Transmit):
                self._sendto(sock, event.datagram, sockaddr)
                continue
            if not isinstance(event, RequestReceived):
                self.counts["coap_ignored"] += 1
                continue
            msg = event.message
            try:
                well_known = msg.uri_path == WELL_KNOWN
            except DecodeError:
                well_known = False
            if well_known:
                code, payload = self._well_known(msg)
            else:
                code, payload = Code.UNAUTHORIZED, b""
                self.counts["nosec_refused"] += 1
                self._refused("nosec_refused", "unauthenticated request", address_key(sockaddr), now)
            fmt = ContentFormat.LINK_FORMAT if payload else None
            for out in endpoint.respond(msg, coap.response(msg, code, payload=payload, content_format=fmt,
                                                          message_id=0), now):
                if isinstance(out, Transmit):
                    self._sendto(sock, out.datagram, sockaddr)

    def _refused(self, kind: str, reason: str, key: bytes, now: float) -> None:
        """Audit a refusal, at most once per interval and reason (module docstring)."""
        last, suppressed = self._refusals.get(reason, (float("-inf"), 0))
        if now - last < _REFUSAL_LOG_INTERVAL:
            self._refusals[reason] = (last, suppressed + 1)
            return
        self._refusals[reason] = (now, 0)
        self.audit.write(kind, peer=key.decode("ascii", "replace"), outcome="failure", detail=reason,
                         suppressed=suppressed or None)

    # -- timers and output -----------------------------------------------------------------------

    def _next_due(self, now: float) -> float | None:
        times = []
        for assoc in self._assocs.values():
            at = assoc.timer.sync(assoc.endpoint, now)
            if at is not None:
                times.append(at)
            if assoc.coap is None:
                times.append(assoc.started + self.limits.handshake_deadline)
            else:
                times.append(assoc.last_seen + self.limits.idle_timeout)
                at = assoc.coap.next_timeout()
                if at is not None:
                    times.append(at)
        times += [s.deadline for s in self.bootstrap.sessions.values()]
        expiry = self.server.next_expiry()
        if expiry is not None:
            times.append(expiry)
        return min(times, default=None)

    def _tick(self, now: float) -> None:
        limits = self.limits
        for assoc in list(self._assocs.values()):
            self._dtls_events(assoc, assoc.timer.expire(assoc.endpoint, now), now)
            state = assoc.endpoint.state
            if state == "handshake" and now - assoc.started >= limits.handshake_deadline:
                self.counts["handshake_timeout"] += 1
                self.audit.write("handshake_failed", peer=assoc.key.decode(), outcome="failure",
                                 identity=_text(assoc.endpoint.psk_identity),
                                 detail=f"not complete within {limits.handshake_deadline:g} s")
                assoc.listener.dtls.forget(assoc.key)
                self._release(assoc)
            elif state == "open" and now - assoc.last_seen >= limits.idle_timeout:
                self.counts["idle_timeout"] += 1
                self._close(assoc, f"idle for {limits.idle_timeout:g} s")
            elif assoc.coap is not None and (at := assoc.coap.next_timeout()) is not None and at <= now:
                self._coap_events(assoc, assoc.coap.on_timeout(now), now)
        for event in self.bootstrap.expire(now):
            self._audit_core(None, event)
        expiry = self.server.next_expiry()
        if expiry is not None and expiry <= now:
            for event in self.server.expire(now):
                self._audit_core(None, event)

    def _close(self, assoc: _Association, reason: str) -> None:
        """Close ``assoc`` with close_notify (sent now) and forget it."""
        assoc.endpoint.close()
        for datagram in assoc.endpoint.datagrams_to_send():
            self._sendto(assoc.listener.sock, datagram, assoc.sockaddr)
        self.audit.write("association_closed", peer=assoc.key.decode(), outcome="info",
                         identity=_text(assoc.identity), detail=reason)
        assoc.listener.dtls.forget(assoc.key)
        self._release(assoc)

    def _release(self, assoc: _Association) -> None:
        """Forget ``assoc`` (the DtlsServer forgot its endpoint, or is told to by the caller)."""
        if self._assocs.get(assoc.slot) is assoc:
            del self._assocs[assoc.slot]
            self._per_ip[assoc.ip] -= 1
            if self._per_ip[assoc.ip] <= 0:
                del self._per_ip[assoc.ip]
        if assoc.identity is not None and self._by_identity.get(assoc.identity) is assoc:
            del self._by_identity[assoc.identity]

    def _flush(self) -> None:
        """Send what the DTLS layers hold; forget the associations that ended."""
        for listener in self._listeners.values():
            for key, datagram in listener.dtls.datagrams_to_send():
                assoc = self._assocs.get((listener.name, key))
                sockaddr = assoc.sockaddr if assoc is not None else listener.reply_to.get(key)
                if sockaddr is not None:
                    self._sendto(listener.sock, datagram, sockaddr)
            listener.reply_to.clear()
        for assoc in list(self._assocs.values()):
            if assoc.listener.dtls.endpoints.get(assoc.key) is not assoc.endpoint:
                self._release(assoc)

    def _sendto(self, sock: socket.socket | None, datagram: bytes, sockaddr: tuple) -> None:
        if sock is None:
            return
        try:
            sock.sendto(datagram, sockaddr)
            self.counts["sent"] += 1
        except OSError:  # a full buffer or an unreachable peer: UDP may lose it, the peer retransmits
            self.counts["send_errors"] += 1


def _text(value) -> str | int | None:
    """Return an audit field: bytes as UTF-8 text (an identity), others unchanged."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, tuple):
        return "/" + "/".join(str(v) for v in value)
    return value


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
