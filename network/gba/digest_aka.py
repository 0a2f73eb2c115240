"""HTTP Digest AKAv1-MD5: the computations of RFC 3310 over RFC 2617, and the Digest header
syntax, as pure functions (used by the BSF, the Ub client and usable by a ``dmsim calc``).

- nonce = base64(RAND || AUTN || server data) (RFC 3310 §3.2; TS 24.109 §4.2/A.3).
- algorithm "AKAv1-MD5": the Digest password is RES as raw octets, not hex (RFC 3310 §3.3);
  on a synchronisation failure the client sends ``auts`` = base64(AUTS) and computes the
  response with an empty password (RFC 3310 §3.4).
- RFC 2617 §3.2.2: HA1 = MD5(username ":" realm ":" password); with qop "auth",
  A2 = method ":" digest-uri, with "auth-int" A2 = method ":" digest-uri ":" MD5(entity-body);
  request-digest = MD5(HA1 ":" nonce ":" nc ":" cnonce ":" qop ":" MD5(A2)) (all MD5 in lowercase
  hex). rspauth (§3.2.3) is the same with an empty method and, for auth-int, the response body.

Header syntax (RFC 2617 §1.2/§3.2.1): ``Digest`` then comma-separated ``name=token`` or
``name="quoted string"``. ``parse_challenge_params`` is meant for hostile input: it raises
DecodeError (never another exception) on anything malformed, on a duplicate parameter, and
beyond MAX_HEADER_LEN characters or MAX_PARAMS parameters.

Choice: usernames, realms, URIs are encoded in UTF-8 before hashing (RFC 2617 says ISO-8859-1
for the username; every IMPI is ASCII, where the two agree).
"""
from __future__ import annotations

import base64
import binascii
import hashlib

from dmsim.base.errors import DecodeError

ALGORITHM = "AKAv1-MD5"
QOP_AUTH = "auth"
QOP_AUTH_INT = "auth-int"
RAND_LEN = AUTN_LEN = 16
MAX_HEADER_LEN = 4096
MAX_PARAMS = 32
_TOKEN_EXTRA = set("!#$%&'*+-.^_`|~")


def md5_hex(data: bytes) -> str:
    """Return MD5(data) in lowercase hex (RFC 2617 H() and KD())."""
    return hashlib.md5(data).hexdigest()


