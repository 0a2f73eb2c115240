"""The BSF's Ub endpoint on a real socket: ``network/gba/bsf.Bsf`` in wall-clock time (3GPP TS
24.109 §4.2-§4.5 over HTTP/1.1), with an HSS on a SQLite file (``network/gba/hss.py``).

Structure (the DM server's, ``dm_http_server``): the same ``_GuardedServer`` listener, so the
same bounds (``conn_guard.Limits``): connections capped in total and per address (refused by
closing before a thread starts), the listen backlog, one wall-clock deadline per request (from
the wait for its first byte to the last byte of the answer: a slowloris is cut at it), and a
lingering close after a refusal whose rest was not read. What differs is the request reader:
Ub requests are small GETs, so this one reads the header block itself, capped at
``MAX_HEAD`` octets (431 beyond), refuses at once any octet a header block cannot hold (400 for
garbage, not a wait for the deadline), frames a body only by Content-Length (RFC 7230 §3.3.3, as
``dm_http_server.content_length``) and bounds the whole request by ``bsf.MAX_REQUEST_LEN``
(the core refuses beyond it anyway).

The core runs in one worker thread (``BsfService``): the HSS's SQLite connection belongs to the
thread that opened it, and the BSF state machine is not thread-safe, so requests are handed to
that thread and the connection's thread waits at most until its deadline.

Secrets: the audit log (``audit_log.AuditLog``) gets one ``access`` record per request (peer,
status, outcome, bytes), never a header, a body, K, OPc, RES, CK/IK or Ks; the core's answers
carry none of them either (the nonce holds RAND||AUTN, rspauth is a digest).
"""
from __future__ import annotations

import http.client
import io
import os
import socket
import socketserver
import time
from concurrent.futures import ThreadPoolExecutor

from dmsim.base.errors import DmsimError
from dmsim.network.dm.http_binding import encode_response
from dmsim.network.gba.bsf import MAX_REQUEST_LEN, Bsf
from dmsim.network.gba.hss import Hss
from dmsim.sim.real.audit_log import AuditLog
from dmsim.sim.real.conn_guard import DeadlineSocket, Limits, drain
# the DM server's guarded listener and framing rules, shared rather than copied
from dmsim.sim.real.dm_http_server import FramingError, _GuardedServer, content_length

MAX_HEAD = 4096
BSF_LIMITS = Limits(max_connections=64, max_per_address=16, request_deadline=10.0, max_body=MAX_REQUEST_LEN,
                    backlog=128, linger_bytes=64 << 10, linger_seconds=1.0)
_HEAD_OCTETS = frozenset(range(0x20, 0x7F)) | {0x09, 0x0A, 0x0D}
_RECV = 4096


class BsfService:
    """A ``Bsf`` and its ``Hss`` (SQLite file ``db``, created if missing), owned by one worker
    thread; ``handle`` passes a request to it and waits at most ``timeout`` seconds."""

    def __init__(self, db: str, fqdn: str, *, audit: AuditLog | None = None, **bsf_options):
        self.audit = audit if audit is not None else AuditLog(None)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bsf-core")
        self.bsf: Bsf = self._pool.submit(self._open, db, fqdn, bsf_options).result()

    @staticmethod
    def _open(db: str, fqdn: str, options: dict) -> Bsf:
        return Bsf(Hss.open(db, os.urandom), fqdn, **options)

    def handle(self, request: bytes, timeout: float) -> bytes:
        """Return the BSF's answer to one Ub request (TimeoutError past ``timeout``)."""
        return self._pool.submit(self.bsf.handle, request, time.time()).result(timeout=timeout)

    def counters(self) -> dict[str, int]:
        """Return a copy of the core's counters (read in its thread)."""
        return self._pool.submit(dict, self.bsf.counters).result()

    def close(self) -> None:
        """Close the HSS store and stop the worker thread."""
        self._pool.submit(self.bsf.hss.close).result()
        self._pool.shutdown()


