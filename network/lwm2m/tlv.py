"""OMA-TLV, the LwM2M binary content format 11542 (OMA-TS-LightweightM2M-V1_0 §6.4.3).

One TLV is ``Type(8) | Identifier(8 or 16) | Length(0-24) | Value``; the type byte holds:

* bits 7-6: 00 Object Instance, 01 Resource Instance, 10 Multiple Resource, 11 Resource with Value;
* bit 5: the identifier is 16 bits (else 8);
* bits 4-3: the length is in bits 2-0 (00) or in the next 1, 2 or 3 bytes (01-11).

Object Instances contain Resources and Multiple Resources; Multiple Resources contain Resource
Instances; the other two carry a value. :func:`decode` is strict and bounded: every length is
checked against what remains of its parent (DecodeError with the byte offset), the nesting is the
one above (so the depth is at most 3), a parent's children have distinct identifiers, and at most
``max_items`` TLVs are decoded. Typed values (§6.4.3 table, Appendix C): integers and time are
signed big-endian in 1, 2, 4 or 8 bytes, floats 4 or 8 bytes IEEE 754, booleans one byte 0/1,
strings UTF-8, object links 2+2 bytes.

Choices: the encoder always uses the shortest identifier and length forms; the decoder also takes
longer ones (§6.4.3 does not require the shortest). An integer is encoded in the fewest of 1, 2, 4
and 8 bytes; a float in 4 bytes when that keeps it exactly, else 8.
"""
from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from dmsim.base.errors import DecodeError
from dmsim.network.lwm2m.objects import ResourceType

WHAT = "lwm2m-tlv"
MAX_ITEMS = 4096


class TlvType(IntEnum):
    OBJECT_INSTANCE = 0
    RESOURCE_INSTANCE = 1
    MULTIPLE_RESOURCE = 2
    RESOURCE_VALUE = 3


_CHILDREN = {TlvType.OBJECT_INSTANCE: (TlvType.RESOURCE_VALUE, TlvType.MULTIPLE_RESOURCE),
             TlvType.MULTIPLE_RESOURCE: (TlvType.RESOURCE_INSTANCE,)}


@dataclass(frozen=True, slots=True)
class Tlv:
    """One TLV: ``value`` is bytes for a resource (instance), a tuple of children otherwise.
    ``offset`` is where the value starts in the decoded buffer (0 when built)."""

    type: TlvType
    id: int
    value: bytes | tuple[Tlv, ...]
    offset: int = field(default=0, compare=False)

    @property
    def children(self) -> tuple[Tlv, ...]:
        return self.value if isinstance(self.value, tuple) else ()


def resource(rid: int, value: bytes) -> Tlv:
    return Tlv(TlvType.RESOURCE_VALUE, rid, value)


def multiple(rid: int, instances: dict[int, bytes]) -> Tlv:
    return Tlv(TlvType.MULTIPLE_RESOURCE, rid,
               tuple(Tlv(TlvType.RESOURCE_INSTANCE, i, v) for i, v in sorted(instances.items())))


def instance(iid: int, children: Iterable[Tlv]) -> Tlv:
    return Tlv(TlvType.OBJECT_INSTANCE, iid, tuple(children))


# -- framing --------------------------------------------------------------------------------------

def _encode_one(item: Tlv) -> bytes:
    if not 0 <= item.id <= 0xFFFF:
        raise ValueError(f"TLV identifier {item.id} is out of 0-65535")
    body = encode(item.value) if isinstance(item.value, tuple) else bytes(item.value)
    n = len(body)
    if n >= 1 << 24:
        raise ValueError(f"a TLV value of {n} bytes does not fit 24 length bits")
    head = item.type << 6
    ident = item.id.to_bytes(1 if item.id < 256 else 2, "big")
    if item.id >= 256:
        head |= 0x20
    if n < 8:
        head |= n
        length = b""
    else:
        size = 1 if n < 1 << 8 else 2 if n < 1 << 16 else 3
        head |= size << 3
        length = n.to_bytes(size, "big")
    return bytes([head]) + ident + length + body


def encode(items: Iterable[Tlv]) -> bytes:
    """Return the TLV bytes of ``items`` (a sequence at one level), §6.4.3."""
    return b"".join(_encode_one(t) for t in items)


def decode(data: bytes, *, max_items: int = MAX_ITEMS) -> tuple[Tlv, ...]:
    """Parse one level of TLVs (with their nested children) or raise DecodeError."""
    data = bytes(data)
    budget = [max_items]
    return _decode_level(data, 0, len(data), None, budget)


