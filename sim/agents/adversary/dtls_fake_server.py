"""A fake DTLS server for an ECDHE-PSK client: the active attack on a low-entropy PSK bootstrap
(seed 004 §7.1 method 2; RFC 5489 §5 and RFC 4279 §7.2 on dictionary attacks).

TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256 keeps a PIN from a passive observer: the premaster is
``uint16(N) || Z || uint16(len) || psk`` (RFC 5489 §2) and the ECDH secret Z never crosses the
wire. Nothing in the handshake authenticates the server before the client's Finished, though: the
ServerKeyExchange of ECDHE_PSK carries a PSK identity hint and the ECDH parameters, unsigned
(RFC 5489 §2), and the server proves the PSK only in its own Finished, after the client's. So
whoever answers the client's ClientHello with its own ECDH key knows Z, and the client's
Finished record, keyed by the PIN, is an offline oracle for it (``dtls_offline.GuessOracle``
with ``other_secret=Z``): one online exchange, then an offline search of the PIN space. Only a
PAKE, or a high-entropy PSK, closes this.

:class:`FakeEcdhePskServer` is one such server for one client association, sans-IO:
``receive(datagram) -> list[bytes]`` takes the client's datagrams and returns the ones to send
back. Its flight answers the first ClientHello (RFC 6347 §4.2.1: the cookie exchange is the
server's option; this server skips it):

- ServerHello (RFC 5246 §7.4.1.3, DTLS 1.2): the suite TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256,
  a random of its own, an empty session_id (not resumable), null compression, and the
  extensions the client offered that it accepts, echoed: extended_master_secret (RFC 7627 §5.1),
  encrypt_then_mac (RFC 7366 §2, a CBC suite), renegotiation_info with an empty
  renegotiated_connection (RFC 5746 §3.6, for the extension or the SCSV), ec_point_formats
  [uncompressed] (RFC 4492 §5.2); everything else (session_ticket...) is left out, as a server
  that does not support it does;
- ServerKeyExchange (RFC 5489 §2, RFC 4492 §5.4): ``psk_identity_hint<0..2^16-1>``, then
  named_curve (3), the curve, and its uncompressed ECDH public point ``<1..2^8-1>``;
- ServerHelloDone (RFC 5246 §7.4.5), empty.

Each message in its own epoch-0 record, message_seq from the ClientHello's (RFC 6347 §4.2.2: 0, or
1 after a HelloVerifyRequest someone else sent), the records packed into datagrams of at most
``mtu`` bytes like Mbed TLS's. The client answers ClientKeyExchange (``psk_identity`` and its
ECDH point, RFC 5489 §2), ChangeCipherSpec and its encrypted Finished; a
:class:`~dmsim.sim.agents.adversary.dtls_offline.HandshakeRecorder` fed both directions
assembles the :class:`~dmsim.sim.agents.adversary.dtls_offline.RecordedHandshake`, and
:meth:`FakeEcdhePskServer.oracle` gives the GuessOracle with the ECDH shared secret.

Choices (ours): the curve is secp256r1 (23, the curve of RFC 7252 §9.1.3.2, which dmsim's
clients offer), with uncompressed points (a client that takes neither, or offers no ECDHE-PSK suite,
gets no answer: :attr:`FakeEcdhePskServer.refusal` says why); the ECDH private key is drawn from
``randbytes`` (40 octets reduced mod n - 1, plus 1: reproducible in a seeded run); a ClientHello
of the same client random again (the client's retransmission, RFC 6347 §4.2.4) gets the flight
again with new record sequence numbers, at most :data:`MAX_ANSWERS` times; a ClientHello with
another random is another association and is ignored; the fake server never sends its Finished
(it cannot: it lacks the PIN until the search ends), so the client's handshake times out.
Everything from the client is hostile: what does not parse is ignored, an ECDH point off the
curve gives no oracle.
"""
from __future__ import annotations

from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from dmsim.base.errors import DecodeError
from dmsim.network.lwm2m import dtls_policy
from dmsim.network.lwm2m import dtls_records as wire
from dmsim.network.lwm2m.dtls import DEFAULT_MTU
from dmsim.sim.agents.adversary import dtls_hello
from dmsim.sim.agents.adversary.dtls_offline import (EXT_ENCRYPT_THEN_MAC, EXT_EXTENDED_MASTER_SECRET, GuessOracle,
                                                     HandshakeRecorder, RecordedHandshake, handshake_message)

