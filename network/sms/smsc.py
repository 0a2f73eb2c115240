"""A store-and-forward SMS service centre, sans-IO: 3GPP TS 23.040 §3 (SC functions), §9.2.2.3.

The core owns no clock and no I/O (h11 style). The caller feeds it inputs with the time:

- ``submit(sm, now)`` (an application / ESME submits, the MT path) or ``submit_tpdu(tpdu,
  src, now)`` (a mobile's SMS-SUBMIT, the MO path) -> ``SubmitResult`` (accepted or refused);
- ``report(msg_id, attempt, result, now)``: the outcome of a delivery attempt (RP-ACK with
  optional RP-ACK user data such as a PoR, RP-ERROR with its cause, absent subscriber, timeout);
- ``alert(dst, now)``: Alert-SC (§3.2.7), the destination is reachable again;

and ``poll(now)`` returns the actions due (``Deliver`` attempts, ``StatusReport`` TPDUs), while
``next_deadline()`` says when ``poll`` must be called next.

Model (choices where TS 23.040 leaves the SC's behaviour to the operator):
- Submit rate: a token bucket (``submit_rate`` messages/s, ``burst``); an empty bucket refuses
  with ``throttled`` and says when a token is due (``retry_after``), as SMPP ESME_RTHROTTLED.
  ``queue_limit`` bounds the messages stored at once (refused with ``queue_full``).
- One store-and-forward queue per destination, served in order, one attempt in flight per
  destination; TP-MMS tells the MS when more are queued. Attempts of all destinations share a
  delivery token bucket (``delivery_rate``, ``delivery_burst``), ready destinations FIFO.
- An attempt with no result after ``attempt_timeout`` counts as a timeout; a result for an
  attempt that is over (late, or a duplicate) is ignored.
- Temporary failures (absent subscriber, timeout, a temporary RP-ERROR) are retried after
  ``min(retry_initial * retry_factor**(n-1), retry_max)`` for the n-th failure, until the
  validity period ends: the message then expires at exactly submit time + validity. A message
  in flight at that moment expires when its attempt fails. ``max_attempts`` (optional) gives up
  earlier (outcome ``failed``, TP-ST in the 0x60 range).
- RP-ERROR classification (TS 24.011 §8.2.5.4 RP-Cause, TS 23.040 §9.2.3.22 TP-FCS of the
  SMS-DELIVER-REPORT): TP-FCS 0xD0/0xD2/0xD3 (storage full, error in MS, memory exceeded),
  0xD4 ((U)SAT busy) and 0xD5 ((U)SIM data download error) are temporary: TS 31.111 §7.1.1 has
  the ME answer those when the UICC returns 93 00 or 62xx/63xx to a class-2 PID 0x7F download,
  and SCs retry them. Without TP-FCS, RP-Cause 22 (memory capacity exceeded) is temporary and,
  for a data-download message (PID 0x7D/0x7F), so is 111 (protocol error, unspecified) which
  MEs send without a TP-FCS. Anything else is permanent: the message fails at once.
- A status report (TP-SRR) is produced once, at the final outcome; no intermediate 0x2x report.
  Expiry reports 0x46 (validity period expired); an unknown subscriber fails at once (0x43). A delivered data-download message carries the
  RP-ACK user data (the PoR) in the report's TP-UD, with the message's TP-PID and TP-DCS. The
  report goes to the originator as an action; it is not itself stored and retried.
- Alert-SC: a destination waiting for a retry is made due at once.
- SCTS/DT map simulated time onto ``epoch`` (default 2026-01-01 00:00 UTC, as the simulation),
  in whole seconds.
"""
from __future__ import annotations

import heapq
import itertools
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Iterator

from dmsim.network.sms import status_report as sr
from dmsim.network.sms.address import Address
from dmsim.network.sms.tpdu import DCS_8BIT, PID_ME_DATA_DOWNLOAD, PID_USIM_DATA_DOWNLOAD, SmsDeliver, SmsSubmit, decode_tpdu
from dmsim.network.sms.udh import InformationElement
from dmsim.base.errors import ProtocolError

EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)
SC_ADDRESS = Address("12345")

# TS 24.011 §8.2.5.4, causes an MS sends in RP-ERROR for an MT message.
RP_MEMORY_CAPACITY_EXCEEDED = 22
RP_INVALID_REFERENCE = 81
RP_SEMANTICALLY_INCORRECT = 95
RP_INVALID_MANDATORY_INFORMATION = 96
RP_MESSAGE_TYPE_NON_EXISTENT = 97
RP_MESSAGE_NOT_COMPATIBLE = 98
RP_IE_NON_EXISTENT = 99
RP_PROTOCOL_ERROR = 111
# TS 24.011 §8.2.5.4, causes the network sends an MS in RP-ERROR for a refused SMS-SUBMIT.
RP_CONGESTION = 42
RP_RESOURCES_UNAVAILABLE = 47

# TS 23.040 §9.2.3.22 TP-FCS values the SC acts on.
FCS_PID_UNSUPPORTED = 0x80
FCS_CLASS_UNSUPPORTED = 0x91
FCS_SIM_STORAGE_FULL = 0xD0
FCS_ERROR_IN_MS = 0xD2
FCS_MEMORY_EXCEEDED = 0xD3
FCS_SAT_BUSY = 0xD4
FCS_DATA_DOWNLOAD_ERROR = 0xD5
FCS_UNSPECIFIED = 0xFF
_TEMPORARY_FCS = frozenset({FCS_SIM_STORAGE_FULL, FCS_ERROR_IN_MS, FCS_MEMORY_EXCEEDED,
                            FCS_SAT_BUSY, FCS_DATA_DOWNLOAD_ERROR})
_DATA_DOWNLOAD_PIDS = frozenset({PID_ME_DATA_DOWNLOAD, PID_USIM_DATA_DOWNLOAD})

# Outcomes of a message (the record's ``outcome``); None while it is stored.
DELIVERED, EXPIRED, FAILED, REFUSED = "delivered", "expired", "failed", "refused"
# Kinds of an attempt result.
ACK, RP_ERROR, ABSENT, TIMEOUT, UNKNOWN = "ack", "rp_error", "absent", "timeout", "unknown"

RECORD_FIELDS = ("msg_id", "origin", "src", "dst", "pid", "submit_time", "first_attempt",
                 "final_time", "attempts", "outcome", "last_cause", "queue_wait")


@dataclass(frozen=True)
class SmscConfig:
    """The SC's limits and retry policy (seconds, messages/s). None rates mean no limit."""

    submit_rate: float | None = None
    burst: int = 1
    delivery_rate: float | None = None
    delivery_burst: int = 1
    validity: float = 86400.0
    retry_initial: float = 30.0
    retry_factor: float = 2.0
    retry_max: float = 3600.0
    max_attempts: int | None = None
    attempt_timeout: float = 30.0
    queue_limit: int | None = None

    def backoff(self, failures: int) -> float:
        """Return the wait before the next attempt after the ``failures``-th failure (>= 1)."""
        return min(self.retry_initial * self.retry_factor ** (failures - 1), self.retry_max)


class TokenBucket:
    """``rate`` tokens/s up to ``burst``; full at first. ``rate`` None: never empty."""

    __slots__ = ("rate", "burst", "tokens", "last")

    def __init__(self, rate: float | None, burst: int):
        self.rate = rate
        self.burst = max(1, burst)
        self.tokens = float(self.burst)
        self.last = 0.0

    def _refill(self, now: float) -> None:
        if now > self.last:
            self.tokens = min(float(self.burst), self.tokens + (now - self.last) * self.rate)
            self.last = now

    def take(self, now: float) -> bool:
        """Return True and use a token if one is there at ``now``."""
        if self.rate is None:
            return True
        self._refill(now)
        if self.tokens >= 1.0 - 1e-9:  # a token due at ``now`` by float arithmetic
            self.tokens = max(0.0, self.tokens - 1.0)
            return True
        return False

    def due(self, now: float) -> float:
        """Return the time a token is (or was) available, >= ``now``."""
        if self.rate is None:
            return now
        self._refill(now)
        return now if self.tokens >= 1.0 - 1e-9 else now + (1.0 - self.tokens) / self.rate


