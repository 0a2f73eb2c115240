"""Splitting a port-addressed payload into SMS user data, and reassembling it.

3GPP TS 23.040 §9.2.3.24.1 (concatenation, 8-bit reference), §9.2.3.24.8 (16-bit
reference, accepted on receive) and §9.2.3.24.4 (16-bit application ports), as WAP WDP
over SMS uses them. Parts are 8-bit data, so sizes are counted in octets.

The Reassembler is sans-IO: the caller passes ``now`` and calls ``expire`` itself.
Choices where the spec leaves room:
- A message is identified by (originator, reference); its expiry timer runs from its first
  part, so a trickle of parts cannot keep it alive forever.
- The first part seen wins: a duplicate sequence number is ignored (counted), and a part
  whose total or ports differ from the pending message's is rejected by *raising*
  DecodeError("concat", ...) after counting it; the pending message is kept.
- When ``max_pending`` messages are pending, the oldest is dropped to make room (counted).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

from dmsim.network.sms.udh import Concat, InformationElement, Ports, decode_udh, encode_udh, find_concat, find_ports
from dmsim.base.errors import DecodeError, ProtocolError

_MAX_PARTS = 255


def split_parts(payload: bytes, *, dest_port: int, src_port: int, ref: int,
                max_ud: int = 140) -> list[tuple[list[InformationElement], bytes]]:
    """Return (UDH information elements, chunk) for each part carrying ``payload``.

    One part with only the port IE when it fits in ``max_ud`` octets, else parts that each
    carry the port IE and an 8-bit concatenation IE with reference ``ref``.
    ProtocolError if ``max_ud`` leaves no room or more than 255 parts would be needed.
    """
    ports, single_udh, concat_udh = _port_headers(dest_port, src_port)
    if single_udh + len(payload) <= max_ud:
        return [([ports], payload)]
    room = max_ud - concat_udh
    if room <= 0:
        raise ProtocolError(f"max_ud {max_ud} leaves no room for data after the UDH")
    chunks = [payload[i:i + room] for i in range(0, len(payload), room)]
    if len(chunks) > _MAX_PARTS:
        raise ProtocolError(f"payload of {len(payload)} octets needs {len(chunks)} parts, "
                            f"at most {_MAX_PARTS}")
    return [([ports, _concat_ie(ref, len(chunks), seq)], chunk)
            for seq, chunk in enumerate(chunks, start=1)]


# For speed: the IEs are immutable values, so one instance serves every part that carries them.
@functools.lru_cache(maxsize=64)
def _port_headers(dest_port: int, src_port: int) -> tuple[InformationElement, int, int]:
    """Return the port IE and the UDH length with it alone and with a concatenation IE too."""
    ports = Ports(dest_port, src_port).to_ie()
    return (ports, len(encode_udh([ports])),
            len(encode_udh([ports, Concat(0, 1, 1).to_ie()])))


@functools.lru_cache(maxsize=16384)
def _concat_ie(ref: int, total: int, seq: int) -> InformationElement:
    """Return the 8-bit reference concatenation IE of part ``seq`` of ``total``."""
    return Concat(ref, total, seq).to_ie()


def split(payload: bytes, *, dest_port: int, src_port: int, ref: int,
          max_ud: int = 140) -> list[bytes]:
    """Return the TP-UD (UDH + chunk) of each part carrying ``payload`` (see ``split_parts``)."""
    return [encode_udh(ies) + chunk for ies, chunk in
            split_parts(payload, dest_port=dest_port, src_port=src_port, ref=ref, max_ud=max_ud)]


@dataclass(frozen=True)
class Completed:
    """A reassembled message: its destination port (None without a port IE) and payload."""

    port: int | None
    payload: bytes
    originator: str = ""
    src_port: int | None = None


@dataclass
class ReassemblyStats:
    """Counters a run reports: completed messages and the parts or messages dropped."""

    completed: int = 0
    duplicates: int = 0
    inconsistent: int = 0
    evicted: int = 0
    expired: int = 0


@dataclass
class _Pending:
    first_seen: float
    total: int
    ports: Ports | None
    parts: dict[int, bytes] = field(default_factory=dict)


class Reassembler:
    """Collects concatenated parts per (originator, reference) until a message is complete."""

    def __init__(self, *, max_pending: int = 64) -> None:
        if max_pending < 1:
            raise ProtocolError(f"max_pending {max_pending} must be at least 1")
        self.max_pending = max_pending
        self.stats = ReassemblyStats()
        self._pending: dict[tuple[str, int], _Pending] = {}   # insertion order = age

    @property
    def pending(self) -> int:
        """Return how many incomplete messages are held."""
        return len(self._pending)

    def feed(self, originator: str, user_data: bytes, now: float) -> Completed | None:
        """Return the Completed message this part finishes, or None while parts are missing.

        ``user_data`` is a TP-UD that starts with a UDH (TP-UDHI set). Raises DecodeError for
        a malformed UDH ("udh") or a part inconsistent with its pending message ("concat").
        """
        ies, body = decode_udh(user_data)
        return self.feed_parsed(originator, ies, body, now)

    def feed_parsed(self, originator: str, ies: list[InformationElement] | tuple[InformationElement, ...],
                    body: bytes, now: float) -> Completed | None:
        """Like ``feed`` for a TP-UD whose header the TPDU decoder has already parsed."""
        concat, ports = find_concat(ies), find_ports(ies)
        if concat is None or concat.total == 1:
            return self._complete(originator, ports, body)
        key = (originator, concat.ref)
        entry = self._pending.get(key)
        if entry is None:
            if len(self._pending) >= self.max_pending:
                del self._pending[next(iter(self._pending))]
                self.stats.evicted += 1
            entry = self._pending[key] = _Pending(now, concat.total, ports)
        elif entry.total != concat.total or entry.ports != ports:
            self.stats.inconsistent += 1
            raise DecodeError("concat", 0, f"part {concat.seq} of ref {concat.ref} from "
                              f"{originator!r} says {concat.total} parts, ports {ports}",
                              f"{entry.total} parts, ports {entry.ports}")
        if concat.seq in entry.parts:
            self.stats.duplicates += 1
            return None
        entry.parts[concat.seq] = body
        if len(entry.parts) < entry.total:
            return None
        del self._pending[key]
        payload = b"".join(entry.parts[seq] for seq in range(1, entry.total + 1))
        return self._complete(originator, entry.ports, payload)

    def expire(self, now: float, timeout: float) -> list[tuple[str, int]]:
        """Drop messages whose first part is ``timeout`` or more old; return their keys."""
        dropped = [key for key, entry in self._pending.items()
                   if now - entry.first_seen >= timeout]
        for key in dropped:
            del self._pending[key]
        self.stats.expired += len(dropped)
        return dropped

    def _complete(self, originator: str, ports: Ports | None, payload: bytes) -> Completed:
        self.stats.completed += 1
        return Completed(ports.dest if ports else None, payload, originator,
                         ports.src if ports else None)