ECDHE_PSK_SUITE = dtls_policy.ECDHE_PSK_AES_128_CBC_SHA256.code
EXT_SUPPORTED_GROUPS, EXT_EC_POINT_FORMATS, EXT_RENEGOTIATION_INFO = 0x000A, 0x000B, 0xFF01
SCSV = 0x00FF  # TLS_EMPTY_RENEGOTIATION_INFO_SCSV (RFC 5746 §3.3)
HS_SERVER_HELLO_DONE = 14
NAMED_CURVE = 3
SECP256R1 = 23  # NamedCurve (RFC 4492 §5.1.1)
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # FIPS 186-4 D.1.2.3 n
MAX_ANSWERS = 8  # flights sent to one association (the first and the re-sends)


def named_groups(data: bytes) -> tuple[int, ...]:
    """Return the curves of a supported_groups extension (RFC 4492 §5.1.1, ``NamedCurve<2..2^16-1>``)."""
    size = int.from_bytes(data[:2], "big") if len(data) >= 2 else 0
    body = data[2:2 + size]
    return tuple(int.from_bytes(body[i:i + 2], "big") for i in range(0, len(body) - 1, 2))


def curve_refusal(offered: dict[int, bytes]) -> str | None:
    """Return why this server cannot answer a client's hello extensions with an uncompressed
    secp256r1 point (RFC 4492 §5.1.1, §5.1.2; absent extensions allow it), or None."""
    groups = offered.get(EXT_SUPPORTED_GROUPS)
    if groups is not None and SECP256R1 not in named_groups(groups):
        return "the client does not offer secp256r1"
    formats = offered.get(EXT_EC_POINT_FORMATS)
    if formats is not None and 0 not in formats[1:1 + formats[0] if formats else 0]:
        return "the client does not take uncompressed points"
    return None


def answered_extensions(offered: dict[int, bytes], suites: tuple[int, ...],
                        decline: frozenset[int] = frozenset()) -> list[tuple[int, bytes]]:
    """Return the ServerHello extensions that answer the client's (module doc), less ``decline``."""
    out: list[tuple[int, bytes]] = []
    if EXT_RENEGOTIATION_INFO in offered or SCSV in suites:
        out.append((EXT_RENEGOTIATION_INFO, b"\x00"))
    for ext in (EXT_ENCRYPT_THEN_MAC, EXT_EXTENDED_MASTER_SECRET):
        if ext in offered:
            out.append((ext, b""))
    if EXT_EC_POINT_FORMATS in offered:
        out.append((EXT_EC_POINT_FORMATS, b"\x01\x00"))
    return [(t, d) for t, d in out if t not in decline]


def server_hello(random: bytes, suite: int, extensions: list[tuple[int, bytes]]) -> bytes:
    """Return a DTLS 1.2 ServerHello body (RFC 5246 §7.4.1.3): empty session_id, null compression."""
    block = b"".join(t.to_bytes(2, "big") + len(d).to_bytes(2, "big") + d for t, d in extensions)
    return (wire.DTLS_1_2.to_bytes(2, "big") + bytes(random) + b"\x00" + suite.to_bytes(2, "big") + b"\x00"
            + (len(block).to_bytes(2, "big") + block if extensions else b""))


def ecdhe_psk_key_exchange(curve: int, point: bytes, hint: bytes = b"") -> bytes:
    """Return an ECDHE_PSK ServerKeyExchange body (RFC 5489 §2): hint, named curve, point."""
    return (len(hint).to_bytes(2, "big") + bytes(hint) + bytes([NAMED_CURVE]) + curve.to_bytes(2, "big")
            + bytes([len(point)]) + bytes(point))


def client_point(key_exchange: bytes) -> bytes:
    """Return the ECDH point of an ECDHE_PSK ClientKeyExchange body (RFC 5489 §2: ``psk_identity``
    then ``ECPoint<1..2^8-1>``); DecodeError when cut."""
    if len(key_exchange) < 2:
        raise DecodeError("ClientKeyExchange", 0, "truncated psk_identity length", "2 bytes")
    at = 2 + int.from_bytes(key_exchange[:2], "big")
    if at >= len(key_exchange) or at + 1 + key_exchange[at] != len(key_exchange) or not key_exchange[at]:
        raise DecodeError("ClientKeyExchange", at, "ECPoint does not fill the message", "ECPoint<1..255>")
    return key_exchange[at + 1:]


