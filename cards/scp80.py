"""Secured packets over SMS ("SCP80"): ETSI TS 102 225 §5, 3GPP TS 31.115 §4.

Shared by the card (receiving entity) and the OTA server (sending entity); sans-IO, bytes in
and out. Algorithms are in scp80_crypto.py.

Command packet (TS 102 225 §5.1, TS 31.115 §4.2); in SMS the CPI is the UDH IE 70 with no data,
so the TP-UD starts ``02 70 00``, and CHI is empty::

    CPL(2) CHL(1) SPI(2) KIc(1) KID(1) TAR(3) | CNTR(5) PCNTR(1) RC/CC/DS | data | padding

CPL counts from CHL to the end, CHL from SPI to the end of RC/CC/DS. With ciphering everything
after TAR is enciphered (CBC, zero ICV), the secured data zero-padded to the block size and
PCNTR giving the number of padding octets. The RC/CC covers CPL..PCNTR, data and padding (not
the UDH, not the RC/CC field itself), computed before ciphering.

Response packet (PoR, TS 102 225 §5.2, TS 31.115 §4.4); the TP-UD starts ``02 71 00``::

    RPL(2) RHL(1) TAR(3) | CNTR(5) PCNTR(1) STATUS(1) RC/CC/DS | additional data | padding

RPL counts from RHL, RHL from TAR to the end of RC/CC/DS. Ciphering covers everything after
TAR; the RC/CC covers the UDH, RPL..STATUS, data and padding (TS 31.115: the UDH is included).

Choices where the spec leaves room:
- ``with_udh`` adds/expects the UDH in front; without it the packet is bare, and the PoR
  RC/CC still covers ``02 71 00`` (the UDH of an SMS carrying only the RPI).
- A KIc/KID octet with "algorithm known implicitly" takes the algorithm of the Keyset's own
  octet; the PoR always uses the Keyset's octets (the PoR has no KIc/KID).
- DS (digital signature) is not specified for SMS: refused (status 06, ProtocolError on encode).
- The card's check order: TAR (09), minimum security level (0A), algorithms/keys/lengths
  (06), ciphertext length (05), RC/CC (01), PCNTR (05 ciphered, 06 plain). The counter rule
  (02/03/04) is ``check_counter``, run by the caller after a packet decoded.
- Counter blocked (04): the stored counter is at its maximum (2^40 - 1) in a mode that checks.
- A malformed header (before the TAR is known) is a DecodeError("scp80"/"scp80-por", offset).
"""
from __future__ import annotations

import functools
import hmac
from dataclasses import dataclass
from enum import IntEnum
from typing import Callable

from dmsim.cards.scp80_crypto import BlockCipher, Checksum, checksum_for, cipher_for, is_implicit
from dmsim.network.sms.udh import decode_udh
from dmsim.base.errors import DecodeError, ProtocolError, SecuredPacketError

IEI_COMMAND_PACKET = 0x70   # TS 31.115 §4.2, CPI
IEI_RESPONSE_PACKET = 0x71  # TS 31.115 §4.4, RPI
UDH_COMMAND = bytes([2, IEI_COMMAND_PACKET, 0])
UDH_RESPONSE = bytes([2, IEI_RESPONSE_PACKET, 0])

CNTR_MAX = (1 << 40) - 1
_HEADER = 10       # CPL(2) CHL SPI(2) KIc KID TAR(3)
_CHL_BASE = 13     # SPI(2) KIc KID TAR(3) CNTR(5) PCNTR
_POR_HEADER = 6    # RPL(2) RHL TAR(3)
_RHL_BASE = 10     # TAR(3) CNTR(5) PCNTR STATUS


class ResponseStatus(IntEnum):
    """Response Status Codes, TS 102 225 §5.2.2 table 5 and TS 31.115 §4.4."""

    POR_OK = 0x00
    RC_CC_DS_FAILED = 0x01
    CNTR_LOW = 0x02
    CNTR_HIGH = 0x03
    CNTR_BLOCKED = 0x04
    CIPHERING_ERROR = 0x05
    UNIDENTIFIED_SECURITY_ERROR = 0x06
    INSUFFICIENT_MEMORY = 0x07
    MORE_TIME = 0x08
    TAR_UNKNOWN = 0x09
    INSUFFICIENT_SECURITY_LEVEL = 0x0A
    RESPONSE_IN_SMS_SUBMIT = 0x0B
    RESPONSE_IN_USSD = 0x0C