@dataclass(frozen=True)
class ShortMessage:
    """A message to store and forward. ``validity`` None: the SC's default validity period."""

    src: str
    dst: str
    user_data: bytes = b""
    pid: int = 0
    dcs: int = DCS_8BIT
    ies: tuple[InformationElement, ...] = ()
    status_report: bool = False
    mr: int = 0
    validity: float | None = None


@dataclass(frozen=True)
class AttemptResult:
    """What became of one delivery attempt. Build with ``ack``/``error``/``absent``/``timeout``."""

    kind: str
    rp_cause: int | None = None
    fcs: int | None = None
    user_data: bytes = b""

    @classmethod
    def ack(cls, user_data: bytes = b"") -> AttemptResult:
        """Return an RP-ACK, with the SMS-DELIVER-REPORT user data (e.g. a PoR) if any."""
        return cls(ACK, user_data=bytes(user_data))

    @classmethod
    def error(cls, rp_cause: int, fcs: int | None = None, user_data: bytes = b"") -> AttemptResult:
        """Return an RP-ERROR with RP-Cause ``rp_cause`` and optionally a TP-FCS and user data."""
        return cls(RP_ERROR, rp_cause, fcs, bytes(user_data))

    @classmethod
    def absent(cls) -> AttemptResult:
        """Return an absent subscriber (MS off or out of coverage)."""
        return cls(ABSENT)

    @classmethod
    def unknown(cls) -> AttemptResult:
        """Return an unknown subscriber (no such destination): a permanent failure."""
        return cls(UNKNOWN)

    @classmethod
    def timeout(cls) -> AttemptResult:
        """Return a timeout (no answer)."""
        return cls(TIMEOUT)

    def cause_text(self) -> str:
        """Return the cause as a short string for records (``rp_error:111/fcs:0xd4``)."""
        if self.kind != RP_ERROR:
            return self.kind
        return f"rp_error:{self.rp_cause}" + ("" if self.fcs is None else f"/fcs:{self.fcs:#04x}")


@dataclass(frozen=True)
class SubmitResult:
    """A submit's answer: ``accepted``, the message id, and why not (``reason``, an RP-Cause to
    answer a mobile with, and when a submit token is due for a throttled sender)."""

    accepted: bool
    msg_id: int
    reason: str | None = None
    rp_cause: int | None = None
    retry_after: float = 0.0


@dataclass(frozen=True)
class Deliver:
    """Action: attempt ``attempt`` of message ``msg_id`` to ``dst``; ``tpdu`` is the SMS-DELIVER.

    Answer it with ``Smsc.report(msg_id, attempt, result, now)``.
    """

    msg_id: int
    attempt: int
    dst: str
    tpdu: bytes
    message: ShortMessage


@dataclass(frozen=True)
class StatusReport:
    """Action: the SMS-STATUS-REPORT ``tpdu`` for message ``msg_id``, to its originator ``to``."""

    msg_id: int
    to: str
    origin: str
    tpdu: bytes
    st: int