class FakeEcdhePskServer:
    """One fake server association for an ECDHE-PSK client (module doc).

    ``randbytes(n)`` gives the server random and the ECDH private key; ``hint`` is the PSK
    identity hint sent; ``decline`` lists hello extensions not echoed even when offered.
    """

    def __init__(self, randbytes: Callable[[int], bytes], *, hint: bytes = b"", mtu: int = DEFAULT_MTU,
                 decline: frozenset[int] = frozenset()):
        self.randbytes, self.hint, self.mtu, self.decline = randbytes, bytes(hint), mtu, frozenset(decline)
        self.recorder = HandshakeRecorder()
        self.client_random: bytes | None = None
        self.refusal: str | None = None
        self.answers = 0
        self.handshake: RecordedHandshake | None = None
        self.shared_secret: bytes | None = None
        self._key: ec.EllipticCurvePrivateKey | None = None
        self._messages: list[bytes] = []
        self._record_seq = 0

    def receive(self, datagram: bytes) -> list[bytes]:
        """Take one datagram from the client; return the datagrams to send it (possibly none)."""
        datagram = bytes(datagram)
        if self.handshake is None:
            self._recorded(self.recorder.feed(True, datagram))
        try:
            hello = wire.client_hello_of(datagram)
        except DecodeError:
            return []
        if hello is None or self.refusal is not None or self.answers >= MAX_ANSWERS:
            return []
        if self.client_random is None:
            if not self._flight(datagram, hello):
                return []
        elif hello.random != self.client_random:
            return []  # another association of the same address: not this one's
        return self._send()

    def oracle(self) -> GuessOracle | None:
        """Return the offline oracle of the client's Finished (with the ECDH secret), or None yet."""
        if self.handshake is None or self.shared_secret is None:
            return None
        return GuessOracle(self.handshake, other_secret=self.shared_secret)

    # internals

    def _flight(self, datagram: bytes, hello: wire.ClientHello) -> bool:
        body = wire.split_handshake(wire.split_records(datagram)[0].fragment)[0].body
        try:
            offered = dtls_hello.client_hello_extensions(body)
        except DecodeError:
            return False
        if ECDHE_PSK_SUITE not in hello.cipher_suites:
            self.refusal = "the client offers no TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256"
            return False
        self.refusal = curve_refusal(offered)
        if self.refusal:
            return False
        self.client_random = hello.random
        scalar = int.from_bytes(self.randbytes(40), "big") % (P256_ORDER - 1) + 1
        self._key = ec.derive_private_key(scalar, ec.SECP256R1())
        point = self._key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        seq = hello.message_seq
        self._messages = [
            handshake_message(wire.HS_SERVER_HELLO, seq,
                              server_hello(self.randbytes(32), ECDHE_PSK_SUITE,
                                           answered_extensions(offered, hello.cipher_suites, self.decline))),
            handshake_message(wire.HS_SERVER_KEY_EXCHANGE, seq + 1,
                              ecdhe_psk_key_exchange(SECP256R1, point, self.hint)),
            handshake_message(HS_SERVER_HELLO_DONE, seq + 2, b""),
        ]
        return True

    def _send(self) -> list[bytes]:
        records = []
        for message in self._messages:
            records.append(wire.encode_record(wire.CT_HANDSHAKE, 0, self._record_seq, message))
            self._record_seq += 1
        self.answers += 1
        datagrams = wire.pack_datagrams(records, self.mtu)
        for datagram in datagrams:
            self._recorded(self.recorder.feed(False, datagram))
        return datagrams

    def _recorded(self, hs: RecordedHandshake | None) -> None:
        if hs is None or self.handshake is not None or self._key is None:
            return
        self.handshake = hs
        try:
            peer = ec.EllipticCurvePublicKey.from_encoded_point(self._key.curve, client_point(hs.key_exchange))
            self.shared_secret = self._key.exchange(ec.ECDH(), peer)
        except (DecodeError, ValueError):
            self.refusal = "the client's ECDH point is not on the curve"


__all__ = ["FakeEcdhePskServer", "named_groups", "curve_refusal", "answered_extensions", "server_hello",
           "ecdhe_psk_key_exchange", "client_point", "ECDHE_PSK_SUITE", "SECP256R1", "MAX_ANSWERS"]
