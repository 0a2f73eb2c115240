"""Command and response APDUs: ISO/IEC 7816-4 §5.1 (command-response pairs), §5.2 (Lc/Le fields).

A command is CLA INS P1 P2, then one of the four cases:

    case 1   no body
    case 2   Le                      short: 1 byte (00 = 256)  extended: 00 + 2 bytes (0000 = 65536)
    case 3   Lc data                 short: Lc 1..255          extended: 00 + Lc 2 bytes (1..65535)
    case 4   Lc data Le              short and short, or extended and extended (never mixed)

``CommandApdu.le`` holds Ne, the number of bytes expected (1..256 short, 1..65536 extended),
or ``None`` when there is no Le field. A response is data followed by SW1 SW2.

Choices: an extended Lc of 0000 is refused (ISO allows it only as the 00 of a case 2E Le); a
body that is not one of the lengths above is refused with the offset of the length byte that
announced the wrong size.
"""
from __future__ import annotations

from typing import NamedTuple

from dmsim.base.errors import DecodeError, ProtocolError


class CommandApdu(NamedTuple):
    """A parsed command APDU (``le`` is Ne, or ``None`` with no Le field); immutable, ``_replace``
    gives a changed copy. (A named tuple: a card parses every command, and a tuple is made in a
    third of a frozen dataclass's time.)"""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None
    extended: bool = False

    @property
    def case(self) -> int:
        """Return the ISO 7816-4 case: 1 (no body), 2 (Le), 3 (Lc data) or 4 (Lc data Le)."""
        return (3 if self.data else 1) + (1 if self.le is not None else 0)

    @property
    def le_is_max(self) -> bool:
        """Return whether Le was written as 00 (0000 extended): "as many bytes as available"."""
        return self.le == (65536 if self.extended else 256)

    @classmethod
    def parse(cls, raw: bytes) -> CommandApdu:
        """Return the command in ``raw``; raises ``DecodeError("apdu", offset, ...)``."""
        return parse_command(raw)

    def to_bytes(self) -> bytes:
        """Return the APDU as bytes (extended length fields if ``extended``)."""
        return build_command(self.cla, self.ins, self.p1, self.p2, self.data, self.le, extended=self.extended)


def _header_error(cla: int, ins: int, p1: int, p2: int) -> ProtocolError:
    name, v = next((n, v) for n, v in (("CLA", cla), ("INS", ins), ("P1", p1), ("P2", p2)) if not 0 <= v <= 0xFF)
    return ProtocolError(f"{name} = {v} does not fit a byte")


def parse_command(raw: bytes) -> CommandApdu:
    """Return the ``CommandApdu`` in ``raw`` (cases 1-4, short or extended lengths)."""
    raw = bytes(raw)
    n = len(raw)
    if n < 4:
        raise DecodeError("apdu", n, f"a command has a 4-byte header, got {n} byte(s)", "CLA INS P1 P2")
    cla, ins, p1, p2 = raw[0], raw[1], raw[2], raw[3]
    if n == 4:
        return CommandApdu(cla, ins, p1, p2)
    if n == 5:
        return CommandApdu(cla, ins, p1, p2, le=raw[4] or 256)
    if raw[4] != 0:  # short Lc
        lc = raw[4]
        if n == 5 + lc:
            return CommandApdu(cla, ins, p1, p2, raw[5:])
        if n == 6 + lc:
            return CommandApdu(cla, ins, p1, p2, raw[5:5 + lc], le=raw[-1] or 256)
        raise DecodeError("apdu", 4, f"Lc = {lc} but {n - 5} byte(s) follow", f"{lc} or {lc + 1} bytes after Lc")
    if n == 6:
        raise DecodeError("apdu", 4, "an extended length field needs 3 bytes, 2 follow", "00 and 2 length bytes")
    ext = (raw[5] << 8) | raw[6]
    if n == 7:
        return CommandApdu(cla, ins, p1, p2, le=ext or 65536, extended=True)
    if ext == 0:
        raise DecodeError("apdu", 5, "extended Lc = 0 with a body after it", "Lc from 1 to 65535")
    if n == 7 + ext:
        return CommandApdu(cla, ins, p1, p2, raw[7:], extended=True)
    if n == 9 + ext:
        le = (raw[-2] << 8) | raw[-1]
        return CommandApdu(cla, ins, p1, p2, raw[7:7 + ext], le=le or 65536, extended=True)
    raise DecodeError("apdu", 5, f"extended Lc = {ext} but {n - 7} byte(s) follow",
                      f"{ext} or {ext + 2} bytes after Lc")


def build_command(cla: int, ins: int, p1: int, p2: int, data: bytes = b"", le: int | None = None, *,
                  extended: bool = False) -> bytes:
    """Return a command APDU; ``le`` is Ne (256 is written 00, 65536 is written 0000).

    Lengths that do not fit short fields switch to extended ones; out-of-range values raise
    ``ProtocolError``."""
    data = bytes(data)
    if (cla | ins | p1 | p2) & ~0xFF:  # a negative value has bits above 0xFF too
        raise _header_error(cla, ins, p1, p2)
    if len(data) > 65535 or (le is not None and not 1 <= le <= 65536):
        raise ProtocolError(f"Lc = {len(data)} / Le = {le} out of range (Lc <= 65535, 1 <= Le <= 65536)")
    extended = extended or len(data) > 255 or (le is not None and le > 256)
    out = bytes((cla, ins, p1, p2))
    if extended:
        if data:
            out += b"\x00" + len(data).to_bytes(2, "big") + data
        if le is not None:
            out += (b"" if data else b"\x00") + (le % 65536).to_bytes(2, "big")
    else:
        if data:
            out += bytes((len(data),)) + data
        if le is not None:
            out += bytes((le % 256,))
    return out


def response(data: bytes, sw: int) -> bytes:
    """Return a response APDU: ``data`` then SW1 SW2."""
    return bytes(data) + int(sw).to_bytes(2, "big")


def split_response(raw: bytes) -> tuple[bytes, int]:
    """Return (data, SW) of a response APDU; raises ``DecodeError`` below 2 bytes."""
    if len(raw) < 2:
        raise DecodeError("response apdu", len(raw), "a response ends with SW1 SW2", "at least 2 bytes")
    return bytes(raw[:-2]), (raw[-2] << 8) | raw[-1]