class Integrity(IntEnum):
    """SPI b1-b2 (and for the PoR second octet b3-b4): TS 102 225 §5.1.1."""

    NONE = 0
    RC = 1
    CC = 2
    DS = 3


class CounterMode(IntEnum):
    """SPI first octet b4-b5: TS 102 225 §5.1.1."""

    NONE = 0          # no counter
    AVAILABLE = 1     # counter available, no replay or sequence checking
    HIGHER = 2        # process if higher than the stored value
    ONE_HIGHER = 3    # process if exactly one higher than the stored value


class PorMode(IntEnum):
    """SPI second octet b1-b2: TS 102 225 §5.1.1."""

    NONE = 0
    REQUIRED = 1
    ON_ERROR = 2
    RESERVED = 3


@dataclass(frozen=True)
class Spi:
    """The Security Parameter Indicator (TS 102 225 §5.1.1); reserved bits are dropped."""

    integrity: Integrity = Integrity.NONE
    ciphered: bool = False
    counter: CounterMode = CounterMode.NONE
    por: PorMode = PorMode.NONE
    por_integrity: Integrity = Integrity.NONE
    por_ciphered: bool = False
    por_via_submit: bool = False

    @classmethod
    def decode(cls, octets: bytes) -> Spi:
        """Return the SPI of two octets (ProtocolError if not two)."""
        if len(octets) != 2:
            raise ProtocolError(f"SPI has {len(octets)} octets, expected 2")
        first, second = octets
        return cls(Integrity(first & 3), bool(first & 0x04), CounterMode((first >> 3) & 3),
                   PorMode(second & 3), Integrity((second >> 2) & 3), bool(second & 0x10),
                   bool(second & 0x20))

    def encode(self) -> bytes:
        """Return the two SPI octets."""
        first = self.integrity | self.ciphered << 2 | self.counter << 3
        second = (self.por | self.por_integrity << 2 | self.por_ciphered << 4
                  | self.por_via_submit << 5)
        return bytes([first, second])


@dataclass(frozen=True)
class Keyset:
    """Keys of one TAR/key version: KIc and KID octets (algorithm + version) and the keys.

    ``msl`` is the Minimum Security Level (TS 102 226 §8.2.1.3.2.4.1), coded as the first SPI
    octet: a command with less integrity, no ciphering when ciphering is asked, or a weaker
    counter mode is refused with status 0A.
    """

    kic_byte: int
    kid_byte: int
    kic_key: bytes = b""
    kid_key: bytes = b""
    msl: int = 0


@dataclass(frozen=True)
class CommandPacket:
    """A decoded, verified command packet; ``data`` is the secured data without padding."""

    spi: Spi
    kic: int
    kid: int
    tar: bytes
    cntr: int
    pcntr: int
    checksum: bytes
    data: bytes


@dataclass(frozen=True)
class ResponsePacket:
    """A decoded, verified PoR; ``data`` is the additional response data without padding."""

    tar: bytes
    cntr: int
    pcntr: int
    status: int
    checksum: bytes
    data: bytes


KeyLookup = Callable[[bytes, int, int], Keyset | None]  # (tar, kic, kid) -> keys


def _as_spi(spi: Spi | bytes) -> Spi:
    return spi if isinstance(spi, Spi) else Spi.decode(bytes(spi))


def _pick(header_octet: int | None, keyset_octet: int) -> int:
    """Return the octet naming the algorithm: the header's unless it says "implicit"."""
    if header_octet is None or is_implicit(header_octet):
        return keyset_octet
    return header_octet


