"""Resource bounds of the real servers' connections: deadlines and a connection cap.

Every byte a listener reads comes from a possibly hostile peer, so a connection's life is
bounded by wall-clock deadlines, not per-read timeouts (a per-read timeout lets a peer that
trickles one byte just inside it hold a connection, a thread and its buffers forever):

- ``Deadline`` is one absolute time; ``DeadlineSocket`` wraps a connected socket and gives
  every ``recv``/``sendall`` only the time left until it (``TimeoutError`` once it passed).
  The DM server arms it once for the TLS handshake and once per HTTP request (from the wait for
  the request line to the last byte of the answer), so a trickling peer is cut at the deadline.
- ``ConnectionGate`` caps the open connections in total and per peer address; the listener asks
  it before starting a thread and closes a refused socket at once (no thread, no read, no
  answer: the cheapest refusal; a well-behaved client sees a reset and retries later).

Choices: the per-address cap counts the IP address only (a NAT or the simulation's fleet on
127.0.0.1 shares one), so it is a fraction of the total; the defaults (``Limits``) keep the
worst case of the DM server at ``max_connections`` x ``max_body`` bytes of bodies.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from dmsim.sim.real.socket_proxy import SocketProxy

_RECV = 65536


@dataclass(frozen=True)
class Limits:
    """The bounds of one listener: connections in total and per address, the deadline of a TLS
    handshake and of one HTTP request (idle keep-alive wait included), the largest body, the
    listen backlog, and the lingering close after a refused request whose body was not read (at
    most ``linger_bytes`` discarded within ``linger_seconds``, see ``drain``)."""

    max_connections: int = 64
    max_per_address: int = 16
    handshake_deadline: float = 10.0
    request_deadline: float = 30.0
    max_body: int = 64 << 10
    backlog: int = 128
    linger_bytes: int = 2 << 20
    linger_seconds: float = 2.0


class Deadline:
    """One absolute deadline on the monotonic clock, re-armed by the connection's owner."""

    def __init__(self) -> None:
        self.at = float("inf")

    def arm(self, seconds: float) -> None:
        """Set the deadline ``seconds`` from now."""
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        """Return the seconds left; TimeoutError when the deadline has passed."""
        left = self.at - time.monotonic()
        if left <= 0:
            raise TimeoutError("connection deadline passed")
        return left


class DeadlineSocket(SocketProxy):
    """A connected socket whose reads and writes end at ``deadline`` (the part of the socket
    interface ``http.server`` and ``TlsSocket`` use)."""

    def __init__(self, sock, deadline: Deadline):
        super().__init__(sock)
        self.deadline = deadline

    def recv(self, size: int = _RECV) -> bytes:
        self.sock.settimeout(self.deadline.remaining())
        return self.sock.recv(size)

    def sendall(self, data) -> None:
        self.sock.settimeout(self.deadline.remaining())  # since Python 3.5 the total for sendall
        self.sock.sendall(data)

    def settimeout(self, timeout: float | None) -> None:
        pass  # the deadline governs


def drain(conn: "DeadlineSocket", max_bytes: int, seconds: float) -> int:
    """Read and discard what the peer still sends, up to ``max_bytes`` within ``seconds``; return
    the octets discarded.

    A lingering close (RFC 7230 §6.6): a server that answers before reading the body (411, 413)
    and closes at once resets a connection whose receive buffer holds unread octets, and a client
    still sending its body then gets EPIPE or ECONNRESET instead of the answer already sent. The
    bound keeps a peer that never stops sending from holding the thread: past it the reset comes.
    """
    conn.deadline.arm(seconds)
    total = 0
    try:
        while total < max_bytes:
            chunk = conn.recv(min(_RECV, max_bytes - total))
            if not chunk:
                break
            total += len(chunk)
    except (OSError, ValueError):  # TimeoutError included: the deadline ends the lingering
        pass
    return total


class ConnectionGate:
    """Counts open connections, in total and per address; thread-safe."""

    def __init__(self, max_connections: int, max_per_address: int):
        self.max_connections, self.max_per_address = max_connections, max_per_address
        self._lock = threading.Lock()
        self._open: dict[str, int] = {}
        self.total = 0
        self.refused = 0

    def enter(self, address: str) -> bool:
        """Count a new connection from ``address``; False (not counted) when a cap is reached."""
        with self._lock:
            if self.total >= self.max_connections or self._open.get(address, 0) >= self.max_per_address:
                self.refused += 1
                return False
            self.total += 1
            self._open[address] = self._open.get(address, 0) + 1
            return True

    def leave(self, address: str) -> None:
        """Forget one connection of ``address`` counted by :meth:`enter`."""
        with self._lock:
            self.total -= 1
            left = self._open.get(address, 1) - 1
            if left:
                self._open[address] = left
            else:
                self._open.pop(address, None)
