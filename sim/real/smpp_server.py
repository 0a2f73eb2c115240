"""An SMPP 3.4 SMSC on a real TCP socket: a thin threaded driver around ``SmppSession``.

One thread accepts, one thread per connection reads and feeds the session. Accepted submit_sm
go to ``on_submit(system_id, SubmitSm) -> message_id``, whose answer becomes the
submit_sm_resp; ``on_submitted(system_id, SubmitSm, message_id)`` runs once that resp is
written, the place to push a delivery receipt. ``deliver(system_id, DeliverSm)`` pushes a
deliver_sm to a receiver or transceiver bound with that system_id.

on_submit raising ``SubmitRefused`` answers its command_status (ESME_RTHROTTLED, ESME_RMSGQFUL,
...), any other ProtocolError ESME_RSUBMITFAIL, any other exception ESME_RSYSERR (logged): a
faulty callback never takes the server down. A connection whose session ends
(unbind, bytes that cannot be framed, ``max_bind_failures`` refused binds) is closed after its
last answer is written.

Everything from the socket is hostile, so every resource is bounded (issue 13); the values are
options of ``dmsim smsc serve``:

- ``max_connections`` (default 64) connections at once; one more is accepted and closed at
  once, before a thread is started for it (counted in ``counts["refused_connections"]``).
- ``bind_timeout`` (default 5 s): a connection must be bound that long after it was accepted
  (bytes trickled in do not extend it), else it is closed. An ESME binds in its first
  round trip; 5 s leaves room for a slow link and keeps a slot from being held for long.
- ``idle_timeout`` (default 90 s): a bound connection that sends no complete PDU for that long
  is closed. SMPP 3.4 §4.11 keeps an idle link alive with enquire_link; Kannel's default
  interval is 30 s, so 90 s tolerates two lost ones.
- ``write_timeout`` (default 10 s): a peer that does not read its answers is dropped.
- Failed binds: the same ESME_RBINDFAIL for an unknown system_id, a wrong password and a
  throttled bind; the connection is closed after ``max_bind_failures`` (default 3) of them; a
  ``BindThrottle`` shared by all connections backs off an address (the peer's IP) and a
  system_id after 3 failures, 1 s doubling to 60 s (see ``network/sms/smpp_session.py``). A
  throttled bind is refused even with the right password: the backoff bounds guesses from
  many connections too, at the price that an attacker can keep a known system_id locked out
  for at most 60 s after each burst of failures.

``on_event`` also gets ``BindResult`` (each bind's outcome, with the reason for the operator,
never the password) and ``Closed`` (a connection the server closed on a timeout).
"""
from __future__ import annotations

import logging
import select
import socket
import socketserver
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Mapping

from dmsim.network.sms import smpp
from dmsim.network.sms.smpp_session import DEFAULT_MAX_BIND_FAILURES, BindThrottle, SmppSession, State
from dmsim.base.errors import DmsimError, ProtocolError

log = logging.getLogger(__name__)

OnSubmit = Callable[[str, smpp.SubmitSm], str]
OnSubmitted = Callable[[str, smpp.SubmitSm, str], None]
OnEvent = Callable[[tuple, object], None]

DEFAULT_PORT = 2775  # the IANA port of SMPP
DEFAULT_MAX_CONNECTIONS = 64
DEFAULT_BIND_TIMEOUT = 5.0
DEFAULT_IDLE_TIMEOUT = 90.0
DEFAULT_WRITE_TIMEOUT = 10.0


@dataclass(frozen=True)
class BindResult:
    """The outcome of a bind: ``status`` as sent; ``reason`` why it failed (never the password)."""

    system_id: str
    mode: str
    status: int
    reason: str = ""


@dataclass(frozen=True)
class Closed:
    """The server closed a connection: ``reason`` is "bind_timeout" or "idle_timeout"."""

    reason: str
    system_id: str = ""


