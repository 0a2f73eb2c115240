"""The CoAP message: RFC 7252 §3 (format), §5.10 (options), §12 (codes, option numbers, formats).

One datagram is one message::

    Ver(2) T(2) TKL(4) | Code(8) | Message ID(16) | Token (TKL bytes) | Options | 0xFF Payload

Options are (number, value) pairs in number order; each is coded as a delta from the previous
number and a length, each a nibble with the 13/14 extensions of §3.1. :class:`Message` keeps them
as a tuple of ``(number, bytes)`` so that repeated options (Uri-Path, Uri-Query) and unknown ones
survive a round trip untouched.

Every malformed datagram is a :class:`~dmsim.base.errors.DecodeError` naming the byte offset:
a version other than 1, a token length of 9-15 (§3: "MUST be processed as a message format
error"), a nibble of 15 outside the payload marker, an option running past the end, a payload
marker with no payload after it (§3), an Empty message (code 0.00) with a token, options or a
payload (§4.1).

Choices where the RFC leaves room: the encoder sorts options by number and keeps the order of
repeated ones (§5.4.5: their order is significant); uint options are coded in the fewest bytes
(§3.2, a zero is zero bytes); text accessors (``uri_path``...) decode UTF-8 strictly and raise a
DecodeError on bad bytes rather than guess.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum

from dmsim.base.errors import DecodeError

VERSION = 1
PAYLOAD_MARKER = 0xFF
MAX_TOKEN = 8


class Type(IntEnum):
    """Message types, RFC 7252 §3 and §4."""

    CON = 0
    NON = 1
    ACK = 2
    RST = 3


def code_of(cls: int, detail: int) -> int:
    """Return the code byte ``c.dd`` (RFC 7252 §3: class in the 3 high bits, detail in 5)."""
    return (cls << 5) | detail


class Code(IntEnum):
    """Method and response codes, RFC 7252 §12.1."""

    EMPTY = code_of(0, 0)
    GET = code_of(0, 1)
    POST = code_of(0, 2)
    PUT = code_of(0, 3)
    DELETE = code_of(0, 4)
    CREATED = code_of(2, 1)
    DELETED = code_of(2, 2)
    VALID = code_of(2, 3)
    CHANGED = code_of(2, 4)
    CONTENT = code_of(2, 5)
    BAD_REQUEST = code_of(4, 0)
    UNAUTHORIZED = code_of(4, 1)
    BAD_OPTION = code_of(4, 2)
    FORBIDDEN = code_of(4, 3)
    NOT_FOUND = code_of(4, 4)
    METHOD_NOT_ALLOWED = code_of(4, 5)
    NOT_ACCEPTABLE = code_of(4, 6)
    REQUEST_ENTITY_INCOMPLETE = code_of(4, 8)
    PRECONDITION_FAILED = code_of(4, 12)
    REQUEST_ENTITY_TOO_LARGE = code_of(4, 13)
    UNSUPPORTED_CONTENT_FORMAT = code_of(4, 15)
    INTERNAL_SERVER_ERROR = code_of(5, 0)
    NOT_IMPLEMENTED = code_of(5, 1)
    SERVICE_UNAVAILABLE = code_of(5, 3)


class Option(IntEnum):
    """Option numbers, RFC 7252 §12.2 (Observe: RFC 7641; Block: RFC 7959)."""

    IF_MATCH = 1
    URI_HOST = 3
    ETAG = 4
    IF_NONE_MATCH = 5
    OBSERVE = 6
    URI_PORT = 7
    LOCATION_PATH = 8
    URI_PATH = 11
    CONTENT_FORMAT = 12
    MAX_AGE = 14
    URI_QUERY = 15
    ACCEPT = 17
    LOCATION_QUERY = 20
    BLOCK2 = 23
    BLOCK1 = 27
    SIZE2 = 28
    PROXY_URI = 35
    PROXY_SCHEME = 39
    SIZE1 = 60


class ContentFormat(IntEnum):
    """Content-Format numbers, RFC 7252 §12.3 and the OMA LwM2M registrations."""

    TEXT = 0
    LINK_FORMAT = 40
    OCTET_STREAM = 42
    JSON = 50
    CBOR = 60
    SENML_CBOR = 112
    LWM2M_TLV = 11542
    LWM2M_JSON = 11543


def code_text(code: int) -> str:
    """Return ``code`` as RFC 7252 writes it, e.g. ``"2.05"``."""
    return f"{code >> 5}.{code & 0x1F:02d}"


def is_request(code: int) -> bool:
    """Class 0 with a non-zero detail is a request (§5.8)."""
    return code >> 5 == 0 and code != 0


def uint_value(value: int) -> bytes:
    """Return a uint option value in the fewest bytes (RFC 7252 §3.2)."""
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


@dataclass(frozen=True, slots=True)
class Message:
    """One CoAP message; ``options`` are ``(number, value)`` pairs, repeated numbers allowed."""

    type: int
    code: int
    message_id: int
    token: bytes = b""
    options: tuple[tuple[int, bytes], ...] = ()
    payload: bytes = b""

    def values(self, number: int) -> list[bytes]:
        """Return the values of option ``number``, in message order."""
        return [v for n, v in self.options if n == number]

    def _texts(self, number: int) -> tuple[str, ...]:
        out = []
        for value in self.values(number):
            try:
                out.append(value.decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise DecodeError("coap", exc.start, f"option {number} is not UTF-8",
                                  "UTF-8 text (RFC 7252 §3.2)") from None
        return tuple(out)

    def _uint(self, number: int) -> int | None:
        values = self.values(number)
        if not values:
            return None
        if len(values[0]) > 4:
            raise DecodeError("coap", 0, f"option {number} is {len(values[0])} bytes long",
                              "a uint of 0-4 bytes (RFC 7252 §5.10)")
        return int.from_bytes(values[0], "big")

    @property
    def uri_path(self) -> tuple[str, ...]:
        return self._texts(Option.URI_PATH)

    @property
    def uri_query(self) -> tuple[str, ...]:
        return self._texts(Option.URI_QUERY)

    @property
    def location_path(self) -> tuple[str, ...]:
        return self._texts(Option.LOCATION_PATH)

    @property
    def content_format(self) -> int | None:
        return self._uint(Option.CONTENT_FORMAT)

    @property
    def accept(self) -> int | None:
        return self._uint(Option.ACCEPT)

    @property
    def observe(self) -> int | None:
        return self._uint(Option.OBSERVE)

    @property
    def path(self) -> str:
        """The Uri-Path as one string, ``"/1/0/3"`` (``"/"`` for none)."""
        return "/" + "/".join(self.uri_path)

    @property
    def is_request(self) -> bool:
        return is_request(self.code)

    @property
    def is_empty(self) -> bool:
        return self.code == Code.EMPTY


# -- encoding -----------------------------------------------------------------------------------

MAX_EXTENDED = 269 + 0xFFFF  # 65804: the largest option delta or length §3.1 can code


def _nibble(value: int) -> tuple[int, bytes]:
    """Return the 4-bit field and its extension bytes for an option delta or length (§3.1)."""
    if value < 13:
        return value, b""
    if value < 269:
        return 13, bytes([value - 13])
    if value > MAX_EXTENDED:
        raise ValueError(f"an option delta or length is at most {MAX_EXTENDED}, not {value}")
    return 14, (value - 269).to_bytes(2, "big")


def encode(msg: Message) -> bytes:
    """Return the datagram of ``msg`` (RFC 7252 §3)."""
    if len(msg.token) > MAX_TOKEN:
        raise ValueError(f"a CoAP token is at most {MAX_TOKEN} bytes, not {len(msg.token)}")
    out = bytearray(((VERSION << 6) | (msg.type << 4) | len(msg.token), msg.code))
    out += msg.message_id.to_bytes(2, "big")
    out += msg.token
    previous = 0
    for number, value in sorted(msg.options, key=lambda o: o[0]):
        delta, delta_ext = _nibble(number - previous)
        length, length_ext = _nibble(len(value))
        out.append((delta << 4) | length)
        out += delta_ext + length_ext + value
        previous = number
    if msg.payload:
        out.append(PAYLOAD_MARKER)
        out += msg.payload
    return bytes(out)


# -- decoding -----------------------------------------------------------------------------------

def _extended(data: bytes, at: int, nibble: int, what: str, head: int) -> tuple[int, int]:
    """Return (value, next offset) of an option delta or length nibble and its extension (§3.1);
    ``head`` is the offset of the option's first byte, where a reserved nibble is reported."""
    if nibble < 13:
        return nibble, at
    if nibble == 15:
        raise DecodeError("coap", head, f"option {what} nibble 15 outside the payload marker",
                          "0-14 (RFC 7252 §3.1: 15 is reserved)")
    size = 1 if nibble == 13 else 2
    if at + size > len(data):
        raise DecodeError("coap", at, f"option {what} extension runs past the end", f"{size} more byte(s)")
    return int.from_bytes(data[at:at + size], "big") + (13 if size == 1 else 269), at + size


