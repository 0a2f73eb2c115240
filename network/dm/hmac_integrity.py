"""Transport-neutral integrity ``syncml:auth-hmac-sha256``: the ``x-syncml-hmac`` header
(OMA-TS-DM_Security-V1_3 §5.6.1, §5.6.1.1 ABNF, §5.6.1.2 verification), and the same header with
``algorithm=MD5`` for seed 002 §5.4's HMAC-MD5.

mac = B64(HMAC-SHA256(K, Timestamp ":" Msg)), K the AAuthSecret octets, Msg the whole message body
(WBXML or XML) and Timestamp the UTC time ``YYYY-MM-DDThh:mm:ssZ`` sent, as its ASCII text, in the
header. A message whose header is missing, malformed or whose MAC is wrong is rejected; so is one
whose Timestamp is outside a configurable window around ``now``, and one whose MAC was already
accepted (replay). Sans-IO: ``now`` (seconds since the Unix epoch, UTC) is always passed in.

Choices where the spec is silent or contradicts itself (each documented here):

* Separators: the ABNF says a comma-separated ``#rule`` while the example uses ";"; both (and
  empty elements) are accepted, ", " is emitted.
* Quoting: every value may be a quoted-string or bare; ``algorithm`` and ``mac`` are emitted bare
  and ``ServerId``/``Timestamp`` quoted, as the ABNF writes them. Parameter names are
  case-insensitive (RFC 2616 literals); unknown parameters are ignored; a repeated one is an error.
* ``username`` (the DM 1.2 form of the header) is accepted beside ``ServerId`` and kept. A
  header without ``algorithm`` means HMAC-SHA256, the only one DM 1.3 defines.
* ``algorithm=MD5``: seed 002 §5.4 makes transport-neutral integrity "HMAC-MD5 [RFC2104] or
  XML-Signature". We read that literally: mac = B64(HMAC-MD5(K, Timestamp ":" Msg)), the §5.6.1.2
  construction with MD5 as the RFC 2104 hash, same K, header and window. (DM 1.2's nonce-based
  digest, H(B64(H(user:pw)):nonce:B64(H(body))), is not an RFC 2104 HMAC and is not implemented.)
  A verifier accepts only the algorithms it is built with (default HMAC-SHA256 alone), so an MD5
  header sent to a SHA-256 endpoint is ``unsupported_algorithm`` and cannot downgrade it.
* The Timestamp is opaque for the MAC but must have the ``YYYY-MM-DDThh:mm:ssZ`` form to be
  checked against the window; another form is bad syntax, an absent one is ``missing_timestamp``.
* Window defaults: 300 s in the past, 60 s in the future (clock skew). The replay cache keeps an
  accepted (Timestamp, MAC) until its Timestamp leaves the window, after which the window itself
  rejects it, so the cache is bounded by the accepted message rate times the window. It is not
  keyed on ``ServerId``/``username``: the MAC does not cover them, so a replay with an edited
  ServerId must still be recognised as the same message.
"""
from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import heapq
import hmac
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Mapping

from dmsim.network.dm.http_binding import is_token_char
from dmsim.base.errors import DecodeError, ProtocolError

HEADER_NAME = "x-syncml-hmac"
AUTH_HMAC_SHA256 = "syncml:auth-hmac-sha256"
HMAC_SHA256 = "HMAC-SHA256"
HMAC_MD5 = "MD5"  # the token of seed 002 §5.4 / DM 1.2 for HMAC-MD5
HASHES = {HMAC_SHA256: hashlib.sha256, HMAC_MD5: hashlib.md5}  # algorithm token -> RFC 2104 hash
DEFAULT_MAX_AGE = 300.0
DEFAULT_MAX_AHEAD = 60.0

_WHAT = HEADER_NAME
_SEPARATORS = ",;"
_TOKEN_CHARS = re.escape("".join(c for c in map(chr, range(0x80)) if is_token_char(c)))
_BARE_CHARS = _TOKEN_CHARS + "/+="  # a token or a base64-string ("/+=" are not token characters)
_QDTEXT = r'[^"\\\x00-\x08\x0a-\x1f\x7f]'  # a quoted-string's character other than a backslash
_TOKEN = re.compile(f"[{_TOKEN_CHARS}]*")
_OWS = re.compile(r"[ \t]*")
_GAP = re.compile(r"[ \t,;]*")  # white space and the separators of empty list elements
_QUOTED_RUN = re.compile(f"{_QDTEXT}*")
# name OWS "=" OWS (token or base64-string | quoted-string without backslash) OWS
_SIMPLE_PARAM = re.compile(rf'([{_TOKEN_CHARS}]+)[ \t]*=[ \t]*([{_BARE_CHARS}]+|"({_QDTEXT}*)")[ \t]*')
_PRINTABLE = re.compile(r"[\x20-\x7e]*\Z")
_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\Z")
_EPOCH = datetime(1970, 1, 1)
_EPOCH_DAY = _EPOCH.toordinal()