def _resolve(integrity: Integrity, ciphered: bool, keys: Keyset | None, kic: int | None,
             kid: int | None, fail: Callable[[str], Exception]
             ) -> tuple[BlockCipher | None, Checksum | None]:
    """Return the cipher (None if not ciphered) and checksum (None if no integrity).

    Raises what ``fail(message)`` builds when an algorithm or key does not fit.
    """
    if (ciphered or integrity) and keys is None:
        raise fail("security asked but no keyset given")
    cipher = checksum = None
    if ciphered:
        cipher = cipher_for(_pick(kic, keys.kic_byte))
        if cipher is None:
            raise fail(f"KIc {_pick(kic, keys.kic_byte):#04x} names no supported cipher")
        if len(keys.kic_key) not in cipher.key_sizes:
            raise fail(f"{cipher.name} key of {len(keys.kic_key)} octets")
    if integrity == Integrity.DS:
        raise fail("digital signatures are not specified for SMS")
    if integrity:
        octet = _pick(kid, keys.kid_byte)
        checksum = checksum_for(octet, redundancy=integrity == Integrity.RC)
        if checksum is None:
            raise fail(f"KID {octet:#04x} names no supported {integrity.name}")
        if checksum.key_sizes and len(keys.kid_key) not in checksum.key_sizes:
            raise fail(f"{checksum.name} key of {len(keys.kid_key)} octets")
    return cipher, checksum


def _check_fields(tar: bytes, cntr: int, *octets: int) -> None:
    if len(tar) != 3:
        raise ProtocolError(f"TAR has {len(tar)} octets, expected 3")
    if not 0 <= cntr <= CNTR_MAX:
        raise ProtocolError(f"CNTR {cntr} does not fit 5 octets")
    if any(not 0 <= o <= 0xFF for o in octets):
        raise ProtocolError(f"{octets} are not all octets")


def _secure(cipher: BlockCipher | None, checksum: Checksum | None, keys: Keyset | None,
            fixed: int, data: bytes) -> tuple[int, Callable[[bytes, bytes], bytes]]:
    """Return the padding length and a function (covered prefix, counter part) -> secured part.

    ``fixed`` is the length of the counter part (CNTR, PCNTR, maybe STATUS). The checksum covers
    prefix + counter part + data + padding; the cipher the counter part onwards.
    """
    cc_len = checksum.length if checksum else 0
    pad = -(fixed + cc_len + len(data)) % cipher.block if cipher else 0
    padded = data + bytes(pad)

    def build(prefix: bytes, counter_part: bytes) -> bytes:
        cc = checksum.compute(keys.kid_key, prefix + counter_part + padded) if checksum else b""
        secured = counter_part + cc + padded
        return cipher.encrypt(keys.kic_key, secured) if cipher else secured
    return pad, build


def encode_command(spi: Spi | bytes, kic: int, kid: int, tar: bytes, cntr: int, data: bytes,
                   keys: Keyset | None, *, with_udh: bool = False) -> bytes:
    """Return the command packet (with ``02 70 00`` in front if ``with_udh``).

    ``kic``/``kid`` are the header octets; ``keys`` may be None for an unsecured SPI.
    ProtocolError if a field, algorithm or key does not fit.
    """
    spi = _as_spi(spi)
    _check_fields(tar, cntr, kic, kid)
    cipher, checksum = _resolve(spi.integrity, spi.ciphered, keys, kic, kid, ProtocolError)
    chl = _CHL_BASE + (checksum.length if checksum else 0)
    pad, build = _secure(cipher, checksum, keys, 6, bytes(data))
    cpl = 1 + chl + len(data) + pad
    if cpl > 0xFFFF:
        raise ProtocolError(f"CPL {cpl} does not fit 2 octets")
    head = cpl.to_bytes(2, "big") + bytes([chl]) + spi.encode() + bytes([kic, kid]) + tar
    packet = head + build(head, cntr.to_bytes(5, "big") + bytes([pad]))
    return UDH_COMMAND + packet if with_udh else packet


def _strip_udh(data: bytes, iei: int, what: str) -> tuple[bytes, bytes]:
    """Return the raw UDH and the octets after it; DecodeError unless it holds IE ``iei``."""
    try:
        ies, rest = decode_udh(data)
    except DecodeError as err:
        raise DecodeError(what, err.offset, f"UDH: {err.detail}", err.expected) from err
    if not any(ie.iei == iei for ie in ies):
        raise DecodeError(what, 0, "UDH lacks the packet identifier", f"IE {iei:#04x}")
    return data[:len(data) - len(rest)], rest


