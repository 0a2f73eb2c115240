"""How a device's DM session reaches the DM server: the seam between simulated and real.

``components.dm_server.kind`` in the scenario picks a transport from the replica's component
registry (``sim/model/components.py``): adding a transport is a class and one registry line.

* ``virtual`` (:func:`simulated_transport`, here): HTTP requests and responses cross the
  simulated ``ip`` links to the simulated server agent (``sim/agents/dm_server.py``,
  :class:`SimulatedHttp`). With ``tls.mode`` psk or x509 they travel inside a real TLS session
  (python-mbedtls in memory, seed 000 §9.2.2) whose records are the messages on those links
  (:class:`SimulatedHttps`): in PSK mode each provisioned account gets a fresh PSK and identity
  (:func:`fresh_psk`, the replica's ``tls`` stream) that its bootstrap carries in
  ``<x>/Auth/Trsp``; in X.509 mode a seeded lab CA (``network/dm/tls_pki.py``) issues the
  server's certificate and each device's client certificate, and the server requires the latter;
* ``socket``: a real DM server over HTTP or HTTPS-PSK, with wall-clock latency added to
  simulated time (``sim/real/http_transport.py``, registered by ``sim/real/components.py``).

``exchange`` is a SimPy generator returning one of: the parsed HTTP response (headers
included); None when the response is lost (a timeout, or for a real server a connection
failure), after which the device retries; or a ``Done`` that ends the session, ``tls_failed``
when a TLS handshake fails or, in PSK mode, the account holds no PSK, and ``provision_failed``
when a real server refuses the lab provisioning. The request carries the DM client's transport
``headers`` unchanged (inside the TLS session for HTTPS): in ``syncml:auth-hmac-sha256`` mode
the ``x-syncml-hmac`` header of OMA-TS-DM_Security §5.6.1, and the server's own
``x-syncml-hmac`` comes back among the response headers. The server agent calls
``account_provisioned`` after it provisioned a device's account, builds its HTTP response with
``server_response`` and hands it to ``respond``.

The clock of ``syncml:auth-hmac-sha256`` is :meth:`IpTransport.unix_now`, read by both ends: for
the simulated server it is simulated time mapped onto the SMSC's ``EPOCH`` (2026-01-01T00:00:00Z,
``network/sms/smsc.py``) as UNIX seconds, :func:`sim_unix_time`, so the x-syncml-hmac Timestamps
agree with the SMS timestamps; a real server's transport reads the wall clock instead.
"""
from __future__ import annotations

import dataclasses
import datetime
import functools
import random
import re
import urllib.parse
import weakref
from typing import TYPE_CHECKING, Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dmsim.devices.dm_client import Done
from dmsim.network.dm import http_binding
from dmsim.network.dm import messages as dm_messages
from dmsim.network.dm import tls_suites as suites
from dmsim.network.dm.tls_pki import LabCa, binding_refusal
from dmsim.network.dm.server import INTEGRITY_FAILED, ServerReply, http_status
from dmsim.network.dm.tls import (AppData, HandshakeDone, TlsConfig, TlsEndpoint, TlsFailed, psk_client_config,
                                  psk_server_config, server_endpoint, x509_client_config, x509_server_config)
from dmsim.network.sms.smsc import EPOCH
from dmsim.base.errors import DmsimError, ScenarioError
from dmsim.sim.links.deadline import Deadlines
from dmsim.sim.links.ip_exchange import IpExchange
from dmsim.sim.links.link import Message

if TYPE_CHECKING:  # pragma: no cover
    from dmsim.sim.model.replica import Replica


SIM_EPOCH = EPOCH.timestamp()  # UNIX seconds of simulated time 0


def sim_unix_time(now: float) -> float:
    """Return simulated time ``now`` as UNIX seconds: ``now`` after the SMSC's EPOCH (2026-01-01 UTC)."""
    return SIM_EPOCH + now


