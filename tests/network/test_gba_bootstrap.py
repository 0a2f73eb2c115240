"""The 3GPP_GBA protected bootstrap (network/dm/gba_bootstrap.py, OMA-TS-DM_Security §5.10.2.4):
round trip, every octet tampered, wrong keys, truncation, the Content-Type form and its relation
to §5.10.2.3, and the MAC and cipher cross-checked with the openssl command line."""
import random
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dmsim.base.errors import ProtectedBootstrapError, ProtocolError
from dmsim.network.dm.bootstrap_mac import format_content_type
from dmsim.network.dm.gba_bootstrap import (GBA_CONTENT_TYPE, IV_LEN, TAG_LEN, is_gba_content_type, protect,
                                            unprotect)
from dmsim.network.gba.keys import dm_bootstrap_keys

DMBIK, DMBEK = dm_bootstrap_keys(bytes(range(32)))
BODY = bytes.fromhex("02a4016a00") + b"\x6d\x6c\x71\x03bootstrap\x00\x01\x01" * 3
RNG = random.Random(5).randbytes


def test_round_trip_and_content_type():
    ct, payload = protect(BODY, DMBIK, DMBEK, RNG)
    assert ct == "application/vnd.syncml.dm+wbxml; SEC=3GPP_GBA" == GBA_CONTENT_TYPE
    assert payload[0] == 1 and (len(payload) - 1 - IV_LEN - TAG_LEN) % 16 == 0
    assert BODY not in payload
    assert unprotect(ct, payload, DMBIK, DMBEK) == BODY
    for spelling in ("APPLICATION/vnd.syncml.dm+wbxml;sec=3GPP_GBA", 'application/vnd.syncml.dm+wbxml ; SEC = "3GPP_GBA"'):
        assert unprotect(spelling, payload, DMBIK, DMBEK) == BODY


def test_empty_and_block_sized_bodies():
    for body in (b"", bytes(16), bytes(31)):
        ct, payload = protect(body, DMBIK, DMBEK, RNG)
        assert unprotect(ct, payload, DMBIK, DMBEK) == body


def test_fresh_iv_per_message():
    assert protect(BODY, DMBIK, DMBEK)[1] != protect(BODY, DMBIK, DMBEK)[1]


def test_every_octet_flipped_is_refused():
    ct, payload = protect(BODY, DMBIK, DMBEK, RNG)
    for i in range(len(payload)):
        for bit in (0x01, 0x80):
            bad = bytearray(payload)
            bad[i] ^= bit
            with pytest.raises(ProtectedBootstrapError) as exc:
                unprotect(ct, bytes(bad), DMBIK, DMBEK)
            assert exc.value.reason == ("version" if i == 0 else "bad_mac")


def test_wrong_keys_are_refused():
    ct, payload = protect(BODY, DMBIK, DMBEK, RNG)
    other_ik, other_ek = dm_bootstrap_keys(bytes(32))
    for ik, ek in ((other_ik, other_ek), (other_ik, DMBEK), (DMBEK, DMBIK)):
        with pytest.raises(ProtectedBootstrapError) as exc:
            unprotect(ct, payload, ik, ek)
        assert exc.value.reason == "bad_mac" and exc.value.offset == len(payload) - TAG_LEN
    with pytest.raises(ProtocolError):
        unprotect(ct, payload, DMBIK[:16], DMBEK)


def test_truncated_and_extended_payloads_are_refused():
    ct, payload = protect(BODY, DMBIK, DMBEK, RNG)
    for n in (0, 1, 17, 1 + IV_LEN + 16 + TAG_LEN - 1, len(payload) - 1, len(payload) - 16):
        with pytest.raises(ProtectedBootstrapError) as exc:
            unprotect(ct, payload[:n], DMBIK, DMBEK)
        assert exc.value.reason in ("truncated", "bad_mac")
    with pytest.raises(ProtectedBootstrapError):
        unprotect(ct, payload + b"\x00", DMBIK, DMBEK)


def test_content_type_refusals_and_the_5_10_2_3_form():
    _, payload = protect(BODY, DMBIK, DMBEK, RNG)
    hmac_form = format_content_type("NETWORKID", "A" * 40)
    assert is_gba_content_type(GBA_CONTENT_TYPE) and not is_gba_content_type(hmac_form)
    cases = {"application/vnd.syncml.dm+xml; SEC=3GPP_GBA": 0, "application/vnd.syncml.dm+wbxml; KEY=3GPP_GBA": 33,
             "application/vnd.syncml.dm+wbxml; SEC=3gpp_gba": 37, hmac_form: 0, "": 0,
             GBA_CONTENT_TYPE + "; X=1": 0}
    for value, offset in cases.items():
        with pytest.raises(ProtectedBootstrapError) as exc:
            unprotect(value, payload, DMBIK, DMBEK)
        assert (exc.value.reason, exc.value.what, exc.value.offset) == ("content_type", "Content-Type", offset)


def test_padding_error_after_a_valid_tag():
    """A sender with the right DMBIK but bad padding (not produced by protect) is still refused."""
    from dmsim.network.dm.gba_bootstrap import payload_tag
    ct, payload = protect(BODY, DMBIK, DMBEK, RNG)
    signed = bytearray(payload[:-TAG_LEN])
    signed[-17] ^= 0xFF                      # changes the last plaintext octet (the pad length) via CBC
    with pytest.raises(ProtectedBootstrapError) as exc:
        unprotect(ct, bytes(signed) + payload_tag(DMBIK, bytes(signed)), DMBIK, DMBEK)
    assert exc.value.reason == "padding"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_unprotect_raises_only_protected_bootstrap_error(data):
    try:
        unprotect(GBA_CONTENT_TYPE, data, DMBIK, DMBEK)
    except ProtectedBootstrapError:
        pass


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl command line not installed")
def test_openssl_cross_checks_the_mac_and_the_cipher(tmp_path):
    _, payload = protect(BODY, DMBIK, DMBEK, RNG)
    signed, tag = payload[:-TAG_LEN], payload[-TAG_LEN:]
    iv, ciphertext = signed[1:1 + IV_LEN], signed[1 + IV_LEN:]
    (tmp_path / "signed").write_bytes(signed)
    mac = subprocess.run(["openssl", "dgst", "-sha256", "-mac", "HMAC", "-macopt", f"hexkey:{DMBIK.hex()}",
                          "-binary", str(tmp_path / "signed")], capture_output=True, check=True).stdout
    assert mac == tag
    (tmp_path / "c").write_bytes(ciphertext)
    plain = subprocess.run(["openssl", "enc", "-d", "-aes-128-cbc", "-K", DMBEK[16:].hex(), "-iv", iv.hex(),
                            "-in", str(tmp_path / "c")], capture_output=True, check=True).stdout
    assert plain == BODY
    (tmp_path / "p").write_bytes(BODY)
    again = subprocess.run(["openssl", "enc", "-aes-128-cbc", "-K", DMBEK[16:].hex(), "-iv", iv.hex(),
                            "-in", str(tmp_path / "p")], capture_output=True, check=True).stdout
    assert again == ciphertext