@dataclass(frozen=True)
class HmacHeader:
    """The parameters of an ``x-syncml-hmac`` header; ``mac`` as raw octets."""

    mac: bytes
    timestamp: str | None
    algorithm: str = HMAC_SHA256
    server_id: str | None = None
    username: str | None = None


class Reason(enum.Enum):
    """Why a message was accepted or rejected."""

    OK = "ok"
    MISSING_HEADER = "missing_header"
    BAD_SYNTAX = "bad_syntax"
    UNSUPPORTED_ALGORITHM = "unsupported_algorithm"
    MISSING_TIMESTAMP = "missing_timestamp"
    OUTSIDE_WINDOW = "outside_window"
    WRONG_MAC = "wrong_mac"
    REPLAY = "replay"


@dataclass(frozen=True)
class Verdict:
    """The outcome of :meth:`HmacVerifier.verify`: the reason, a readable detail, the character
    offset in the header value for bad syntax, and the parsed header when it parsed."""

    reason: Reason
    detail: str = ""
    offset: int | None = None
    header: HmacHeader | None = None

    @property
    def ok(self) -> bool:
        """Return True when the message is accepted."""
        return self.reason is Reason.OK


def format_timestamp(now: float) -> str:
    """Return ``now`` (seconds since the epoch) as the ``YYYY-MM-DDThh:mm:ssZ`` Timestamp text
    (the proleptic Gregorian UTC calendar of ``datetime``; ValueError or OverflowError for a time
    outside the years 1 to 9999)."""
    days, seconds = divmod(int(now), 86400)
    day = date.fromordinal(_EPOCH_DAY + days)
    return (f"{day.year}-{day.month:02d}-{day.day:02d}"
            f"T{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}Z")


def parse_timestamp(text: str, offset: int = 0) -> float:
    """Return the seconds since the epoch of a Timestamp; DecodeError (at ``offset``) if it is not
    a valid ``YYYY-MM-DDThh:mm:ssZ`` time."""
    if not _TIMESTAMP.match(text):
        raise DecodeError(_WHAT, offset, f"Timestamp {text!r}", "YYYY-MM-DDThh:mm:ssZ")
    try:  # the fields are digits (above); datetime checks their ranges, leap days included
        when = datetime(int(text[0:4]), int(text[5:7]), int(text[8:10]),
                        int(text[11:13]), int(text[14:16]), int(text[17:19]))
    except ValueError:
        raise DecodeError(_WHAT, offset, f"Timestamp {text!r} is not a calendar time",
                          "YYYY-MM-DDThh:mm:ssZ") from None
    return (when - _EPOCH).total_seconds()


def compute_mac(key: bytes, timestamp: str, msg: bytes, algorithm: str = HMAC_SHA256) -> bytes:
    """Return the raw HMAC(K, Timestamp ":" Msg) of §5.6.1.2 under ``algorithm`` (HMAC-SHA256, or
    MD5 for seed 002's HMAC-MD5); ProtocolError for another algorithm."""
    digest = HASHES.get(algorithm.upper())
    if digest is None:
        raise ProtocolError(f"x-syncml-hmac algorithm {algorithm!r}, expected one of {', '.join(HASHES)}")
    return hmac.digest(bytes(key), timestamp.encode() + b":" + bytes(msg), digest)


def _quote(name: str, value: str) -> str:
    if not _PRINTABLE.match(value):
        raise ProtocolError(f"x-syncml-hmac {name} {value!r} is not printable ASCII")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_header(header: HmacHeader) -> str:
    """Return the header value for ``header``; ProtocolError if a value is not printable ASCII."""
    if not header.algorithm or _TOKEN.match(header.algorithm).end() != len(header.algorithm):
        raise ProtocolError(f"x-syncml-hmac algorithm {header.algorithm!r} is not a token")
    parts = [f"algorithm={header.algorithm}"]
    if header.username is not None:
        parts.append(f"username={_quote('username', header.username)}")
    if header.server_id is not None:
        parts.append(f"ServerId={_quote('ServerId', header.server_id)}")
    if header.timestamp is not None:
        parts.append(f"Timestamp={_quote('Timestamp', header.timestamp)}")
    parts.append("mac=" + base64.b64encode(header.mac).decode("ascii"))
    return ", ".join(parts)


