"""Seed 002 §5.4 XML-Signature and §5.5 XML-Encryption of SyncML XML messages: round trips, every
refusal (unsigned, tampered, wrong key, signature wrapping, not encrypted), and interoperation
with the ``xmlsec1`` command line both ways. The xmlsec1 tests skip without it, unless
DMSIM_REQUIRE_XMLSEC1=1 (set by ``./dev test`` when CI=true), which makes that a failure."""
import os
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from dmsim.base.errors import MessageSecurityError
from dmsim.network.dm import messages as m
from dmsim.network.dm import xml_encryption as xe
from dmsim.network.dm import xml_signature as xs

SECRET = b"client-secret-Zq8x"
DOC = m.encode(m.message(m.header("0005", 1, "http://dm.test/dm", "IMSI:001010000000001"),
                         m.alert(m.ALERT_CLIENT_INITIATED)), m.DM_XML)


def reason(exc_info) -> str:
    return exc_info.value.reason


def same_message(a: bytes, b: bytes) -> bool:
    return m.encode(m.decode(a, m.DM_XML), m.DM_XML) == m.encode(m.decode(b, m.DM_XML), m.DM_XML)


# -- XML-Signature -------------------------------------------------------------------------------

def test_sign_then_verify_returns_the_message():
    signed = xs.sign(DOC, SECRET)
    assert b"xmldsig-more#hmac-sha256" in signed and b'URI=""' in signed
    assert same_message(xs.verify(signed, SECRET), DOC)


def test_unsigned_message_is_refused():
    with pytest.raises(MessageSecurityError) as exc:
        xs.verify(DOC, SECRET)
    assert reason(exc) == "unsigned"


@pytest.mark.parametrize("old,new", [(b"IMSI:001010000000001", b"IMSI:001010000000002"),  # SyncHdr
                                     (b"<Data>1201</Data>", b"<Data>1200</Data>")])      # SyncBody
def test_tampered_message_is_refused(old, new):
    signed = xs.sign(DOC, SECRET)
    assert old in signed
    with pytest.raises(MessageSecurityError) as exc:
        xs.verify(signed.replace(old, new), SECRET)
    assert reason(exc) == "bad_signature"


def test_wrong_key_is_refused():
    with pytest.raises(MessageSecurityError) as exc:
        xs.verify(xs.sign(DOC, SECRET), b"another-secret")
    assert reason(exc) == "bad_signature"


def test_signature_wrapping_is_refused():
    """A valid Signature moved away from its place (a second SyncBody after it) is refused by form."""
    signed = xs.sign(DOC, SECRET)
    wrapped = signed.replace(b"</SyncML>", b"<SyncBody><Final/></SyncBody></SyncML>")
    with pytest.raises(MessageSecurityError) as exc:
        xs.verify(wrapped, SECRET)
    assert reason(exc) == "bad_signature_form"


def test_reference_to_part_of_the_document_is_refused():
    signed = xs.sign(DOC, SECRET).replace(b'URI=""', b'URI="#body"')
    with pytest.raises(MessageSecurityError) as exc:
        xs.verify(signed, SECRET)
    assert reason(exc) == "bad_signature_form"


def test_entity_declarations_are_not_expanded():
    evil = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><SyncML>&e;</SyncML>'
    with pytest.raises(MessageSecurityError):
        xs.verify(evil, SECRET)


# -- XML-Encryption ------------------------------------------------------------------------------

def test_key_derivation_is_hkdf_sha256_of_the_secret():
    want = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"dmsim OMA DM XML-Encryption AES-256-GCM").derive(SECRET)
    assert xe.derive_key(SECRET) == want and xe.derive_key(b"other") != want


def test_encrypt_hides_the_body_and_decrypts_back():
    enc = xe.encrypt(DOC, SECRET)
    assert b"1201" not in enc and b"SyncBody" not in enc and b"IMSI:001010000000001" in enc
    assert b"aes256-gcm" in enc
    assert enc != xe.encrypt(DOC, SECRET)  # fresh IV per message
    assert same_message(xe.decrypt(enc, SECRET), DOC)


def test_wrong_key_fails_to_decrypt():
    with pytest.raises(MessageSecurityError) as exc:
        xe.decrypt(xe.encrypt(DOC, SECRET), b"another-secret")
    assert reason(exc) == "decrypt_failed"