class IpTransport:
    """What the device process needs from a transport.

    ``refused`` counts, by verdict (``replay``, ``wrong_mac``, ...), the requests the simulated
    server refused for their x-syncml-hmac.
    """

    model: "Replica"
    refused: dict[str, int]

    def exchange(self, dev, body: bytes, content_type: str, timeout: float, headers=None):
        raise NotImplementedError

    def unix_now(self) -> float:
        """Return the time both ends of a DM session read for x-syncml-hmac, in UNIX seconds: the
        simulated time after the SMSC's EPOCH (:func:`sim_unix_time`)."""
        return sim_unix_time(self.model.env.now)

    def server_response(self, reply: ServerReply) -> bytes:
        """Return the HTTP response carrying the simulated server's ``reply`` and its headers
        (status as the real server's, ``network/dm/server.py`` ``http_status``); a refusal for the request's
        x-syncml-hmac is counted in ``refused``."""
        for event in reply.events:
            if event.kind == INTEGRITY_FAILED:
                self.refused[event.detail] = self.refused.get(event.detail, 0) + 1
        return http_binding.encode_response(http_status(reply), reply.body, reply.content_type, reply.headers)

    def account_provisioned(self, device_uri: str) -> None:
        """The server provisioned ``device_uri``'s account (before its bootstrap is built)."""

    def respond(self, msg: Message) -> None:
        """Carry the simulated server's HTTP response ``msg`` (meta: the request's) to the device."""
        raise NotImplementedError

    def closed(self, dev) -> None:
        """The device ended its session (its connection closes)."""

    def hang_up(self, endpoint) -> None:
        """An adversary's ``endpoint`` drops its connection, telling the server nothing (unlike
        :meth:`closed`, which ends the session of the DevId it claims)."""

    def observe(self, hook: Callable) -> bool:
        """Let ``hook(dev, body, content_type, headers, reply)`` see each device's DM request and
        the HTTP response it got (None: lost) as an eavesdropper on the path would, in a simulated
        or a real world alike; return False when the path shows no clear text (TLS)."""
        return False

    def _observed(self, dev, body: bytes, content_type: str, headers, reply) -> None:
        """Show one exchange of a device (not an adversary's endpoint, index < 0) to the observers."""
        if dev.ident.index >= 0:
            for hook in self.observers:
                hook(dev, body, content_type, dict(headers or {}), reply)


class SimulatedHttp(IpTransport):
    """HTTP over the simulated ``ip`` links to the simulated server agent ``server`` (default: the
    replica's DM server)."""

    def __init__(self, model: "Replica", server=None):
        self.model = model
        self.server = server if server is not None else model.server
        self.refused = {}
        self.ip = IpExchange(model, "dm", "server", http_binding.decode)
        self.observers: list[Callable] = []
        uri = urllib.parse.urlsplit(self.server.core.server_uri)
        self.host, self.path = uri.netloc, uri.path

    def exchange(self, dev, body: bytes, content_type: str, timeout: float, headers=None):
        payload = http_binding.encode_request(self.host, self.path, body, content_type, headers=headers)
        reply = yield from self.ip.request(dev, payload, self.server.receive, timeout)
        if self.observers:
            self._observed(dev, body, content_type, headers, reply)
        return reply

    def observe(self, hook: Callable) -> bool:
        self.observers.append(hook)
        return True

    def hang_up(self, endpoint) -> None:
        self.ip.forget(endpoint)

    def respond(self, msg: Message) -> None:
        self.ip.respond(msg)

    def closed(self, dev) -> None:
        self.ip.forget(dev)
        self.server.connection_closed(dev.ident.uri)


def fresh_psk(rng: random.Random) -> tuple[bytes, bytes]:
    """Return a new (identity, key) from ``rng``: ``psk-`` and 16 hex digits (no IMSI in clear),
    and PSK_BYTES random octets."""
    return f"psk-{rng.randbytes(8).hex()}".encode("ascii"), rng.randbytes(PSK_BYTES)


