"""Connectionless WSP Push PDU: WAP-230-WSP §8.2.4.1, with Content-Type per §8.4.2.24.

PDU = TID, PDU type 0x06, HeadersLen (uintvar, §8.1.2: the length of ContentType and
Headers together), ContentType, Headers, Data. Over SMS it travels in WDP datagrams to
port WAP_PUSH_PORT (2948) from WAP_PUSH_SRC_PORT (9200).

Content-Type encoding chosen by encode_push:
- a media type without parameters that has an assigned number in the OMNA "WSP Content
  Type Numbers" table (0x00..0x54; e.g. 0x42 application/vnd.syncml.dm+wbxml,
  0x43 application/vnd.syncml.dm+xml, 0x44 application/vnd.syncml.notification) is sent as
  a Short-integer (Constrained-media);
- one without parameters and without a number is sent as Extension-Media text;
- one with parameters (anything after ";") is sent as Content-general-form: Value-length,
  then the *whole* string as Extension-Media text. The OMA-TS-DM_Security §5.10.2.3 value
  "application/vnd.syncml.dm+wbxml;NETWORKID;<40 hex digits>" has parameters that are not
  name=value pairs, so they cannot be WSP parameters; sending the string as text keeps it
  byte for byte for the bootstrap HMAC check.

decode_push returns the content type as text either way. It also accepts well-known media
as a Long-integer and untyped (name=value) parameters, rendered as ";name=value". Typed
(well-known) parameters and numbers outside the table raise DecodeError("wsp", ...).
``headers`` are passed through as encoded WSP header octets.
"""
from __future__ import annotations

from dataclasses import dataclass

from dmsim.network.varint import encode_varint32
from dmsim.base.errors import DecodeError, ProtocolError

WAP_PUSH_PORT = 2948
WAP_PUSH_SRC_PORT = 9200
PDU_TYPE_PUSH = 0x06

_LENGTH_QUOTE = 0x1F
_PRINTABLE_ASCII = bytes(range(0x20, 0x7F))
_MAX_UINTVAR_OCTETS = 5

# OMNA WSP Content Type Numbers, well-known values; the index is the assigned number.
WELL_KNOWN_CONTENT_TYPES: tuple[str, ...] = (
    "*/*", "text/*", "text/html", "text/plain",                                   # 0x00
    "text/x-hdml", "text/x-ttml", "text/x-vCalendar", "text/x-vCard",
    "text/vnd.wap.wml", "text/vnd.wap.wmlscript", "text/vnd.wap.wta-event", "multipart/*",
    "multipart/mixed", "multipart/form-data", "multipart/byterantes", "multipart/alternative",
    "application/*", "application/java-vm", "application/x-www-form-urlencoded",  # 0x10
    "application/x-hdmlc", "application/vnd.wap.wmlc", "application/vnd.wap.wmlscriptc",
    "application/vnd.wap.wta-eventc", "application/vnd.wap.uaprof",
    "application/vnd.wap.wtls-ca-certificate", "application/vnd.wap.wtls-user-certificate",
    "application/x-x509-ca-cert", "application/x-x509-user-cert",
    "image/*", "image/gif", "image/jpeg", "image/tiff",
    "image/png", "image/vnd.wap.wbmp", "application/vnd.wap.multipart.*",           # 0x20
    "application/vnd.wap.multipart.mixed", "application/vnd.wap.multipart.form-data",
    "application/vnd.wap.multipart.byteranges", "application/vnd.wap.multipart.alternative",
    "application/xml", "text/xml", "application/vnd.wap.wbxml",
    "application/x-x968-cross-cert", "application/x-x968-ca-cert",
    "application/x-x968-user-cert", "text/vnd.wap.si", "application/vnd.wap.sic",
    "text/vnd.wap.sl",
    "application/vnd.wap.slc", "text/vnd.wap.co", "application/vnd.wap.coc",        # 0x30
    "application/vnd.wap.multipart.related", "application/vnd.wap.sia",
    "text/vnd.wap.connectivity-xml", "application/vnd.wap.connectivity-wbxml",
    "application/pkcs7-mime", "application/vnd.wap.hashed-certificate",
    "application/vnd.wap.signed-certificate", "application/vnd.wap.cert-response",
    "application/xhtml+xml", "application/wml+xml", "text/css",
    "application/vnd.wap.mms-message", "application/vnd.wap.rollover-certificate",
    "application/vnd.wap.locc+wbxml", "application/vnd.wap.loc+xml",                # 0x40
    "application/vnd.syncml.dm+wbxml", "application/vnd.syncml.dm+xml",
    "application/vnd.syncml.notification", "application/vnd.wap.xhtml+xml",
    "application/vnd.wv.csp.cir", "application/vnd.oma.dd+xml",
    "application/vnd.oma.drm.message", "application/vnd.oma.drm.content",
    "application/vnd.oma.drm.rights+xml", "application/vnd.oma.drm.rights+wbxml",
    "application/vnd.wv.csp+xml", "application/vnd.wv.csp+wbxml",
    "application/vnd.syncml.ds.notification", "audio/*",
    "video/*", "application/vnd.oma.dd2+xml", "application/mikey",                  # 0x50
    "application/vnd.oma.dcd", "application/vnd.oma.dcdc",
)
_NUMBER_OF = {name.lower(): number for number, name in enumerate(WELL_KNOWN_CONTENT_TYPES)}


