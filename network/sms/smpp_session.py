"""The SMSC side of one SMPP 3.4 connection, sans-IO (SMPP 3.4 §2.2 session states, §2.3 and
§2.4 the operations allowed in each, §3.2 framing).

``SmppSession.receive_data(bytes)`` frames and decodes what the ESME sent and returns events;
the session answers what it owns by itself (bind_resp, enquire_link_resp, unbind_resp, refusals,
generic_nack), and those bytes wait in ``data_to_send()``. The caller answers each ``SubmitSm``
event with ``send(SubmitSmResp(sequence=..., message_id=...))`` and pushes deliver_sm (receipts,
MO messages) with ``send(DeliverSm(...))``; ``send`` returns the bytes to write.

Events are the decoded PDUs (``Bind``, ``SubmitSm``, ``EnquireLink``, ``Unbind``, and the
_resp/generic_nack answering what the SMSC sent) plus ``Malformed`` for a PDU that was refused
before it could be handled. After a ``Bind`` event ``state`` tells whether it was accepted.

States: OPEN -> BOUND_TX / BOUND_RX / BOUND_TRX -> UNBOUND (unbind done; the driver closes the
connection) and CLOSED (the connection is unusable or gone). Choices where the spec is silent:
- A command_length under 16 or over ``max_pdu_len`` cannot be resynchronised: generic_nack
  ESME_RINVCMDLEN, then CLOSED.
- An unknown command_id, or one an ESME never sends (a bind_resp, submit_sm_resp, deliver_sm),
  gets generic_nack ESME_RINVCMDID; a body that does not fit its command_length gets
  generic_nack ESME_RINVCMDLEN. The framing is intact, so the connection stays open.
- enquire_link is answered in every state but CLOSED (SMPP 3.4 lists it for bound states;
  answering it when OPEN is harmless and what SMPP 5.0 allows).
- Without ``accounts`` (lab mode) any system_id and password bind.
- With accounts, an unknown system_id and a wrong password both get ESME_RBINDFAIL (§5.1.3
  "Bind Failed"), not ESME_RINVSYSID / ESME_RINVPASWD, which would tell an attacker which
  system_ids exist; an unknown system_id is compared against a dummy password so that the time
  taken does not tell either. The reason stays in ``last_bind_failure`` for the operator.
- A refused bind leaves the session OPEN, so that the ESME may bind again, up to
  ``max_bind_failures`` (default 3) refused binds; the last one CLOSEs the session once its
  bind_resp is queued (SMPP leaves this to the SMSC).
- With a ``BindThrottle`` (below) a bind from an address or for a system_id that failed too
  often recently is refused with the same ESME_RBINDFAIL before the password is looked at, so
  guesses made during the backoff learn nothing. The caller passes ``now`` (seconds, any
  monotonic clock) to ``receive_data``; the throttle needs it, nothing else does.
"""
from __future__ import annotations

import enum
import hmac
import struct
from dataclasses import dataclass, replace
from typing import Mapping

from dmsim.network.sms import smpp
from dmsim.base.errors import DecodeError, ProtocolError

DEFAULT_MAX_PDU_LEN = 64 * 1024
DEFAULT_MAX_BIND_FAILURES = 3
_DUMMY_PASSWORD = b"\0" * 9  # §4.1: a password is at most 9 octets with its NUL