def _frame(data: bytes, base: int, what: str, header: int, min_hl: int) -> int:
    """Return the header length octet (CHL/RHL) after checking it and the packet length (CPL/RPL).

    DecodeError(what, offset) if the packet is shorter than ``header`` octets, the 2-octet
    length does not count what follows, or the header length octet is out of range.
    """
    if len(data) < header:
        raise DecodeError(what, base + len(data), "packet truncated",
                          f"at least {header} octets of header")
    length = int.from_bytes(data[:2], "big")
    if length != len(data) - 2:
        raise DecodeError(what, base, f"packet length {length} but {len(data) - 2} octets follow")
    hl = data[2]
    if hl < min_hl or 3 + hl > len(data):
        raise DecodeError(what, base + 2, f"header length {hl}", f"{min_hl}..{len(data) - 3}")
    return hl


def _open(secured: bytes, fixed: int, cipher: BlockCipher | None, checksum: Checksum | None,
          keys: Keyset | None, prefix: bytes, refuse: Callable[..., SecuredPacketError]
          ) -> tuple[bytes, bytes, bytes, int]:
    """Return the counter part, the received RC/CC, the data without padding and PCNTR.

    ``secured`` is everything after the TAR, ``fixed`` the length of its counter part (CNTR,
    PCNTR, maybe STATUS), ``prefix`` what the RC/CC covers before the counter part.
    ``refuse(status, message, cntr=...)`` builds the error for a failed check.
    """
    if cipher:
        if len(secured) % cipher.block:
            raise refuse(ResponseStatus.CIPHERING_ERROR,
                         f"{len(secured)} ciphered octets, not a multiple of {cipher.block}")
        secured = cipher.decrypt(keys.kic_key, secured)
    counter_part = secured[:fixed]
    cntr, pcntr = int.from_bytes(counter_part[:5], "big"), counter_part[5]
    cc_len = checksum.length if checksum else 0
    received, body = secured[fixed:fixed + cc_len], secured[fixed + cc_len:]
    if checksum:
        expected = checksum.compute(keys.kid_key, prefix + counter_part + body)
        if not hmac.compare_digest(expected, received):
            raise refuse(ResponseStatus.RC_CC_DS_FAILED, f"{checksum.name} does not verify",
                         cntr=cntr)
    if pcntr > len(body):
        status = (ResponseStatus.CIPHERING_ERROR if cipher
                  else ResponseStatus.UNIDENTIFIED_SECURITY_ERROR)
        raise refuse(status, f"PCNTR {pcntr} beyond {len(body)} octets of data", cntr=cntr)
    return counter_part, received, body[:len(body) - pcntr], pcntr


def _meets(spi: Spi, msl: int) -> bool:
    """Return whether ``spi`` is at least the minimum security level ``msl`` (first SPI octet)."""
    need = Spi.decode(bytes([msl, 0]))
    return (spi.integrity >= need.integrity and (spi.ciphered or not need.ciphered)
            and spi.counter >= need.counter)


def decode_command(packet: bytes, keys_for_tar: KeyLookup, *,
                   with_udh: bool = False) -> CommandPacket:
    """Return the verified command packet in ``packet``.

    ``keys_for_tar(tar, kic, kid)`` returns the Keyset for the TAR, or None if the TAR is
    unknown. A malformed header raises DecodeError("scp80", offset); a refused packet
    SecuredPacketError whose ``status`` is the PoR status code.
    """
    data, base = bytes(packet), 0
    if with_udh:
        udh, data = _strip_udh(data, IEI_COMMAND_PACKET, "scp80")
        base = len(udh)
    chl = _frame(data, base, "scp80", _HEADER, _CHL_BASE)
    spi = Spi.decode(data[3:5])
    kic, kid, tar = data[5], data[6], data[7:10]

    refuse = functools.partial(SecuredPacketError, tar=tar, spi=spi)
    keys = keys_for_tar(tar, kic, kid)
    if keys is None:
        raise refuse(ResponseStatus.TAR_UNKNOWN, f"TAR {tar.hex()} unknown")
    if not _meets(spi, keys.msl):
        raise refuse(ResponseStatus.INSUFFICIENT_SECURITY_LEVEL,
                     f"SPI below the minimum security level {keys.msl:#04x}")
    cipher, checksum = _resolve(spi.integrity, spi.ciphered, keys, kic, kid,
                                lambda m: refuse(ResponseStatus.UNIDENTIFIED_SECURITY_ERROR, m))
    if chl != _CHL_BASE + (checksum.length if checksum else 0):
        raise refuse(ResponseStatus.UNIDENTIFIED_SECURITY_ERROR, f"CHL {chl} does not fit the SPI")
    counter_part, received, body, pcntr = _open(data[_HEADER:], 6, cipher, checksum, keys,
                                                data[:_HEADER], refuse)
    return CommandPacket(spi, kic, kid, tar, int.from_bytes(counter_part[:5], "big"), pcntr,
                         received, body)


