"""Management object encryption (seed 002 §5.9, OMA-TS-DM_Security-V1_3 §5.8), sans-IO, with
python-xmlsec: a DM server encrypts a management object's value before it sends it (Add or
Replace over a transport that does not encrypt), the DM client stores it as it came, so the
object "remains encrypted in storage space" of the device, and the server decrypts it when it
reads it back (Get). §5.9 places no restriction on the technique; ours, documented here:

* the value is an ``xenc:EncryptedData`` document (XML-Encryption, octets, no ``Type``, with the
  object's ``MimeType``), AES-256-GCM with a fresh IV, no KeyInfo; it travels as the node's
  ``chr`` data with Meta Type :data:`MO_TYPE` (``application/xenc+xml``, RFC 7303 §9.2 gives
  ``+xml`` to XML formats);
* the key is the server's: HKDF-SHA256 (RFC 5869) of a secret only the server holds (e.g. its
  AAuthSecret for that device), info :data:`KDF_INFO`, so it differs from the message-security
  key of :mod:`xml_encryption` even for the same secret. A device keeping the object cannot read
  it; a server that wants the device to use the value sends it in clear under ``xmlenc``
  message security instead.

:func:`decrypt_value` refuses text that is not one EncryptedData (``not_encrypted``) and a
value that does not decrypt (``decrypt_failed``: a wrong key or a changed ciphertext).
"""
from __future__ import annotations

import xmlsec
from lxml import etree

from dmsim.base.errors import MessageSecurityError
from dmsim.network.dm.xml_encryption import ENC_NS, derive_key
from dmsim.network.dm.xml_signature import parse

MO_TYPE = "application/xenc+xml"
KDF_INFO = b"dmsim OMA DM management object encryption AES-256-GCM"


def _key(secret: bytes) -> xmlsec.Key:
    return xmlsec.Key.from_binary_data(xmlsec.constants.KeyDataAes, derive_key(secret, KDF_INFO))


def encrypt_value(value: bytes, secret: bytes, mime_type: str = "application/octet-stream") -> str:
    """Return the EncryptedData document (text) holding ``value`` under the key of ``secret``."""
    holder = etree.Element("holder")
    template = xmlsec.template.encrypted_data_create(holder, xmlsec.constants.TransformAes256Gcm,
                                                     mime_type=mime_type, ns="xenc")
    xmlsec.template.encrypted_data_ensure_cipher_value(template)
    ctx = xmlsec.EncryptionContext()
    ctx.key = _key(secret)
    return etree.tostring(ctx.encrypt_binary(template, bytes(value)), encoding="unicode")


def decrypt_value(text: str, secret: bytes) -> bytes:
    """Return the octets of an :func:`encrypt_value` document under the key of ``secret``."""
    root = parse(text.encode("utf-8"))
    if root.tag != f"{{{ENC_NS}}}EncryptedData" or root.get("Type") is not None:
        raise MessageSecurityError("not_encrypted", "expected an xenc:EncryptedData of octets")
    ctx = xmlsec.EncryptionContext()
    ctx.key = _key(secret)
    try:
        return ctx.decrypt(root)
    except xmlsec.Error as exc:
        raise MessageSecurityError("decrypt_failed", f"management object does not decrypt: {exc}") from None
