"""The 3GPP_GBA protected bootstrap (OMA-TS-DM_Security-V1_3 §5.10.2.4.1, seed 001 §9.3.1.3.1).

After GBA Push (TS 33.223) the DM Server and the device share DMBIK and DMBEK
(``network/gba/keys.dm_bootstrap_keys``); the bootstrap message is protected for integrity and
confidentiality with them and announced by the Content-Type ``MIME type; SEC=type`` with the
MIME type ``application/vnd.syncml.dm+wbxml`` (§5.10.2.4.1; seed 001 leaves it "[TBD]") and
SEC = "3GPP_GBA"::

    application/vnd.syncml.dm+wbxml; SEC=3GPP_GBA

Relation to §5.10.2.3 (``bootstrap_mac.py``): that form is ``MIMEtype ";" Keytype ";" Digest``,
three parts with the HMAC-SHA1 in the Content-Type and the WBXML in clear. The 3GPP_GBA form has
two parts, a ``SEC=`` parameter and no digest: the MAC travels in the payload with the ciphertext.
``is_gba_content_type`` tells them apart (a §5.10.2.3 value always has its third part).
The seeds' Content-Type carries no B-TID/P-TID, so the device uses the keys of the GBA Push it
processed for this DM Server (its latest GPI's NAF_Id); nothing identifying the keys is sent.

Choices where the seeds are silent (they name neither MAC nor cipher nor payload layout):

- Payload = version (1 octet, 0x01: this suite) | IV (16 octets, random per message) |
  C = AES-128-CBC(K_enc, IV, PKCS#7-padded WBXML) | T = HMAC-SHA-256(DMBIK, version || IV || C)
  (32 octets, not truncated). Encrypt-then-MAC (RFC 7366 / Bellare-Namprempre generic
  composition): the tag is checked, in constant time (``hmac.compare_digest``), before any
  decryption, so no padding oracle is exposed.
- K_enc = the 128 least significant bits (last 16 octets) of DMBEK: the 3GPP rule for using a
  256-bit KDF output as a 128-bit algorithm key (TS 33.401 Annex A.7). DMBIK is the HMAC key as
  a whole (RFC 2104 takes any length).
- The Content-Type is not under the MAC: it is a constant, and the version octet that selects the
  algorithms is.
- Content-Type parsing: media type and parameter name case-insensitive, whitespace around ";"
  and "=" allowed (RFC 2045 §5.1), value ``3GPP_GBA`` exactly (optionally quoted), no other
  parameter. ``protect`` emits the seed's own spelling, above.
- Every refusal is a ``ProtectedBootstrapError`` naming the reason and the offset.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import re
from typing import Callable

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from dmsim.base.errors import ProtectedBootstrapError, ProtocolError
from dmsim.network.dm.bootstrap_mac import BOOTSTRAP_MEDIA_TYPE

SEC_3GPP_GBA = "3GPP_GBA"
GBA_CONTENT_TYPE = f"{BOOTSTRAP_MEDIA_TYPE}; SEC={SEC_3GPP_GBA}"
PAYLOAD_VERSION = 0x01
IV_LEN = 16
BLOCK = 16
TAG_LEN = 32
KEY_LEN = 32                  # DMBIK / DMBEK: HMAC-SHA-256 outputs of the GBA KDF
ENC_KEY_LEN = 16              # AES-128
MIN_PAYLOAD = 1 + IV_LEN + BLOCK + TAG_LEN

_CT = re.compile(r"\s*([^;\s]+)\s*;\s*([A-Za-z0-9_-]+)\s*=\s*(\"?)([^\";\s]*)\3\s*")


def _check_keys(dmbik: bytes, dmbek: bytes) -> None:
    for name, key in (("DMBIK", dmbik), ("DMBEK", dmbek)):
        if len(key) != KEY_LEN:
            raise ProtocolError(f"{name} of {len(key)} octets (expected {KEY_LEN}, the GBA KDF output)")


def encryption_key(dmbek: bytes) -> bytes:
    """Return the AES-128 key: the 128 least significant bits of DMBEK (TS 33.401 A.7 rule)."""
    return dmbek[-ENC_KEY_LEN:]


def payload_tag(dmbik: bytes, signed: bytes) -> bytes:
    """Return HMAC-SHA-256(DMBIK, version || IV || C): the payload's tag."""
    return hmac.new(dmbik, signed, hashlib.sha256).digest()