def _options(data: bytes, at: int) -> tuple[tuple[tuple[int, bytes], ...], int]:
    """Return the options from ``at`` and the offset of the payload marker (or the end)."""
    options = []
    number = 0
    end = len(data)
    while at < end and data[at] != PAYLOAD_MARKER:
        head = at
        delta, at = _extended(data, at + 1, data[head] >> 4, "delta", head)
        length, at = _extended(data, at, data[head] & 0x0F, "length", head)
        if at + length > end:
            raise DecodeError("coap", at, f"option {number + delta} value of {length} bytes runs past the end",
                              f"at most {end - at} bytes")
        number += delta
        options.append((number, data[at:at + length]))
        at += length
    return tuple(options), at


def decode(data: bytes) -> Message:
    """Parse one datagram into a :class:`Message` or raise DecodeError (RFC 7252 §3, §4.1)."""
    data = bytes(data)
    if len(data) < 4:
        raise DecodeError("coap", len(data), f"{len(data)} bytes is shorter than the header", "at least 4 bytes")
    first = data[0]
    if first >> 6 != VERSION:
        raise DecodeError("coap", 0, f"version {first >> 6}", "version 1 (RFC 7252 §3)")
    tkl = first & 0x0F
    if tkl > MAX_TOKEN:
        raise DecodeError("coap", 0, f"token length {tkl}", "0-8 (RFC 7252 §3)")
    if 4 + tkl > len(data):
        raise DecodeError("coap", 4, f"token of {tkl} bytes runs past the end", f"at most {len(data) - 4} bytes")
    code = data[1]
    if code == Code.EMPTY and len(data) > 4:
        raise DecodeError("coap", 4, "an Empty message (0.00) carries a token, options or a payload",
                          "nothing after the Message ID (RFC 7252 §4.1)")
    options, at = _options(data, 4 + tkl)
    payload = b""
    if at < len(data):  # the payload marker
        payload = data[at + 1:]
        if not payload:
            raise DecodeError("coap", at, "payload marker with no payload", "a payload after 0xFF (RFC 7252 §3)")
    return Message(type=(first >> 4) & 0x03, code=code, message_id=int.from_bytes(data[2:4], "big"),
                   token=data[4:4 + tkl], options=options, payload=payload)


