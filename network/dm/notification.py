"""The DM notification, package #0 of a server-initiated session (OMA-TS-DM_Notification-V1_2 §6,
§7; OMA-TS-DM_Security-V1_3 §5.7), and its WAP Push carriage (content type
application/vnd.syncml.notification, OMNA WSP number 0x44).

Package #0 = digest (128 bits) || trigger, trigger = header || body::

    version (10 bits) | ui-mode (2) | initiator (1) | future-use (27) | session-id (16)
    | server-identifier-length (8) | server-identifier (that many octets) | vendor-specific

all big-endian. Digest = H(B64(H(server-id ":" password)) ":" nonce ":" B64(H(trigger))) with
H = MD5 (``syncml:auth-md5``); the nonce is the raw octets the client holds for that server.

Choices where the spec is silent or deployments differ (each documented here):

* Version: :func:`build_pkg0` emits 12 ("1.2", the format DM 1.2 and DM 1.3 clients implement)
  unless told otherwise. :func:`parse_pkg0` accepts 11 (DM 1.1.2 servers such as Funambol emit
  it), 12 and 13; anything else is a DecodeError at the header's offset.
* The whole body after the server identifier is kept as opaque vendor-specific octets.
* Future-use bits are emitted as zero and ignored (but kept) on input.
* The server identifier is UTF-8 text; octets that are not UTF-8 are a DecodeError.
* :func:`verify_pkg0` also requires the trigger's server identifier to be the one whose password
  is used, so a package naming server A cannot be validated with server B's secret.
* The SessionID package #1 carries for the session-id is :func:`session_id_text`: four upper-case
  hexadecimal digits, zero-padded ("0005" for 5). The text read could not settle the padding; the
  fixed width of the 16-bit field is chosen, and the DM client uses the same text for the
  client-initiated sessions it numbers itself.
* Over WAP Push the PDU carries X-Wap-Application-Id x-wap-application:syncml.dm (``AF 87``),
  as DM servers send it; on input the header is not required.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from dmsim.network.dm.auth import AUTH_MD5, credential_hash
from dmsim.network.sms import wsp_push
from dmsim.base.errors import DecodeError, ProtocolError

NOTIFICATION_CONTENT_TYPE = "application/vnd.syncml.notification"
X_WAP_APPLICATION_ID_DM = b"\xaf\x87"  # X-Wap-Application-Id: 7 = x-wap-application:syncml.dm

DIGEST_LEN = 16
HEADER_FIXED_LEN = 8  # version .. server-identifier-length
DEFAULT_VERSION = 12
ACCEPTED_VERSIONS = frozenset({11, 12, 13})

UI_NOT_SPECIFIED, UI_BACKGROUND, UI_INFORMATIVE, UI_USER_INTERACTION = 0, 1, 2, 3
INITIATOR_CLIENT, INITIATOR_SERVER = 0, 1

_WHAT = "pkg0"


@dataclass(frozen=True)
class Pkg0:
    """A decoded package #0; ``trigger`` is the header and body octets the digest covers."""

    digest: bytes
    version: int
    ui_mode: int
    initiator: int
    future_use: int
    session_id: int
    server_id: str
    vendor_specific: bytes
    trigger: bytes

    @property
    def pkg1_session_id(self) -> str:
        """Return the SessionID text package 1 carries for this session (:func:`session_id_text`)."""
        return session_id_text(self.session_id)


def session_id_text(session_id: int) -> str:
    """Return the SessionID element text of the 16-bit ``session_id``: four upper-case hexadecimal
    digits, zero-padded ("0005"); ProtocolError if it does not fit in 16 bits."""
    return f"{_field('session-id', session_id, 16):04X}"


def _field(name: str, value: int, bits: int) -> int:
    if not isinstance(value, int) or not 0 <= value < 1 << bits:
        raise ProtocolError(f"package #0 {name} {value!r} does not fit in {bits} bits")
    return value


def build_trigger(*, session_id: int, server_id: str, version: int = DEFAULT_VERSION,
                  ui_mode: int = UI_NOT_SPECIFIED, initiator: int = INITIATOR_SERVER,
                  vendor_specific: bytes = b"", future_use: int = 0) -> bytes:
    """Return the trigger octets (header and vendor-specific body); ProtocolError if a field
    does not fit its width."""
    sid = server_id.encode("utf-8")
    if len(sid) > 0xFF:
        raise ProtocolError(f"server identifier of {len(sid)} octets; the length field holds 255")
    word = (_field("version", version, 10) << 54 | _field("ui-mode", ui_mode, 2) << 52
            | _field("initiator", initiator, 1) << 51 | _field("future-use", future_use, 27) << 24
            | _field("session-id", session_id, 16) << 8 | len(sid))
    return word.to_bytes(HEADER_FIXED_LEN, "big") + sid + bytes(vendor_specific)


