"""``dmsim calc dm-bootstrap-keys`` and ``dmsim calc aka-digest``: cross-checked against the library and
against values computed here from hashlib/hmac alone (TS 33.220 Annex B.2 KDF; RFC 2617/3310 digest)."""
import hashlib
import hmac
import json

from click.testing import CliRunner

from dmsim.network.gba import digest_aka
from dmsim.network.gba.keys import dm_bootstrap_keys
from dmsim.sim.cli.main import main

KS_NAF = bytes(range(32))
DIGEST = ["--username", "001010123456789@ims.mnc001.mcc001.3gppnetwork.org", "--realm", "bsf.example.org",
          "--nonce", "I1U8vpY3qJ0hiuZNrke/NQ==", "--uri", "/", "--method", "GET", "--res", "a54211d5e3ba50bf",
          "--cnonce", "0a4f113b"]


def run(*args):
    return CliRunner().invoke(main, list(args))


def as_json(*args):
    res = run(*args, "--json")
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def md5(text: str | bytes) -> str:
    return hashlib.md5(text if isinstance(text, bytes) else text.encode()).hexdigest()


def test_dm_bootstrap_keys_match_the_library_and_an_independent_kdf():
    out = as_json("calc", "dm-bootstrap-keys", "--ks-naf", KS_NAF.hex())
    assert set(out) == {"dmbik", "dmbek"}
    assert (bytes.fromhex(out["dmbik"]), bytes.fromhex(out["dmbek"])) == dm_bootstrap_keys(KS_NAF)
    # S = FC || P0 || L0 with FC 0x01, P0 the seed's bytes 64 6D 2D 62 69 6B / ... 65 6B, L0 = 00 06
    assert out["dmbik"] == hmac.new(KS_NAF, b"\x01dm-bik\x00\x06", hashlib.sha256).hexdigest()
    assert out["dmbek"] == hmac.new(KS_NAF, b"\x01dm-bek\x00\x06", hashlib.sha256).hexdigest()
    text = run("calc", "dm-bootstrap-keys", "--ks-naf", KS_NAF.hex()).output
    assert f"dmbik  {out['dmbik']}" in text and out["dmbek"] in text


def test_dm_bootstrap_keys_refuses_bad_hex_and_lengths_with_offsets():
    res = run("calc", "dm-bootstrap-keys", "--ks-naf", "00" * 5 + "g0")
    assert res.exit_code == 2 and "byte 5" in res.output
    res = run("calc", "dm-bootstrap-keys", "--ks-naf", "00" * 16)
    assert res.exit_code == 2 and "at byte 16" in res.output and "expected 32" in res.output


def test_aka_digest_auth_matches_the_library_and_rfc_2617_by_hand():
    out = as_json("calc", "aka-digest", *DIGEST)
    res = bytes.fromhex("a54211d5e3ba50bf")
    ha1 = md5(b"001010123456789@ims.mnc001.mcc001.3gppnetwork.org:bsf.example.org:" + res)
    expected = md5(f"{ha1}:I1U8vpY3qJ0hiuZNrke/NQ==:00000001:0a4f113b:auth:{md5('GET:/')}")
    assert out["response"] == expected == digest_aka.aka_response(
        "001010123456789@ims.mnc001.mcc001.3gppnetwork.org", "bsf.example.org", res, "GET", "/",
        "I1U8vpY3qJ0hiuZNrke/NQ==", "00000001", "0a4f113b", "auth")
    assert out["ha1"] == ha1 and out["algorithm"] == "AKAv1-MD5"


def test_aka_digest_auth_int_and_the_empty_res_of_auts():
    out = as_json("calc", "aka-digest", *DIGEST, "--qop", "auth-int", "--body-hex", "3c3f786d6c3f3e", "--nc", "00000002")
    ha1 = md5(b"001010123456789@ims.mnc001.mcc001.3gppnetwork.org:bsf.example.org:" + bytes.fromhex("a54211d5e3ba50bf"))
    ha2 = md5(f"GET:/:{md5(b'<?xml?>')}")
    assert out["response"] == md5(f"{ha1}:I1U8vpY3qJ0hiuZNrke/NQ==:00000002:0a4f113b:auth-int:{ha2}")
    args = list(DIGEST)
    args[args.index("--res") + 1] = ""
    out = as_json("calc", "aka-digest", *args)
    assert out["ha1"] == md5(b"001010123456789@ims.mnc001.mcc001.3gppnetwork.org:bsf.example.org:")


def test_aka_digest_check_and_refusals():
    good = as_json("calc", "aka-digest", *DIGEST)["response"]
    assert run("calc", "aka-digest", *DIGEST, "--check", good).exit_code == 0
    bad = run("calc", "aka-digest", *DIGEST, "--check", "0" * 32)
    assert bad.exit_code == 1 and "MISMATCH" in bad.output
    assert run("calc", "aka-digest", *DIGEST, "--nc", "1").exit_code == 2
    args = list(DIGEST)
    args[args.index("--res") + 1] = "a5x2"
    res = run("calc", "aka-digest", *args)
    assert res.exit_code == 2 and "byte 1" in res.output
