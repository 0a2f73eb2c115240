"""CoRE Link Format, RFC 6690 §2, as LwM2M carries it in Register, Update and Discover
(OMA-TS-LightweightM2M-V1_0 §5.3.1, §5.4.2), e.g. ``</>;rt="oma.lwm2m";ct=11543,</1/0>,</3/0>``.

The grammar (RFC 6690 §2, with RFC 5988 §5 and RFC 5987 §3.2.1 for the generic parameter)::

    Link       = [ link-value *( "," link-value ) ]
    link-value = "<" URI-Reference ">" *( ";" link-param )
    link-param = parmname [ "*" ] [ "=" ( ptoken / quoted-string ) ]

Choices where the RFCs leave room:

* Every parameter is read with the generic link-extension rule above: a value is a ptoken or a
  quoted-string, unquoted here (``\\"`` -> ``"``). The per-parameter grammars (``sz`` a cardinal,
  ``rt`` relation-types...) are left to the user of the value, which is always a ``str``; a
  parameter without ``=`` has the value None. Names are kept as written; order and repeats kept.
* The decoder is strict: no white space anywhere (RFC 6690 allows none), no empty link-value nor
  trailing comma, target characters limited to RFC 3986 URI-Reference characters with valid
  percent-encoding, no control characters in quoted strings (nor in their quoted-pairs),
  UTF-8 checked inside quoted strings (the only place non-ASCII may appear).
* It is bounded: ``max_length`` bytes of input, ``max_links`` links, ``max_params`` parameters a
  link. Every refusal is a :class:`~dmsim.base.errors.DecodeError` with the byte offset.
* The encoder always quotes ``anchor`` and ``title`` (their grammar demands it) and ``rt``, ``if``,
  ``rel``, ``rev`` (as LwM2M writes ``rt="oma.lwm2m"``); other values are quoted only when they are
  not a ptoken. It refuses (ValueError) what the decoder would refuse.
"""
from __future__ import annotations

import string
from collections.abc import Iterable
from dataclasses import dataclass

from dmsim.base.errors import DecodeError

WHAT = "link-format"
_ALNUM = string.ascii_letters + string.digits
_URI_CHARS = frozenset((_ALNUM + "-._~:/?#[]@!$&'()*+,;=%").encode())
_PARMNAME = frozenset((_ALNUM + "!#$&+-.^_`|~").encode())
_PTOKEN = frozenset((_ALNUM + "!#$%&'()*+-./:<=>?@[]^_`{|}~").encode())
_HEX = frozenset(string.hexdigits.encode())
_QUOTED = frozenset({"anchor", "title", "rt", "if", "rel", "rev"})


def _is_ctl(byte: int) -> bool:
    return byte < 0x20 or byte == 0x7F


@dataclass(frozen=True, slots=True)
class Link:
    """One link-value: the target URI-Reference and its ``(name, value-or-None)`` parameters."""

    target: str
    params: tuple[tuple[str, str | None], ...] = ()

    def has(self, name: str) -> bool:
        return any(n == name for n, _ in self.params)

    def get(self, name: str) -> str | None:
        """Return the value of the first parameter ``name`` (None if absent or without value)."""
        return next((v for n, v in self.params if n == name), None)


# -- encoding -----------------------------------------------------------------------------------

def _check_target(target: bytes, at: int) -> None:
    """Raise DecodeError at the first byte of ``target`` that no URI-Reference has (RFC 3986)."""
    i = 0
    while i < len(target):
        if target[i] not in _URI_CHARS:
            raise DecodeError(WHAT, at + i, f"byte {target[i]:#04x} in a link target",
                              "URI-Reference characters (RFC 3986 §2)")
        if target[i] == ord("%"):
            digits = target[i + 1:i + 3]
            if len(digits) != 2 or not set(digits) <= _HEX:
                raise DecodeError(WHAT, at + i, "bad percent-encoding in a link target", "%HH (RFC 3986 §2.1)")
            i += 2
        i += 1


