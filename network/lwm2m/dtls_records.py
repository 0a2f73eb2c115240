"""DTLS 1.2 framing read on the wire by dmsim: records (RFC 6347 §4.1), handshake fragments and
their reassembly (§4.2.2, §4.2.3), the ClientHello (§4.2.1) and datagram packing.

python-mbedtls hands its DTLS output to a byte ring buffer, so the datagram boundaries Mbed TLS
chose are lost: :func:`pack_datagrams` cuts the records again into datagrams of at most ``mtu``
bytes (a record is never split; Mbed TLS, given the same MTU, keeps each record below it).
The reader side lets the endpoint look at the cleartext (epoch 0) handshake messages before Mbed
TLS does, for the checks Mbed TLS cannot make (PSK entropy, RPK pinning, curve size).

Everything here is hostile input: a bad record header raises DecodeError with the byte offset,
a reassembly holds at most ``max_pending`` messages of at most ``max_message`` bytes, and every
message_seq completes once (a retransmitted copy is not reported again).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from dmsim.base.errors import DecodeError

CT_CHANGE_CIPHER_SPEC, CT_ALERT, CT_HANDSHAKE, CT_APPLICATION_DATA = 20, 21, 22, 23
DTLS_1_0, DTLS_1_2 = 0xFEFF, 0xFEFD
RECORD_HEADER, HANDSHAKE_HEADER = 13, 12
MAX_RECORD = 2 ** 14 + 2048  # RFC 6347 §4.1 / RFC 5246 §6.2.3 ciphertext bound
HS_CLIENT_HELLO, HS_SERVER_HELLO, HS_HELLO_VERIFY_REQUEST = 1, 2, 3
HS_CERTIFICATE, HS_SERVER_KEY_EXCHANGE, HS_CLIENT_KEY_EXCHANGE, HS_FINISHED = 11, 12, 16, 20
MAX_SEQ = 2 ** 48 - 1


@dataclass(frozen=True)
class Record:
    """One DTLS record: header fields, the fragment, its bytes on the wire and offset in the datagram."""

    content_type: int
    version: int
    epoch: int
    seq: int
    fragment: bytes
    raw: bytes
    offset: int = 0


def split_records(datagram: bytes) -> list[Record]:
    """Return the records of ``datagram``; DecodeError (with the offset) on a bad or cut header."""
    data, at, out = bytes(datagram), 0, []
    while at < len(data):
        if len(data) - at < RECORD_HEADER:
            raise DecodeError("DTLS record", at, "truncated header", f"{RECORD_HEADER} bytes")
        ctype = data[at]
        if not CT_CHANGE_CIPHER_SPEC <= ctype <= CT_APPLICATION_DATA:
            raise DecodeError("DTLS record", at, f"content type {ctype}", "20..23")
        version = int.from_bytes(data[at + 1:at + 3], "big")
        if data[at + 1] != 0xFE:
            raise DecodeError("DTLS record", at + 1, f"version {version:#06x}", "DTLS 0xFEFF/0xFEFD")
        length = int.from_bytes(data[at + 11:at + 13], "big")
        if length > MAX_RECORD:
            raise DecodeError("DTLS record", at + 11, f"length {length}", f"<= {MAX_RECORD}")
        end = at + RECORD_HEADER + length
        if end > len(data):
            raise DecodeError("DTLS record", at + 11, f"length {length} beyond the datagram",
                              f"<= {len(data) - at - RECORD_HEADER}")
        out.append(Record(ctype, version, int.from_bytes(data[at + 3:at + 5], "big"),
                          int.from_bytes(data[at + 5:at + 11], "big"),
                          data[at + RECORD_HEADER:end], data[at:end], at))
        at = end
    return out


def encode_record(content_type: int, epoch: int, seq: int, fragment: bytes,
                  version: int = DTLS_1_2) -> bytes:
    """Return a DTLS record (RFC 6347 §4.1)."""
    return (bytes([content_type]) + version.to_bytes(2, "big") + epoch.to_bytes(2, "big")
            + seq.to_bytes(6, "big") + len(fragment).to_bytes(2, "big") + bytes(fragment))


def alert_record(description: int, seq: int) -> bytes:
    """Return a cleartext (epoch 0) fatal alert record (RFC 5246 §7.2)."""
    return encode_record(CT_ALERT, 0, min(seq, MAX_SEQ), bytes([2, description]))


def pack_datagrams(records: Iterable[bytes], mtu: int) -> list[bytes]:
    """Return ``records`` grouped in order into datagrams of at most ``mtu`` bytes each."""
    out: list[bytes] = []
    current = b""
    for record in records:
        if current and len(current) + len(record) > mtu:
            out.append(current)
            current = b""
        current += record
    if current:
        out.append(current)
    return out


@dataclass(frozen=True)
class HandshakeFragment:
    """One handshake fragment (RFC 6347 §4.2.2): type, total length, message_seq, offset, body."""

    msg_type: int
    length: int
    message_seq: int
    fragment_offset: int
    body: bytes


def split_handshake(fragment: bytes) -> list[HandshakeFragment]:
    """Return the handshake fragments of a cleartext handshake record; DecodeError when cut."""
    data, at, out = bytes(fragment), 0, []
    while at < len(data):
        if len(data) - at < HANDSHAKE_HEADER:
            raise DecodeError("DTLS handshake", at, "truncated header", f"{HANDSHAKE_HEADER} bytes")
        length = int.from_bytes(data[at + 1:at + 4], "big")
        offset = int.from_bytes(data[at + 6:at + 9], "big")
        frag_len = int.from_bytes(data[at + 9:at + 12], "big")
        end = at + HANDSHAKE_HEADER + frag_len
        if end > len(data) or offset + frag_len > length:
            raise DecodeError("DTLS handshake", at + 9, f"fragment {offset}+{frag_len} of {length}",
                              "a fragment inside the message and the record")
        out.append(HandshakeFragment(data[at], length, int.from_bytes(data[at + 4:at + 6], "big"),
                                     offset, data[at + HANDSHAKE_HEADER:end]))
        at = end
    return out


@dataclass
class _Partial:
    msg_type: int
    body: bytearray
    covered: list[tuple[int, int]] = field(default_factory=list)

    def add(self, start: int, data: bytes) -> bool:
        self.body[start:start + len(data)] = data
        spans = sorted(self.covered + [(start, start + len(data))])
        merged = [spans[0]]
        for lo, hi in spans[1:]:
            if lo <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
            else:
                merged.append((lo, hi))
        self.covered = merged
        return merged == [(0, len(self.body))]


class Reassembler:
    """Reassembles one direction's cleartext handshake messages; each message_seq completes once."""

    def __init__(self, max_message: int = 1 << 16, max_pending: int = 8, max_done: int = 64):
        self.max_message, self.max_pending, self.max_done = max_message, max_pending, max_done
        self._partial: dict[int, _Partial] = {}
        self._done: set[int] = set()

    def add(self, fragment: HandshakeFragment) -> list[tuple[int, int, bytes]]:
        """Return [(msg_type, message_seq, body)] completed by ``fragment`` (0 or 1 message)."""
        seq = fragment.message_seq
        if seq in self._done or fragment.length > self.max_message:
            return []
        part = self._partial.get(seq)
        if part is None:
            if len(self._partial) >= self.max_pending:
                return []
            part = self._partial[seq] = _Partial(fragment.msg_type, bytearray(fragment.length))
        elif part.msg_type != fragment.msg_type or len(part.body) != fragment.length:
            return []  # inconsistent with the first fragment seen: not ours to judge, Mbed TLS drops it
        if not part.add(fragment.fragment_offset, fragment.body) and fragment.length:
            return []
        del self._partial[seq]
        if len(self._done) < self.max_done:
            self._done.add(seq)
        return [(part.msg_type, seq, bytes(part.body))]


