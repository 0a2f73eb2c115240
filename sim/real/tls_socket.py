"""The sans-IO ``TlsEndpoint`` (``tls.py``) driven over a real, blocking TCP socket.

``TlsSocket`` is the driver: it moves TLS records between the socket and the endpoint and
offers the part of the ``socket`` interface the standard library's HTTP code uses
(``sendall``, ``makefile("rb")``, ``settimeout``, ``close``), so that ``http.server`` (the DM
server, ``http_server.py``) and ``http.client`` (``TlsHttpConnection``) run SyncML DM over
HTTP/1.1 over TLS (seed 000 §9.2.2, PSK-TLS and X.509 modes) unchanged.

A server config gets ``tls.server_endpoint`` (mbedtls, or the standard library's ssl for a client
offering only DHE_RSA among the suites it can run, ``tls_dhe``), a client config a ``TlsEndpoint``.

Choices: a handshake failure raises ``ProtocolError`` (after the alert went out); once the
session is up, a TLS failure, a close_notify or a closed socket read as end of stream, which
the HTTP code treats as a closed connection; a socket timeout propagates as ``TimeoutError``;
``close`` waits for the files of ``makefile`` like a socket's (``socket_proxy``: ``http.client``
closes the connection on ``Connection: close`` before it reads the body).
Over a ``conn_guard.DeadlineSocket`` the handshake and every read end at its deadline
(``deadline`` is that socket's, None over a plain socket).

``UniformPsks`` is the server's PSK table as the handshake sees it: an unknown identity gets a
key too, derived from a per-process random secret (HMAC-SHA256(secret, identity), 16 octets), so
the handshake fails for it exactly as for a known identity with a wrong key (bad_record_mac
from the Finished check) and a prober cannot tell which identities exist: RFC 4279 §2 lets a
server answer an unknown identity with decrypt_error/bad_record_mac instead of
unknown_psk_identity (alert 115) for this reason. The derived key is stable for the process,
so repeated probes of one identity behave alike; it is never stored or logged.

Renegotiation (RFC 5746): python-mbedtls 2.10 exposes no renegotiation setting, and over the
sans-IO endpoint a ClientHello on an open session was neither answered (no no_renegotiation
warning came out) nor refused: the connection hung until a timeout. The driver cannot send an
encrypted alert itself, so it watches the record layer instead: a handshake record (content
type 22) after the handshake completed is a renegotiation attempt (or a server's HelloRequest),
and the connection ends at once with close_notify and FIN, the peer's record unread (tested in
``tests/sim/real/test_real_server_attacks.py``).
"""
from __future__ import annotations

import hashlib
import hmac
import http.client
import os
import socket
from collections.abc import Iterator, Mapping

from dmsim.network.dm.tls import AppData, Closed, HandshakeDone, TlsConfig, TlsEndpoint, TlsFailed, server_endpoint
from dmsim.base.errors import ProtocolError
from dmsim.sim.real.socket_proxy import SocketProxy

_RECV = 65536
_HANDSHAKE_RECORD = 22


class _RecordTypes:
    """Follows the TLS record framing (5-octet header, 2-octet length) of a byte stream."""

    def __init__(self) -> None:
        self._header = b""
        self._left = 0

    def feed(self, data: bytes) -> list[int]:
        """Return the content types of the records whose header is in ``data``."""
        types, i = [], 0
        while i < len(data):
            if self._left:
                take = min(self._left, len(data) - i)
                self._left -= take
                i += take
                continue
            need = 5 - len(self._header)
            self._header += data[i:i + need]
            i += need
            if len(self._header) == 5:
                types.append(self._header[0])
                self._left = int.from_bytes(self._header[3:5], "big")
                self._header = b""
        return types