def _quote(value: str) -> str:
    if any(_is_ctl(ord(c)) for c in value):
        raise ValueError(f"control character in link parameter value {value!r}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _param(name: str, value: str | None) -> str:
    bare = name[:-1] if name.endswith("*") else name
    if not bare or not set(bare.encode()) <= _PARMNAME:
        raise ValueError(f"bad link parameter name {name!r} (RFC 5987 attr-char)")
    if value is None:
        return name
    if name in _QUOTED or not value or not set(value.encode()) <= _PTOKEN:
        return f"{name}={_quote(value)}"
    return f"{name}={value}"


def encode_link(link: Link) -> str:
    """Return one link-value, ``</1/0>;ct=11543`` (RFC 6690 §2)."""
    target = link.target.encode("utf-8")
    try:
        _check_target(target, 0)
    except DecodeError as exc:
        raise ValueError(f"bad link target {link.target!r}: {exc.detail}") from None
    return "".join([f"<{link.target}>"] + [";" + _param(n, v) for n, v in link.params])


def encode(links: Iterable[Link]) -> bytes:
    """Return the application/link-format payload of ``links`` (RFC 6690 §2), UTF-8."""
    return ",".join(encode_link(link) for link in links).encode("utf-8")


# -- decoding -----------------------------------------------------------------------------------

class _Parser:
    def __init__(self, data: bytes, max_params: int):
        self.data = data
        self.at = 0
        self.max_params = max_params

    def fail(self, message: str, expected: str = "", at: int | None = None) -> DecodeError:
        return DecodeError(WHAT, self.at if at is None else at, message, expected)

    def peek(self) -> int | None:
        return self.data[self.at] if self.at < len(self.data) else None

    def expect(self, char: str, what: str) -> None:
        got = self.peek()
        if got != ord(char):
            found = "the end" if got is None else repr(chr(got))
            raise self.fail(f"{found} where {what} should be", repr(char))
        self.at += 1

    def span(self, allowed: frozenset[int]) -> bytes:
        start = self.at
        while self.at < len(self.data) and self.data[self.at] in allowed:
            self.at += 1
        return self.data[start:self.at]

    def link(self) -> Link:
        self.expect("<", "a link-value")
        start = self.at
        end = self.data.find(b">", start)
        if end < 0:
            raise self.fail("link target not closed", "'>'", at=len(self.data))
        _check_target(self.data[start:end], start)
        self.at = end + 1
        params = []
        while self.peek() == ord(";"):
            self.at += 1
            if len(params) >= self.max_params:
                raise self.fail(f"more than {self.max_params} parameters in one link")
            params.append(self.param())
        return Link(self.data[start:end].decode("ascii"), tuple(params))

    def param(self) -> tuple[str, str | None]:
        name = self.span(_PARMNAME)
        if not name:
            raise self.fail("empty link parameter name", "parmname (RFC 5987 attr-char)")
        if self.peek() == ord("*"):
            self.at += 1
            name += b"*"
        if self.peek() != ord("="):
            return name.decode("ascii"), None
        self.at += 1
        if self.peek() == ord('"'):
            return name.decode("ascii"), self.quoted()
        value = self.span(_PTOKEN)
        if not value:
            raise self.fail("empty link parameter value", "a ptoken or a quoted-string (RFC 5988 §5)")
        return name.decode("ascii"), value.decode("ascii")

    def quoted(self) -> str:
        start = self.at
        self.at += 1
        out = bytearray()
        while True:
            byte = self.peek()
            if byte is None:
                raise self.fail("quoted string not closed", "'\"'", at=start)
            if byte == ord('"'):
                self.at += 1
                break
            if byte == ord("\\"):
                self.at += 1
                byte = self.peek()
                if byte is None or byte > 0x7F or _is_ctl(byte):
                    raise self.fail("bad quoted-pair", "a backslash and a printable US-ASCII character")
            elif _is_ctl(byte):
                raise self.fail(f"control character {byte:#04x} in a quoted string", "qdtext (RFC 2616 §2.2)")
            out.append(byte)
            self.at += 1
        try:  # quoted-pairs are ASCII: the raw span is valid UTF-8 exactly when ``out`` is
            self.data[start + 1:self.at - 1].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.fail("quoted string is not UTF-8", "UTF-8 text", at=start + 1 + exc.start) from None
        return out.decode("utf-8")


def decode(data: bytes | str, *, max_length: int = 65536, max_links: int = 1024,
           max_params: int = 32) -> tuple[Link, ...]:
    """Parse an application/link-format payload (RFC 6690 §2) or raise DecodeError."""
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if len(raw) > max_length:
        raise DecodeError(WHAT, max_length, f"{len(raw)} bytes of link format", f"at most {max_length}")
    if not raw:
        return ()
    parser = _Parser(raw, max_params)
    links: list[Link] = []
    while True:
        if len(links) >= max_links:
            raise parser.fail(f"more than {max_links} links")
        links.append(parser.link())
        if parser.peek() is None:
            break
        parser.expect(",", "',' between links")
    return tuple(links)
