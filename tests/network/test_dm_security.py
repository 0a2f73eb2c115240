"""Credentials (OMA-TS-DM_Security §5.4.2) and bootstrap HMACs (§5.10.2.3) against values
computed independently with the openssl command line, and the published vectors."""
import base64

import pytest
from conftest import load_vectors

from dmsim.network.dm import auth
from dmsim.network.dm.bootstrap_mac import (bootstrap_key, bootstrap_mac, format_content_type, networkid_from_imsi,
                                            parse_content_type, verify_bootstrap)
from dmsim.base.errors import BootstrapVerificationError, DecodeError

BODY = bytes.fromhex("0102030405")


def vector(kind):
    return load_vectors("network", kind)


# openssl: printf 'Bruce1:OhBehave' | openssl dgst -md5 -binary | base64, then md5 of "<that>:Nonce123"
def test_md5_digest_matches_openssl():
    assert auth.credential_hash("Bruce1", "OhBehave") == b"izei3G6za6rVDRgO8aQXyQ=="
    assert auth.digest("Bruce1", "OhBehave", b"Nonce123").hex() == "1ea2ed5eb2e939ea6e38b7f8db164129"
    cred = auth.make_credential(auth.AUTH_MD5, "Bruce1", "OhBehave", b"Nonce123")
    assert cred.data == "HqLtXrLpOepuOLf42xZBKQ=="


def test_digest_check_rejects_wrong_nonce_password_and_scheme():
    cred = auth.make_credential(auth.AUTH_MD5, "u", "p", b"n1")
    assert auth.check_credential(cred, auth.AUTH_MD5, "u", "p", b"n1")
    assert not auth.check_credential(cred, auth.AUTH_MD5, "u", "p", b"n2")
    assert not auth.check_credential(cred, auth.AUTH_MD5, "u", "q", b"n1")
    assert not auth.check_credential(cred, auth.AUTH_BASIC, "u", "p", b"n1")


@pytest.mark.parametrize("v", vector("syncml_auth"), ids=lambda v: v["id"])
def test_basic_vector(v):
    assert auth.basic(v["inputs"]["name"], v["inputs"]["password"]) == v["expected"]["cred_b64"]


def test_sha256_digest_formula():
    import hashlib
    inner = base64.b64encode(hashlib.sha256(b"a:b").digest())
    assert auth.digest("a", "b", b"\x00\x01", auth.AUTH_SHA256) == hashlib.sha256(inner + b":\x00\x01").digest()


@pytest.mark.parametrize("v", vector("dm_bootstrap_key"), ids=lambda v: v["id"])
def test_networkid_key_vector(v):
    assert networkid_from_imsi(v["inputs"]["imsi"]).hex() == v["expected"]["key_hex"]


def test_networkid_even_length_pads_with_f():
    assert networkid_from_imsi("00101012345678").hex() == "01101010325476f8"


@pytest.mark.parametrize("imsi", ["", "12345", "0010101234567890", "00101a123456789"])
def test_networkid_rejects_bad_imsi(imsi):
    with pytest.raises(BootstrapVerificationError):
        networkid_from_imsi(imsi)


# openssl dgst -sha1 -mac HMAC -macopt hexkey:<key> over the five bytes 01..05
@pytest.mark.parametrize("sec,pin,expected", [
    ("NETWORKID", None, "bb417c1517432090002c0ee44665909523dc2a98"),
    ("NETWPIN", None, "bb417c1517432090002c0ee44665909523dc2a98"),
    ("USERPIN", "1234", "ec5a9ad9ff6c329b4a4be51e55566548e5661360"),
    ("USERPIN_NETWORKID", "1234", "d428559a23677b62ec23df604f90686908fa44d2"),
    ("USERNETWPIN", "1234", "d428559a23677b62ec23df604f90686908fa44d2"),
])
def test_bootstrap_mac_matches_openssl(sec, pin, expected):
    key = bootstrap_key(sec, imsi="001010123456789", userpin=pin)
    assert bootstrap_mac(key, BODY) == expected.upper()


def test_content_type_round_trip_and_abnf():
    ct = format_content_type("NETWPIN", "AB" * 20)
    assert ct == "application/vnd.syncml.dm+wbxml;NETWORKID;" + "AB" * 20
    assert parse_content_type(ct) == ("NETWORKID", "AB" * 20)
    assert parse_content_type(ct.lower().replace("networkid", "NETWORKID")) == ("NETWORKID", "AB" * 20)


@pytest.mark.parametrize("bad,offset", [
    ("application/vnd.syncml.dm+wbxml;NETWORKID", 0),
    ("application/vnd.syncml.dm+xml;NETWORKID;" + "00" * 20, 0),
    ("application/vnd.syncml.dm+wbxml;NETWORKID;" + "00" * 19, 42),
    ("application/vnd.syncml.dm+wbxml;NETWORKID;" + "0g" * 20, 42),
    ("application/vnd.syncml.dm+wbxml;NET WORK;" + "00" * 20, 32),
])
def test_content_type_errors_name_the_offset(bad, offset):
    with pytest.raises(DecodeError) as err:
        parse_content_type(bad)
    assert err.value.offset == offset


def test_verify_accepts_good_and_rejects_tampered_body_and_wrong_secret():
    key = bootstrap_key("USERPIN", userpin="8765")
    ct = format_content_type("USERPIN", bootstrap_mac(key, BODY))
    assert verify_bootstrap(ct, BODY, imsi="001010123456789", userpin="8765") == "USERPIN"
    with pytest.raises(BootstrapVerificationError, match="mismatch"):
        verify_bootstrap(ct, BODY[:-1] + b"\x06", imsi="001010123456789", userpin="8765")
    with pytest.raises(BootstrapVerificationError, match="mismatch"):
        verify_bootstrap(ct, BODY, imsi="001010123456789", userpin="8764")
    with pytest.raises(BootstrapVerificationError, match="needs a user PIN"):
        verify_bootstrap(ct, BODY, imsi="001010123456789", userpin=None)
