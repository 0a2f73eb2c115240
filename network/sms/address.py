"""SMS TP-OA / TP-DA address fields: 3GPP TS 23.040 §9.1.2.5 (semi-octets, TON/NPI).

An address field is: Address-Length (count of useful semi-octets), Type-of-Address
(bit 7 = 1, TON in bits 6..4, NPI in bits 3..0), then the digits two per octet, low
nibble first, an odd count padded with 1111.

An alphanumeric address (TON 101, §9.1.2.5) holds text in the GSM 7-bit default alphabet
(TS 23.038 §6.2.1, gsm7.py) packed into octets, and Address-Length counts the semi-octets
the packed septets use; ``Address.digits`` then holds the text.

Choices where the spec leaves room:
- An alphanumeric address holds ``Address-Length * 4 // 7`` septets: the pad bits after the
  last septet never make one more (a sender that counts whole octets, e.g. 14 semi-octets
  for 7 characters, gets a trailing '@' read back, which is what those bits say).
- Building an alphanumeric address longer than 11 characters (10 octets), or with a
  character the alphabet lacks, raises ProtocolError.
- On decode the pad nibble of an odd-length address and bit 7 of Type-of-Address are not
  checked (receivers should be tolerant); a filler nibble *inside* the digits is an error.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import IntEnum

from dmsim.network.sms import gsm7
from dmsim.base.errors import DecodeError, ProtocolError


class Ton(IntEnum):
    """Type of number, TS 23.040 §9.1.2.5."""

    UNKNOWN = 0
    INTERNATIONAL = 1
    NATIONAL = 2
    NETWORK_SPECIFIC = 3
    SUBSCRIBER = 4
    ALPHANUMERIC = 5
    ABBREVIATED = 6
    RESERVED = 7


class Npi(IntEnum):
    """Numbering plan identification, TS 23.040 §9.1.2.5."""

    UNKNOWN = 0
    ISDN = 1
    DATA = 3
    TELEX = 4
    SC_SPECIFIC_5 = 5
    SC_SPECIFIC_6 = 6
    NATIONAL = 8
    PRIVATE = 9
    ERMES = 10
    RESERVED = 15


# Semi-octet values 0..14 (15 is the filler), TS 23.040 §9.1.2.3 / TS 24.008 BCD.
_DIGITS = "0123456789*#abc"
_MAX_DIGITS = 20  # the address field is at most 12 octets: 2 + 10 octets of digits
_MAX_SEPTETS = _MAX_DIGITS * 4 // 7  # 11 characters of an alphanumeric address


@dataclass(frozen=True)
class Address:
    """An SMS address: ``digits`` from ``0-9 * # a b c``, with its TON and NPI; for TON
    ALPHANUMERIC, ``digits`` is the text (GSM 7-bit default alphabet, at most 11 characters).

    Building one that cannot be encoded raises ProtocolError (as the other dmsim encoders do).
    """

    digits: str
    ton: int = Ton.UNKNOWN
    npi: int = Npi.ISDN

    def __post_init__(self) -> None:
        if not 0 <= self.ton <= 7 or not 0 <= self.npi <= 15:
            raise ProtocolError(f"SMS address TON {self.ton} / NPI {self.npi} out of range")
        if self.ton == Ton.ALPHANUMERIC:
            if len(gsm7.encode_text(self.digits)) > _MAX_SEPTETS:
                raise ProtocolError(f"alphanumeric SMS address {self.digits!r}: "
                                    f"more than {_MAX_SEPTETS} septets")
        elif any(c not in _DIGITS for c in self.digits) or len(self.digits) > _MAX_DIGITS:
            raise ProtocolError(f"SMS address digits {self.digits!r}: "
                                f"expected at most {_MAX_DIGITS} of {_DIGITS!r}")

    @classmethod
    def parse(cls, text: str) -> Address:
        """Return the Address of ``"+4912345"`` (TON international) or ``"12345"`` (TON unknown)."""
        if text.startswith("+"):
            return cls(text[1:], Ton.INTERNATIONAL, Npi.ISDN)
        return cls(text, Ton.UNKNOWN, Npi.ISDN)

    def __str__(self) -> str:
        """Return the digits, prefixed with ``+`` for an international number."""
        return ("+" if self.ton == Ton.INTERNATIONAL else "") + self.digits

    @functools.cached_property
    def octets(self) -> bytes:
        """What ``encode_address`` returns, kept once made (in the instance dict, beside the frozen
        fields): for speed, as a sender puts its own Address in every TPDU."""
        return encode_address(self)


@functools.lru_cache(maxsize=256)  # a sender encodes its own address in every TPDU
def encode_address(address: Address) -> bytes:
    """Return the TP-OA/TP-DA field: length in semi-octets, Type-of-Address, packed digits
    (or, for an alphanumeric address, packed septets)."""
    toa = 0x80 | (address.ton << 4) | address.npi
    if address.ton == Ton.ALPHANUMERIC:
        septets = gsm7.encode_text(address.digits)
        return bytes([(len(septets) * 7 + 3) // 4, toa]) + gsm7.pack(septets)
    nibbles = [_DIGITS.index(c) for c in address.digits]
    if len(nibbles) % 2:
        nibbles.append(0xF)
    packed = bytes(lo | (hi << 4) for lo, hi in zip(nibbles[0::2], nibbles[1::2]))
    return bytes([len(address.digits), toa]) + packed


def decode_address(data: bytes, offset: int = 0, *, what: str = "sms") -> tuple[Address, int]:
    """Return the address starting at ``data[offset]`` and the offset just after it.

    Raises DecodeError(what, ...) when the field is truncated, too long or has a filler nibble
    among its digits.
    """
    if offset + 2 > len(data):
        raise DecodeError(what, offset, "address field truncated", "length and type octets")
    count, toa = data[offset], data[offset + 1]
    if count > _MAX_DIGITS:
        raise DecodeError(what, offset, f"address length {count} semi-octets",
                          f"at most {_MAX_DIGITS}")
    ton, npi = (toa >> 4) & 0x7, toa & 0xF
    start, end = offset + 2, offset + 2 + (count + 1) // 2
    if end > len(data):
        raise DecodeError(what, offset, f"address needs {end - offset} octets, "
                          f"{len(data) - offset} left")
    if ton == Ton.ALPHANUMERIC:
        text = gsm7.decode_text(gsm7.unpack(data[start:end], count * 4 // 7))
        return Address(text, ton, npi), end
    digits = []
    for i in range(count):
        octet = data[start + i // 2]
        nibble = (octet >> 4) if i % 2 else (octet & 0xF)
        if nibble == 0xF:
            raise DecodeError(what, start + i // 2, "filler nibble inside the address digits",
                              "BCD digit 0..E")
        digits.append(_DIGITS[nibble])
    return Address("".join(digits), ton, npi), end
