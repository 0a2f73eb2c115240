"""VpcdBridge: any in-process card shown to pcscd as a card in vsmartcard's virtual reader.

vsmartcard's vpcd driver (package vsmartcard-vpcd) makes pcscd listen on TCP 127.0.0.1:35963
for reader "Virtual PCD 00 00"; the virtual card is the TCP client. Every message, both ways, is
a 2-byte big-endian length and a payload. A 1-byte payload from pcscd is a control code
(``CTRL_*`` below): power off, power on and reset get no answer, "get ATR" gets the ATR. A longer
payload is a C-APDU, answered with the card's R-APDU. (vsmartcard documentation, "Creating a
virtual smart card".)

Choices the protocol leaves open:

* a payload of 2 or 3 bytes is no C-APDU: it is answered '6700' (wrong length) without
  reaching the card; an empty frame or an unknown control code is ignored;
* a card that raises, or answers fewer than 2 bytes (or more than a frame holds), is answered
  '6F00' (no precise diagnosis), and the bridge goes on;
* power on and reset call the card's ``reset()`` if it has one;
* when the connection drops (pcscd restarts) the bridge reconnects, waiting 50 ms, then twice
  as long each time up to 2 s;
* with ``give_up_after`` set, a bridge that has never reached vpcd stops trying after that many
  seconds (nothing listens: pcscd is not running, or runs without the vpcd driver) and says
  why in ``failure``; once connected it reconnects for ever, as above.

pcscd writes each length and payload in two writes; with the default delayed ACK the second
one waits ~40 ms per APDU. So TCP_QUICKACK is set before every ``recv`` (it resets itself) and
TCP_NODELAY once, and each answer goes out in one write.
"""
from __future__ import annotations

import logging
import socket
import threading
import time

from dmsim.cards import sw
from dmsim.cards.link import Card

log = logging.getLogger(__name__)

VPCD_PORT = 35963      # 0x8C7B, vpcd's first reader
CTRL_OFF = 0x00
CTRL_ON = 0x01
CTRL_RESET = 0x02
CTRL_ATR = 0x04
SW_WRONG_LENGTH = bytes(sw.WRONG_LENGTH)
SW_NO_DIAGNOSIS = bytes(sw.TECHNICAL_PROBLEM)
BACKOFF_FIRST = 0.05
BACKOFF_MAX = 2.0

_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only


class _Closed(Exception):
    """The vpcd side closed the connection."""


class VpcdBridge:
    """Serves ``card`` to vpcd at ``host:port`` until ``stop()``; run ``serve_forever`` in a thread.

    ``connected`` is set while a connection to vpcd is up; ``apdus`` counts the APDUs answered.
    ``give_up_after`` (seconds, None: never) bounds the wait for the first connection;
    ``serve_forever`` then returns with ``failure`` saying what was wrong.
    ``quickack=False`` only exists to measure what the delayed ACK costs.
    """

    def __init__(self, card: Card, host: str = "127.0.0.1", port: int = VPCD_PORT, *, quickack: bool = True,
                 give_up_after: float | None = None):
        self.card = card
        self.host = host
        self.port = port
        self.quickack = quickack and _QUICKACK is not None
        self.connected = threading.Event()
        self.powered = False
        self.apdus = 0
        self.give_up_after = give_up_after
        self.failure: str | None = None
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    def serve_forever(self) -> None:
        """Connect, answer frames, reconnect with backoff when dropped; return after ``stop()``."""
        backoff = BACKOFF_FIRST
        started, attempts, ever_connected = time.monotonic(), 0, False
        while not self._stop.is_set():
            try:
                attempts += 1
                sock = socket.create_connection((self.host, self.port), timeout=2.0)
            except OSError as exc:
                waited = time.monotonic() - started
                if not ever_connected and self.give_up_after is not None and waited + backoff > self.give_up_after:
                    self.failure = (f"nothing listens on vpcd {self.host}:{self.port} "
                                    f"({exc.strerror or exc}; {attempts} attempt(s) in {waited:.1f} s): "
                                    "is pcscd running with the vpcd driver (vsmartcard-vpcd)?")
                    return
                log.debug("vpcd %s:%d not reachable (%s); retry in %.2f s", self.host, self.port, exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            backoff, ever_connected = BACKOFF_FIRST, True
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._sock = sock
            if self._stop.is_set():   # stop() came while connecting
                sock.close()
                break
            self.connected.set()
            try:
                self._serve(sock)
            except (OSError, _Closed) as exc:
                if not self._stop.is_set():
                    log.info("vpcd connection lost (%s); reconnecting", exc or "closed")
            finally:
                self.connected.clear()
                with self._lock:
                    self._sock = None
                sock.close()
            self._stop.wait(BACKOFF_FIRST)

    def stop(self) -> None:
        """Make ``serve_forever`` return soon (it unblocks a pending ``recv``)."""
        self._stop.set()
        with self._lock:
            if self._sock is not None:
                try:
                    self._sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def handle(self, payload: bytes) -> bytes | None:
        """Return the answer to one vpcd payload, or None when it gets no answer."""
        if not payload:
            return None
        if 1 < len(payload) < 4:
            return SW_WRONG_LENGTH
        try:
            if len(payload) == 1:
                return self._control(payload[0])
            rapdu = bytes(self.card.process(payload))
        except Exception:  # a card bug must not take the reader down
            log.exception("card failed on vpcd payload %s", payload.hex())
            return None if len(payload) == 1 else SW_NO_DIAGNOSIS
        if not 2 <= len(rapdu) <= 0xFFFF:
            log.error("card answered %d bytes to C-APDU %s: no status word or too long to frame",
                      len(rapdu), payload.hex())
            return SW_NO_DIAGNOSIS
        self.apdus += 1
        return rapdu

    def _control(self, code: int) -> bytes | None:
        if code == CTRL_ATR:
            return bytes(getattr(self.card, "atr", b""))
        if code == CTRL_OFF:
            self.powered = False
        elif code in (CTRL_ON, CTRL_RESET):
            self.powered = True
            reset = getattr(self.card, "reset", None)
            if callable(reset):
                reset()
        else:
            log.warning("unknown vpcd control code 0x%02x ignored", code)
        return None

    def _serve(self, sock: socket.socket) -> None:
        while not self._stop.is_set():
            size = int.from_bytes(self._recv_exact(sock, 2), "big")
            answer = self.handle(self._recv_exact(sock, size))
            if answer is not None:
                sock.sendall(len(answer).to_bytes(2, "big") + answer)

    def _recv_exact(self, sock: socket.socket, n: int) -> bytes:
        """Return exactly ``n`` bytes from ``sock``; raise _Closed at end of stream."""
        buf = bytearray()
        while len(buf) < n:
            if self.quickack:
                sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise _Closed()
            buf += chunk
        return bytes(buf)
