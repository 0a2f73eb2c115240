"""Message security for transports that have none (seed 002 §5.3-§5.5): the object a DM client
(:mod:`dmsim.devices.dm_client`) and the DM server (:mod:`server`) apply to every message of a
DM session, on top of (and independent of) its Cred authentication.

§5.3: when the transport gives no authentication and integrity, transport-neutral integrity MUST
be used; when it gives no confidentiality, transport-neutral confidentiality SHOULD be. The
choices (a fleet profile's ``message_security``):

* ``hmac-md5`` (§5.4, :class:`HmacMd5`): an ``x-syncml-hmac`` header with ``algorithm=MD5`` on
  every message (:mod:`hmac_integrity`: timestamp window, replay cache); WBXML or XML.
* ``xmldsig`` (§5.4, :class:`XmlDsig`): an enveloped XML-Signature, HMAC-SHA256
  (:mod:`xml_signature`); the XML media type only.
* ``xmlenc`` (§5.5 with §5.4, :class:`XmlEnc`): the SyncBody encrypted by XML-Encryption
  (:mod:`xml_encryption`), then the whole message signed as ``xmldsig`` (encrypt-then-sign, so
  the SyncHdr is covered too); the XML media type only.

Keys (our choice, as OMA-TS-DM_Security §5.6.1.2 does for x-syncml-hmac): the sender's
AAuthSecret octets (UTF-8): the client's on client messages, the server's on server messages.
The driver passes the right one; see :func:`sender`, by which the server finds the account of a
request before it can read it. Messages outside a DM session (bootstrap, package #0) keep their
own protection (§5.10.2.3, notification digest) and are not touched.

Every refusal raises :class:`MessageSecurityError` with a ``reason``. With a ``syncml:auth-hmac-
sha256`` account the x-syncml-hmac of §5.6.1 covers the message as sent, message security
applied (§5.6.1.1: "the entire message body"; the receiver checks it first); ``hmac-md5`` cannot be combined with it
(one header for two MACs), which :func:`check_combination` refuses.
"""
from __future__ import annotations

from typing import Mapping

from lxml import etree

from dmsim.base.errors import DmsimError, MessageSecurityError, ProtocolError
from dmsim.network.dm import messages as m
from dmsim.network.dm import xml_encryption, xml_signature
from dmsim.network.dm.hmac_integrity import (AUTH_HMAC_SHA256, DEFAULT_MAX_AGE, HEADER_NAME, HMAC_MD5,
                                             HmacVerifier, build_header, find_header)

NONE, HMAC_MD5_NAME, XMLDSIG, XMLENC = "none", "hmac-md5", "xmldsig", "xmlenc"
CHOICES = (NONE, HMAC_MD5_NAME, XMLDSIG, XMLENC)


def is_xml(content_type: str) -> bool:
    """Return True for the SyncML XML media types."""
    return (content_type or "").split(";")[0].strip().lower() in (m.DM_XML, "application/vnd.syncml+xml")


def _require_xml(name: str, content_type: str) -> None:
    if not is_xml(content_type):
        raise MessageSecurityError("needs_xml", f"{name} protects SyncML XML only, not {content_type!r}")


def sender(body: bytes, content_type: str) -> str:
    """Return the SyncHdr Source LocURI a message claims (unverified), read without removing its
    message security (the SyncHdr stays in clear); MessageSecurityError ``bad_message`` if none."""
    if is_xml(content_type):
        root = xml_signature.parse(body)
        hdr = next((c for c in root if isinstance(c.tag, str) and etree.QName(c).localname == "SyncHdr"), None)
        loc = None
        if hdr is not None:
            loc = next((e.text for e in hdr.iter() if isinstance(e.tag, str) and etree.QName(e).localname == "LocURI"
                        and etree.QName(e.getparent()).localname == "Source"), None)
        if not loc:
            raise MessageSecurityError("bad_message", "no SyncHdr/Source/LocURI")
        return loc.strip()
    try:
        return m.read_header(m.decode(body, content_type)).source
    except DmsimError as exc:
        raise MessageSecurityError("bad_message", str(exc)) from None