def parse_psk(value: str | None, path: str) -> tuple[bytes, bytes] | None:
    """Return (identity, key) of ``IDENTITY:HEXKEY`` (the key after the last colon), None for None;
    ScenarioError naming ``path`` otherwise."""
    if value is None:
        return None
    identity, sep, key = str(value).rpartition(":")
    try:
        if not sep or not identity or not key:
            raise ValueError
        return identity.encode("utf-8"), bytes.fromhex(key)
    except ValueError:
        raise ScenarioError(f"{value!r} is not IDENTITY:HEXKEY", path=path, expected="IDENTITY:HEXKEY") from None


# --- HTTPS over the simulated links -------------------------------------------------------------

# Seed suites the simulated server can run per mode: PSK mode has no server certificate (so no
# RSA_PSK) and no DHE_PSK (no backend serves it, network/dm/tls_suites.py SERVER_UNUSABLE); X.509
# mode has the lab CA's ECDSA P-256 certificate for ECDHE_ECDSA (mbedtls) and its RSA-2048 one for
# DHE_RSA (the standard library's ssl, network/dm/tls_dhe.py), no RSA key transport.
TLS_SUITES: dict[str, tuple[str, ...]] = {
    "none": (),
    "psk": tuple(s.iana for s in suites.PSK_SUITES if s.key_exchange in ("PSK", "ECDHE_PSK")),
    "x509": tuple(s.iana for s in suites.X509_SUITES if s.key_exchange in ("ECDHE_ECDSA", "DHE_RSA")),
}
PSK_BYTES = 32  # RFC 4279 §5.3 asks for up to 64 octets; Mbed TLS's default limit is 32
MAX_RTO = 60.0  # RFC 6298 §2.5: an upper bound of at least 60 s
_CONTENT_LENGTH = re.compile(rb"(?im)^content-length:[ \t]*([0-9]+)[ \t]*\r?$")


