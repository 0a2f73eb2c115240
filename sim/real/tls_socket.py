"""The sans-IO ``TlsEndpoint`` (``tls.py``) driven over a real, blocking TCP socket.

``TlsSocket`` is the driver: it moves TLS records between the socket and the endpoint and
offers the part of the ``socket`` interface the standard library's HTTP code uses
(``sendall``, ``makefile("rb")``, ``settimeout``, ``close``), so that ``http.server`` (the DM
server, ``http_server.py``) and ``http.client`` (``TlsHttpConnection``) run SyncML DM over
HTTP/1.1 over TLS (seed 000 §9.2.2, PSK-TLS and X.509 modes) unchanged.

Choices: a handshake failure raises ``ProtocolError`` (after the alert went out); once the
session is up, a TLS failure, a close_notify or a closed socket read as end of stream, which
the HTTP code treats as a closed connection; a socket timeout propagates as ``TimeoutError``.
"""
from __future__ import annotations

import http.client
import io
import socket

from dmsim.network.dm.tls import AppData, Closed, HandshakeDone, TlsConfig, TlsEndpoint, TlsFailed
from dmsim.base.errors import ProtocolError

_RECV = 65536


class TlsSocket:
    """One TLS connection over the connected socket ``sock``, as configured by ``config``."""

    def __init__(self, sock: socket.socket, config: TlsConfig):
        self.sock = sock
        self.endpoint = TlsEndpoint(config)
        self.session: HandshakeDone | None = None
        self._plain = bytearray()
        self._eof = False
        self._reason = ""

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

    def makefile(self, mode: str = "rb", buffering: int | None = None, **_ignored) -> io.BufferedIOBase:
        """Return a binary file on the connection ("rb" reads application data, "wb" writes it)."""
        raw = _RawTls(self, mode)
        size = io.DEFAULT_BUFFER_SIZE if buffering in (None, -1) else buffering
        if buffering == 0:
            return raw  # type: ignore[return-value]
        return io.BufferedReader(raw, size) if "r" in mode else io.BufferedWriter(raw, size)

    def settimeout(self, timeout: float | None) -> None:
        self.sock.settimeout(timeout)

    def gettimeout(self) -> float | None:
        return self.sock.gettimeout()

    def setsockopt(self, *args) -> None:
        self.sock.setsockopt(*args)

    def fileno(self) -> int:
        return self.sock.fileno()

    def getsockname(self):
        return self.sock.getsockname()

    def getpeername(self):
        return self.sock.getpeername()

    def shutdown(self, how: int) -> None:
        """Send close_notify, then shut the socket down like ``socket.shutdown``."""
        self._close_notify()
        try:
            self.sock.shutdown(how)
        except OSError:
            pass

    def close(self) -> None:
        """Send close_notify (when the session is open) and close the socket."""
        self._close_notify()
        self.sock.close()

    def _close_notify(self) -> None:
        if self.endpoint.state == "open":
            self.endpoint.close()
            self._flush()


class _RawTls(io.RawIOBase):
    """A raw binary stream over a ``TlsSocket``; closing it leaves the connection open."""

    def __init__(self, conn: TlsSocket, mode: str):
        self._conn, self._mode = conn, mode

    def readable(self) -> bool:
        return "r" in self._mode

    def writable(self) -> bool:
        return "w" in self._mode

    def readinto(self, buffer) -> int:
        data = self._conn.recv(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def write(self, data) -> int:
        self._conn.sendall(bytes(data))
        return len(data)


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