class BindThrottle:
    """Failed binds per key (an address, a system_id) and the backoff they earn; sans-IO.

    A key may fail ``free`` times; each failure after that blocks it for ``first`` seconds,
    doubled per further failure up to ``cap`` seconds. A successful bind forgets the key, and a
    key with no failure for ``forget`` seconds is forgotten too. At most ``max_keys`` keys are
    kept (the oldest go first), so an attacker inventing system_ids cannot grow the table.
    Not thread-safe: a threaded caller wraps it in a lock.
    """

    def __init__(self, *, free: int = 3, first: float = 1.0, cap: float = 60.0, forget: float = 600.0,
                 max_keys: int = 4096):
        self.free, self.first, self.cap, self.forget, self.max_keys = free, first, cap, forget, max_keys
        self._keys: dict[object, tuple[int, float, float]] = {}   # key -> (failures, last failure, blocked until)

    def blocked(self, keys: tuple, now: float) -> bool:
        """Return True when any of ``keys`` is in its backoff at ``now``."""
        for key in keys:
            entry = self._keys.get(key)
            if entry is None:
                continue
            if now - entry[1] > self.forget:
                del self._keys[key]
            elif now < entry[2]:
                return True
        return False

    def failed(self, keys: tuple, now: float) -> None:
        """Count a failed bind for each of ``keys``."""
        for key in keys:
            failures, _last, _until = self._keys.pop(key, (0, now, now))
            failures += 1
            extra = failures - self.free
            until = now + min(self.cap, self.first * 2 ** (extra - 1)) if extra > 0 else now
            self._keys[key] = (failures, now, until)   # re-inserted: dict order is age order
        while len(self._keys) > self.max_keys:
            del self._keys[next(iter(self._keys))]

    def succeeded(self, keys: tuple) -> None:
        """Forget ``keys`` after a successful bind."""
        for key in keys:
            self._keys.pop(key, None)

    def __len__(self) -> int:
        return len(self._keys)
MAX_SEQUENCE = 0x7FFFFFFF  # §5.1.4: 0x00000001..0x7FFFFFFF


class State(enum.Enum):
    """Session states of §2.2 seen from the SMSC."""

    OPEN = "open"
    BOUND_TX = "bound_tx"
    BOUND_RX = "bound_rx"
    BOUND_TRX = "bound_trx"
    UNBOUND = "unbound"
    CLOSED = "closed"


_BOUND = {"tx": State.BOUND_TX, "rx": State.BOUND_RX, "trx": State.BOUND_TRX}
_CAN_SUBMIT = (State.BOUND_TX, State.BOUND_TRX)
_CAN_RECEIVE = (State.BOUND_RX, State.BOUND_TRX)


@dataclass(frozen=True)
class Malformed:
    """A PDU refused before it was handled: ``offset`` into the stream's PDU, the ``status``
    sent back in generic_nack, and ``fatal`` when the connection is now CLOSED."""

    offset: int
    message: str
    status: int
    sequence: int = 0
    command_id: int | None = None
    fatal: bool = False


