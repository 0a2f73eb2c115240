"""GBA key derivations (network/gba/keys.py): the published vectors of tests/vectors/network.json and an
independent HMAC-SHA-256 by the openssl command line over S built by hand from TS 33.220 Annex B.2.1."""
import base64
import shutil
import subprocess

import pytest
from conftest import load_vectors

from dmsim.base.errors import DecodeError
from dmsim.network.gba import keys
from dmsim.network.gba.keys import (DMBEK_P0, DMBIK_P0, DMSIM_DM_UA_PROTOCOL_ID, UA_HTTP_DIGEST, derive_ks_naf,
                                    dm_bootstrap_keys, dm_naf_id, dmbek, dmbik, gba_btid, gba_kdf, kdf_input,
                                    ks_ext_naf, ks_from_ck_ik, ks_int_naf, make_naf_id, split_naf_id)

GBA = {v["id"]: v for v in load_vectors("network", "gba_kdf")}
NAF = GBA["gba-ks-naf-ts33221"]
KS = bytes.fromhex(NAF["inputs"]["Ks_hex"])
RAND = bytes.fromhex(NAF["inputs"]["RAND"])
IMPI = NAF["inputs"]["IMPI"]
NAF_ID = bytes.fromhex(NAF["inputs"]["NAF_Id_hex"])

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl command line")


def openssl_hmac_sha256(key: bytes, data: bytes) -> bytes:
    """HMAC-SHA-256 computed by the openssl CLI (an implementation independent of Python's)."""
    out = subprocess.run(["openssl", "dgst", "-sha256", "-mac", "HMAC", "-macopt", f"hexkey:{key.hex()}", "-r"],
                         input=data, capture_output=True, check=True).stdout
    return bytes.fromhex(out.split()[0].decode())


def s_by_hand(fc: int, *params: bytes) -> bytes:
    """S written out as Annex B.2.1 describes it, independently of kdf_input."""
    return bytes([fc]) + b"".join(p + bytes([len(p) >> 8, len(p) & 0xFF]) for p in params)


def test_kdf_input_matches_the_published_s():
    s = kdf_input(0x01, b"gba-me", RAND, IMPI.encode(), NAF_ID)
    assert s.hex() == NAF["expected"]["S_hex"]
    assert s == s_by_hand(0x01, b"gba-me", RAND, IMPI.encode(), NAF_ID)


def test_naf_id_vector_and_split():
    nid = make_naf_id(NAF["inputs"]["NAF_FQDN"], bytes.fromhex(NAF["inputs"]["Ua_protocol_id_hex"]))
    assert nid == NAF_ID
    assert split_naf_id(nid) == (NAF["inputs"]["NAF_FQDN"], bytes.fromhex("0100000000"))


def test_ks_naf_vectors():
    ext, internal = derive_ks_naf(KS, RAND, IMPI, NAF_ID)
    assert ext.hex() == NAF["expected"]["Ks_NAF_or_Ks_ext_NAF"]
    assert internal.hex() == NAF["expected"]["Ks_int_NAF"]
    assert ks_ext_naf(KS, RAND, IMPI, NAF_ID) == ext and ks_int_naf(KS, RAND, IMPI, NAF_ID) == internal


def test_btid_vector():
    v = GBA["gba-btid"]
    assert gba_btid(bytes.fromhex(v["inputs"]["RAND"]), v["inputs"]["bsf_fqdn"]) == v["expected"]["btid"]


def test_ks_is_ck_then_ik():
    ck, ik = bytes(range(16)), bytes(range(16, 32))
    assert ks_from_ck_ik(ck, ik) == bytes(range(32))
    with pytest.raises(DecodeError):
        ks_from_ck_ik(ck[:15], ik)


@needs_openssl
def test_ks_naf_against_openssl():
    for p0, expected in ((b"gba-me", NAF["expected"]["Ks_NAF_or_Ks_ext_NAF"]), (b"gba-u", NAF["expected"]["Ks_int_NAF"])):
        s = s_by_hand(0x01, p0, RAND, IMPI.encode(), NAF_ID)
        assert openssl_hmac_sha256(KS, s).hex() == expected


def test_dm_p0_follows_the_seed_bytes_not_the_prose():
    # seeds 003 §5.10.2.4.1 / 001 §9.3.1.3.1: P0 = 0x64 0x6D 0x2D 0x62 0x69 0x6B ("dm-bik"), L0 = 00 06
    assert DMBIK_P0 == b"dm-bik" and DMBEK_P0 == b"dm-bek"
    assert kdf_input(0x01, DMBIK_P0) == bytes.fromhex("01646d2d62696b0006")
    assert kdf_input(0x01, DMBEK_P0) == bytes.fromhex("01646d2d62656b0006")
    ks_naf = bytes.fromhex(NAF["expected"]["Ks_NAF_or_Ks_ext_NAF"])
    assert dmbik(ks_naf) != gba_kdf(ks_naf, 0x01, b"dmbik")   # the prose spelling is another key


@needs_openssl
def test_dmbik_dmbek_against_openssl():
    for ks_naf_hex in (NAF["expected"]["Ks_NAF_or_Ks_ext_NAF"], NAF["expected"]["Ks_int_NAF"]):
        ks_naf = bytes.fromhex(ks_naf_hex)
        ik, ek = dm_bootstrap_keys(ks_naf)
        assert ik == dmbik(ks_naf) and ek == dmbek(ks_naf) and ik != ek and len(ik) == 32
        assert openssl_hmac_sha256(ks_naf, bytes.fromhex("01646d2d62696b0006")) == ik
        assert openssl_hmac_sha256(ks_naf, bytes.fromhex("01646d2d62656b0006")) == ek


def test_dm_naf_id_is_fqdn_and_ua_id():
    assert dm_naf_id("dm.example.org", DMSIM_DM_UA_PROTOCOL_ID) == b"dm.example.org\xff\x64\x6d\x00\x01"
    assert dm_naf_id("dm.example.org", UA_HTTP_DIGEST)[-5:] == bytes.fromhex("0100000002")


@pytest.mark.parametrize("call", [
    lambda: make_naf_id("naf", b"\x01\x00"),
    lambda: make_naf_id("", keys.UA_TS33221),
    lambda: split_naf_id(b"\x01\x00\x00\x00\x00"),
    lambda: split_naf_id(b"\xff\xfe" + keys.UA_TS33221),
    lambda: kdf_input(0x100),
    lambda: kdf_input(0x01, bytes(0x10000)),
    lambda: ks_ext_naf(KS, RAND[:8], IMPI, NAF_ID),
])
def test_bad_inputs_are_decode_errors(call):
    with pytest.raises(DecodeError):
        call()


def test_btid_is_base64_of_rand():
    btid = gba_btid(RAND, "bsf.example.org")
    local, _, domain = btid.partition("@")
    assert base64.b64decode(local) == RAND and domain == "bsf.example.org"