# -- building -----------------------------------------------------------------------------------

def path_options(path: str | Sequence[str], number: int = Option.URI_PATH) -> list[tuple[int, bytes]]:
    """Return Uri-Path (or Location-Path) options of ``"/1/0"`` or ``("1", "0")`` (RFC 7252 §6.4)."""
    segments = [s for s in path.split("/") if s] if isinstance(path, str) else list(path)
    return [(number, s.encode("utf-8")) for s in segments]


def request(code: int, path: str | Sequence[str], *, message_id: int, token: bytes = b"",
            type: int = Type.CON, query: Iterable[str] = (), payload: bytes = b"",
            content_format: int | None = None, options: Iterable[tuple[int, bytes]] = ()) -> Message:
    """Return a request for ``path`` with its Uri-Query parameters (e.g. ``"ep=name"``)."""
    opts = path_options(path) + [(Option.URI_QUERY, q.encode("utf-8")) for q in query]
    if content_format is not None:
        opts.append((Option.CONTENT_FORMAT, uint_value(content_format)))
    opts += list(options)
    return Message(type=type, code=code, message_id=message_id, token=token, options=tuple(opts), payload=payload)


def response(req: Message, code: int, *, payload: bytes = b"", content_format: int | None = None,
             options: Iterable[tuple[int, bytes]] = (), message_id: int | None = None) -> Message:
    """Return the response to ``req``: piggybacked in the ACK of a CON (§5.2.1), else a NON with
    ``message_id`` (§5.2.3: a response to a NON is a NON of its own Message ID)."""
    opts = list(options)
    if content_format is not None:
        opts.append((Option.CONTENT_FORMAT, uint_value(content_format)))
    if req.type == Type.CON:
        return Message(Type.ACK, code, req.message_id, req.token, tuple(opts), payload)
    if message_id is None:
        raise ValueError("a response to a NON needs a Message ID of its own")
    return Message(Type.NON, code, message_id, req.token, tuple(opts), payload)


def empty_ack(msg: Message) -> Message:
    """Return the Empty ACK of a CON (§4.2)."""
    return Message(Type.ACK, Code.EMPTY, msg.message_id)


def reset(msg: Message) -> Message:
    """Return the RST of a message that cannot be processed (§4.2, §4.3)."""
    return Message(Type.RST, Code.EMPTY, msg.message_id)


def ping(message_id: int) -> Message:
    """Return a CoAP ping: an Empty CON, answered by a RST (§4.3)."""
    return Message(Type.CON, Code.EMPTY, message_id)
