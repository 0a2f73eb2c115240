"""Transport-neutral confidentiality by XML-Encryption (seed 002 §5.5: "achieved using
XML-Encryption [XMLENC]") of a SyncML XML message, sans-IO, with python-xmlsec (libxmlsec1).

What is encrypted (our choice): the ``SyncBody`` element (``Type=#Element``), replaced by one
``xenc:EncryptedData``; the ``SyncHdr`` stays in clear, since the receiver needs its Source
(the device URI) to find the account and so the key, and it carries no secret.

Algorithm: AES-256-GCM (``xmlenc11#aes256-gcm``, a fresh 96-bit IV per message, chosen by
libxmlsec1 from OpenSSL's RNG); no KeyInfo, the key is implied by the account.

Key derivation (our choice; §5.5 names no key): K = HKDF-SHA256 (RFC 5869) over the sender's
AAuthSecret octets (UTF-8), no salt, info ``b"dmsim OMA DM XML-Encryption AES-256-GCM"``, 32
octets. Each direction therefore has its own key (client secret one way, server secret the
other). GCM authenticates the SyncBody only; integrity of the whole message comes from the
XML-Signature applied after encryption (:mod:`message_security`, profile ``xmlenc``).

Decryption refuses, with :class:`MessageSecurityError`: a message whose SyncBody is not an
EncryptedData child of the root (``not_encrypted``), and one that does not decrypt under the key
(``decrypt_failed``: a wrong key or a changed ciphertext fails the GCM tag).
"""
from __future__ import annotations

import xmlsec
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from lxml import etree

from dmsim.base.errors import MessageSecurityError
from dmsim.network.dm.xml_signature import parse, serialise

ENC_NS = "http://www.w3.org/2001/04/xmlenc#"
ELEMENT_TYPE = ENC_NS + "Element"
KDF_INFO = b"dmsim OMA DM XML-Encryption AES-256-GCM"
KEY_LEN = 32


def derive_key(secret: bytes, info: bytes = KDF_INFO) -> bytes:
    """Return the AES-256 key of the module doc for the AAuthSecret octets ``secret`` (``info``
    labels the use: another label, another key)."""
    if not secret:
        raise MessageSecurityError("no_key", "XML-Encryption needs a non-empty secret")
    return HKDF(algorithm=hashes.SHA256(), length=KEY_LEN, salt=None, info=info).derive(bytes(secret))


def _key(secret: bytes) -> xmlsec.Key:
    return xmlsec.Key.from_binary_data(xmlsec.constants.KeyDataAes, derive_key(secret))


def _sync_body(root: etree._Element) -> etree._Element | None:
    for child in root:
        if isinstance(child.tag, str) and etree.QName(child).localname == "SyncBody":
            return child
    return None


def encrypt(doc: bytes, secret: bytes) -> bytes:
    """Return ``doc`` (SyncML XML bytes) with its SyncBody replaced by EncryptedData under the key
    derived from ``secret``; MessageSecurityError ``not_syncml`` if it has no SyncBody."""
    root = parse(doc)
    body = _sync_body(root)
    if body is None:
        raise MessageSecurityError("not_syncml", "message has no SyncBody to encrypt")
    template = xmlsec.template.encrypted_data_create(root, xmlsec.constants.TransformAes256Gcm,
                                                     type=xmlsec.constants.TypeEncElement, ns="xenc")
    xmlsec.template.encrypted_data_ensure_cipher_value(template)
    ctx = xmlsec.EncryptionContext()
    ctx.key = _key(secret)
    ctx.encrypt_xml(template, body)
    return serialise(root)


def decrypt(doc: bytes, secret: bytes) -> bytes:
    """Return ``doc`` with its EncryptedData SyncBody decrypted under the key derived from
    ``secret``; MessageSecurityError ``not_encrypted`` or ``decrypt_failed``."""
    root = parse(doc)
    found = [c for c in root if isinstance(c.tag, str) and c.tag == f"{{{ENC_NS}}}EncryptedData"]
    if len(found) != 1 or _sync_body(root) is not None or found[0].get("Type") != ELEMENT_TYPE:
        raise MessageSecurityError("not_encrypted", "expected the SyncBody as one xenc:EncryptedData element")
    ctx = xmlsec.EncryptionContext()
    ctx.key = _key(secret)
    try:
        ctx.decrypt(found[0])
    except xmlsec.Error as exc:
        raise MessageSecurityError("decrypt_failed", f"SyncBody does not decrypt: {exc}") from None
    if _sync_body(root) is None:
        raise MessageSecurityError("not_encrypted", "EncryptedData did not hold a SyncBody")
    return serialise(root)