def check_counter(cntr: int, stored: int, spi: Spi | bytes) -> ResponseStatus:
    """Return the status the counter rule of ``spi`` gives ``cntr`` against ``stored``.

    POR_OK means process (and the caller stores ``cntr`` when the mode checks counters).
    """
    mode = _as_spi(spi).counter
    if mode in (CounterMode.NONE, CounterMode.AVAILABLE):
        return ResponseStatus.POR_OK
    if stored >= CNTR_MAX:
        return ResponseStatus.CNTR_BLOCKED
    if cntr <= stored:
        return ResponseStatus.CNTR_LOW
    if mode == CounterMode.ONE_HIGHER and cntr != stored + 1:
        return ResponseStatus.CNTR_HIGH
    return ResponseStatus.POR_OK


def encode_por(spi: Spi | bytes, tar: bytes, cntr: int, status: int, data: bytes,
               keys: Keyset | None, *, with_udh: bool = False) -> bytes:
    """Return the response packet (with ``02 71 00`` in front if ``with_udh``).

    Secured as the PoR bits of ``spi`` ask, with the Keyset's algorithms; ``keys`` may be None
    if they ask for nothing. ProtocolError if a field, algorithm or key does not fit.
    """
    spi = _as_spi(spi)
    _check_fields(tar, cntr, status)
    cipher, checksum = _resolve(spi.por_integrity, spi.por_ciphered, keys, None, None,
                                ProtocolError)
    rhl = _RHL_BASE + (checksum.length if checksum else 0)
    pad, build = _secure(cipher, checksum, keys, 7, bytes(data))
    rpl = 1 + rhl + len(data) + pad
    if rpl > 0xFFFF:
        raise ProtocolError(f"RPL {rpl} does not fit 2 octets")
    head = rpl.to_bytes(2, "big") + bytes([rhl]) + tar
    packet = head + build(UDH_RESPONSE + head, cntr.to_bytes(5, "big") + bytes([pad, status]))
    return UDH_RESPONSE + packet if with_udh else packet


def decode_por(packet: bytes, spi: Spi | bytes, keys: Keyset | None, *,
               with_udh: bool = False) -> ResponsePacket:
    """Return the verified response packet in ``packet``, secured as ``spi``'s PoR bits say.

    A malformed packet raises DecodeError("scp80-por", offset); a failed check
    SecuredPacketError (status 01 RC/CC failed, 05 ciphering, 06 other).
    """
    spi = _as_spi(spi)
    data, udh, base = bytes(packet), UDH_RESPONSE, 0
    if with_udh:
        udh, data = _strip_udh(data, IEI_RESPONSE_PACKET, "scp80-por")
        base = len(udh)
    rhl = _frame(data, base, "scp80-por", _POR_HEADER, _RHL_BASE)
    tar = data[3:6]

    refuse = functools.partial(SecuredPacketError, tar=tar, spi=spi)
    cipher, checksum = _resolve(spi.por_integrity, spi.por_ciphered, keys, None, None,
                                lambda m: refuse(ResponseStatus.UNIDENTIFIED_SECURITY_ERROR, m))
    if rhl != _RHL_BASE + (checksum.length if checksum else 0):
        raise refuse(ResponseStatus.UNIDENTIFIED_SECURITY_ERROR, f"RHL {rhl} does not fit the SPI")
    counter_part, received, body, pcntr = _open(data[_POR_HEADER:], 7, cipher, checksum, keys,
                                                udh + data[:_POR_HEADER], refuse)
    return ResponsePacket(tar, int.from_bytes(counter_part[:5], "big"), pcntr, counter_part[6],
                          received, body)
