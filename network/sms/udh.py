"""SMS User Data Header: 3GPP TS 23.040 §9.2.3.24.

The UDH is UDHL (one octet: length of what follows) then information elements, each IEI,
IEDL, data. Three IEs have typed views here, as the bootstrap push needs them:
IEI 00 concatenation with an 8-bit reference (§9.2.3.24.1), IEI 08 the same with a 16-bit
reference (§9.2.3.24.8) and IEI 05 application ports with 16-bit addresses (§9.2.3.24.4).
Other IEs are kept as opaque InformationElement values.

Decode checks the lengths and the typed IEs' contents and raises DecodeError("udh", ...)
with the offset counted from the UDHL octet (plus ``base`` when given). An empty IE list
encodes to no header at all; the caller sets TP-UDHI from ``bool(ies)``.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Iterable

from dmsim.base.errors import DecodeError, ProtocolError
from dmsim.network.memo import Memo

IEI_CONCAT_8BIT = 0x00
IEI_PORTS_16BIT = 0x05
IEI_CONCAT_16BIT = 0x08


@dataclass(frozen=True)
class InformationElement:
    """One UDH information element: its IEI and the data octets (without IEI/IEDL)."""

    iei: int
    data: bytes

    def encode(self) -> bytes:
        """Return IEI, IEDL and data; ProtocolError if the IEI or the length does not fit."""
        return self.octets

    @functools.cached_property
    def octets(self) -> bytes:
        """What ``encode`` returns, kept once made (in the instance dict, beside the frozen
        fields): for speed, as the IEs of a fleet's SMS are shared instances."""
        iei, data = self.iei, self.data
        if not 0 <= iei <= 0xFF or len(data) > 0xFF:
            raise ProtocolError(f"UDH IE {iei} with {len(data)} octets does not fit")
        return bytes((iei, len(data))) + data


@dataclass(frozen=True)
class Concat:
    """A concatenation IE: reference, total parts, this part's 1-based sequence number.

    ``ref16`` picks IEI 08 (16-bit reference) instead of IEI 00 (8-bit reference).
    """

    ref: int
    total: int
    seq: int
    ref16: bool = False

    def to_ie(self) -> InformationElement:
        """Return the IE; ProtocolError if a field is out of range."""
        ref_bytes = 2 if self.ref16 else 1
        if not (0 <= self.ref < 1 << (8 * ref_bytes) and 1 <= self.total <= 255
                and 1 <= self.seq <= self.total):
            raise ProtocolError(f"concatenation IE {self} out of range")
        iei = IEI_CONCAT_16BIT if self.ref16 else IEI_CONCAT_8BIT
        return InformationElement(iei, self.ref.to_bytes(ref_bytes, "big")
                                  + bytes([self.total, self.seq]))


@dataclass(frozen=True)
class Ports:
    """An application port addressing IE with 16-bit ports (IEI 05)."""

    dest: int
    src: int

    def to_ie(self) -> InformationElement:
        """Return the IE; ProtocolError if a port is not 0..65535."""
        if not (0 <= self.dest <= 0xFFFF and 0 <= self.src <= 0xFFFF):
            raise ProtocolError(f"port IE {self} out of range")
        return InformationElement(IEI_PORTS_16BIT, self.dest.to_bytes(2, "big")
                                  + self.src.to_bytes(2, "big"))


def _check_concat(data: bytes, offset: int) -> None:
    """Raise DecodeError unless the concatenation IE data (at ``offset``) has a valid part."""
    total, seq = data[-2], data[-1]
    if total == 0:
        raise DecodeError("udh", offset + len(data) - 2, "concatenation with 0 parts",
                          "total 1..255")
    if not 1 <= seq <= total:
        raise DecodeError("udh", offset + len(data) - 1, f"concatenation part {seq} of {total}",
                          f"sequence 1..{total}")


def _concat(data: bytes) -> Concat:
    return Concat(int.from_bytes(data[:-2], "big"), data[-2], data[-1], len(data) == 4)


def _ports(data: bytes) -> Ports:
    return Ports(int.from_bytes(data[:2], "big"), int.from_bytes(data[2:], "big"))


# IEI -> (required IEDL, check of the data given its offset or None, builder of the typed view);
# data, not branches. decode_udh only checks; the views are built when find_* asks for them.
_TYPED: dict[int, tuple[int, Callable[[bytes, int], None] | None, Callable[[bytes], object]]] = {
    IEI_CONCAT_8BIT: (3, _check_concat, _concat),
    IEI_CONCAT_16BIT: (4, _check_concat, _concat),
    IEI_PORTS_16BIT: (4, None, _ports),
}


