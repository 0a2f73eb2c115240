"""A CoAP client channel over one connected UDP socket, with or without DTLS under it (RFC 7252
§9: CoAP over DTLS is one CoAP message per DTLS record): the sans-IO ``DtlsEndpoint`` and CoAP
``Endpoint`` driven by the wall clock, their retransmission timers included. Used by ``dmsim
lwm2m probe`` and by tests that run an LwM2M client core against a real server.

Everything the Endpoints report that is not a datagram to send (``HandshakeDone``,
``DtlsFailed``, ``Closed``, ``RequestReceived``, ``ResponseReceived``, ``Reset``...) is appended
to :attr:`UdpChannel.events` for the caller, who takes them from there. ``error`` says why the
socket itself failed: on a connected UDP socket an ICMP port unreachable comes back as
ECONNREFUSED, i.e. nobody listens.
"""
from __future__ import annotations

import os
import select
import socket
import time
from collections.abc import Callable

from dmsim.network.coap.reliability import Endpoint, Transmit
from dmsim.network.lwm2m import dtls
from dmsim.sim.real.dtls_timer import DtlsTimer

_RECV = 65536


class UdpChannel:
    """``coap`` over ``endpoint`` (None: NoSec) over the connected ``sock``."""

    def __init__(self, sock: socket.socket, endpoint: dtls.DtlsEndpoint | None, coap: Endpoint, *,
                 clock: Callable[[], float] = time.monotonic):
        self.sock, self.dtls, self.coap, self.clock = sock, endpoint, coap, clock
        self.timer = DtlsTimer()
        self.events: list = []
        self.error = ""

    @classmethod
    def connect(cls, host: str, port: int, config: dtls.DtlsConfig | None, *,
                randbytes: Callable[[int], bytes] = os.urandom,
                clock: Callable[[], float] = time.monotonic) -> "UdpChannel":
        """Return a channel to ``host:port`` (first address of getaddrinfo); a DTLS client starts
        its handshake at the first :meth:`pump`. OSError when the name does not resolve."""
        family, kind, proto, _, sockaddr = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.connect(sockaddr)
        except OSError:
            sock.close()
            raise
        return cls(sock, dtls.DtlsEndpoint(config) if config is not None else None, Endpoint(randbytes), clock=clock)

    def close(self) -> None:
        """Send close_notify on an open association, then close the socket."""
        if self.dtls is not None and self.dtls.state == "open":
            self.dtls.close()
            self.flush()
        self.sock.close()

    def __enter__(self) -> "UdpChannel":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def dead(self) -> bool:
        """True when nothing more can pass: a socket error, or the association failed or closed."""
        return bool(self.error) or (self.dtls is not None and self.dtls.state in ("failed", "closed"))

    def flush(self) -> None:
        if self.dtls is not None:
            for datagram in self.dtls.datagrams_to_send():
                self._send(datagram)

    def _send(self, datagram: bytes) -> None:
        try:
            self.sock.send(datagram)
        except OSError as exc:
            self.error = self.error or f"cannot send: {exc.strerror or exc}"

    def transmit(self, events: list) -> None:
        """Handle the CoAP Endpoint's ``events``: datagrams go out (inside DTLS records when the
        association is open), the others are appended to :attr:`events`."""
        for event in events:
            if not isinstance(event, Transmit):
                self.events.append(event)
            elif self.dtls is None:
                self._send(event.datagram)
            elif self.dtls.state == "open":
                self.dtls.send(event.datagram)
                self.flush()

    def pump(self, until: Callable[[], bool], deadline: float) -> bool:
        """Move datagrams and run both timers until ``until()`` (return True), ``deadline`` (the
        monotonic time) or :attr:`dead` (return False)."""
        while True:
            self.flush()
            if until():
                return True
            now = self.clock()
            if self.dead or now >= deadline:
                return False
            if self.dtls is not None:
                self.events += self.timer.expire(self.dtls, now)
            coap_due = self.coap.next_timeout()
            if coap_due is not None and coap_due <= now:
                self.transmit(self.coap.on_timeout(now))
                continue
            wake = min(t for t in (deadline, self.timer.at, coap_due) if t is not None)
            if select.select([self.sock], [], [], max(0.0, wake - now))[0]:
                self._receive()

    def _receive(self) -> None:
        try:
            data = self.sock.recv(_RECV)
        except OSError as exc:
            self.error = f"the port is closed ({exc.strerror or exc})"
            return
        if self.dtls is None:
            self.transmit(self.coap.receive(data, self.clock()))
            return
        for event in self.dtls.receive_datagram(data):
            if isinstance(event, dtls.AppData):
                self.transmit(self.coap.receive(event.data, self.clock()))
            else:
                self.events.append(event)
