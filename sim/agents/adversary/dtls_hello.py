"""What a man in the middle of a DTLS association rewrites and reads in clear (RFC 6347 §4.2.1,
RFC 5246 §7.4.1.2, §7.4.1.4, §7.2): a ClientHello's cipher suite list, the extensions of a hello,
and the fatal alerts each side sends while no keys are in use yet.

A ClientHello rewritten on the wire is one the server answers honestly: the Finished messages
(RFC 5246 §7.4.9) cover the hello each side saw, and with the extended master secret (RFC 7627)
the keys already differ, so a rewrite that the client does not refuse outright fails at the
Finished. Choice (ours): only a whole ClientHello in one datagram is rewritten (a fragmented one,
which dmsim's clients never send, passes untouched); the record and handshake lengths are fixed,
the record sequence number and the cookie are kept.
"""
from __future__ import annotations

from dmsim.base.errors import DecodeError
from dmsim.network.lwm2m import dtls_records as wire


def rewrite_suites(datagram: bytes, suites: tuple[int, ...]) -> bytes | None:
    """Return ``datagram`` with its ClientHello's cipher_suites replaced by ``suites`` (and the
    lengths fixed), or None when the datagram is not one whole ClientHello."""
    try:
        hello = wire.client_hello_of(datagram)
    except DecodeError:
        return None
    if hello is None:
        return None
    record = wire.split_records(datagram)[0]
    body = record.fragment[wire.HANDSHAKE_HEADER:]
    at = 2 + 32
    at += 1 + body[at]          # session_id
    at += 1 + body[at]          # cookie
    old = int.from_bytes(body[at:at + 2], "big")
    listed = b"".join(s.to_bytes(2, "big") for s in suites)
    body = body[:at] + len(listed).to_bytes(2, "big") + listed + body[at + 2 + old:]
    size = len(body).to_bytes(3, "big")
    head = record.fragment[:wire.HANDSHAKE_HEADER]
    message = head[:1] + size + head[4:6] + bytes(3) + size + body
    return wire.encode_record(record.content_type, record.epoch, record.seq, message, record.version)


def extensions_at(body: bytes, at: int, what: str) -> dict[int, bytes]:
    """Return the extensions (type -> data) of the block opening at ``at`` of a hello ``body``
    (RFC 5246 §7.4.1.4: absent when the body ends there); DecodeError when it is cut or overruns."""
    if len(body) < at:
        raise DecodeError(what, len(body), "truncated before the extensions")
    if len(body) == at:
        return {}
    if len(body) < at + 2:
        raise DecodeError(what, at, "truncated extensions length", "2 bytes")
    end = at + 2 + int.from_bytes(body[at:at + 2], "big")
    found: dict[int, bytes] = {}
    at += 2
    while at + 4 <= min(end, len(body)):
        size = int.from_bytes(body[at + 2:at + 4], "big")
        found.setdefault(int.from_bytes(body[at:at + 2], "big"), body[at + 4:at + 4 + size])
        at += 4 + size
    if at != end or end > len(body):
        raise DecodeError(what, at, "extensions overrun their length")
    return found


def client_hello_extensions(body: bytes) -> dict[int, bytes]:
    """Return the extensions of a ClientHello body (RFC 5246 §7.4.1.2, RFC 6347 §4.2.1: with the
    cookie); DecodeError when it is cut."""
    at = 34
    for what, size in (("session_id", 1), ("cookie", 1), ("cipher_suites", 2), ("compression_methods", 1)):
        if at + size > len(body):
            raise DecodeError("ClientHello", at, f"{what} length truncated", f"{size} bytes")
        at += size + int.from_bytes(body[at:at + size], "big")
    return extensions_at(body, at, "ClientHello")


def fatal_alerts(datagram: bytes) -> list[int]:
    """Return the descriptions of the cleartext (epoch 0) fatal alerts in ``datagram``."""
    try:
        records = wire.split_records(datagram)
    except DecodeError:
        return []
    return [r.fragment[1] for r in records
            if r.content_type == wire.CT_ALERT and r.epoch == 0 and len(r.fragment) == 2 and r.fragment[0] == 2]


__all__ = ["rewrite_suites", "extensions_at", "client_hello_extensions", "fatal_alerts"]
