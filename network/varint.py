"""The WAP multi-byte unsigned integer: WBXML's ``mb_u_int32`` (WAP-192-WBXML §5.1) and WSP's
``uintvar`` (WAP-230-WSP §8.1.2) are the same encoding: 7 bits per octet, most significant
first, the high bit set on every octet but the last, at most 32 bits.
"""
from __future__ import annotations

from dmsim.base.errors import ProtocolError


def encode_varint32(value: int) -> bytes:
    """Return ``value`` (0..2**32-1) as a WAP multi-byte integer; ProtocolError out of range."""
    if not 0 <= value <= 0xFFFFFFFF:
        raise ProtocolError(f"multi-byte integer {value} out of 0..2^32-1")
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))