def _b(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else text.encode("utf-8")


def make_nonce(rand: bytes, autn: bytes, server_data: bytes = b"") -> str:
    """Return nonce = base64(RAND || AUTN || server data) (RFC 3310 §3.2)."""
    return base64.b64encode(rand + autn + server_data).decode("ascii")


def split_nonce(nonce: str) -> tuple[bytes, bytes, bytes]:
    """Return (RAND, AUTN, server data) of an AKA nonce; DecodeError if not base64 or too short."""
    raw = b64decode_strict(nonce, "nonce")
    if len(raw) < RAND_LEN + AUTN_LEN:
        raise DecodeError("nonce", len(raw), f"{len(raw)} octets", expected="RAND || AUTN (32 octets or more)")
    return raw[:RAND_LEN], raw[RAND_LEN:RAND_LEN + AUTN_LEN], raw[RAND_LEN + AUTN_LEN:]


def b64decode_strict(text: str, what: str) -> bytes:
    """Return base64 ``text`` decoded; DecodeError (with ``what``) if it is not valid base64."""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise DecodeError(what, 0, "not base64", expected="RFC 4648 base64") from None


def ha1(username: str, realm: str, password: bytes) -> str:
    """Return HA1 = MD5(username:realm:password); for AKAv1-MD5 password is RES, raw (RFC 3310 §3.3)."""
    return md5_hex(_b(username) + b":" + _b(realm) + b":" + password)


def ha2(method: str, uri: str, qop: str, body: bytes = b"") -> str:
    """Return MD5(A2) (RFC 2617 §3.2.2.3): method:uri, plus :MD5(entity-body) for auth-int."""
    a2 = _b(method) + b":" + _b(uri)
    if qop == QOP_AUTH_INT:
        a2 += b":" + md5_hex(body).encode("ascii")
    return md5_hex(a2)


def request_digest(ha1_hex: str, nonce: str, nc: str, cnonce: str, qop: str, ha2_hex: str) -> str:
    """Return KD(HA1, nonce:nc:cnonce:qop:HA2) (RFC 2617 §3.2.2.1, qop present)."""
    return md5_hex(":".join((ha1_hex, nonce, nc, cnonce, qop, ha2_hex)).encode("utf-8"))


def aka_response(username: str, realm: str, res: bytes, method: str, uri: str, nonce: str, nc: str,
                 cnonce: str, qop: str, body: bytes = b"") -> str:
    """Return the ``response`` of AKAv1-MD5 with RES as the password (RFC 3310 §3.3, RFC 2617).
    For a synchronisation failure pass ``res=b""`` (RFC 3310 §3.4)."""
    return request_digest(ha1(username, realm, res), nonce, nc, cnonce, qop, ha2(method, uri, qop, body))


def aka_rspauth(username: str, realm: str, res: bytes, uri: str, nonce: str, nc: str, cnonce: str,
                qop: str, response_body: bytes = b"") -> str:
    """Return ``rspauth`` of Authentication-Info (RFC 2617 §3.2.3: A2 with an empty method)."""
    return request_digest(ha1(username, realm, res), nonce, nc, cnonce, qop, ha2("", uri, qop, response_body))


def _is_token(ch: str) -> bool:
    return ch.isascii() and (ch.isalnum() or ch in _TOKEN_EXTRA)


def parse_challenge_params(value: str) -> tuple[str, dict[str, str]]:
    """Return (scheme, {lowercase name: value}) of a WWW-Authenticate / Authorization /
    Authentication-Info value (the latter has no scheme: pass it with scheme "" via
    ``parse_params``). DecodeError on anything malformed."""
    if len(value) > MAX_HEADER_LEN:
        raise DecodeError("Digest header", MAX_HEADER_LEN, f"{len(value)} characters",
                          expected=f"at most {MAX_HEADER_LEN}")
    value = value.strip()
    end = 0
    while end < len(value) and _is_token(value[end]):
        end += 1
    if end == 0 or (end < len(value) and value[end] not in " \t"):
        raise DecodeError("Digest header", end, "no authentication scheme", expected="Digest <params>")
    return value[:end], parse_params(value[end:], base=end)


def parse_params(text: str, base: int = 0) -> dict[str, str]:
    """Return the comma-separated ``name=value`` parameters of ``text`` (RFC 2617 §1.2)."""
    if len(text) > MAX_HEADER_LEN:
        raise DecodeError("Digest header", MAX_HEADER_LEN, f"{len(text)} characters",
                          expected=f"at most {MAX_HEADER_LEN}")
    out: dict[str, str] = {}
    i, n = 0, len(text)

    def skip_ws(j: int) -> int:
        while j < n and text[j] in " \t":
            j += 1
        return j

    i = skip_ws(i)
    while i < n:
        start = i
        while i < n and _is_token(text[i]):
            i += 1
        name = text[start:i].lower()
        i = skip_ws(i)
        if not name or i >= n or text[i] != "=":
            raise DecodeError("Digest header", base + i, "parameter without '='", expected="name=value")
        i = skip_ws(i + 1)
        if i < n and text[i] == '"':
            i += 1
            chars = []
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(text[i])
                i += 1
            if i >= n:
                raise DecodeError("Digest header", base + i, "unterminated quoted string", expected='"..."')
            i += 1
            val = "".join(chars)
        else:
            start = i
            while i < n and _is_token(text[i]):
                i += 1
            val = text[start:i]
            if not val:
                raise DecodeError("Digest header", base + i, f"empty value of {name}", expected="token or quoted")
        if name in out:
            raise DecodeError("Digest header", base + start, f"duplicate parameter {name}", expected="each once")
        if len(out) >= MAX_PARAMS:
            raise DecodeError("Digest header", base + start, "too many parameters", expected=f"at most {MAX_PARAMS}")
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in val):
            raise DecodeError("Digest header", base + start, f"control character in {name}", expected="text")
        out[name] = val
        i = skip_ws(i)
        if i < n:
            if text[i] != ",":
                raise DecodeError("Digest header", base + i, "parameters not separated by ','", expected="','")
            i = skip_ws(i + 1)
    return out


def _quote(value: str) -> str:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise DecodeError("Digest header", 0, "control character in a value", expected="printable text")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_params(params: dict[str, str], unquoted: frozenset[str] = frozenset({"algorithm", "nc", "qop", "stale"})
                  ) -> str:
    """Return ``name=value, ...``; values are quoted except the token-valued ``unquoted`` names
    (RFC 2617 §3.2.2: algorithm, nc, qop in Authorization). A challenge's qop is a quoted list:
    pass ``unquoted`` without "qop" for WWW-Authenticate."""
    return ", ".join(f"{k}={v if k in unquoted else _quote(v)}" for k, v in params.items())