def _decode_level(data: bytes, at: int, end: int, parent: TlvType | None, budget: list[int]) -> tuple[Tlv, ...]:
    out: list[Tlv] = []
    seen: set[int] = set()
    while at < end:
        start = at
        head = data[at]
        ttype = TlvType(head >> 6)
        if parent is not None and ttype not in _CHILDREN[parent]:
            raise DecodeError(WHAT, start, f"a {ttype.name} inside a {parent.name}",
                              " or ".join(t.name for t in _CHILDREN[parent]) + " (§6.4.3)")
        id_size = 2 if head & 0x20 else 1
        len_size = (head >> 3) & 0x03
        if at + 1 + id_size + len_size > end:
            raise DecodeError(WHAT, start, "TLV header runs past the end",
                              f"{1 + id_size + len_size} header bytes")
        ident = int.from_bytes(data[at + 1:at + 1 + id_size], "big")
        at += 1 + id_size
        if len_size:
            length = int.from_bytes(data[at:at + len_size], "big")
            at += len_size
        else:
            length = head & 0x07
        if at + length > end:
            raise DecodeError(WHAT, at, f"{ttype.name} {ident} value of {length} bytes runs past the end",
                              f"at most {end - at} bytes")
        if ident in seen:
            raise DecodeError(WHAT, start, f"{ttype.name} {ident} appears twice", "distinct identifiers")
        seen.add(ident)
        budget[0] -= 1
        if budget[0] < 0:
            raise DecodeError(WHAT, start, "too many TLVs", "a bounded number of TLVs")
        if ttype in _CHILDREN:
            value: bytes | tuple[Tlv, ...] = _decode_level(data, at, at + length, ttype, budget)
        else:
            value = data[at:at + length]
        out.append(Tlv(ttype, ident, value, at))
        at += length
    return tuple(out)


# -- typed values ---------------------------------------------------------------------------------

def encode_int(value: int) -> bytes:
    for size in (1, 2, 4, 8):
        if -(1 << (8 * size - 1)) <= value < 1 << (8 * size - 1):
            return value.to_bytes(size, "big", signed=True)
    raise ValueError(f"integer {value} does not fit 8 bytes")


def encode_float(value: float) -> bytes:
    short = struct.pack(">f", value) if math.isfinite(value) and abs(value) < 3.4e38 else b""
    if short and struct.unpack(">f", short)[0] == value:
        return short
    return struct.pack(">d", value)


def encode_value(rtype: ResourceType, value: Any) -> bytes:
    """Return the TLV value bytes of a typed value (§6.4.3, Appendix C)."""
    if rtype in (ResourceType.INTEGER, ResourceType.TIME):
        return encode_int(value)
    if rtype == ResourceType.FLOAT:
        return encode_float(value)
    if rtype == ResourceType.BOOLEAN:
        return b"\x01" if value else b"\x00"
    if rtype == ResourceType.STRING:
        return value.encode("utf-8")
    if rtype == ResourceType.OPAQUE:
        return bytes(value)
    if rtype == ResourceType.OBJLNK:
        return value[0].to_bytes(2, "big") + value[1].to_bytes(2, "big")
    raise ValueError(f"{rtype.name} has no value")


def decode_value(rtype: ResourceType, raw: bytes, offset: int = 0) -> Any:
    """Return the typed value of TLV value bytes ``raw`` found at ``offset``, or raise DecodeError."""
    n = len(raw)
    if rtype in (ResourceType.INTEGER, ResourceType.TIME):
        if n not in (1, 2, 4, 8):
            raise DecodeError(WHAT, offset, f"an integer of {n} bytes", "1, 2, 4 or 8 bytes (§6.4.3)")
        return int.from_bytes(raw, "big", signed=True)
    if rtype == ResourceType.FLOAT:
        if n not in (4, 8):
            raise DecodeError(WHAT, offset, f"a float of {n} bytes", "4 or 8 bytes (§6.4.3)")
        return struct.unpack(">f" if n == 4 else ">d", raw)[0]
    if rtype == ResourceType.BOOLEAN:
        if raw not in (b"\x00", b"\x01"):
            raise DecodeError(WHAT, offset, f"boolean {raw.hex()}", "one byte 00 or 01 (§6.4.3)")
        return raw == b"\x01"
    if rtype == ResourceType.STRING:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(WHAT, offset + exc.start, "string is not UTF-8", "UTF-8 (Appendix C)") from None
    if rtype == ResourceType.OPAQUE:
        return bytes(raw)
    if rtype == ResourceType.OBJLNK:
        if n != 4:
            raise DecodeError(WHAT, offset, f"an object link of {n} bytes", "4 bytes (§6.4.3)")
        return int.from_bytes(raw[:2], "big"), int.from_bytes(raw[2:], "big")
    raise DecodeError(WHAT, offset, "a value for an executable resource", "no value")


def find(items: Sequence[Tlv], ident: int) -> Tlv | None:
    return next((t for t in items if t.id == ident), None)
