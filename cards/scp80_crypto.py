"""Ciphers and checksums of secured packets: ETSI TS 102 225 §5.1.2 (KIc), §5.1.3 (KID).

The algorithm is named by the low nibble of the KIc/KID octet (b1-b2 family, b3-b4 mode); the
high nibble is the key version, which picks the key and is left to the caller.

- Ciphering (KIc): DES-CBC, 3DES outer-CBC with 2 or 3 keys, DES-ECB, AES-CBC; CBC always with
  a zero ICV. The data must already be padded to the block size (8, AES 16): the padding is
  part of the secured data and counted by PCNTR.
- Cryptographic checksum (KID, SPI says CC): DES/3DES CBC-MAC over the data zero-padded to 8
  octets (that padding is not transmitted), the last block (8 octets); AES-CMAC (NIST SP
  800-38B) truncated to its first 8 octets.
- Redundancy check (KID, SPI says RC): CRC-16 and CRC-32 of ISO/IEC 13239 (the HDLC/X.25
  16-bit FCS and the zlib CRC-32), sent most significant octet first. These have no
  published vectors here; the CC paths are checked against the cards.json vectors.

Choices where the spec leaves room: DES and 2-key 3DES run as 3-key 3DES with the keys
expanded (K K K, K1 K2 K1), since cryptography deprecates short 3DES keys. "Algorithm known
implicitly" (b1-b2 = 00), proprietary and reserved codings have no entry: ``cipher_for`` and
``checksum_for`` return None and the codec decides what that means.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Callable

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.cmac import CMAC
from cryptography.hazmat.primitives.ciphers import Cipher as _Cipher
from cryptography.hazmat.primitives.ciphers import algorithms, modes

CC_LENGTH = 8


def _des(key: bytes) -> TripleDES:
    """Return 3DES keyed with K1 K2 K3 (DES: K K K, 2-key: K1 K2 K1), as cryptography prefers."""
    if len(key) == 8:
        key = key * 3
    elif len(key) == 16:
        key = key + key[:8]
    return TripleDES(key)


@dataclass(frozen=True)
class BlockCipher:
    """A KIc algorithm: its name, block size, accepted key sizes and mode (CBC or ECB)."""

    name: str
    block: int
    key_sizes: tuple[int, ...]
    algorithm: Callable[[bytes], object]
    ecb: bool = False

    def _cipher(self, key: bytes) -> _Cipher:
        mode = modes.ECB() if self.ecb else modes.CBC(bytes(self.block))
        return _Cipher(self.algorithm(key), mode)

    def encrypt(self, key: bytes, data: bytes) -> bytes:
        """Return ``data`` (a multiple of ``block`` octets) enciphered under ``key``."""
        enc = self._cipher(key).encryptor()
        return enc.update(data) + enc.finalize()

    def decrypt(self, key: bytes, data: bytes) -> bytes:
        """Return ``data`` (a multiple of ``block`` octets) deciphered under ``key``."""
        dec = self._cipher(key).decryptor()
        return dec.update(data) + dec.finalize()


def _cbc_mac(algorithm: Callable[[bytes], object]) -> Callable[[bytes, bytes], bytes]:
    def mac(key: bytes, data: bytes) -> bytes:
        padded = data + bytes(-len(data) % 8)
        enc = _Cipher(algorithm(key), modes.CBC(bytes(8))).encryptor()
        return (enc.update(padded) + enc.finalize())[-8:]
    return mac


def _aes_cmac(key: bytes, data: bytes) -> bytes:
    mac = CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()[:CC_LENGTH]


def _crc16(_key: bytes, data: bytes) -> bytes:
    crc = 0xFFFF
    for octet in data:
        crc ^= octet
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return (crc ^ 0xFFFF).to_bytes(2, "big")


def _crc32(_key: bytes, data: bytes) -> bytes:
    return zlib.crc32(data).to_bytes(4, "big")


@dataclass(frozen=True)
class Checksum:
    """A KID algorithm: its name, output length, accepted key sizes (() for a keyless RC)."""

    name: str
    length: int
    key_sizes: tuple[int, ...]
    function: Callable[[bytes, bytes], bytes]

    def compute(self, key: bytes, data: bytes) -> bytes:
        """Return the ``length``-octet checksum of ``data`` under ``key``."""
        return self.function(key, data)


_DES_KEYS = (8,)
_AES_KEYS = (16, 24, 32)

# Low nibble of KIc -> cipher (TS 102 225 §5.1.2).
_CIPHERS = {
    0x1: BlockCipher("DES-CBC", 8, _DES_KEYS, _des),
    0x5: BlockCipher("3DES-2KEY-CBC", 8, (16,), _des),
    0x9: BlockCipher("3DES-3KEY-CBC", 8, (24,), _des),
    0xD: BlockCipher("DES-ECB", 8, _DES_KEYS, _des, ecb=True),
    0x2: BlockCipher("AES-CBC", 16, _AES_KEYS, algorithms.AES),
}

# Low nibble of KID -> cryptographic checksum (TS 102 225 §5.1.3.1).
_CCS = {
    0x1: Checksum("DES-CBC-MAC", CC_LENGTH, _DES_KEYS, _cbc_mac(_des)),
    0x5: Checksum("3DES-2KEY-CBC-MAC", CC_LENGTH, (16,), _cbc_mac(_des)),
    0x9: Checksum("3DES-3KEY-CBC-MAC", CC_LENGTH, (24,), _cbc_mac(_des)),
    0x2: Checksum("AES-CMAC-64", CC_LENGTH, _AES_KEYS, _aes_cmac),
}

# Low nibble of KID -> redundancy check (TS 102 225 §5.1.3.2).
_RCS = {
    0x1: Checksum("CRC-16", 2, (), _crc16),
    0x5: Checksum("CRC-32", 4, (), _crc32),
}


def is_implicit(algorithm_octet: int) -> bool:
    """Return whether a KIc/KID octet says "algorithm known implicitly" (b1-b2 = 00)."""
    return algorithm_octet & 0x3 == 0


def cipher_for(kic: int) -> BlockCipher | None:
    """Return the cipher the KIc octet names, or None (implicit, proprietary, reserved)."""
    return _CIPHERS.get(kic & 0xF)


def checksum_for(kid: int, *, redundancy: bool) -> Checksum | None:
    """Return the CC (or with ``redundancy`` the RC) the KID octet names, or None."""
    return (_RCS if redundancy else _CCS).get(kid & 0xF)