def build_header(key: bytes, msg: bytes, now: float, *, server_id: str | None = None,
                 username: str | None = None, algorithm: str = HMAC_SHA256) -> str:
    """Return the ``x-syncml-hmac`` value protecting ``msg`` at time ``now`` under key ``key``
    (``algorithm`` HMAC-SHA256, or MD5: seed 002 §5.4 HMAC-MD5)."""
    timestamp = format_timestamp(now)
    return format_header(HmacHeader(mac=compute_mac(key, timestamp, msg, algorithm), timestamp=timestamp,
                                    algorithm=algorithm, server_id=server_id, username=username))


def _read_quoted(value: str, pos: int) -> tuple[str, int]:
    """Return the quoted-string starting at ``value[pos] == '"'`` unescaped, and the offset after."""
    out, i = [], pos + 1
    while True:
        run = _QUOTED_RUN.match(value, i).end()  # up to a '"', a backslash or a control character
        out.append(value[i:run])
        i = run
        if i >= len(value):
            break
        ch = value[i]
        if ch == '"':
            return "".join(out), i + 1
        if ch == "\\":
            i += 1
            if i >= len(value):
                break
            ch = value[i]
        if ord(ch) < 0x20 and ch != "\t" or ord(ch) == 0x7F:
            raise DecodeError(_WHAT, i, f"control character {ch!r} in a quoted-string")
        out.append(ch)
        i += 1
    raise DecodeError(_WHAT, pos, "quoted-string not terminated", 'a closing \'"\'')


def _read_param(value: str, pos: int) -> tuple[str, str, int, int]:
    """Return (lower-case name, value, offset of the value, offset after it and its white space)
    of the parameter at ``pos`` that :data:`_SIMPLE_PARAM` does not match: one whose value is a
    quoted-string with a backslash or a control character; DecodeError for any other."""
    name_at = pos
    pos = _TOKEN.match(value, pos).end()
    if pos == name_at:
        raise DecodeError(_WHAT, pos, f"unexpected {value[pos]!r}", "a parameter name")
    name = value[name_at:pos].lower()
    pos = _OWS.match(value, pos).end()
    if pos >= len(value) or value[pos] != "=":
        raise DecodeError(_WHAT, pos, f"parameter {value[name_at:pos].strip()!r} has no '='", "'='")
    pos = _OWS.match(value, pos + 1).end()
    value_at = pos
    if pos >= len(value) or value[pos] != '"':  # a token would have matched _SIMPLE_PARAM
        raise DecodeError(_WHAT, pos, f"parameter {name!r} has no value", "a token or quoted-string")
    text, pos = _read_quoted(value, pos)
    return name, text, value_at, _OWS.match(value, pos).end()


def _read_params(value: str) -> dict[str, tuple[str, int]]:
    """Return {lower-case name: (value, offset of the value)} of a header value.

    A parameter whose value is a token (or base64-string) or a quoted-string without backslash or
    control character is read by one regex (:data:`_SIMPLE_PARAM`), any other by
    :func:`_read_param`, which gives the error and its offset for those that break the syntax."""
    params: dict[str, tuple[str, int]] = {}
    pos = 0
    while True:
        pos = _GAP.match(value, pos).end()
        if pos >= len(value):
            return params
        name_at = pos
        simple = _SIMPLE_PARAM.match(value, pos)
        if simple is None:
            name, text, value_at, pos = _read_param(value, pos)
        else:
            name, text, quoted = simple.group(1).lower(), simple.group(2), simple.group(3)
            text, value_at, pos = text if quoted is None else quoted, simple.start(2), simple.end()
        if name in params:
            raise DecodeError(_WHAT, name_at, f"parameter {name!r} repeated", "each parameter once")
        params[name] = (text, value_at)
        if pos < len(value) and value[pos] not in _SEPARATORS:
            raise DecodeError(_WHAT, pos, f"unexpected {value[pos]!r} after parameter {name!r}", "',' or ';'")


