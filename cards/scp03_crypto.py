"""SCP03 cryptographic primitives (GlobalPlatform Card Spec v2.3 Amendment D, S8 mode).

- §6.2.1 data derivation: NIST SP 800-108 KDF in counter mode with AES-CMAC as PRF, fixed
  input = label (11 zero bytes || derivation constant) || 00 separator || L (2 bytes, bits) ||
  counter i (1 byte) || context.
- §6.2.1 derivation constants, §6.2.2.1 pseudo-random card challenge, §6.2.2.2/§6.2.2.3 card and
  host cryptograms, §6.2.4/§6.2.5 C-MAC / R-MAC with a 16-byte MAC chaining value,
  §6.2.6/§6.2.7 C-DECRYPTION / R-ENCRYPTION (AES-CBC, ICV from the encryption counter,
  ISO/IEC 9797-1 padding method 2).

Pure functions of bytes; the session state lives in ``cards/scp03.py``.
"""
from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

# Amendment D Table 6-1 (derivation constants).
CONST_CARD_CRYPTOGRAM = 0x00
CONST_HOST_CRYPTOGRAM = 0x01
CONST_CARD_CHALLENGE = 0x02
CONST_S_ENC = 0x04
CONST_S_MAC = 0x06
CONST_S_RMAC = 0x07

BLOCK = 16
S8 = 8  # challenge, cryptogram and MAC length in S8 mode
AES_KEY_LENGTHS = (16, 24, 32)


def aes_cmac(key: bytes, data: bytes) -> bytes:
    """Return the 16-byte AES-CMAC (NIST SP 800-38B) of ``data`` under ``key``."""
    mac = CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


def kdf(key: bytes, constant: int, l_bits: int, context: bytes) -> bytes:
    """Return ``l_bits // 8`` bytes derived from ``key`` (Amendment D §6.2.1)."""
    fixed_label = bytes(11) + bytes([constant]) + b"\x00" + l_bits.to_bytes(2, "big")
    out = b""
    counter = 1
    while len(out) * 8 < l_bits:
        out += aes_cmac(key, fixed_label + bytes([counter]) + context)
        counter += 1
    return out[: l_bits // 8]


@dataclass(frozen=True, slots=True)
class SessionKeys:
    """S-ENC, S-MAC and S-RMAC of one secure channel session (§6.2.1)."""

    s_enc: bytes
    s_mac: bytes
    s_rmac: bytes


def session_keys(enc: bytes, mac: bytes, host_challenge: bytes,
                 card_challenge: bytes) -> SessionKeys:
    """Return the session keys; each is as long as the static key it comes from."""
    context = host_challenge + card_challenge
    return SessionKeys(
        s_enc=kdf(enc, CONST_S_ENC, len(enc) * 8, context),
        s_mac=kdf(mac, CONST_S_MAC, len(mac) * 8, context),
        s_rmac=kdf(mac, CONST_S_RMAC, len(mac) * 8, context),
    )


def card_challenge(enc: bytes, sequence_counter: int, aid: bytes) -> bytes:
    """Return the pseudo-random card challenge for a 3-byte counter and the SD's AID (§6.2.2.1)."""
    return kdf(enc, CONST_CARD_CHALLENGE, S8 * 8, sequence_counter.to_bytes(3, "big") + aid)


def cryptogram(s_mac: bytes, constant: int, host_challenge: bytes,
               card_challenge_: bytes) -> bytes:
    """Return the 8-byte card (constant 00) or host (constant 01) cryptogram (§6.2.2.2-3)."""
    return kdf(s_mac, constant, S8 * 8, host_challenge + card_challenge_)


def pad(data: bytes) -> bytes:
    """Return ``data`` padded with ISO/IEC 9797-1 method 2 (80 00..) to a block multiple."""
    data += b"\x80"
    return data + bytes(-len(data) % BLOCK)


def unpad(data: bytes) -> bytes | None:
    """Return ``data`` without method-2 padding, or None if the padding is malformed."""
    stripped = data.rstrip(b"\x00")
    if not stripped or stripped[-1] != 0x80 or len(data) - len(stripped) >= BLOCK:
        return None
    return stripped[:-1]


def _ecb(key: bytes, block: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return encryptor.update(block) + encryptor.finalize()


def command_icv(s_enc: bytes, counter: int) -> bytes:
    """Return the C-DECRYPTION ICV: AES(S-ENC, counter as 16 bytes) (§6.2.6)."""
    return _ecb(s_enc, counter.to_bytes(BLOCK, "big"))


def response_icv(s_enc: bytes, counter: int) -> bytes:
    """Return the R-ENCRYPTION ICV: AES(S-ENC, 80 || counter as 15 bytes) (§6.2.7)."""
    return _ecb(s_enc, b"\x80" + counter.to_bytes(BLOCK - 1, "big"))


def cbc_encrypt(key: bytes, icv: bytes, data: bytes) -> bytes:
    """Return ``pad(data)`` encrypted with AES-CBC."""
    encryptor = Cipher(algorithms.AES(key), modes.CBC(icv)).encryptor()
    return encryptor.update(pad(data)) + encryptor.finalize()


def cbc_decrypt(key: bytes, icv: bytes, data: bytes) -> bytes | None:
    """Return the unpadded AES-CBC plaintext, or None if length or padding are wrong."""
    if not data or len(data) % BLOCK:
        return None
    decryptor = Cipher(algorithms.AES(key), modes.CBC(icv)).decryptor()
    return unpad(decryptor.update(data) + decryptor.finalize())