@dataclass(slots=True)
class SmsRecord:
    """One message's history; ``outcome`` None while stored. ``row()`` follows RECORD_FIELDS."""

    msg_id: int
    origin: str
    src: str
    dst: str
    pid: int
    submit_time: float
    first_attempt: float | None = None
    final_time: float | None = None
    attempts: int = 0
    outcome: str | None = None
    last_cause: str = ""
    ack_data: bytes = b""

    @property
    def queue_wait(self) -> float | None:
        """Return the time from submit to the first attempt (None if never attempted)."""
        return None if self.first_attempt is None else self.first_attempt - self.submit_time

    def row(self) -> tuple:
        """Return the record as a tuple in RECORD_FIELDS order (outcome ``pending`` if stored)."""
        return (self.msg_id, self.origin, self.src, self.dst, self.pid, self.submit_time,
                self.first_attempt, self.final_time, self.attempts, self.outcome or "pending",
                self.last_cause, self.queue_wait)


class _Stored:
    __slots__ = ("sm", "record", "expires", "failures", "in_flight", "done")

    def __init__(self, sm: ShortMessage, record: SmsRecord, expires: float):
        self.sm = sm
        self.record = record
        self.expires = expires
        self.failures = 0
        self.in_flight = False
        self.done = False


class _Dest:
    __slots__ = ("address", "queue", "busy", "token")

    def __init__(self, address: str):
        self.address = address
        self.queue: deque[_Stored] = deque()
        self.busy = False
        self.token = 0  # bumped on each scheduling; older ready/retry entries are stale

    def head(self) -> _Stored | None:
        """Return the first message still stored (dropping finished ones)."""
        queue = self.queue
        while queue and queue[0].done:
            queue.popleft()
        return queue[0] if queue else None


