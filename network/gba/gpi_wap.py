"""GPI delivery using WAP Push (3GPP TS 24.109 Annex J.2) and the GPI envelope (J.3.1.2).

What TS 24.109 J.2.2 fixes (checked): the Push-NAF sends a connectionless WSP Push (OMA Push
OTA, port 2948) whose Content-Type is ``application/vnd.3gpp.gba.gpi`` (or its short code,
J.3.1.3), whose X-WAP-Application-ID names the GBA User Agent's application (or its short code),
and whose body is the GPI envelope with version 1, a session identifier chosen by the server
(different for each GBA Push session to the same recipient; the OMA DM session then uses it as
its SessionID) and the GPI.

Choices where the text could not be checked here (J.3 was not available to dmsim):
- The envelope's octets (J.3.1.2) are provisional: version (1 octet, 1) | session identifier
  (2 octets, big endian) | GPI (the rest, ``push.encode_gpi``). Two octets because the DM
  session it names is numbered on 16 bits (DM Notification package #0 session-id).
- J.3.1.3's short code for the media type is not known here, so the Content-Type travels as
  Extension-Media text (``wsp_push.encode_content_type``) and is matched as text on input.
- X-WAP-Application-ID: for DM, x-wap-application:syncml.dm, OMNA Push Application ID short
  code 7 (``AF 87``, the header DM notifications carry); on input any (or none) is accepted
  and reported, the Content-Type decides.
- The default session identifier is the first two octets of the GPI's RAND (fresh for every
  push, so consecutive sessions differ but for a 2^-16 chance); callers that number DM sessions
  pass their own.
"""
from __future__ import annotations

from dataclasses import dataclass

from dmsim.base.errors import DecodeError, ProtocolError
from dmsim.network.sms import wsp_push

GPI_MEDIA_TYPE = "application/vnd.3gpp.gba.gpi"     # TS 24.109 J.2.2
ENVELOPE_VERSION = 1                                  # J.2.2: "version field set to 1"
APP_ID_SYNCML_DM = 0x07                               # OMNA Push Application ID: x-wap-application:syncml.dm
_ENVELOPE_HEAD = 3                                    # version + session identifier (provisional)
_GPI_RAND_AT = 2                                      # RAND's offset in push.encode_gpi's layout


@dataclass(frozen=True)
class GpiPush:
    """A decoded GPI push: WSP transaction id, X-WAP-Application-ID, envelope session id, GPI."""

    tid: int
    app_id: int | str | None
    session_id: int
    gpi: bytes


def encode_envelope(gpi: bytes, session_id: int) -> bytes:
    """Return the GPI envelope octets (J.3.1.2, provisional layout: module docstring)."""
    if not 0 <= session_id <= 0xFFFF:
        raise ProtocolError(f"GPI envelope session identifier {session_id} does not fit 2 octets")
    if not gpi:
        raise ProtocolError("GPI envelope without a GPI")
    return bytes([ENVELOPE_VERSION]) + session_id.to_bytes(2, "big") + gpi


def decode_envelope(body: bytes) -> tuple[int, bytes]:
    """Return (session identifier, GPI) of an envelope; DecodeError with the offset if malformed."""
    if len(body) <= _ENVELOPE_HEAD:
        raise DecodeError("GPI envelope", len(body), f"{len(body)} octets",
                          expected=f"version, session identifier and a GPI (more than {_ENVELOPE_HEAD})")
    if body[0] != ENVELOPE_VERSION:
        raise DecodeError("GPI envelope", 0, f"version {body[0]}", expected=f"version {ENVELOPE_VERSION}")
    return int.from_bytes(body[1:3], "big"), bytes(body[_ENVELOPE_HEAD:])


def gpi_push(gpi: bytes, tid: int, *, session_id: int | None = None,
             app_id: int | str = APP_ID_SYNCML_DM) -> bytes:
    """Return the connectionless WSP Push PDU carrying ``gpi`` in its envelope (J.2.2)."""
    if session_id is None:
        session_id = int.from_bytes(gpi[_GPI_RAND_AT:_GPI_RAND_AT + 2], "big")
    return wsp_push.encode_push(GPI_MEDIA_TYPE, encode_envelope(gpi, session_id), tid,
                                headers=wsp_push.encode_application_id(app_id))


def decode_gpi_push(pdu: bytes) -> GpiPush | None:
    """Return the GPI push in a WSP Push PDU, None when the PDU carries another content type;
    DecodeError (offsets within the PDU) when the PDU or the envelope is malformed."""
    pdu = bytes(pdu)
    push = wsp_push.decode_push(pdu)
    if push.content_type.split(";")[0].strip().lower() != GPI_MEDIA_TYPE:
        return None
    body_at = len(pdu) - len(push.body)
    headers_at = body_at - len(push.headers)
    try:
        app_id = wsp_push.application_id(push.headers)
    except DecodeError as exc:
        raise DecodeError(exc.what, headers_at + exc.offset, exc.detail, exc.expected) from None
    try:
        session_id, gpi = decode_envelope(push.body)
    except DecodeError as exc:
        raise DecodeError(exc.what, body_at + exc.offset, exc.detail, exc.expected) from None
    return GpiPush(push.tid, app_id, session_id, gpi)


def parse_gpi_push(pdu: bytes) -> bytes | None:
    """Return the GPI octets of a GPI WAP Push (for ``PushReceiver.process``), None for a push of
    another content type; DecodeError when malformed."""
    found = decode_gpi_push(pdu)
    return None if found is None else found.gpi