class MessageSecurity:
    """One message-security choice. ``protect`` returns the bytes to send and the transport
    headers to add; ``unprotect`` returns the plain SyncML bytes or raises MessageSecurityError."""

    name = NONE
    needs_xml = False
    uses_hmac_header = False

    def protect(self, body: bytes, content_type: str, secret: bytes, now: float,
                server_id: str | None = None) -> tuple[bytes, dict[str, str]]:
        raise NotImplementedError

    def unprotect(self, body: bytes, content_type: str, headers: Mapping[str, str], secret: bytes,
                  now: float) -> bytes:
        raise NotImplementedError


class HmacMd5(MessageSecurity):
    """Seed 002 §5.4 HMAC-MD5: ``x-syncml-hmac: algorithm=MD5, ServerId=..., Timestamp=..., mac=...``.
    One instance per receiving endpoint (its verifier keeps the replay cache)."""

    name = HMAC_MD5_NAME
    uses_hmac_header = True

    def __init__(self, max_age: float = DEFAULT_MAX_AGE):
        self.verifier = HmacVerifier(max_age=max_age, algorithms=(HMAC_MD5,))

    def protect(self, body, content_type, secret, now, server_id=None):
        return body, {HEADER_NAME: build_header(secret, body, now, server_id=server_id, algorithm=HMAC_MD5)}

    def unprotect(self, body, content_type, headers, secret, now):
        verdict = self.verifier.verify(find_header(headers), body, secret, now)
        if not verdict.ok:
            raise MessageSecurityError(verdict.reason.value, verdict.detail or verdict.reason.value)
        return body


class XmlDsig(MessageSecurity):
    """Seed 002 §5.4 XML-Signature: enveloped, HMAC-SHA256 under the sender's AAuthSecret."""

    name = XMLDSIG
    needs_xml = True

    def protect(self, body, content_type, secret, now, server_id=None):
        _require_xml(self.name, content_type)
        return xml_signature.sign(body, secret), {}

    def unprotect(self, body, content_type, headers, secret, now):
        _require_xml(self.name, content_type)
        return xml_signature.verify(body, secret)


class XmlEnc(MessageSecurity):
    """Seed 002 §5.5 XML-Encryption of the SyncBody, then §5.4 XML-Signature of the message."""

    name = XMLENC
    needs_xml = True

    def protect(self, body, content_type, secret, now, server_id=None):
        _require_xml(self.name, content_type)
        return xml_signature.sign(xml_encryption.encrypt(body, secret), secret), {}

    def unprotect(self, body, content_type, headers, secret, now):
        _require_xml(self.name, content_type)
        return xml_encryption.decrypt(xml_signature.verify(body, secret), secret)


def make(name: str, *, max_age: float = DEFAULT_MAX_AGE) -> MessageSecurity | None:
    """Return a new message-security object for a profile's ``message_security`` (None for
    ``none``); ``max_age`` is the x-syncml-hmac window of ``hmac-md5``."""
    if name == NONE:
        return None
    if name == HMAC_MD5_NAME:
        return HmacMd5(max_age)
    if name == XMLDSIG:
        return XmlDsig()
    if name == XMLENC:
        return XmlEnc()
    raise ProtocolError(f"message security {name!r}, expected one of {', '.join(CHOICES)}")


def check_combination(security: MessageSecurity | None, auth_scheme: str) -> None:
    """ProtocolError when ``security`` cannot run with an account of ``auth_scheme``: hmac-md5
    and syncml:auth-hmac-sha256 would both need the one x-syncml-hmac header."""
    if security is not None and security.uses_hmac_header and auth_scheme == AUTH_HMAC_SHA256:
        raise ProtocolError(f"message security {security.name} needs the x-syncml-hmac header that "
                            f"{AUTH_HMAC_SHA256} uses; pick xmldsig or xmlenc, or another dm_auth")
