"""Transport-neutral integrity by XML-Signature (seed 002 §5.4: "HMAC-MD5 [RFC2104] or
XML-Signature [XMLSIGN]") of a SyncML XML message, sans-IO, with python-xmlsec (libxmlsec1).

The signature is *enveloped*: one ``ds:Signature`` appended as the last child of the ``SyncML``
root, with one Reference ``URI=""`` (the whole document), the enveloped-signature transform and
exclusive C14N (libxmlsec1 canonicalises; nothing here does), DigestMethod SHA-256 and
SignatureMethod HMAC-SHA256 (xmldsig-more). No KeyInfo: the key is implied by the account.

Key (our choice, as in OMA-TS-DM_Security §5.6.1.2 for x-syncml-hmac): the sender's AAuthSecret
octets (UTF-8), i.e. the client's secret on client messages, the server's on server messages.

Verification refuses, with :class:`MessageSecurityError`: bytes that are not XML
(``bad_xml``); a document with no Signature (``unsigned``) or more than one, or one that is not
the root's last child, with a Reference other than the single ``URI=""``, or with a method
other than the ones above (``bad_signature_form``: closes signature-wrapping and algorithm
substitution); a digest or HMAC that does not match (``bad_signature``: tampered, or signed
under another key). Only the enveloped and exclusive-C14N transforms are enabled in the
libxmlsec1 context. On success :func:`verify` returns the document re-serialised without its
Signature, ready for :func:`messages.decode`. XML-Signature gives no replay protection: a
session's replays are caught by its Cred nonce (§5.4.3) or MsgID; a DTD is never loaded.
"""
from __future__ import annotations

import xmlsec
from lxml import etree

from dmsim.base.errors import MessageSecurityError

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
SIGNATURE_METHOD = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"
DIGEST_METHOD = "http://www.w3.org/2001/04/xmlenc#sha256"
C14N_METHOD = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def parse(doc: bytes) -> etree._Element:
    """Return the root of XML bytes; MessageSecurityError ``bad_xml`` if they do not parse."""
    try:
        return etree.fromstring(doc, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise MessageSecurityError("bad_xml", f"message is not XML: {exc}") from None


def serialise(root: etree._Element) -> bytes:
    """Return ``root`` as UTF-8 bytes with an XML declaration."""
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _hmac_key(key: bytes) -> xmlsec.Key:
    if not key:
        raise MessageSecurityError("no_key", "XML-Signature needs a non-empty AAuthSecret")
    return xmlsec.Key.from_binary_data(xmlsec.constants.KeyDataHmac, bytes(key))


def sign(doc: bytes, key: bytes) -> bytes:
    """Return ``doc`` (SyncML XML bytes) with an enveloped HMAC-SHA256 ds:Signature under ``key``."""
    root = parse(doc)
    signature = xmlsec.template.create(root, xmlsec.constants.TransformExclC14N,
                                       xmlsec.constants.TransformHmacSha256, ns="ds")
    root.append(signature)
    ref = xmlsec.template.add_reference(signature, xmlsec.constants.TransformSha256, uri="")
    xmlsec.template.add_transform(ref, xmlsec.constants.TransformEnveloped)
    xmlsec.template.add_transform(ref, xmlsec.constants.TransformExclC14N)
    ctx = xmlsec.SignatureContext()
    ctx.key = _hmac_key(key)
    ctx.sign(signature)
    return serialise(root)


def _check_form(root: etree._Element) -> etree._Element:
    """Return the one well-formed Signature of ``root`` (see the module doc) or refuse."""
    found = root.findall(f".//{{{DS_NS}}}Signature")
    if not found:
        raise MessageSecurityError("unsigned", "message carries no XML-Signature")
    signature = found[0]
    if len(found) > 1 or signature.getparent() is not root or root[-1] is not signature:
        raise MessageSecurityError("bad_signature_form", "expected one ds:Signature, the last child of SyncML")
    ds = {"ds": DS_NS}
    refs = signature.findall("ds:SignedInfo/ds:Reference", ds)
    methods = {"SignatureMethod": SIGNATURE_METHOD, "CanonicalizationMethod": C14N_METHOD}
    for name, want in methods.items():
        node = signature.find(f"ds:SignedInfo/ds:{name}", ds)
        if node is None or node.get("Algorithm") != want:
            raise MessageSecurityError("bad_signature_form", f"{name} must be {want}")
    if len(refs) != 1 or refs[0].get("URI") != "":
        raise MessageSecurityError("bad_signature_form", 'expected a single Reference URI=""')
    digest = refs[0].find("ds:DigestMethod", ds)
    if digest is None or digest.get("Algorithm") != DIGEST_METHOD:
        raise MessageSecurityError("bad_signature_form", f"DigestMethod must be {DIGEST_METHOD}")
    return signature


def verify(doc: bytes, key: bytes) -> bytes:
    """Return ``doc`` without its Signature once the Signature verifies under ``key``; else
    MessageSecurityError (``bad_xml``, ``unsigned``, ``bad_signature_form``, ``bad_signature``)."""
    root = parse(doc)
    signature = _check_form(root)
    ctx = xmlsec.SignatureContext()
    ctx.key = _hmac_key(key)
    ctx.enable_reference_transform(xmlsec.constants.TransformEnveloped)
    ctx.enable_reference_transform(xmlsec.constants.TransformExclC14N)
    ctx.enable_reference_transform(xmlsec.constants.TransformSha256)
    ctx.enable_signature_transform(xmlsec.constants.TransformExclC14N)
    ctx.enable_signature_transform(xmlsec.constants.TransformHmacSha256)
    try:
        ctx.verify(signature)
    except xmlsec.Error as exc:
        raise MessageSecurityError("bad_signature", f"XML-Signature does not verify: {exc}") from None
    root.remove(signature)
    return serialise(root)