class TlsSocket(SocketProxy):
    """One TLS connection over the connected socket ``sock``, as configured by ``config``."""

    def __init__(self, sock: socket.socket, config: TlsConfig):
        super().__init__(sock)
        self.deadline = getattr(sock, "deadline", None)
        self.endpoint = server_endpoint(config) if config.server else TlsEndpoint(config)
        self.session: HandshakeDone | None = None
        self._plain = bytearray()
        self._eof = False
        self._reason = ""
        self._records = _RecordTypes()

    @classmethod
    def connect(cls, host: str, port: int, config: TlsConfig, timeout: float = 10.0) -> "TlsSocket":
        """Return a client connection to ``host:port`` with the handshake done.

        Raises OSError when the TCP connection fails, ProtocolError when the handshake does.
        """
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as http.client does: no Nagle stalls
        conn = cls(sock, config)
        try:
            conn.handshake()
        except BaseException:
            sock.close()
            raise
        return conn

    def handshake(self) -> HandshakeDone:
        """Run the handshake to its end and return its outcome; ProtocolError if it fails."""
        self._flush()
        while self.session is None:
            if self._eof:
                raise ProtocolError(f"TLS handshake failed: {self._reason or 'connection closed'}")
            self._pump()
        return self.session

    def _pump(self) -> None:
        """Read once from the socket and apply what the endpoint makes of it."""
        try:
            data = self.sock.recv(_RECV)
        except TimeoutError:
            raise
        except OSError:
            data = b""  # a reset reads as the end of the stream
        established = self.session is not None
        if _HANDSHAKE_RECORD in self._records.feed(data) and established:
            self._eof, self._reason = True, "renegotiation refused"  # module docstring
            self._close_notify()
            return
        for event in self.endpoint.receive_data(data):
            if isinstance(event, HandshakeDone):
                self.session = event
            elif isinstance(event, AppData):
                self._plain += event.data
            elif isinstance(event, TlsFailed):
                self._eof, self._reason = True, event.reason
            elif isinstance(event, Closed):
                self._eof = True
        if self.endpoint.state in ("failed", "closed"):
            self._eof = True
        self._flush()

    def _flush(self) -> None:
        out = self.endpoint.data_to_send()
        if out:
            try:
                self.sock.sendall(out)
            except OSError:
                self._eof = True

    # the socket interface the standard library's HTTP code uses

    def recv(self, size: int = _RECV) -> bytes:
        """Return up to ``size`` bytes of application data; b"" at the end of the stream."""
        while not self._plain and not self._eof:
            self._pump()
        out = bytes(self._plain[:size])
        del self._plain[:size]
        return out

    def sendall(self, data: bytes) -> None:
        """Encrypt and send ``data``; ProtocolError when the session is not open."""
        self.endpoint.send(bytes(data))
        self._flush()

    def shutdown(self, how: int) -> None:
        """Send close_notify, then shut the socket down like ``socket.shutdown``."""
        self._close_notify()
        super().shutdown(how)

    def _real_close(self) -> None:
        """Send close_notify (when the session is open) and close the socket: at ``close``, or
        when the last file of ``makefile`` closes after it (``SocketProxy.close``)."""
        self._close_notify()
        super()._real_close()

    def _close_notify(self) -> None:
        if self.endpoint.state == "open":
            self.endpoint.close()
            self._flush()


_DUMMY_SECRET = os.urandom(32)


class UniformPsks(Mapping[bytes, bytes]):
    """The PSK table ``psks`` (read live) where an unknown identity maps to a per-process dummy
    key instead of being missing (module docstring; RFC 4279 §2)."""

    def __init__(self, psks: Mapping[bytes, bytes]):
        self.psks = psks

    def __getitem__(self, identity: bytes) -> bytes:
        try:
            return self.psks[identity]
        except KeyError:
            return hmac.new(_DUMMY_SECRET, bytes(identity), hashlib.sha256).digest()[:16]

    def __contains__(self, identity: object) -> bool:
        return isinstance(identity, (bytes, bytearray))

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.psks)

    def __len__(self) -> int:
        return len(self.psks)


class TlsHttpConnection(http.client.HTTPConnection):
    """``http.client`` over a dmsim TLS session (the DM client's HTTPS, PSK-TLS or X.509).

    Requests and keep-alive are ``http.client``'s; ``connect`` raises ProtocolError when the
    handshake fails. ``session`` is the last handshake's outcome.
    """

    default_port = 443

    def __init__(self, host: str, port: int | None, config: TlsConfig, *, timeout: float = 10.0):
        super().__init__(host, port, timeout=timeout)
        self.tls_config = config
        self.session: HandshakeDone | None = None

    def connect(self) -> None:
        conn = TlsSocket.connect(self.host, self.port, self.tls_config, self.timeout)
        self.session = conn.session
        self.sock = conn  # type: ignore[assignment]
