"""SyncML DM over HTTP/1.1 (OMA SyncML HTTP binding): the request and response bytes that cross
the simulated IP link, so that sizes and contents are those of a real exchange.

Only what a DM exchange uses: POST with Content-Length (no chunked encoding), the binding's
mandatory headers (Cache-Control: no-store, Accept, Accept-Charset). Malformed bytes raise
DecodeError with the offset of the bad part. The real-socket server (``http_server.py``) uses
the standard library's HTTP server instead; both hand the same body to the same server core.
"""
from __future__ import annotations

from dataclasses import dataclass

from dmsim.sim.errors import DecodeError

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 415: "Unsupported Media Type",
            500: "Internal Server Error", 503: "Service Unavailable"}


@dataclass(frozen=True)
class HttpMessage:
    """A parsed request (``start`` = method and path) or response (``start`` = status code)."""

    start: str
    headers: dict[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


def encode_request(host: str, path: str, body: bytes, content_type: str, user_agent: str = "dmsim") -> bytes:
    """Return an HTTP/1.1 POST carrying a SyncML DM message."""
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\nAccept: {content_type}\r\n"
            f"Accept-Charset: utf-8\r\nUser-Agent: {user_agent}\r\n\r\n")
    return head.encode("ascii") + body


def encode_response(status: int, body: bytes, content_type: str) -> bytes:
    """Return an HTTP/1.1 response carrying ``body``."""
    head = (f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\n\r\n")
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