def parse_gba_content_type(value: str) -> None:
    """Check a 3GPP_GBA Content-Type (module docstring); ProtectedBootstrapError with the
    character offset of the first part that does not conform."""
    m = _CT.fullmatch(value)
    if m is None:
        raise ProtectedBootstrapError("content_type", "Content-Type", 0,
                                      f"{value[:80]!r} is not 'MIME type; SEC=type'")
    if m.group(1).lower() != BOOTSTRAP_MEDIA_TYPE:
        raise ProtectedBootstrapError("content_type", "Content-Type", m.start(1),
                                      f"media type {m.group(1)!r}, expected {BOOTSTRAP_MEDIA_TYPE}")
    if m.group(2).upper() != "SEC":
        raise ProtectedBootstrapError("content_type", "Content-Type", m.start(2),
                                      f"parameter {m.group(2)!r}, expected SEC")
    if m.group(4) != SEC_3GPP_GBA:
        raise ProtectedBootstrapError("content_type", "Content-Type", m.start(4),
                                      f"SEC={m.group(4)!r}, expected {SEC_3GPP_GBA}")


def is_gba_content_type(value: str) -> bool:
    """Return True for a 3GPP_GBA Content-Type, False for anything else (e.g. §5.10.2.3's)."""
    try:
        parse_gba_content_type(value)
    except ProtectedBootstrapError:
        return False
    return True


def protect(body_wbxml: bytes, dmbik: bytes, dmbek: bytes,
            randbytes: Callable[[int], bytes] = os.urandom) -> tuple[str, bytes]:
    """Return (Content-Type, payload) of the 3GPP_GBA protected bootstrap of ``body_wbxml``;
    ``randbytes(16)`` gives the IV (a secure source by default, the replica's RNG in simulations)."""
    _check_keys(dmbik, dmbek)
    iv = randbytes(IV_LEN)
    if len(iv) != IV_LEN:
        raise ProtocolError(f"IV source gave {len(iv)} octets (expected {IV_LEN})")
    pad = BLOCK - len(body_wbxml) % BLOCK
    enc = Cipher(algorithms.AES(encryption_key(dmbek)), modes.CBC(iv)).encryptor()
    signed = bytes([PAYLOAD_VERSION]) + iv + enc.update(body_wbxml + bytes([pad]) * pad) + enc.finalize()
    return GBA_CONTENT_TYPE, signed + payload_tag(dmbik, signed)


def unprotect(content_type: str, payload: bytes, dmbik: bytes, dmbek: bytes) -> bytes:
    """Return the WBXML bootstrap of a 3GPP_GBA protected payload; ProtectedBootstrapError for a
    wrong Content-Type, a malformed or truncated payload, a tag that does not verify (checked in
    constant time before decrypting) or bad padding."""
    _check_keys(dmbik, dmbek)
    parse_gba_content_type(content_type)
    payload = bytes(payload)
    if len(payload) < MIN_PAYLOAD:
        raise ProtectedBootstrapError("truncated", "payload", len(payload),
                                      f"{len(payload)} octets, at least {MIN_PAYLOAD} needed")
    if payload[0] != PAYLOAD_VERSION:
        raise ProtectedBootstrapError("version", "payload", 0, f"version {payload[0]:#04x}, expected 0x01")
    c_len = len(payload) - 1 - IV_LEN - TAG_LEN
    if c_len % BLOCK:
        raise ProtectedBootstrapError("truncated", "payload", 1 + IV_LEN + c_len - c_len % BLOCK,
                                      f"ciphertext of {c_len} octets is not whole AES blocks")
    signed, tag = payload[:-TAG_LEN], payload[-TAG_LEN:]
    if not hmac.compare_digest(payload_tag(dmbik, signed), tag):
        raise ProtectedBootstrapError("bad_mac", "payload", len(signed), "HMAC-SHA-256 tag does not verify")
    dec = Cipher(algorithms.AES(encryption_key(dmbek)), modes.CBC(signed[1:1 + IV_LEN])).decryptor()
    plain = dec.update(signed[1 + IV_LEN:]) + dec.finalize()
    pad = plain[-1]
    if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
        raise ProtectedBootstrapError("padding", "payload", len(signed) - 1, "PKCS#7 padding is wrong")
    return plain[:-pad]