def test_changed_ciphertext_fails_the_gcm_tag():
    enc = xe.encrypt(DOC, SECRET)
    start = enc.index(b"<xenc:CipherValue>") + len(b"<xenc:CipherValue>")
    flipped = enc[:start + 20] + (b"A" if enc[start + 20:start + 21] != b"A" else b"B") + enc[start + 21:]
    with pytest.raises(MessageSecurityError) as exc:
        xe.decrypt(flipped, SECRET)
    assert reason(exc) == "decrypt_failed"


def test_plain_message_is_refused_as_not_encrypted():
    with pytest.raises(MessageSecurityError) as exc:
        xe.decrypt(DOC, SECRET)
    assert reason(exc) == "not_encrypted"


# -- xmlsec1 interoperation ---------------------------------------------------------------------

def _xmlsec1() -> str:
    path = shutil.which("xmlsec1")
    if path is None:
        if os.environ.get("DMSIM_REQUIRE_XMLSEC1") == "1":
            pytest.fail("xmlsec1 is not installed (DMSIM_REQUIRE_XMLSEC1=1 requires it)", pytrace=False)
        pytest.skip("needs the xmlsec1 command line (Debian package xmlsec1)")
    return path


def _run(*args) -> bytes:
    proc = subprocess.run([_xmlsec1(), *map(str, args)], capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc.stdout


SIGN_TEMPLATE = DOC.replace(b"</SyncML>", b"""<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#">
<ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>
<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"/>
<ds:Reference URI=""><ds:Transforms>
<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>
<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>
<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/></ds:Reference>
</ds:SignedInfo><ds:SignatureValue/></ds:Signature></SyncML>""")

ENC_TEMPLATE = b"""<?xml version="1.0" encoding="UTF-8"?>
<xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" Type="http://www.w3.org/2001/04/xmlenc#Element">
<xenc:EncryptionMethod Algorithm="http://www.w3.org/2009/xmlenc11#aes256-gcm"/>
<xenc:CipherData><xenc:CipherValue/></xenc:CipherData></xenc:EncryptedData>"""


def test_xmlsec1_verifies_our_signature(tmp_path):
    (tmp_path / "key").write_bytes(SECRET)
    (tmp_path / "signed.xml").write_bytes(xs.sign(DOC, SECRET))
    _run("--verify", "--hmackey", tmp_path / "key", tmp_path / "signed.xml")
    (tmp_path / "wrong").write_bytes(b"another-secret")
    proc = subprocess.run([_xmlsec1(), "--verify", "--hmackey", tmp_path / "wrong", tmp_path / "signed.xml"],
                          capture_output=True, timeout=60)
    assert proc.returncode != 0


def test_we_verify_xmlsec1s_signature(tmp_path):
    (tmp_path / "key").write_bytes(SECRET)
    (tmp_path / "template.xml").write_bytes(SIGN_TEMPLATE)
    signed = _run("--sign", "--hmackey", tmp_path / "key", tmp_path / "template.xml")
    assert same_message(xs.verify(signed, SECRET), DOC)
    with pytest.raises(MessageSecurityError):
        xs.verify(signed.replace(b"1201", b"1200"), SECRET)


def test_xmlsec1_decrypts_our_encryption(tmp_path):
    (tmp_path / "aes").write_bytes(xe.derive_key(SECRET))
    (tmp_path / "enc.xml").write_bytes(xe.encrypt(DOC, SECRET))
    assert same_message(_run("--decrypt", "--aeskey", tmp_path / "aes", tmp_path / "enc.xml"), DOC)


def test_we_decrypt_xmlsec1s_encryption(tmp_path):
    (tmp_path / "aes").write_bytes(xe.derive_key(SECRET))
    (tmp_path / "doc.xml").write_bytes(DOC)
    (tmp_path / "template.xml").write_bytes(ENC_TEMPLATE)
    enc = _run("--encrypt", "--aeskey", tmp_path / "aes", "--xml-data", tmp_path / "doc.xml",
               "--node-name", "SYNCML:SYNCML1.2:SyncBody", tmp_path / "template.xml")
    assert b"1201" not in enc
    assert same_message(xe.decrypt(enc, SECRET), DOC)