class _LockedThrottle(BindThrottle):
    """A BindThrottle shared by the connection threads."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._lock = threading.Lock()

    def blocked(self, keys: tuple, now: float) -> bool:
        with self._lock:
            return super().blocked(keys, now)

    def failed(self, keys: tuple, now: float) -> None:
        with self._lock:
            super().failed(keys, now)

    def succeeded(self, keys: tuple) -> None:
        with self._lock:
            super().succeeded(keys)


class SubmitRefused(ProtocolError):
    """on_submit refuses a submit_sm with the SMPP 3.4 §5.1.3 command_status ``status``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class _Connection:
    """A socket and its session; ``lock`` guards both (reader thread vs ``deliver``)."""

    def __init__(self, sock: socket.socket, peer: tuple, session: SmppSession):
        self.sock, self.peer, self.session = sock, peer, session
        self.lock = threading.Lock()

    def write(self, data: bytes) -> None:
        if data:
            self.sock.sendall(data)


class SmppServer:
    """An SMSC listening on ``host:port`` (port 0 picks a free one; see ``address``)."""

    def __init__(self, on_submit: OnSubmit, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                 accounts: Mapping[str, str] | None = None, system_id: str = "dmsim",
                 on_submitted: OnSubmitted | None = None, on_event: OnEvent | None = None,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS, bind_timeout: float = DEFAULT_BIND_TIMEOUT,
                 idle_timeout: float = DEFAULT_IDLE_TIMEOUT, write_timeout: float = DEFAULT_WRITE_TIMEOUT,
                 max_bind_failures: int = DEFAULT_MAX_BIND_FAILURES, throttle: BindThrottle | None = None):
        self.on_submit, self.on_submitted, self.on_event = on_submit, on_submitted, on_event
        self.accounts = dict(accounts) if accounts is not None else None
        self.system_id = system_id
        self.max_connections, self.bind_timeout, self.idle_timeout = max_connections, bind_timeout, idle_timeout
        self.write_timeout, self.max_bind_failures = write_timeout, max_bind_failures
        self.throttle = throttle if throttle is not None else _LockedThrottle()
        self.counts: Counter = Counter()
        self._connections: set[_Connection] = set()
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_connections)
        self._thread: threading.Thread | None = None
        server = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                try:
                    server._serve_connection(self.request, self.client_address)
                finally:
                    server._slots.release()

        class Listener(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True
            request_queue_size = 128

            def verify_request(self, request, client_address) -> bool:
                if server._slots.acquire(blocking=False):
                    return True
                with server._lock:
                    server.counts["refused_connections"] += 1
                return False    # socketserver closes it; no thread is started

        self._tcp = Listener((host, port), Handler)

    @property
    def address(self) -> tuple[str, int]:
        """Return the (host, port) the server listens on."""
        host, port = self._tcp.server_address[:2]
        return host, port

    def start(self) -> tuple[str, int]:
        """Serve in a background thread; return the address."""
        self._thread = threading.Thread(target=self._tcp.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="smpp-accept", daemon=True)
        self._thread.start()
        return self.address

    def serve_forever(self) -> None:
        """Serve in this thread until ``stop`` is called from another one."""
        self._tcp.serve_forever(poll_interval=0.1)

    def stop(self) -> None:
        """Stop accepting, close every connection, and release the port."""
        self._tcp.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._tcp.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "SmppServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def bound(self) -> list[tuple[str, str]]:
        """Return (system_id, state) of each bound connection."""
        with self._lock:
            return [(c.session.peer_system_id or "", c.session.state.value) for c in self._connections
                    if c.session.state in (State.BOUND_TX, State.BOUND_RX, State.BOUND_TRX)]

    def deliver(self, system_id: str, pdu: smpp.DeliverSm) -> int:
        """Send ``pdu`` to a receiver bound as ``system_id``; return its sequence number.

        ProtocolError when no receiver or transceiver with that system_id is bound, or the
        connection fails while writing.
        """
        with self._lock:
            candidates = [c for c in self._connections
                          if c.session.peer_system_id == system_id and c.session.can_receive]
        for conn in candidates:
            with conn.lock:
                if not conn.session.can_receive:
                    continue
                data = conn.session.send(pdu)
                try:
                    conn.write(data)
                except OSError as exc:
                    conn.session.close()
                    raise ProtocolError(f"smpp: deliver_sm to {system_id} failed: {exc}") from None
            return struct.unpack_from(">I", data, 12)[0]
        raise ProtocolError(f"smpp: no receiver bound as {system_id!r}")

    # --- one connection -----------------------------------------------------------------------

    def _serve_connection(self, sock: socket.socket, peer: tuple) -> None:
        session = SmppSession(self.accounts, system_id=self.system_id, max_bind_failures=self.max_bind_failures,
                              throttle=self.throttle, peer=str(peer[0]))
        conn = _Connection(sock, peer, session)
        sock.settimeout(self.write_timeout)   # bounds sendall; reads wait in select below
        accepted = last_pdu = time.monotonic()
        with self._lock:
            self._connections.add(conn)
            self.counts["connections"] += 1
        try:
            while conn.session.state not in (State.UNBOUND, State.CLOSED):
                bound = conn.session.state in (State.BOUND_TX, State.BOUND_RX, State.BOUND_TRX)
                deadline = last_pdu + self.idle_timeout if bound else accepted + self.bind_timeout
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([sock], [], [], left)[0]:
                    reason = "idle_timeout" if bound else "bind_timeout"
                    with self._lock:
                        self.counts[reason] += 1
                    self._notify(peer, Closed(reason, conn.session.peer_system_id or ""))
                    break
                chunk = sock.recv(65536)
                if not chunk:
                    break
                with conn.lock:
                    events = conn.session.receive_data(chunk, now=time.monotonic())
                    conn.write(conn.session.data_to_send())
                if events:
                    last_pdu = time.monotonic()
                for event in events:
                    if isinstance(event, smpp.Bind):
                        self._bind_done(peer, conn.session, event)
                    self._notify(peer, event)
                    if isinstance(event, smpp.SubmitSm):
                        self._submit(conn, event)
        except OSError as exc:
            log.debug("smpp connection %s: %s", peer, exc)
        finally:
            with self._lock:
                self._connections.discard(conn)
            with conn.lock:
                conn.session.close()
            sock.close()

    def _bind_done(self, peer: tuple, session: SmppSession, pdu: smpp.Bind) -> None:
        status = session.last_bind_status if session.last_bind_status is not None else smpp.ESME_RBINDFAIL
        reason = "" if status == smpp.ESME_ROK else session.last_bind_failure
        if status == smpp.ESME_RBINDFAIL:
            with self._lock:
                self.counts["failed_binds"] += 1
        self._notify(peer, BindResult(pdu.system_id, pdu.mode, status, reason))

    def _notify(self, peer: tuple, event: object) -> None:
        if self.on_event is not None:
            try:
                self.on_event(peer, event)
            except Exception:  # a logging hook must not end the connection
                log.exception("smpp on_event failed")

    def _submit(self, conn: _Connection, pdu: smpp.SubmitSm) -> None:
        system_id = conn.session.peer_system_id or ""
        message_id, status = "", smpp.ESME_ROK
        try:
            message_id = self.on_submit(system_id, pdu)
            smpp.encode_pdu(smpp.SubmitSmResp(message_id=message_id))  # a bad id is the callback's fault
        except ProtocolError as exc:
            status, message_id = getattr(exc, "status", smpp.ESME_RSUBMITFAIL), ""
            log.info("smpp submit_sm from %s refused: %s", system_id, exc)
        except Exception:  # the callback's bug answers ESME_RSYSERR, the server goes on
            status, message_id = smpp.ESME_RSYSERR, ""
            log.exception("smpp on_submit failed")
        with conn.lock:
            if conn.session.state is State.CLOSED:
                return
            conn.write(conn.session.send(smpp.SubmitSmResp(sequence=pdu.sequence, status=status,
                                                           message_id=message_id)))
        if status == smpp.ESME_ROK and self.on_submitted is not None:
            try:
                self.on_submitted(system_id, pdu, message_id)
            except DmsimError as exc:
                log.info("smpp on_submitted: %s", exc)
            except Exception:
                log.exception("smpp on_submitted failed")