class Smsc:
    """The SC core: see the module docstring for the inputs, ``poll`` and ``next_deadline``."""

    def __init__(self, config: SmscConfig, *, address: Address = SC_ADDRESS,
                 epoch: datetime = EPOCH):
        self.config = config
        self.address = address
        self.epoch = epoch
        self._submit_bucket = TokenBucket(config.submit_rate, config.burst)
        self._delivery_bucket = TokenBucket(config.delivery_rate, config.delivery_burst)
        self._ids = itertools.count(1)
        self._seq = itertools.count()  # heap tie-breaker: FIFO among equal times
        self._stored: dict[int, _Stored] = {}
        self._dests: dict[str, _Dest] = {}
        self._ready: deque[tuple[_Dest, int]] = deque()
        self._retries: list[tuple[float, int, _Dest, int]] = []
        self._expiries: list[tuple[float, int, _Stored]] = []
        self._done_expiries = 0  # entries of _expiries whose message is done (at most; see _compact_expiries)
        self._timeouts: list[tuple[float, int, _Stored, int]] = []
        self._outbox: list[Deliver | StatusReport] = []
        self._now = 0.0  # the latest time an input or poll was given
        self._finished: list[SmsRecord] = []
        self.counts = {"submitted": 0, "accepted": 0, "throttled": 0, "queue_full": 0,
                       "attempts": 0, "delivered": 0, "expired": 0, "failed": 0,
                       "ignored_results": 0, "status_reports": 0}

    # -- inputs -------------------------------------------------------------------------------
    def submit(self, sm: ShortMessage, now: float, *, origin: str = "esme") -> SubmitResult:
        """Return whether ``sm`` is accepted (stored for delivery) or refused, at ``now``.

        ProtocolError if ``src``/``dst`` are not numeric SMS addresses.
        """
        for address in (sm.src, sm.dst):  # refuse what could never be delivered
            Address.parse(address)
        self._now = now
        self.counts["submitted"] += 1
        msg_id = next(self._ids)
        record = SmsRecord(msg_id, origin, sm.src, sm.dst, sm.pid, now)
        limit = self.config.queue_limit
        if limit is not None and len(self._stored) >= limit:
            return self._refuse(record, "queue_full", RP_RESOURCES_UNAVAILABLE, 0.0)
        if not self._submit_bucket.take(now):
            wait = self._submit_bucket.due(now) - now
            return self._refuse(record, "throttled", RP_CONGESTION, wait)
        self.counts["accepted"] += 1
        validity = self.config.validity if sm.validity is None else sm.validity
        stored = _Stored(sm, record, now + validity)
        self._stored[msg_id] = stored
        heapq.heappush(self._expiries, (stored.expires, next(self._seq), stored))
        dest = self._dests.get(sm.dst)
        if dest is None:
            dest = self._dests[sm.dst] = _Dest(sm.dst)
        dest.queue.append(stored)
        if not dest.busy and dest.head() is stored:
            self._schedule(dest, now, now)
        return SubmitResult(True, msg_id)

    def submit_tpdu(self, tpdu: bytes, src: str, now: float) -> SubmitResult:
        """Return the answer to the SMS-SUBMIT ``tpdu`` sent by the mobile ``src`` (MO path).

        TP-VP (relative, §9.2.3.12.1) sets the validity; DecodeError for a malformed TPDU.
        """
        sub: SmsSubmit = decode_tpdu(tpdu, mt=False)  # type: ignore[assignment]
        sm = ShortMessage(src, str(sub.da), sub.user_data, sub.pid, sub.dcs, sub.ies,
                          sub.status_report_request, sub.mr,
                          None if sub.vp is None else relative_validity(sub.vp))
        return self.submit(sm, now, origin="ms")

    def report(self, msg_id: int, attempt: int, result: AttemptResult, now: float) -> None:
        """Take the result of attempt ``attempt`` of ``msg_id``; a stale result is ignored."""
        self._now = now
        stored = self._stored.get(msg_id)
        if stored is None or not stored.in_flight or stored.record.attempts != attempt:
            self.counts["ignored_results"] += 1
            return
        self._attempt_over(stored, result, now)

    def alert(self, dst: str, now: float) -> None:
        """Alert-SC (§3.2.7): ``dst`` is reachable; a retry it waits for is made due now."""
        self._now = now
        dest = self._dests.get(dst)
        if dest is not None and not dest.busy and dest.head() is not None:
            self._schedule(dest, now, now)

    # -- time ---------------------------------------------------------------------------------
    def poll(self, now: float) -> list[Deliver | StatusReport]:
        """Return the actions due at ``now``: timeouts, expiries and retries are processed first."""
        self._now = now
        while self._timeouts and self._timeouts[0][0] <= now:
            at, _, stored, attempt = heapq.heappop(self._timeouts)
            if stored.in_flight and stored.record.attempts == attempt:
                self._attempt_over(stored, AttemptResult.timeout(), at)
        while self._expiries and self._expiries[0][0] <= now:
            at, _, stored = heapq.heappop(self._expiries)
            if not stored.done and not stored.in_flight:
                self._finish(stored, EXPIRED, at, stored.record.last_cause, sr.ST_VALIDITY_EXPIRED)
        while self._retries and self._retries[0][0] <= now:
            _, _, dest, token = heapq.heappop(self._retries)
            if token == dest.token:
                self._ready.append((dest, token))
        self._start_attempts(now)
        out, self._outbox = self._outbox, []
        return out

    def next_deadline(self) -> float | None:
        """Return when ``poll`` must next be called (None: nothing pending)."""
        if self._outbox:
            return self._now
        self._drop_stale()
        times = [heap[0][0] for heap in (self._timeouts, self._expiries, self._retries) if heap]
        if self._ready:
            times.append(self._delivery_bucket.due(self._delivery_bucket.last))
        return min(times) if times else None

    # -- records ------------------------------------------------------------------------------
    def drain_records(self) -> list[SmsRecord]:
        """Return the records finished since the last call (refused ones included), oldest first."""
        out, self._finished = self._finished, []
        return out

    def pending_records(self) -> Iterator[SmsRecord]:
        """Yield the records of the messages still stored (outcome None)."""
        return (stored.record for stored in self._stored.values())

    @property
    def stored(self) -> int:
        """Return how many messages are stored."""
        return len(self._stored)

    # -- internals ----------------------------------------------------------------------------
    def _refuse(self, record: SmsRecord, reason: str, rp_cause: int, wait: float) -> SubmitResult:
        self.counts[reason] += 1
        record.outcome, record.final_time, record.last_cause = REFUSED, record.submit_time, reason
        self._finished.append(record)
        return SubmitResult(False, record.msg_id, reason, rp_cause, wait)

    def _schedule(self, dest: _Dest, at: float, now: float) -> None:
        dest.token += 1
        if at <= now:
            self._ready.append((dest, dest.token))
        else:
            heapq.heappush(self._retries, (at, next(self._seq), dest, dest.token))

    def _drop_stale(self) -> None:
        ready = self._ready
        while ready and (ready[0][1] != ready[0][0].token or ready[0][0].busy):
            ready.popleft()
        for heap, alive in ((self._timeouts, lambda e: e[2].in_flight and e[2].record.attempts == e[3]),
                            (self._expiries, lambda e: not e[2].done),
                            (self._retries, lambda e: e[3] == e[2].token)):
            while heap and not alive(heap[0]):
                heapq.heappop(heap)

    def _start_attempts(self, now: float) -> None:
        while True:
            self._drop_stale()
            if not self._ready or not self._delivery_bucket.take(now):
                return
            dest, _ = self._ready.popleft()
            stored = dest.head()
            if stored is None:
                continue
            dest.token += 1
            dest.busy = stored.in_flight = True
            record = stored.record
            record.attempts += 1
            if record.first_attempt is None:
                record.first_attempt = now
            self.counts["attempts"] += 1
            heapq.heappush(self._timeouts, (now + self.config.attempt_timeout, next(self._seq),
                                            stored, record.attempts))
            self._outbox.append(Deliver(record.msg_id, record.attempts, dest.address,
                                        self._deliver_tpdu(stored, now, len(dest.queue) > 1),
                                        stored.sm))

    def _deliver_tpdu(self, stored: _Stored, now: float, more: bool) -> bytes:
        sm = stored.sm
        return SmsDeliver(Address.parse(sm.src), sm.pid, sm.dcs,
                          self._timestamp(stored.record.submit_time), sm.user_data, sm.ies,
                          more_messages=more, status_report=sm.status_report).encode()

    def _timestamp(self, t: float) -> bytes:
        return sr.encode_timestamp(self.epoch + timedelta(seconds=int(t)))

    def _attempt_over(self, stored: _Stored, result: AttemptResult, now: float) -> None:
        stored.in_flight = False
        dest = self._dests[stored.sm.dst]
        dest.busy = False
        record = stored.record
        cause = result.cause_text()
        if result.kind == ACK:
            record.ack_data = result.user_data
            self._finish(stored, DELIVERED, now, "", sr.ST_DELIVERED, result.user_data)
            return
        record.last_cause = cause
        if not is_temporary(result, stored.sm.pid):
            self._finish(stored, FAILED, now, cause, permanent_status(result))
            return
        stored.failures += 1
        limit = self.config.max_attempts
        if now >= stored.expires:
            self._finish(stored, EXPIRED, now, cause, sr.ST_VALIDITY_EXPIRED)
        elif limit is not None and record.attempts >= limit:
            self._finish(stored, FAILED, now, cause, gave_up_status(result))
        else:
            self._schedule(dest, now + self.config.backoff(stored.failures), now)

    def _compact_expiries(self) -> None:
        """Drop the expiry entries of messages already done. Without it a delivered message (and
        its user data) stays in the heap until its validity ends, or until every entry before it
        is gone: tens of MiB in a large campaign. The heap keeps its (time, sequence) order, so
        what ``poll`` does is unchanged; amortised O(1) per message (compacted only when more
        than half the heap is done)."""
        self._expiries = [entry for entry in self._expiries if not entry[2].done]
        heapq.heapify(self._expiries)
        self._done_expiries = 0

    def _finish(self, stored: _Stored, outcome: str, now: float, cause: str, st: int,
                ack_data: bytes = b"") -> None:
        sm = stored.sm
        dest = self._dests[sm.dst]
        was_head = dest.head() is stored
        stored.done = True
        self._done_expiries += 1
        if self._done_expiries > 1024 and 2 * self._done_expiries > len(self._expiries):
            self._compact_expiries()
        record = stored.record
        record.outcome, record.final_time, record.last_cause = outcome, now, cause
        self.counts[outcome] += 1
        del self._stored[record.msg_id]
        self._finished.append(record)
        if sm.status_report:
            self.counts["status_reports"] += 1
            self._outbox.append(StatusReport(record.msg_id, sm.src, record.origin,
                                             self._report_tpdu(stored, now, st, ack_data), st))
        if dest.busy or not was_head:
            return
        if dest.head() is None:
            dest.token += 1  # its pending entries die with it
            del self._dests[sm.dst]
        else:
            self._schedule(dest, now, now)

    def _report_tpdu(self, stored: _Stored, now: float, st: int, ack_data: bytes) -> bytes:
        sm = stored.sm
        download = ack_data and sm.pid in _DATA_DOWNLOAD_PIDS
        return sr.SmsStatusReport(
            sm.mr, Address.parse(sm.dst), self._timestamp(stored.record.submit_time),
            self._timestamp(now), st, pid=sm.pid if download else None,
            dcs=sm.dcs if download else None, user_data=ack_data if download else None).encode()