@dataclass(frozen=True)
class ClientHello:
    """The fields of a DTLS ClientHello (RFC 6347 §4.2.1, RFC 5246 §7.4.1.2) dmsim looks at."""

    record_seq: int
    message_seq: int
    version: int
    random: bytes
    cookie: bytes
    cipher_suites: tuple[int, ...]


def _take(body: bytes, at: int, size: int, what: str) -> bytes:
    if at + size > len(body):
        raise DecodeError("ClientHello", at, f"{what} truncated", f"{size} more bytes")
    return body[at:at + size]


def parse_client_hello(body: bytes, record_seq: int = 0, message_seq: int = 0) -> ClientHello:
    """Return the ClientHello fields of a handshake body; DecodeError when it is cut short."""
    version = int.from_bytes(_take(body, 0, 2, "version"), "big")
    random = _take(body, 2, 32, "random")
    at = 34
    at += 1 + _take(body, at, 1, "session_id length")[0]
    cookie_len = _take(body, at, 1, "cookie length")[0]
    cookie = _take(body, at + 1, cookie_len, "cookie")
    at += 1 + cookie_len
    suites_len = int.from_bytes(_take(body, at, 2, "cipher_suites length"), "big")
    raw = _take(body, at + 2, suites_len, "cipher_suites")
    suites = tuple(int.from_bytes(raw[i:i + 2], "big") for i in range(0, suites_len - 1, 2))
    return ClientHello(record_seq, message_seq, version, random, cookie, suites)


def client_hello_of(datagram: bytes) -> ClientHello | None:
    """Return the ClientHello when ``datagram`` holds one complete epoch-0 ClientHello (and only
    handshake records), else None; DecodeError for a malformed record or ClientHello."""
    records = split_records(datagram)
    if len(records) != 1 or records[0].content_type != CT_HANDSHAKE or records[0].epoch != 0:
        return None
    frags = split_handshake(records[0].fragment)
    if len(frags) != 1:
        return None
    frag = frags[0]
    if frag.msg_type != HS_CLIENT_HELLO or frag.fragment_offset or len(frag.body) != frag.length:
        return None
    return parse_client_hello(frag.body, records[0].seq, frag.message_seq)


__all__ = ["Record", "split_records", "encode_record", "alert_record", "pack_datagrams",
           "HandshakeFragment", "split_handshake", "Reassembler", "ClientHello",
           "parse_client_hello", "client_hello_of"]
