"""SyncML DM over HTTP/1.1 (OMA SyncML HTTP binding): the request and response bytes that cross
the simulated IP link, so that sizes and contents are those of a real exchange.

Only what a DM exchange uses: POST with Content-Length (no chunked encoding), the binding's
mandatory headers (Cache-Control: no-store, Accept, Accept-Charset), and extra headers both ways
(the ``x-syncml-hmac`` of OMA-TS-DM_Security §5.6.1.1 travels as one). Malformed bytes raise
DecodeError with the offset of the bad part; an extra header that cannot be written (CR, LF or
non-ASCII, a name with separators, or one of the headers this module writes itself) raises
ProtocolError. The real-socket server (``http_server.py``) uses
the standard library's HTTP server instead; both hand the same body to the same server core.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

from dmsim.base.errors import DecodeError, ProtocolError

_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            411: "Length Required",
            413: "Payload Too Large", 415: "Unsupported Media Type", 500: "Internal Server Error",
            503: "Service Unavailable"}
_OWN = frozenset({"host", "content-type", "content-length", "cache-control", "accept", "accept-charset",
                  "user-agent"})
TOKEN_SPECIALS = frozenset('()<>@,;:\\"/[]?={} \t')  # RFC 2616 §2.2 separators
# RFC 2616 §2.2 token characters: visible ASCII (0x21-0x7E) that is not a separator. A set and a
# pattern made from it, for speed: is_token_char runs per character of every HMAC header.
_TOKEN_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F)) - TOKEN_SPECIALS
_TOKEN = re.compile("[" + re.escape("".join(sorted(_TOKEN_CHARS))) + "]+")


def is_token_char(ch: str) -> bool:
    """Return True for an RFC 2616 §2.2 token character (visible ASCII that is not a separator)."""
    return ch in _TOKEN_CHARS


@dataclass(frozen=True)
class HttpMessage:
    """A parsed request (``start`` = method and path) or response (``start`` = status code)."""

    start: str
    headers: dict[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


def _extra(headers: Mapping[str, str] | None) -> str:
    """Return the header lines of ``headers``; ProtocolError for one that cannot be written."""
    lines = []
    for name, value in (headers or {}).items():
        if not _TOKEN.fullmatch(name) or name.lower() in _OWN:
            raise ProtocolError(f"HTTP header name {name!r} cannot be added")
        if not value.isascii() or not value.replace("\t", " ").isprintable():  # tab is allowed
            raise ProtocolError(f"HTTP header {name} value {value!r} is not printable ASCII")
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines)


def encode_request(host: str, path: str, body: bytes, content_type: str, user_agent: str = "dmsim",
                   headers: Mapping[str, str] | None = None) -> bytes:
    """Return an HTTP/1.1 POST carrying a SyncML DM message, with the extra ``headers``."""
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\nAccept: {content_type}\r\n"
            f"Accept-Charset: utf-8\r\nUser-Agent: {user_agent}\r\n{_extra(headers)}\r\n")
    return head.encode("ascii") + body


def encode_response(status: int, body: bytes, content_type: str, headers: Mapping[str, str] | None = None) -> bytes:
    """Return an HTTP/1.1 response carrying ``body``, with the extra ``headers``."""
    head = (f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\n{_extra(headers)}\r\n")
    return head.encode("ascii") + body


def decode(data: bytes) -> HttpMessage:
    """Return the parsed request or response; DecodeError names the offset of what is wrong."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        raise DecodeError("http", len(data), "no end of header block", "CRLF CRLF")
    try:
        lines = data[:end].decode("ascii").split("\r\n")
    except UnicodeDecodeError as exc:
        raise DecodeError("http", exc.start, "non-ASCII byte in header block") from None
    parts = lines[0].split(" ")
    if len(parts) < 3 or not (parts[0].startswith("HTTP/1.") or parts[2].startswith("HTTP/1.")):
        raise DecodeError("http", 0, f"bad start line {lines[0]!r}", "request or status line")
    start = parts[1] if parts[0].startswith("HTTP/") else f"{parts[0]} {parts[1]}"
    headers: dict[str, str] = {}
    offset = len(lines[0]) + 2
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise DecodeError("http", offset, f"header line without ':' {line!r}", "Name: value")
        headers[name.strip().lower()] = value.strip()
        offset += len(line) + 2
    body = data[end + 4:]
    length = headers.get("content-length")
    if length is not None:
        if not length.isdigit() or int(length) != len(body):
            raise DecodeError("http", end + 4, f"Content-Length {length} but {len(body)} body bytes")
    return HttpMessage(start, headers, body)