def trigger_hash(trigger: bytes) -> bytes:
    """Return B64(H(trigger)), the part of the digest that covers the trigger."""
    return base64.b64encode(hashlib.md5(bytes(trigger)).digest())


def pkg0_digest(server_id: str, password: str, nonce: bytes, trigger: bytes) -> bytes:
    """Return the 16-octet digest H(B64(H(server-id:password)):nonce:B64(H(trigger)))."""
    return hashlib.md5(credential_hash(server_id, password, AUTH_MD5) + b":" + bytes(nonce) + b":"
                       + trigger_hash(trigger)).digest()


def build_pkg0(*, session_id: int, server_id: str, password: str, nonce: bytes,
               version: int = DEFAULT_VERSION, ui_mode: int = UI_NOT_SPECIFIED,
               initiator: int = INITIATOR_SERVER, vendor_specific: bytes = b"") -> bytes:
    """Return the whole package #0 (digest then trigger); ProtocolError if a field does not fit."""
    trigger = build_trigger(session_id=session_id, server_id=server_id, version=version, ui_mode=ui_mode,
                            initiator=initiator, vendor_specific=vendor_specific)
    return pkg0_digest(server_id, password, nonce, trigger) + trigger


def parse_pkg0(data: bytes, accepted_versions: frozenset[int] = ACCEPTED_VERSIONS) -> Pkg0:
    """Return the Pkg0 in ``data``; DecodeError("pkg0", offset, ...) if it is truncated, its server
    identifier runs past the end or is not UTF-8, or its version is not accepted."""
    data = bytes(data)
    fixed_end = DIGEST_LEN + HEADER_FIXED_LEN
    if len(data) < fixed_end:
        part = "digest" if len(data) < DIGEST_LEN else "trigger header"
        raise DecodeError(_WHAT, len(data), f"package #0 truncated in its {part} ({len(data)} octets)",
                          f"at least {fixed_end} octets (16 digest + 8 header)")
    word = int.from_bytes(data[DIGEST_LEN:fixed_end], "big")
    version = word >> 54
    if version not in accepted_versions:
        raise DecodeError(_WHAT, DIGEST_LEN, f"version {version}",
                          " or ".join(str(v) for v in sorted(accepted_versions)))
    sid_len = word & 0xFF
    sid_end = fixed_end + sid_len
    if sid_end > len(data):
        raise DecodeError(_WHAT, fixed_end - 1, f"server identifier length {sid_len} runs past the end",
                          f"at most {len(data) - fixed_end}")
    try:
        server_id = data[fixed_end:sid_end].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(_WHAT, fixed_end + exc.start, "server identifier is not UTF-8") from None
    return Pkg0(digest=data[:DIGEST_LEN], version=version, ui_mode=(word >> 52) & 0x3,
                initiator=(word >> 51) & 0x1, future_use=(word >> 24) & ((1 << 27) - 1),
                session_id=(word >> 8) & 0xFFFF, server_id=server_id, vendor_specific=data[sid_end:],
                trigger=data[DIGEST_LEN:])


def verify_pkg0(pkg0: Pkg0, server_id: str, password: str, nonce: bytes) -> bool:
    """Return True when ``pkg0`` names ``server_id`` and its digest is the one this server's
    password and the client's nonce give (constant-time comparison)."""
    expected = pkg0_digest(server_id, password, nonce, pkg0.trigger)
    same_digest = hmac.compare_digest(expected, pkg0.digest)
    return same_digest and pkg0.server_id == server_id


def encode_push(pkg0: bytes, tid: int) -> bytes:
    """Return the connectionless WSP Push PDU carrying package #0 (to WDP port 2948)."""
    return wsp_push.encode_push(NOTIFICATION_CONTENT_TYPE, pkg0, tid, headers=X_WAP_APPLICATION_ID_DM)


def decode_push(pdu: bytes) -> Pkg0:
    """Return the package #0 carried by a WSP Push PDU; DecodeError (offsets within the PDU) if
    the PDU is malformed, of another content type, or its package #0 is."""
    pdu = bytes(pdu)
    push = wsp_push.decode_push(pdu)
    if push.content_type.split(";")[0].strip().lower() != NOTIFICATION_CONTENT_TYPE:
        _, content_type_at = wsp_push.decode_uintvar(pdu, 2)
        raise DecodeError("wsp", content_type_at, f"content type {push.content_type!r}",
                          NOTIFICATION_CONTENT_TYPE)
    body_at = len(pdu) - len(push.body)
    try:
        return parse_pkg0(push.body)
    except DecodeError as exc:
        raise DecodeError(exc.what, body_at + exc.offset, exc.detail, exc.expected) from None