def parse_header(value: str) -> HmacHeader:
    """Return the HmacHeader of an ``x-syncml-hmac`` value; DecodeError("x-syncml-hmac", offset,
    ...) with the character offset when it breaks the §5.6.1.1 syntax, lacks ``mac``, or has a
    mac that is not base64 or a Timestamp not of the ``YYYY-MM-DDThh:mm:ssZ`` form."""
    params = _read_params(value)
    if "mac" not in params:
        raise DecodeError(_WHAT, len(value), "no mac parameter", "mac=<base64>")
    mac_text, mac_at = params["mac"]
    try:
        mac = base64.b64decode(mac_text, validate=True)
    except (binascii.Error, ValueError):
        raise DecodeError(_WHAT, mac_at, "mac is not base64", "base64-string") from None
    timestamp = params.get("timestamp")
    if timestamp is not None:
        parse_timestamp(*timestamp)
    get = lambda name: params[name][0] if name in params else None  # noqa: E731
    return HmacHeader(mac=mac, timestamp=get("timestamp"), algorithm=get("algorithm") or HMAC_SHA256,
                      server_id=get("serverid"), username=get("username"))


def find_header(headers: Mapping[str, str]) -> str | None:
    """Return the ``x-syncml-hmac`` value among transport headers (name matched case-insensitively),
    or None."""
    for name, value in headers.items():
        if name.lower() == HEADER_NAME:
            return value
    return None


class HmacVerifier:
    """Checks ``x-syncml-hmac`` headers against a timestamp window and a replay cache.

    One verifier per receiving endpoint; it remembers the MACs it accepted while they are inside
    the window. ``max_age`` is how old, ``max_ahead`` how far in the future, a Timestamp may be;
    ``algorithms`` the algorithm tokens accepted (default HMAC-SHA256 only; ``(HMAC_MD5,)`` for
    seed 002's HMAC-MD5).
    """

    def __init__(self, *, max_age: float = DEFAULT_MAX_AGE, max_ahead: float = DEFAULT_MAX_AHEAD,
                 algorithms: tuple[str, ...] = (HMAC_SHA256,)):
        if max_age < 0 or max_ahead < 0:
            raise ProtocolError("x-syncml-hmac window bounds must not be negative")
        unknown = [a for a in algorithms if a.upper() not in HASHES]
        if unknown or not algorithms:
            raise ProtocolError(f"x-syncml-hmac algorithms {unknown or 'none'}, expected some of {', '.join(HASHES)}")
        self.algorithms = frozenset(a.upper() for a in algorithms)
        self.max_age = max_age
        self.max_ahead = max_ahead
        self._seen: set[tuple[str, bytes]] = set()          # (Timestamp, MAC) accepted
        self._expiry: list[tuple[float, tuple[str, bytes]]] = []

    def __len__(self) -> int:
        """Return the number of MACs held by the replay cache."""
        return len(self._seen)

    def _prune(self, now: float) -> None:
        while self._expiry and self._expiry[0][0] < now - self.max_age:
            _, entry = heapq.heappop(self._expiry)
            self._seen.discard(entry)

    def verify(self, header_value: str | None, msg: bytes, key: bytes, now: float) -> Verdict:
        """Return the Verdict on ``msg`` carrying ``header_value`` (None when the transport had no
        x-syncml-hmac header), for integrity key ``key`` at time ``now``; an accepted MAC is
        remembered so that the same message is refused the next time."""
        if header_value is None:
            return Verdict(Reason.MISSING_HEADER, "no x-syncml-hmac header")
        try:
            header = parse_header(header_value)
        except DecodeError as exc:
            return Verdict(Reason.BAD_SYNTAX, exc.detail + (f" (expected {exc.expected})" if exc.expected else ""),
                           exc.offset)
        if header.algorithm.upper() not in self.algorithms:
            return Verdict(Reason.UNSUPPORTED_ALGORITHM, f"algorithm {header.algorithm!r}", header=header)
        if header.timestamp is None:
            return Verdict(Reason.MISSING_TIMESTAMP, "no Timestamp parameter", header=header)
        sent = parse_timestamp(header.timestamp)
        if sent < now - self.max_age or sent > now + self.max_ahead:
            return Verdict(Reason.OUTSIDE_WINDOW,
                           f"Timestamp {header.timestamp} is {now - sent:+.0f} s from now "
                           f"(window -{self.max_ahead:g} s .. +{self.max_age:g} s)", header=header)
        if not hmac.compare_digest(compute_mac(key, header.timestamp, msg, header.algorithm), header.mac):
            return Verdict(Reason.WRONG_MAC, "mac does not match the message", header=header)
        self._prune(now)
        entry = (header.timestamp, header.mac)
        if entry in self._seen:
            return Verdict(Reason.REPLAY, f"mac already accepted (Timestamp {header.timestamp})", header=header)
        self._seen.add(entry)
        heapq.heappush(self._expiry, (sent, entry))
        return Verdict(Reason.OK, header=header)