@dataclass(frozen=True)
class PushPdu:
    """A decoded Push PDU: transaction id, content type as text, raw headers, body."""

    tid: int
    content_type: str
    headers: bytes
    body: bytes


encode_uintvar = encode_varint32  # WSP §8.1.2 names it so


def decode_uintvar(data: bytes, pos: int) -> tuple[int, int]:
    """Return the uintvar at ``data[pos]`` and the offset after it (DecodeError if bad)."""
    value = 0
    for i in range(_MAX_UINTVAR_OCTETS):
        if pos + i >= len(data):
            raise DecodeError("wsp", pos + i, "uintvar truncated")
        octet = data[pos + i]
        value = (value << 7) | (octet & 0x7F)
        if not octet & 0x80:
            if value >= 1 << 32:
                raise DecodeError("wsp", pos, f"uintvar {value}", "at most 32 bits")
            return value, pos + i + 1
    raise DecodeError("wsp", pos, "uintvar longer than 5 octets", "at most 5 octets")


def _text(value: str) -> bytes:
    """Return ``value`` as a NUL-terminated Extension-Media/Token-text string."""
    if not value or not (value.isascii() and value.isprintable()):  # i.e. all of 0x20..0x7E
        raise ProtocolError(f"content type {value!r} is not printable ASCII")
    return value.encode("ascii") + b"\x00"


def encode_content_type(content_type: str) -> bytes:
    """Return the Content-type-value for ``content_type`` (see the module docstring)."""
    if ";" not in content_type:
        number = _NUMBER_OF.get(content_type.lower())
        return bytes([0x80 | number]) if number is not None else _text(content_type)
    media = _text(content_type)
    if len(media) < _LENGTH_QUOTE:
        return bytes([len(media)]) + media
    return bytes([_LENGTH_QUOTE]) + encode_uintvar(len(media)) + media


def encode_push(content_type: str, body: bytes, tid: int, headers: bytes = b"") -> bytes:
    """Return the connectionless Push PDU octets; ProtocolError if a field does not fit."""
    if not 0 <= tid <= 0xFF:
        raise ProtocolError(f"WSP TID {tid} is not an octet")
    head = encode_content_type(content_type) + headers
    return bytes([tid, PDU_TYPE_PUSH]) + encode_uintvar(len(head)) + head + body


def _read_text(data: bytes, pos: int, end: int, name: str) -> tuple[str, int]:
    """Return the NUL-terminated ASCII text at ``pos`` (before ``end``) and the offset after it."""
    nul = data.find(b"\x00", pos, end)
    if nul < 0:
        raise DecodeError("wsp", pos, f"{name} has no NUL terminator within its field")
    raw = bytes(data[pos:nul])
    if raw.translate(None, _PRINTABLE_ASCII):  # an octet outside 0x20..0x7E is left
        raise DecodeError("wsp", pos, f"{name} is not printable ASCII")
    return raw.decode("ascii"), nul + 1


def _well_known(number: int, pos: int) -> str:
    if number >= len(WELL_KNOWN_CONTENT_TYPES):
        raise DecodeError("wsp", pos, f"content type number {number:#x} not in the table",
                          f"0x00..{len(WELL_KNOWN_CONTENT_TYPES) - 1:#04x}")
    return WELL_KNOWN_CONTENT_TYPES[number]