def _check_typed(iei: int, data: bytes, offset: int) -> None:
    """Raise DecodeError if a typed IE's data is malformed; ``offset`` is where its IEI is."""
    want, check, _ = _TYPED[iei]
    if len(data) != want:
        raise DecodeError("udh", offset + 1, f"IE {iei:#04x} length {len(data)}", str(want))
    if check is not None:
        check(data, offset + 2)


# Fast path, for speed: (IEI, data) of typed IEs already checked -> their typed view. Views are
# immutable, so one serves every IE with those octets.
_VIEWS: Memo[tuple[int, bytes], object] = Memo(16384)


def _typed_view(ie: InformationElement, offset: int) -> object:
    """Return the typed view of ``ie`` (None for an untyped IEI); DecodeError if malformed.

    ``offset`` is where the IE's IEI octet is.
    """
    iei, data = ie.iei, ie.data
    key = (iei, data)
    view = _VIEWS.get(key) if data.__class__ is bytes else None  # bytearray data is no key
    if view is None:
        typed = _TYPED.get(iei)
        if typed is None:
            return None
        _check_typed(iei, data, offset)
        view = _VIEWS.remember((iei, bytes(data)), typed[2](data))
    return view


def encode_udh(ies: Iterable[InformationElement]) -> bytes:
    """Return UDHL followed by the encoded IEs, or b"" for no IEs."""
    body = b"".join([ie.octets for ie in ies])
    if not body:
        return b""
    if len(body) > 0xFF:
        raise ProtocolError(f"UDH of {len(body)} octets does not fit UDHL")
    return bytes([len(body)]) + body


# Fast path, for speed: UDHs already decoded (UDHL and IEs) -> their checked IEs. A fleet's SMS
# carry few distinct headers, and IEs are immutable, so one tuple serves every UDH with those
# octets. Sized for every (reference, part) of a concatenated push at 256 references.
_KNOWN_UDHS: Memo[bytes, tuple[InformationElement, ...]] = Memo(16384)


def decode_udh(user_data: bytes, *, base: int = 0) -> tuple[list[InformationElement], bytes]:
    """Return the IEs of the UDH at the start of ``user_data`` and the octets after it.

    Typed IEs (00, 05, 08) are checked by ``_TYPED``; errors carry ``base`` + offset.
    """
    data = bytes(user_data)  # slices of bytes are bytes: no copy per IE
    ies, end = read_udh(data, base=base)
    return list(ies), data[end:]


def read_udh(data: bytes, *, base: int = 0) -> tuple[tuple[InformationElement, ...], int]:
    """Return the IEs of the UDH at the start of ``data`` (bytes) and the offset after the UDH;
    what ``decode_udh`` returns, without copying the octets after it."""
    if not data:
        raise DecodeError("udh", base, "user data is empty", "a UDHL octet")
    end = 1 + data[0]
    if end > len(data):
        raise DecodeError("udh", base, f"UDHL {data[0]} beyond {len(data) - 1} octets of data")
    header = data[:end]
    ies = _KNOWN_UDHS.get(header)
    if ies is None:
        ies = _KNOWN_UDHS.remember(header, _read_ies(header, base))
    return ies, end


def _read_ies(header: bytes, base: int) -> tuple[InformationElement, ...]:
    """Return the IEs of ``header`` (UDHL and the octets it counts), checked."""
    end = len(header)
    ies: list[InformationElement] = []
    pos = 1
    while pos < end:
        if pos + 2 > end:
            raise DecodeError("udh", base + pos, "IE header cut by UDHL", "IEI and IEDL")
        iei, iedl = header[pos], header[pos + 1]
        data_start = pos + 2
        if data_start + iedl > end:
            raise DecodeError("udh", base + pos + 1, f"IE {iei:#04x} length {iedl} beyond UDHL",
                              f"at most {end - data_start}")
        ie_data = header[data_start:data_start + iedl]
        if iei in _TYPED:
            _check_typed(iei, ie_data, base + pos)
        ies.append(InformationElement(iei, ie_data))
        pos = data_start + iedl
    return tuple(ies)


def find_concat(ies: Iterable[InformationElement]) -> Concat | None:
    """Return the last concatenation IE (8- or 16-bit reference) of ``ies``, or None.

    TS 23.040 §9.2.3.24: when an IE that may occur once is repeated, the last one is used.
    A malformed one raises DecodeError("udh", 0, ...).
    """
    found = None
    for ie in ies:
        if ie.iei in (IEI_CONCAT_8BIT, IEI_CONCAT_16BIT):
            found = _typed_view(ie, 0)
    return found


def find_ports(ies: Iterable[InformationElement]) -> Ports | None:
    """Return the last 16-bit application port IE of ``ies``, or None (DecodeError if malformed)."""
    found = None
    for ie in ies:
        if ie.iei == IEI_PORTS_16BIT:
            found = _typed_view(ie, 0)
    return found