class _Refusal(Exception):
    """Internal: answer ``status`` and close (lingering)."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


class _UbHandler(socketserver.BaseRequestHandler):
    """Reads Ub requests off one connection (keep-alive), each within its deadline."""

    def handle(self) -> None:
        conn: DeadlineSocket = self.request
        limits: Limits = self.server.limits
        buf = b""
        while True:
            conn.deadline.arm(limits.request_deadline)
            try:
                request, buf, keep = self._read_request(conn, buf)
                if request is None:
                    return
                answer = self.server.dm_service.handle(request, conn.deadline.remaining())
                conn.sendall(answer)
            except _Refusal as r:
                self._refuse(conn, r)
                return
            except (OSError, TimeoutError, DmsimError):
                return  # deadline passed, peer reset: the connection ends (shutdown_request closes it)
            status = int(answer[9:12]) if answer[9:12].isdigit() else 0
            self._log(status, len(request))
            if not keep or status == 400:
                return

    def _read_request(self, conn: DeadlineSocket, buf: bytes) -> tuple[bytes | None, bytes, bool]:
        """Return (request, octets after it, keep-alive); (None, ...) when the peer closed between
        requests; _Refusal for what is refused."""
        while b"\r\n\r\n" not in buf:
            bad = next((i for i, o in enumerate(buf[:MAX_HEAD]) if o not in _HEAD_OCTETS), None)
            if bad is not None:
                raise _Refusal(400, f"octet {buf[bad]:#04x} at {bad} cannot be in an HTTP header block")
            if len(buf) > MAX_HEAD:
                raise _Refusal(431, f"header block above {MAX_HEAD} octets")
            chunk = conn.recv(_RECV)
            if not chunk:
                if buf:
                    raise _Refusal(400, "request ends before its header block does")
                return None, b"", False
            buf += chunk
        end = buf.index(b"\r\n\r\n") + 4
        head, rest = buf[:end], buf[end:]
        bad = next((i for i, o in enumerate(head) if o not in _HEAD_OCTETS), None)
        if bad is not None or len(head) > MAX_HEAD:
            raise _Refusal(400 if bad is not None else 431, "malformed or oversized header block")
        line, _, fields = head.partition(b"\r\n")
        try:
            headers = http.client.parse_headers(io.BytesIO(fields))
        except http.client.HTTPException:
            raise _Refusal(400, "header fields do not parse") from None
        length = 0
        if headers.get_all("Content-Length") or headers.get_all("Transfer-Encoding"):
            try:
                length = content_length(headers, MAX_REQUEST_LEN - len(head))
            except FramingError as exc:
                raise _Refusal(exc.status, str(exc)) from None
        while len(rest) < length:
            chunk = conn.recv(_RECV)
            if not chunk:
                raise OSError("peer left mid-body")
            rest += chunk
        keep = line.endswith(b"HTTP/1.1") and (headers.get("Connection") or "").lower() != "close"
        return head + rest[:length], rest[length:], keep

    def _refuse(self, conn: DeadlineSocket, r: _Refusal) -> None:
        """Answer ``r`` and close lingering (``conn_guard.drain``), so the peer reads the answer."""
        self._log(r.status, 0)
        try:
            conn.sendall(encode_response(r.status, r.reason.encode("ascii", "replace"), "text/plain",
                                         {"Connection": "close"}))
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            return
        limits: Limits = self.server.limits
        drain(conn, limits.linger_bytes, limits.linger_seconds)

    def _log(self, status: int, size: int) -> None:
        self.server.dm_service.audit.write("access", peer=str(self.client_address[0]), status=status, bytes=size,
                                           mechanism="ub-http", outcome="success" if status < 400 else "failure")


def make_bsf_server(host: str, port: int, service: BsfService, *, limits: Limits | None = None) -> _GuardedServer:
    """Return a bound (not yet serving) Ub listener around ``service``."""
    return _GuardedServer((host, port), _UbHandler, service, limits or BSF_LIMITS)
