"""RFC 3310 / RFC 2617 computations of network/gba/digest_aka.py against an independent computation with
hashlib written out here and the openssl command line, and the Digest header parser on hostile input."""
import base64
import hashlib
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dmsim.base.errors import DecodeError
from dmsim.network.gba import digest_aka as dg

RES = bytes.fromhex("a54211d5e3ba50bf")          # TS 35.208 set 1 f2
RAND = bytes.fromhex("23553cbe9637a89d218ae64dae47bf35")
AUTN = bytes(range(16))
USER, REALM, URI = "user1_private@home1.net", "bsf.home1.net", "/"
NONCE = base64.b64encode(RAND + AUTN).decode()
CNONCE, NC = "6629fae49393a05397450978507c4ef1", "00000001"


def md5(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()


def by_hand(password: bytes, qop: str, method: str = "GET", body: bytes = b"") -> str:
    a1 = USER.encode() + b":" + REALM.encode() + b":" + password
    a2 = f"{method}:{URI}".encode() + (b":" + md5(body).encode() if qop == "auth-int" else b"")
    return md5(f"{md5(a1)}:{NONCE}:{NC}:{CNONCE}:{qop}:{md5(a2)}".encode())


@pytest.mark.parametrize("qop", ["auth", "auth-int"])
def test_response_matches_rfc2617_by_hand(qop):
    got = dg.aka_response(USER, REALM, RES, "GET", URI, NONCE, NC, CNONCE, qop)
    assert got == by_hand(RES, qop)
    assert got != by_hand(RES.hex().encode(), qop)     # the password is RES raw, not its hex


def test_auth_int_covers_the_body():
    assert dg.aka_response(USER, REALM, RES, "GET", URI, NONCE, NC, CNONCE, "auth-int", b"x") == \
        by_hand(RES, "auth-int", body=b"x")
    assert dg.aka_response(USER, REALM, RES, "GET", URI, NONCE, NC, CNONCE, "auth-int", b"x") != \
        dg.aka_response(USER, REALM, RES, "GET", URI, NONCE, NC, CNONCE, "auth-int", b"")


def test_sync_failure_uses_an_empty_password():
    assert dg.aka_response(USER, REALM, b"", "GET", URI, NONCE, NC, CNONCE, "auth-int") == by_hand(b"", "auth-int")


def test_rspauth_has_an_empty_method():
    assert dg.aka_rspauth(USER, REALM, RES, URI, NONCE, NC, CNONCE, "auth-int", b"<b/>") == \
        by_hand(RES, "auth-int", method="", body=b"<b/>")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl")
def test_ha1_against_openssl():
    a1 = USER.encode() + b":" + REALM.encode() + b":" + RES
    out = subprocess.run(["openssl", "dgst", "-md5", "-r"], input=a1, capture_output=True, check=True).stdout
    assert dg.ha1(USER, REALM, RES) == out.split()[0].decode()


def test_nonce_round_trip_and_errors():
    assert dg.make_nonce(RAND, AUTN) == NONCE
    assert dg.split_nonce(dg.make_nonce(RAND, AUTN, b"srv")) == (RAND, AUTN, b"srv")
    for bad in ("", "!!!", base64.b64encode(bytes(31)).decode(), "é"):
        with pytest.raises(DecodeError):
            dg.split_nonce(bad)


def test_parse_and_format_round_trip():
    params = {"username": USER, "realm": REALM, "nonce": NONCE, "uri": URI, "qop": "auth-int", "nc": NC,
              "cnonce": CNONCE, "response": "0" * 32, "algorithm": dg.ALGORITHM, "odd": 'a"b\\c'}
    scheme, got = dg.parse_challenge_params("Digest " + dg.format_params(params))
    assert scheme == "Digest" and got == params


@pytest.mark.parametrize("value", [
    "", "Digest username", 'Digest username="a', "Digest a=1 b=2", "Digest a=1, a=2", "Digest =1",
    "Digest a=", ",Digest a=1", "Digest a=\"x\x01\"", "Digest " + ", ".join(f"p{i}=1" for i in range(40)),
    "Digest a=" + "x" * 5000,
])
def test_malformed_headers_are_decode_errors(value):
    with pytest.raises(DecodeError):
        dg.parse_challenge_params(value)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_parser_raises_only_decode_error(text):
    try:
        dg.parse_challenge_params(text)
    except DecodeError:
        pass
