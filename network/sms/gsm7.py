"""The GSM 7-bit default alphabet: 3GPP TS 23.038 §6.2.1 (table and extension table) and the
packing of septets into octets, §6.1.2.1.1.

Septets are packed least significant bit first: septet ``i`` takes bits ``7*i .. 7*i+6`` of
the octet string read as one little-endian integer.

Choices where the spec leaves room:
- On decode an escape (0x1B) followed by a code the extension table leaves undefined reads as
  the default-table character of that code, as §6.2.1.1 asks of a receiver; a trailing escape
  reads as a space (what the table says for 0x1B to a receiver without the extension).
- On encode a character of neither table raises ProtocolError (no silent '?').
"""
from __future__ import annotations

from dmsim.base.errors import ProtocolError

ESCAPE = 0x1B

# TS 23.038 §6.2.1, the default alphabet by septet value (0x1B is the escape to the extension).
DEFAULT = ("@£$¥èéùìòÇ\nØø\rÅå"
           "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
           " !\"#¤%&'()*+,-./"
           "0123456789:;<=>?"
           "¡ABCDEFGHIJKLMNO"
           "PQRSTUVWXYZÄÖÑÜ§"
           "¿abcdefghijklmno"
           "pqrstuvwxyzäöñüà")

# TS 23.038 §6.2.1.1, the extension table (after an escape).
EXTENSION = {0x0A: "\f", 0x14: "^", 0x28: "{", 0x29: "}", 0x2F: "\\", 0x3C: "[", 0x3D: "~", 0x3E: "]",
             0x40: "|", 0x65: "€"}

_ENCODE = {ch: (code,) for code, ch in enumerate(DEFAULT) if code != ESCAPE}
_ENCODE.update({ch: (ESCAPE, code) for code, ch in EXTENSION.items()})


def pack(septets: bytes) -> bytes:
    """Return ``septets`` (values 0..127) packed into octets (§6.1.2.1.1)."""
    if any(s > 0x7F for s in septets):
        raise ProtocolError("a septet holds a value above 0x7F")
    bits = 0
    for i, septet in enumerate(septets):
        bits |= septet << (7 * i)
    return bits.to_bytes((len(septets) * 7 + 7) // 8, "little")


def unpack(octets: bytes, count: int) -> bytes:
    """Return the first ``count`` septets packed in ``octets`` (§6.1.2.1.1)."""
    bits = int.from_bytes(octets, "little")
    return bytes((bits >> (7 * i)) & 0x7F for i in range(count))


def decode_text(septets: bytes) -> str:
    """Return the text of unpacked ``septets`` (default table and extension, §6.2.1)."""
    out, escaped = [], False
    for septet in septets:
        if escaped:
            out.append(EXTENSION.get(septet, DEFAULT[septet] if septet != ESCAPE else " "))
            escaped = False
        elif septet == ESCAPE:
            escaped = True
        else:
            out.append(DEFAULT[septet])
    if escaped:
        out.append(" ")
    return "".join(out)


def encode_text(text: str) -> bytes:
    """Return the unpacked septets of ``text``; ProtocolError for a character of neither table."""
    out = bytearray()
    for ch in text:
        code = _ENCODE.get(ch)
        if code is None:
            raise ProtocolError(f"{ch!r} is not in the GSM 7-bit default alphabet (TS 23.038 §6.2.1)")
        out += bytes(code)
    return bytes(out)
