"""VpcdBridge: any in-process card shown to pcscd as a card in vsmartcard's virtual reader.

vsmartcard's vpcd driver (package vsmartcard-vpcd) makes pcscd listen on TCP 127.0.0.1:35963
for reader "Virtual PCD 00 00"; the virtual card is the TCP client. Every message, both ways, is
a 2-byte big-endian length and a payload. A 1-byte payload from pcscd is a control code
(``CTRL_*`` below): power off, power on and reset get no answer, "get ATR" gets the ATR. A longer
payload is a C-APDU, answered with the card's R-APDU. (vsmartcard documentation, "Creating a
virtual smart card".)

The protocol is ambiguous: vpcd forwards whatever a PC/SC client gives SCardTransmit, so a
1-byte C-APDU arrives as a 1-byte payload, exactly like a control code, and vpcd then blocks in
``recv`` (holding pcscd's lock on the reader) until the card answers (vsmartcard
``vpcd.c``: ``vicc_transmit`` sends, then ``recvFromVICC`` with no timeout). Leaving it
unanswered wedges the reader for every PC/SC client. The bridge tells them apart so that every
payload vpcd waits on gets an answer and none it does not wait on does (a stray answer would be
read as the answer to the next command):

* a 1-byte payload other than 0, 1, 2, 4 cannot be a control code, and no C-APDU is shorter than
  4 bytes (CLA INS P1 P2, ISO 7816-3 §12.1): '6700' (wrong length) at once, without reaching the
  card; so are payloads of 2 or 3 bytes and an empty frame (pcsc-lite refuses an empty
  SCardTransmit, so vpcd never sends one; answering it is the safe side);
* 0 (power off), 1 (power on) and 2 (reset) are held, not acted on: pcscd polls the card's
  presence with a "get ATR" every 400 ms (pcsc-lite ``PCSCLITE_STATUS_POLL_RATE``, measured on
  this stack), so after a real control code a next message always comes. If one comes within
  ``ambiguous_wait`` seconds (default 1.0, 2.5 poll periods) the held code was a control code
  and is acted on first; if none comes, vpcd is blocked waiting for an answer, the payload was a
  1-byte C-APDU, and it is answered '6700' without touching the card (an attacker's "APDU 01"
  does not reset it). The reader is busy for at most ``ambiguous_wait`` seconds;
* 4 is answered with the ATR in both readings (a 1-byte C-APDU '04' gets the ATR as its
  answer: wrong, but vpcd is answered and nothing blocks);
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
import select
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
AMBIGUOUS_WAIT = 1.0  # seconds; pcscd polls with a 'get ATR' every 0.4 s
_AMBIGUOUS = (CTRL_OFF, CTRL_ON, CTRL_RESET)

_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only


class _Closed(Exception):
    """The vpcd side closed the connection."""


class VpcdBridge:
    """Serves ``card`` to vpcd at ``host:port`` until ``stop()``; run ``serve_forever`` in a thread.

    ``connected`` is set while a connection to vpcd is up; ``apdus`` counts the APDUs answered.
    ``give_up_after`` (seconds, None: never) bounds the wait for the first connection;
    ``serve_forever`` then returns with ``failure`` saying what was wrong.
    ``quickack=False`` only exists to measure what the delayed ACK costs. ``ambiguous_wait``
    (seconds) is how long a 1-byte 00/01/02 waits for the next message before it is taken for a
    C-APDU (module docstring).
    """

    def __init__(self, card: Card, host: str = "127.0.0.1", port: int = VPCD_PORT, *, quickack: bool = True,
                 give_up_after: float | None = None, ambiguous_wait: float = AMBIGUOUS_WAIT):
        self.card = card
        self.host = host
        self.port = port
        self.quickack = quickack and _QUICKACK is not None
        self.connected = threading.Event()
        self.powered = False
        self.apdus = 0
        self.give_up_after = give_up_after
        self.ambiguous_wait = ambiguous_wait
        self.short_apdus = 0   # 1-byte (or shorter than 4 bytes) C-APDUs answered '6700'
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
        """Return the answer to one vpcd payload, or None when it gets no answer.

        Only 0 (power off), 1 (power on) and 2 (reset) get no answer; ``_serve`` holds them
        first to tell them from a 1-byte C-APDU (module docstring).
        """
        if len(payload) == 1 and payload[0] in (*_AMBIGUOUS, CTRL_ATR):
            try:
                return self._control(payload[0])
            except Exception:  # a card bug must not take the reader down
                log.exception("card failed on vpcd control code 0x%02x", payload[0])
                return None if payload[0] != CTRL_ATR else b""
        if len(payload) < 4:
            self.short_apdus += 1
            log.info("vpcd payload of %d byte(s) is no C-APDU: answered 6700", len(payload))
            return SW_WRONG_LENGTH
        try:
            rapdu = bytes(self.card.process(payload))
        except Exception:  # a card bug must not take the reader down
            log.exception("card failed on a C-APDU (INS %02x)", payload[1])
            return SW_NO_DIAGNOSIS
        if not 2 <= len(rapdu) <= 0xFFFF:
            log.error("card answered %d bytes to a C-APDU (INS %02x): no status word or too long to frame",
                      len(rapdu), payload[1])
            return SW_NO_DIAGNOSIS
        self.apdus += 1
        return rapdu

    def _control(self, code: int) -> bytes | None:
        if code == CTRL_ATR:
            return bytes(getattr(self.card, "atr", b""))
        if code == CTRL_OFF:
            self.powered = False
        else:  # CTRL_ON, CTRL_RESET
            self.powered = True
            reset = getattr(self.card, "reset", None)
            if callable(reset):
                reset()
        return None

    def _serve(self, sock: socket.socket) -> None:
        held: bytes | None = None   # a 1-byte 00/01/02: a control code or a 1-byte C-APDU
        while not self._stop.is_set():
            if held is not None and not self._readable(sock, self.ambiguous_wait):
                # vpcd sent nothing more within the wait: it is blocked waiting for an answer
                self.short_apdus += 1
                log.info("vpcd 1-byte payload %s got no next message in %.1f s: a C-APDU, answered 6700",
                         held.hex(), self.ambiguous_wait)
                sock.sendall(len(SW_WRONG_LENGTH).to_bytes(2, "big") + SW_WRONG_LENGTH)
                held = None
                continue
            size = int.from_bytes(self._recv_exact(sock, 2), "big")
            payload = self._recv_exact(sock, size)
            if held is not None:          # something came: the held payload was a control code
                self.handle(held)
                held = None
            if len(payload) == 1 and payload[0] in _AMBIGUOUS:
                held = payload
                continue
            answer = self.handle(payload)
            if answer is not None:
                sock.sendall(len(answer).to_bytes(2, "big") + answer)

    def _readable(self, sock: socket.socket, timeout: float) -> bool:
        """Return True when ``sock`` has data (or its end) within ``timeout`` s, or stop() came."""
        deadline = time.monotonic() + timeout
        while not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            ready, _, _ = select.select([sock], [], [], min(left, 0.1))
            if ready:
                return True
        return True

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