@functools.lru_cache(maxsize=None)
def server_credential(hostname: str) -> tuple[bytes, bytes]:
    """Return (certificate PEM, key PEM): a self-signed ECDSA P-256 certificate for ``hostname``
    (for real servers and benches; the simulated X.509 mode uses the seeded lab CA instead).

    Made once per process and shared by every replica. Its key comes from the operating
    system's random source, not from the scenario seed (as the TLS randoms and ECDHE keys come
    from Mbed TLS's own generator): a seed reproduces outcomes and times, not key material. The
    validity window is fixed (2025-2045) so no clock is read; Mbed TLS checks it against the
    real date.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    start = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start.replace(year=2045))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def http_messages(buf: bytearray) -> list[bytes]:
    """Return (and cut from ``buf``) the complete HTTP/1.1 messages at its start.

    A message ends after its header block and Content-Length body octets (none without the
    header, as http_binding writes every message with one).
    """
    out: list[bytes] = []
    while True:
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return out
        length = _CONTENT_LENGTH.search(bytes(buf[:end]))
        total = end + 4 + (int(length.group(1)) if length else 0)
        if len(buf) < total:
            return out
        out.append(bytes(buf[:total]))
        del buf[:total]


class _Flow:
    """One direction of a simulated TCP connection: TLS flights as numbered segments on a link.

    The receiver hands the bytes on in order, holding early segments and dropping duplicates
    (tap replays and link duplicates included). A segment not yet received when its RTO fires is
    sent again with the RTO doubled (RFC 6298 §5.5), up to ``MAX_RTO``, while the connection is
    open.

    The flow holds its connection weakly (and ``receive`` is the connection's unbound method), so a
    finished connection and its two TLS endpoints (about 90 KiB of Mbed TLS memory) are freed by
    reference counting once the device lets go of it and its last segment has landed (a segment in
    flight holds the connection in its meta); a later RTO of a freed connection does nothing.
    """

    __slots__ = ("_conn", "link", "src", "dst", "receive", "sent", "expected", "held")

    def __init__(self, conn: "_Connection", link, src: str, dst: str, receive: Callable[["_Connection", bytes], None]):
        self._conn, self.link, self.src, self.dst, self.receive = weakref.ref(conn), link, src, dst, receive
        self.sent = self.expected = 0
        self.held: dict[int, bytes] = {}

    def send(self, data: bytes) -> None:
        """Send ``data`` (one flight; b"" is the FIN) as the next segment."""
        conn = self._conn()
        if conn is None:
            return  # the connection is gone (only a caller that kept the flow can get here)
        seq, self.sent = self.sent, self.sent + 1
        self._transmit(conn, seq, data, conn.transport.rto)

    def _transmit(self, conn: "_Connection", seq: int, data: bytes, rto: float) -> None:
        conn.dev.ip_msgs += 1
        conn.dev.ip_bytes += len(data)
        # meta (device, segment number, connection): the capture tells connections apart by the last
        self.link.send(Message(data, self.src, self.dst, "dm", (conn.dev, seq, conn)), self._arrive)
        conn.env.timeout(rto, (seq, data, rto)).callbacks.append(self._on_rto)

    def _on_rto(self, event) -> None:
        seq, data, rto = event.value
        conn = self._conn()
        if conn is None or conn.state != "open" or seq < self.expected or seq in self.held:
            return  # acknowledged (delivered) or abandoned
        conn.transport.stats["retransmissions"] += 1
        self._transmit(conn, seq, data, min(2 * rto, MAX_RTO))

    def _arrive(self, msg: Message) -> None:
        seq, conn = msg.meta[1], self._conn()
        if conn is None or conn.state == "dead" or seq < self.expected or seq in self.held:
            return
        self.held[seq] = msg.payload
        while self.expected in self.held and conn.state != "dead":
            data = self.held.pop(self.expected)
            self.expected += 1
            self.receive(conn, data)


class _Connection:
    """A device's TLS connection to the simulated server: both endpoints and both flows.

    ``state``: open; closing (close_notify or an alert sent, nothing is resent); dead (aborted:
    nothing more is delivered).
    """

    def __init__(self, transport: "SimulatedHttps", dev, client_config: TlsConfig):
        model = transport.model
        self.transport, self.dev, self.env = transport, dev, model.env
        self.state = "open"
        self.started = model.env.now
        self.client = TlsEndpoint(client_config)
        self.server = server_endpoint(transport.server_config)  # mbedtls, or stdlib ssl for DHE_RSA
        uri = dev.ident.uri
        self.up = _Flow(self, model.ip_up, uri, "server", _Connection._at_server)
        self.down = _Flow(self, model.ip_down, "server", uri, _Connection._at_client)
        self.waiting = None  # the SimPy event of the exchange in progress
        self.queued: bytes | None = None  # the request waiting for the handshake
        self.client_http, self.server_http = bytearray(), bytearray()
        self.up.send(self.client.data_to_send())  # ClientHello

    def request(self, payload: bytes) -> None:
        """Send an HTTP request now, or once the handshake is done."""
        if self.client.state == "open":
            self.client.send(payload)
            self.up.send(self.client.data_to_send())
        else:
            self.queued = payload

    def respond(self, payload: bytes) -> None:
        """Send the server's HTTP response (dropped when the connection is gone)."""
        if self.state != "open" or self.server.state != "open":
            return
        self.server.send(payload)
        self.down.send(self.server.data_to_send())

    def close(self) -> None:
        """The client ends the connection: close_notify, not resent."""
        if self.state == "open" and self.client.state == "open":
            self.client.close()
            self.state = "closing"
            self.up.send(self.client.data_to_send())
        self.state = "dead" if self.state == "open" else self.state

    def _at_server(self, data: bytes) -> None:
        events = self.server.receive_data(data)
        out = self.server.data_to_send()
        if out:
            self.down.send(out)
        for event in events:
            if isinstance(event, AppData):
                self.server_http += event.data
                for req in http_messages(self.server_http):
                    if self._unbound(req):
                        continue
                    msg = Message(req, self.dev.ident.uri, "server", "dm", (self.dev, self))
                    self.transport.server.receive(msg)
            elif isinstance(event, TlsFailed) and data:
                self.transport.stats["server_failures"] += 1
                self.down.send(b"")  # the server closes the TCP connection after its alert

    def _unbound(self, req: bytes) -> bool:
        """Answer 403 (and return True) when the request's DevId (SyncHdr Source LocURI) is not
        the device the connection authenticated: the identity of its client certificate, or the
        owner of its PSK identity (:meth:`SimulatedHttps.binding_refusal`)."""
        cert_identity, psk_identity = self.server.peer_identity, self.server.psk_identity
        if cert_identity is None and psk_identity is None:
            return False
        try:
            http = http_binding.decode(req)
            dev_id = dm_messages.read_header(dm_messages.decode(http.body, http.content_type)).source
        except DmsimError:
            dev_id = None
        if self.transport.binding_refusal(cert_identity=cert_identity, psk_identity=psk_identity,
                                          dev_id=dev_id) is None:
            return False
        self.transport.stats["binding_refused"] += 1
        self.respond(http_binding.encode_response(403, b"", "text/plain"))
        return True

    def _at_client(self, data: bytes) -> None:
        events = self.client.receive_data(data)
        out = self.client.data_to_send()
        if out:
            self.up.send(out)
        for event in events:
            if isinstance(event, HandshakeDone):
                stats = self.transport.stats
                stats["handshakes"] += 1
                stats["handshake_time"] += self.env.now - self.started
                self.transport.suites[event.cipher] = self.transport.suites.get(event.cipher, 0) + 1
                if self.queued is not None:
                    payload, self.queued = self.queued, None
                    self.request(payload)
            elif isinstance(event, AppData):
                self.client_http += event.data
                for resp in http_messages(self.client_http):
                    try:
                        self._answer(http_binding.decode(resp))
                    except DmsimError:
                        pass  # a response that does not parse counts as lost: the client times out
            elif isinstance(event, TlsFailed):
                self.transport.stats["client_failures"] += 1
                self.state = "closing"
                self._answer(Done(False, f"tls_failed: {event.reason}"))

    def _answer(self, value) -> None:
        if self.waiting is not None and not self.waiting.triggered:
            self.waiting.succeed(value)


class SimulatedHttps(SimulatedHttp):
    """HTTP inside real TLS (python-mbedtls, in memory) whose flights cross the ``ip`` links.

    Per device connection a client and a server :class:`TlsEndpoint` run the real handshake of
    seed 000 §9.2.2 (PSK-TLS or X.509 mode); every flight (the bytes one ``data_to_send`` returns)
    is one Message on ``ip_up``/``ip_down``, so link delay, loss, duplicates, reordering and taps
    act on real TLS records. The HTTP request and response (network/dm/http_binding.py) are
    application data inside the session.

    PSK mode: when the server provisions a device, a fresh PSK (32 random octets from the
    replica's ``tls`` stream) and identity (``psk-`` + 16 hex digits: no IMSI in clear) are set on
    the account (``dataclasses.replace``), so the bootstrap carries them in ``<x>/Auth/Trsp``;
    the server's PSK store (identity -> key, read live by the TLS server) gets them too, and the
    identity is bound to the device: a request over that connection whose SyncHdr Source is
    another device is answered 403 (``binding_refused``). The
    device uses what its accepted bootstrap holds. X.509 mode: a lab CA (``tls_pki.LabCa``, keys
    derived from the replica's ``tls``/``pki`` stream, so the seed gives the same certificates)
    issues the server's certificates for its host name (ECDSA P-256 for ECDHE_ECDSA, served by
    mbedtls; RSA-2048, derived on the first DHE_RSA handshake, for DHE_RSA, served by the standard
    library's ssl: ``tls.server_endpoint`` picks the backend from the ClientHello) and each
    device's client certificate
    (CN and SAN URI = its DevId, issued when it first connects: its factory credential); the
    device trusts the CA and checks the host name, the server requires a client certificate of
    that CA (OMA-TS-DM_Security §5.4, DM-SEC-S-002-M; ``tls.client_cert: false`` turns that
    off) and answers 403 to a request whose SyncHdr Source is not the certificate's DevId
    (``binding_refused``). Either way the account's server URI becomes ``https``.

    Choices where the brief is silent:

    - TCP under TLS is modelled, not simulated byte by byte: a flight is one segment whatever its
      size; the receiver's ACK is not a message (a segment counts as acknowledged once a copy has
      arrived, so the ACK's own delay and loss are ignored); a segment not acknowledged when its
      retransmission timer fires is resent, ``rto`` (1 s) doubling up to 60 s; no congestion
      control. The client's ``request_timeout`` bounds it all: when it expires the connection is
      aborted (nothing more is resent or delivered) and the device's retry opens a new
      connection with a full handshake (no session resumption).
    - One connection per session, kept across its exchanges (HTTP/1.1 keep-alive): the
      handshake's two round trips fall on the first exchange. Server CPU for the handshake is not
      modelled; ``server.service_time`` and ``max_sessions`` apply to the HTTP requests.
    - A handshake failure on either side ends the session at once with reason ``tls_failed`` (a
      retry would fail the same way); a failing server sends its alert, then a FIN, modelled as
      an empty segment.
    - ``ip_msgs``/``ip_bytes`` count every segment sent, resends and close_notify included.
    - Determinism: TLS randoms and (EC)DHE keys come from Mbed TLS's (and OpenSSL's) generator, not the seed. In
      PSK mode record sizes do not depend on them, so a seed reproduces the whole session table;
      in X.509 mode the certificates are the seed's (deterministic ECDSA, ``tls_pki``) but the
      handshake's ECDSA signatures vary by a byte or two, so byte counts (and times, on a link
      with a bandwidth) may differ between runs, outcomes do not.
    """

    def __init__(self, model: "Replica", spec: dict, server=None):
        super().__init__(model, server)
        self.mode = spec["mode"]
        self.rto = float(spec.get("rto", 1.0))
        self.suite = suites.BY_IANA[spec["suite"]] if spec.get("suite") else None
        uri = urllib.parse.urlsplit(self.server.core.server_uri)
        self.https_uri = urllib.parse.urlunsplit(("https",) + tuple(uri[1:]))
        self.hostname = uri.hostname or "localhost"
        self.rng = model.stream("tls")
        self.psks: dict[bytes, bytes] = {}
        self.psk_owners: dict[bytes, str] = {}  # PSK identity -> the DevId it was issued to
        self.conns: dict[int, _Connection] = {}
        self.deadlines = Deadlines(model.env)
        self.stats = {"handshakes": 0, "handshake_time": 0.0, "retransmissions": 0, "aborted": 0,
                      "client_failures": 0, "server_failures": 0, "binding_refused": 0}
        self.suites: dict[str, int] = {}  # negotiated suite -> handshakes
        self.pki: LabCa | None = None
        self._x509_clients: dict[str, TlsConfig] = {}  # DevId -> the device's config
        if self.mode == "psk":
            self.server_config = psk_server_config(self.psks)
        else:
            self.pki = LabCa(model.stream("tls", "pki").randbytes(32))
            self.client_cert = bool(spec.get("client_cert", True))
            server = self.pki.issue_server(self.hostname)
            self.server_config = x509_server_config(server.cert_pem, server.key_pem,
                                                    client_ca_pem=self.pki.ca_pem if self.client_cert else None,
                                                    dhe_rsa=self._rsa_credential)

    def _rsa_credential(self) -> tuple[bytes, bytes]:
        """Return the lab CA's RSA server credential of the DHE_RSA suites (derived on the first
        DHE_RSA handshake: an RSA key takes about a second, ``tls_pki``)."""
        cred = self.pki.issue_server_rsa(self.hostname)
        return cred.cert_pem, cred.key_pem

    def _only_suite(self, config: TlsConfig) -> TlsConfig:
        return dataclasses.replace(config, suites=(self.suite,)) if self.suite else config

    def account_provisioned(self, device_uri: str) -> None:
        accounts = self.server.core.accounts
        account = dataclasses.replace(accounts[device_uri], server_uri=self.https_uri)
        if self.mode == "psk":
            self.psks.pop(account.psk_identity, None)
            self.psk_owners.pop(account.psk_identity, None)
            identity, key = fresh_psk(self.rng)
            account = dataclasses.replace(account, psk_identity=identity, psk_key=key)
            self.add_psk(identity, key, device_uri)
        accounts[device_uri] = account

    def add_psk(self, identity: bytes, key: bytes, dev_id: str) -> None:
        """Let the server accept the PSK ``identity`` (``key``), issued to the device ``dev_id``."""
        self.psks[identity] = key
        self.psk_owners[identity] = dev_id

    def binding_refusal(self, *, cert_identity: str | None = None, psk_identity: bytes | None = None,
                        dev_id: str | None) -> str | None:
        """Return why a message claiming ``dev_id`` is refused on a connection authenticated by
        the client certificate naming ``cert_identity`` (``tls_pki.binding_refusal``) or by the
        PSK ``psk_identity`` issued to another device (RFC 4279 authenticates the identity, and
        the identity belongs to one device), or None."""
        refusal = binding_refusal(cert_identity, dev_id)
        if refusal is None and psk_identity is not None and self.psk_owners.get(psk_identity) != dev_id:
            refusal = f"the PSK identity was issued to {self.psk_owners.get(psk_identity)!r}, the message claims {dev_id!r}"
        return refusal

    def _client_config(self, dev) -> TlsConfig | Done:
        """Return the device's TLS config from its account (X.509: from its DevId), or the Done
        that ends its session."""
        account, dev_id = dev.account, dev.ident.uri
        if self.pki is not None:
            config = self._x509_clients.get(dev_id)
            if config is None:
                own = self.pki.issue_device(dev_id) if self.client_cert else None
                config = self._x509_clients[dev_id] = self._only_suite(x509_client_config(
                    self.pki.ca_pem, self.hostname, cert_pem=own and own.cert_pem, key_pem=own and own.key_pem))
            return config
        if not account.has_psk:
            return Done(False, "tls_failed: the account has no PSK (<x>/Auth/Trsp)")
        try:
            return self._only_suite(psk_client_config(account.psk_identity, account.psk_key))
        except DmsimError as exc:
            return Done(False, f"tls_failed: {exc}")

    def exchange(self, dev, body: bytes, content_type: str, timeout: float, headers=None):
        env = self.model.env
        conn = self.conns.get(dev.ident.index)
        if conn is None or conn.state != "open":
            config = self._client_config(dev)
            if isinstance(config, Done):
                return config
            conn = self.conns[dev.ident.index] = _Connection(self, dev, config)
        done = conn.waiting = env.event()
        conn.request(http_binding.encode_request(self.host, self.path, body, content_type, headers=headers))
        yield self.deadlines.first(done, timeout)
        conn.waiting = None
        if done.triggered:
            return done.value
        conn.state = "dead"  # the client gives up: TCP stops, the retry reconnects
        self.stats["aborted"] += 1
        return None

    def observe(self, hook: Callable) -> bool:
        return False  # the path carries TLS records only

    def respond(self, msg: Message) -> None:
        """Hand the response to the device's connection: it goes back as TLS records through the
        connection's flows, not through ``self.ip``."""
        msg.meta[1].respond(msg.payload)

    def closed(self, dev) -> None:
        conn = self.conns.pop(dev.ident.index, None)
        if conn is not None:
            conn.close()
        super().closed(dev)


def simulated_transport(spec: dict, model: "Replica") -> IpTransport:
    """Return the transport to the simulated server for a validated ``components.dm_server`` spec
    of kind ``virtual``: HTTP, or HTTPS when ``tls.mode`` is psk or x509."""
    tls = spec.get("tls") or {"mode": "none"}
    if tls["mode"] != "none":
        return SimulatedHttps(model, tls)
    return SimulatedHttp(model)
