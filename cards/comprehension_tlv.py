"""COMPREHENSION-TLV data objects of the card application toolkit: ETSI TS 102 223 Annex C
(lengths) and §8 / Annex D (tags with the comprehension-required flag), as ENVELOPEs, proactive
commands and TERMINAL RESPONSEs carry them.

Choices where the spec leaves the receiver some room: a length is one octet (00..7F) or 81
followed by 80..FF (longer ones never fit an APDU); a three-octet tag (7F ...) is skipped like
any unknown tag when ``three_octet_tags`` allows it, else refused.
"""
from __future__ import annotations

from typing import Mapping

from dmsim.base.errors import DecodeError

CR_FLAG = 0x80  # comprehension required (TS 102 223 §8.1)


def read_length(data: bytes, pos: int, what: str) -> tuple[int, int]:
    """Return the length at ``data[pos]`` and the offset after it; DecodeError if malformed."""
    if pos >= len(data):
        raise DecodeError(what, pos, "truncated before a length", "a length octet")
    first = data[pos]
    if first < 0x80:
        return first, pos + 1
    if first != 0x81 or pos + 1 >= len(data) or data[pos + 1] < 0x80:
        raise DecodeError(what, pos, f"length coding {data[pos:pos + 2].hex()}", "00..7F or 81 80..FF")
    return data[pos + 1], pos + 2


def parse_tlvs(data: bytes, pos: int, known: Mapping[int, str], what: str, *,
               three_octet_tags: bool = False) -> dict[int, tuple[int, bytes]]:
    """Return tag (CR flag cleared) -> (value offset, value) of the ``known`` TLVs from ``pos``.

    An unknown tag is skipped unless its CR flag is set (DecodeError then, TS 102 223 §6.10);
    a repeated known tag is a DecodeError.
    """
    found: dict[int, tuple[int, bytes]] = {}
    while pos < len(data):
        tag_at = pos
        first = data[pos]
        if first in (0x00, 0x80, 0xFF) or (first == 0x7F and not three_octet_tags):
            raise DecodeError(what, pos, f"tag {first:#04x}", "a COMPREHENSION-TLV tag")
        if first == 0x7F:
            if pos + 3 > len(data):
                raise DecodeError(what, pos, "three-octet tag truncated")
            tag, cr, pos = -1, bool(data[pos + 1] & CR_FLAG), pos + 3
        else:
            tag, cr, pos = first & 0x7F, bool(first & CR_FLAG), pos + 1
        length, pos = read_length(data, pos, what)
        if pos + length > len(data):
            raise DecodeError(what, tag_at, f"TLV of {length} octets beyond the data", f"at most {len(data) - pos}")
        if tag not in known:
            if cr:
                raise DecodeError(what, tag_at, f"unknown tag {first:#04x} with comprehension required")
        elif tag in found:
            raise DecodeError(what, tag_at, f"{known[tag]} TLV repeated")
        else:
            found[tag] = (pos, data[pos:pos + length])
        pos += length
    return found