def _read_integer(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """Return the Integer-value (Short/Long-integer, §8.4.2.3) at ``pos`` and the next offset."""
    first = data[pos]
    if first & 0x80:
        return first & 0x7F, pos + 1
    if not 1 <= first <= 30 or pos + 1 + first > end:
        raise DecodeError("wsp", pos, f"Long-integer of {first} octets", "1..30 within the field")
    return int.from_bytes(data[pos + 1:pos + 1 + first], "big"), pos + 1 + first


def _read_general_form(data: bytes, pos: int, end: int) -> str:
    """Return Media-type plus untyped parameters filling ``data[pos:end]`` as text."""
    if pos >= end:
        raise DecodeError("wsp", pos, "empty Content-general-form", "a Media-type")
    if data[pos] >= 0x80 or data[pos] < _LENGTH_QUOTE:
        number, pos = _read_integer(data, pos, end)
        text = _well_known(number, pos)
    else:
        text, pos = _read_text(data, pos, end, "Extension-Media")
    while pos < end:
        if data[pos] >= 0x80 or data[pos] < _LENGTH_QUOTE:
            raise DecodeError("wsp", pos, "typed content-type parameter not supported",
                              "an untyped (Token-text) parameter")
        name, pos = _read_text(data, pos, end, "parameter name")
        if pos >= end:
            raise DecodeError("wsp", pos, f"parameter {name!r} has no value")
        if data[pos] >= 0x80 or 1 <= data[pos] <= 30:
            number, pos = _read_integer(data, pos, end)
            value = str(number)
        else:
            value, pos = _read_text(data, pos, end, f"parameter {name!r} value")
        text += f";{name}={value}"
    return text


def decode_content_type(data: bytes, pos: int, end: int) -> tuple[str, int]:
    """Return the Content-type-value at ``data[pos]`` (before ``end``) as text, next offset."""
    if pos >= end:
        raise DecodeError("wsp", pos, "ContentType missing", "a Content-type-value")
    first = data[pos]
    if first & 0x80:
        return _well_known(first & 0x7F, pos), pos + 1
    if first >= 0x20:
        return _read_text(data, pos, end, "Extension-Media")
    if first == _LENGTH_QUOTE:
        length, value_start = decode_uintvar(data, pos + 1)
    else:
        length, value_start = first, pos + 1
    value_end = value_start + length
    if value_end > end:
        raise DecodeError("wsp", pos, f"Value-length {length} beyond the headers",
                          f"at most {end - value_start}")
    return _read_general_form(data, value_start, value_end), value_end


def decode_push(data: bytes) -> PushPdu:
    """Return the PushPdu in ``data``; DecodeError("wsp", ...) if it is not a valid Push PDU."""
    if len(data) < 3:
        raise DecodeError("wsp", len(data), "Push PDU truncated", "TID, PDU type, HeadersLen")
    if data[1] != PDU_TYPE_PUSH:
        raise DecodeError("wsp", 1, f"PDU type {data[1]:#04x}", f"{PDU_TYPE_PUSH:#04x} (Push)")
    headers_len, pos = decode_uintvar(data, 2)
    end = pos + headers_len
    if end > len(data):
        raise DecodeError("wsp", 2, f"HeadersLen {headers_len} beyond the PDU",
                          f"at most {len(data) - pos}")
    content_type, headers_start = decode_content_type(data, pos, end)
    return PushPdu(data[0], content_type, bytes(data[headers_start:end]), bytes(data[end:]))


# X-Wap-Application-Id (WSP Table 39, field name 0x2F, encoding version 1.2): its value is an
# Integer-value (a short code of the OMNA "Push Application ID" registry) or a Uri-value (text).
FIELD_X_WAP_APPLICATION_ID = 0x2F


def encode_application_id(app_id: int | str) -> bytes:
    """Return the X-Wap-Application-Id header octets for a short code or an application URI."""
    if isinstance(app_id, int):
        if not 0 <= app_id <= 0x7F:
            raise ProtocolError(f"application id short code {app_id} does not fit a Short-integer")
        return bytes([0x80 | FIELD_X_WAP_APPLICATION_ID, 0x80 | app_id])
    return bytes([0x80 | FIELD_X_WAP_APPLICATION_ID]) + _text(app_id)


def _skip_value(data: bytes, pos: int, end: int) -> int:
    """Return the offset after the header value at ``pos`` (WSP §8.4.1.2 general value forms)."""
    first = data[pos]
    if first & 0x80:                      # Short-integer
        return pos + 1
    if first == _LENGTH_QUOTE:            # Length-quote, uintvar, data
        length, start = decode_uintvar(data, pos + 1)
    elif first < _LENGTH_QUOTE:           # Short-length, data
        length, start = first, pos + 1
    else:                                 # Text-string (NUL-terminated)
        return _read_text(data, pos, end, "header value")[1]
    if start + length > end:
        raise DecodeError("wsp", pos, f"header value of {length} octets beyond the headers")
    return start + length


def application_id(headers: bytes) -> int | str | None:
    """Return the X-Wap-Application-Id of encoded WSP ``headers`` (short code or URI text), None
    when absent; DecodeError("wsp", offset within ``headers``) for headers that do not parse."""
    pos, end = 0, len(headers)
    while pos < end:
        if headers[pos] & 0x80:           # Well-known-field-name
            field_code, pos = headers[pos] & 0x7F, pos + 1
        else:                             # Application-header: Token-text name
            field_code, pos = None, _read_text(headers, pos, end, "header name")[1]
        if pos >= end:
            raise DecodeError("wsp", pos, "header without a value")
        if field_code == FIELD_X_WAP_APPLICATION_ID:
            if headers[pos] & 0x80 or 1 <= headers[pos] <= 30:
                return _read_integer(headers, pos, end)[0]
            return _read_text(headers, pos, end, "X-Wap-Application-Id")[0]
        pos = _skip_value(headers, pos, end)
    return None