def is_temporary(result: AttemptResult, pid: int) -> bool:
    """Return True if the SC should retry after ``result`` for a message with TP-PID ``pid``."""
    if result.kind in (ABSENT, TIMEOUT):
        return True
    if result.kind != RP_ERROR:
        return False
    if result.fcs is not None:
        return result.fcs in _TEMPORARY_FCS
    if result.rp_cause == RP_MEMORY_CAPACITY_EXCEEDED:
        return True
    return result.rp_cause == RP_PROTOCOL_ERROR and pid in _DATA_DOWNLOAD_PIDS


def permanent_status(result: AttemptResult) -> int:
    """Return the TP-ST (0x40 range) for a permanent failure ``result``."""
    if result.kind == UNKNOWN:
        return sr.ST_NOT_OBTAINABLE
    fcs = result.fcs
    if fcs is None:
        return sr.ST_REMOTE_PROCEDURE_ERROR
    if 0x80 <= fcs <= 0x9F:                       # TP-PID / TP-DCS errors
        return sr.ST_INCOMPATIBLE_DESTINATION
    if 0xC0 <= fcs <= 0xCF or 0xE0 <= fcs <= 0xFE:  # SC-side / application refusals
        return sr.ST_CONNECTION_REJECTED
    return sr.ST_REMOTE_PROCEDURE_ERROR


def gave_up_status(result: AttemptResult) -> int:
    """Return the TP-ST (0x60 range) for giving up after the temporary failure ``result``."""
    if result.kind in (ABSENT, TIMEOUT):
        return sr.ST_GAVE_UP_NO_RESPONSE
    if result.fcs in (FCS_DATA_DOWNLOAD_ERROR, FCS_ERROR_IN_MS):
        return sr.ST_GAVE_UP_ERROR_IN_SME
    return sr.ST_GAVE_UP_SME_BUSY


def relative_validity(vp: int) -> float:
    """Return the seconds of the relative TP-VP octet ``vp`` (§9.2.3.12.1)."""
    if not 0 <= vp <= 0xFF:
        raise ProtocolError(f"TP-VP {vp} is not an octet")
    if vp <= 143:
        return (vp + 1) * 300.0
    if vp <= 167:
        return 43200.0 + (vp - 143) * 1800.0
    if vp <= 196:
        return (vp - 166) * 86400.0
    return (vp - 192) * 7 * 86400.0