class SmppSession:
    """One ESME connection seen from the SMSC (see the module docstring)."""

    def __init__(self, accounts: Mapping[str, str] | None = None, *, system_id: str = "dmsim",
                 max_pdu_len: int = DEFAULT_MAX_PDU_LEN, max_bind_failures: int = DEFAULT_MAX_BIND_FAILURES,
                 throttle: BindThrottle | None = None, peer: str = ""):
        self.accounts = dict(accounts) if accounts is not None else None
        self.system_id = system_id
        self.max_pdu_len = max_pdu_len
        self.max_bind_failures = max_bind_failures
        self.throttle = throttle
        self.peer = peer                       # the throttle's per-address key
        self.bind_failures = 0
        self.last_bind_status: int | None = None   # the command_status of the last bind_resp
        self.last_bind_failure = ""            # why the last bind was refused (never the password)
        self._now = 0.0
        self.state = State.OPEN
        self.peer_system_id: str | None = None
        self._buffer = bytearray()
        self._outbox = bytearray()
        self._pending_submits: set[int] = set()
        self._awaiting: dict[int, int] = {}
        self._next_sequence = 1

    @property
    def can_submit(self) -> bool:
        """Return True when the ESME may submit (bound as transmitter or transceiver)."""
        return self.state in _CAN_SUBMIT

    @property
    def can_receive(self) -> bool:
        """Return True when the SMSC may send deliver_sm (bound as receiver or transceiver)."""
        return self.state in _CAN_RECEIVE

    @property
    def pending_submits(self) -> frozenset[int]:
        """Return the sequence numbers of submit_sm not answered yet."""
        return frozenset(self._pending_submits)

    # --- input ------------------------------------------------------------------------------

    def receive_data(self, data: bytes, now: float | None = None) -> list:
        """Return the events of the complete PDUs now buffered (nothing once CLOSED).

        ``now`` (seconds) is the time the throttle counts backoffs in; without it the last
        value given is used.
        """
        if self.state is State.CLOSED:
            return []
        if now is not None:
            self._now = now
        self._buffer += data
        events: list = []
        while len(self._buffer) >= 4 and self.state is not State.CLOSED:
            (length,) = struct.unpack_from(">I", self._buffer, 0)
            if not smpp.HEADER_LEN <= length <= self.max_pdu_len:
                events.append(self._fatal(length))
                break
            if len(self._buffer) < length:
                break
            raw = bytes(self._buffer[:length])
            del self._buffer[:length]
            events.extend(self._handle(raw))
        return events

    def _fatal(self, length: int) -> Malformed:
        sequence = struct.unpack_from(">I", self._buffer, 12)[0] if len(self._buffer) >= 16 else 0
        self._queue(smpp.GenericNack(sequence=sequence, status=smpp.ESME_RINVCMDLEN))
        self._buffer.clear()
        self.state = State.CLOSED
        return Malformed(0, f"command_length {length} outside 16..{self.max_pdu_len}",
                         smpp.ESME_RINVCMDLEN, sequence, fatal=True)

    def _refuse(self, header: smpp.Header, exc: DecodeError | None, status: int) -> Malformed:
        self._queue(smpp.GenericNack(sequence=header.sequence_number, status=status))
        message = exc.detail if exc else f"{smpp.command_name(header.command_id)} is not sent by an ESME"
        return Malformed(exc.offset if exc else 4, message, status, header.sequence_number, header.command_id)

    def _handle(self, raw: bytes) -> list:
        header = smpp.decode_header(raw)
        if header.command_id not in smpp.PDU_CLASSES:
            return [self._refuse(header, DecodeError("smpp", 4, f"unknown command_id 0x{header.command_id:08x}"),
                                 smpp.ESME_RINVCMDID)]
        try:
            pdu = smpp.decode_pdu(raw)
        except DecodeError as exc:
            return [self._refuse(header, exc, smpp.ESME_RINVCMDLEN)]
        handler = next((_HANDLERS[c] for c in type(pdu).__mro__ if c in _HANDLERS), None)
        if handler is None:
            return [self._refuse(header, None, smpp.ESME_RINVCMDID)]
        return handler(self, pdu)

    def _on_bind(self, pdu: smpp.Bind) -> list:
        status = self.last_bind_status = self._bind_status(pdu)
        resp_cls = smpp.RESPONSE_CLASSES[pdu.command_id]
        tlvs = (smpp.Tlv(smpp.TAG_SC_INTERFACE_VERSION, bytes([smpp.INTERFACE_VERSION_34])),) \
            if status == smpp.ESME_ROK and pdu.interface_version >= smpp.INTERFACE_VERSION_34 else ()
        self._queue(resp_cls(sequence=pdu.sequence, status=status, system_id=self.system_id, tlvs=tlvs))
        if status == smpp.ESME_ROK:
            self.state = _BOUND[pdu.mode]
            self.peer_system_id = pdu.system_id
        elif status == smpp.ESME_RBINDFAIL:
            self.bind_failures += 1
            if self.bind_failures >= self.max_bind_failures:
                self._buffer.clear()
                self.state = State.CLOSED
        return [pdu]

    def _bind_status(self, pdu: smpp.Bind) -> int:
        if self.state is not State.OPEN:
            self.last_bind_failure = f"bind in state {self.state.value}"
            return smpp.ESME_RALYBND if self.state in _BOUND.values() else smpp.ESME_RINVBNDSTS
        if self.accounts is None:
            return smpp.ESME_ROK
        keys = (("address", self.peer), ("system_id", pdu.system_id))
        if self.throttle is not None and self.throttle.blocked(keys, self._now):
            self.last_bind_failure = "throttled: too many failed binds from this address or for this system_id"
            return smpp.ESME_RBINDFAIL
        password = self.accounts.get(pdu.system_id)
        expected = password.encode("latin-1") if password is not None else _DUMMY_PASSWORD
        matches = hmac.compare_digest(expected, pdu.password.encode("latin-1"))
        if password is None or not matches:
            self.last_bind_failure = "unknown system_id" if password is None else "wrong password"
            if self.throttle is not None:
                self.throttle.failed(keys, self._now)
            return smpp.ESME_RBINDFAIL
        if self.throttle is not None:
            self.throttle.succeeded(keys)
        self.last_bind_failure = ""
        return smpp.ESME_ROK

    def _on_submit(self, pdu: smpp.SubmitSm) -> list:
        if not self.can_submit:
            self._queue(smpp.SubmitSmResp(sequence=pdu.sequence, status=smpp.ESME_RINVBNDSTS))
            return [Malformed(4, f"submit_sm in state {self.state.value}", smpp.ESME_RINVBNDSTS,
                              pdu.sequence, pdu.command_id)]
        self._pending_submits.add(pdu.sequence)
        return [pdu]

    def _on_enquire_link(self, pdu: smpp.EnquireLink) -> list:
        self._queue(smpp.EnquireLinkResp(sequence=pdu.sequence))
        return [pdu]

    def _on_unbind(self, pdu: smpp.Unbind) -> list:
        if self.state in _BOUND.values():
            self._queue(smpp.UnbindResp(sequence=pdu.sequence))
            self.state = State.UNBOUND
        else:
            self._queue(smpp.UnbindResp(sequence=pdu.sequence, status=smpp.ESME_RINVBNDSTS))
        return [pdu]

    def _on_response(self, pdu: smpp.Pdu) -> list:
        sent = self._awaiting.pop(pdu.sequence, None)
        if sent == smpp.UNBIND and isinstance(pdu, smpp.UnbindResp):
            self.state = State.UNBOUND
        return [pdu]

    # --- output -----------------------------------------------------------------------------

    def _queue(self, pdu: smpp.Pdu) -> None:
        self._outbox += smpp.encode_pdu(pdu)

    def data_to_send(self) -> bytes:
        """Return (and forget) the bytes the session wrote by itself since the last call."""
        out = bytes(self._outbox)
        self._outbox.clear()
        return out

    def _sequence(self) -> int:
        seq = self._next_sequence
        self._next_sequence = seq % MAX_SEQUENCE + 1
        return seq

    def send(self, pdu: smpp.Pdu) -> bytes:
        """Return the bytes of ``pdu``, sent by the SMSC; ProtocolError if the state forbids it.

        SubmitSmResp must answer a pending submit_sm; DeliverSm, EnquireLink and Unbind get the
        next sequence number when theirs is 0.
        """
        if self.state is State.CLOSED:
            raise ProtocolError(f"smpp: cannot send {pdu.name} on a closed session")
        if isinstance(pdu, smpp.SubmitSmResp):
            if pdu.sequence not in self._pending_submits:
                raise ProtocolError(f"smpp: no submit_sm {pdu.sequence} waits for an answer")
            self._pending_submits.discard(pdu.sequence)
            return smpp.encode_pdu(pdu)
        if isinstance(pdu, smpp.DeliverSm) and not self.can_receive:
            raise ProtocolError(f"smpp: deliver_sm needs a receiver or transceiver bind, state {self.state.value}")
        if not isinstance(pdu, (smpp.DeliverSm, smpp.EnquireLink, smpp.Unbind)):
            raise ProtocolError(f"smpp: the session sends {pdu.name} by itself")
        if isinstance(pdu, smpp.Unbind) and self.state not in _BOUND.values():
            raise ProtocolError(f"smpp: unbind in state {self.state.value}")
        if pdu.sequence == 0:
            pdu = replace(pdu, sequence=self._sequence())
        data = smpp.encode_pdu(pdu)
        self._awaiting[pdu.sequence] = pdu.command_id
        return data

    def close(self) -> None:
        """Mark the connection gone: nothing more is received or sent."""
        self.state = State.CLOSED
        self._buffer.clear()


_HANDLERS = {
    smpp.Bind: SmppSession._on_bind,
    smpp.SubmitSm: SmppSession._on_submit,
    smpp.EnquireLink: SmppSession._on_enquire_link,
    smpp.Unbind: SmppSession._on_unbind,
    smpp.DeliverSmResp: SmppSession._on_response,
    smpp.EnquireLinkResp: SmppSession._on_response,
    smpp.UnbindResp: SmppSession._on_response,
    smpp.GenericNack: SmppSession._on_response,
}
