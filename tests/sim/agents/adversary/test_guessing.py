"""Offline guessing: userpin-guess recovers a USERPIN from one captured bootstrap and forges a
bootstrap with it (succeeded), and md5-dictionary reads auth-basic off the wire (succeeded) but
exhausts its wordlist against auth-md5/sha256's 128-bit random passwords (blocked)."""
from __future__ import annotations

import base64
import random
from pathlib import Path

import pytest

from dmsim.base.errors import ScenarioError
from dmsim.network.dm.auth import AUTH_MD5, AUTH_SHA256, make_credential
from dmsim.network.dm.bootstrap_mac import USERPIN, USERPIN_NETWORKID, networkid_from_imsi, parse_content_type
from dmsim.network.dm.server import DmServer
from dmsim.sim.agents.adversary.attacks import guessing
from dmsim.sim.agents.adversary.attacks.guessing import dictionary, digest_search, pin_search
from dmsim.sim.results.runner import run_scenario
from dmsim.sim.scenario.format import load_scenario, parse_scenario
from attack_run import outcome, rows, run

ROOT = Path(__file__).resolve().parents[4]
IMSI = "001010000000007"





def real_bootstrap(key_type: str, pin: str) -> tuple[bytes, bytes]:
    """(WBXML body, MAC octets) of a bootstrap the DM server core builds."""
    rng = random.Random(4)
    core = DmServer("s", "http://s.test/dm", rng.randbytes)
    core.provision(f"IMSI:{IMSI}", client_name=IMSI, client_password="a" * 32, server_password="b" * 32)
    content_type, body = core.bootstrap_message(f"IMSI:{IMSI}", IMSI, key_type, pin)
    return body, bytes.fromhex(parse_content_type(content_type)[1])


# -- the searches -----------------------------------------------------------------------------------
@pytest.mark.parametrize("key_type", [USERPIN, USERPIN_NETWORKID])
def test_pin_search_finds_the_pin_of_a_real_bootstrap_from_any_start(key_type):
    body, mac = real_bootstrap(key_type, "0427")
    suffix = b":" + networkid_from_imsi(IMSI) if key_type == USERPIN_NETWORKID else b""
    assert pin_search(body, mac, 4, suffix=suffix) == ("0427", 428)
    assert pin_search(body, mac, 4, suffix=suffix, start=9000) == ("0427", 1000 + 428)  # wraps at 10^4
    assert pin_search(body, mac, 4, suffix=suffix, start=428) == ("0427", 10_000)  # the worst case: the last one
    assert pin_search(body, mac, 4, suffix=suffix, limit=100) == (None, 100)


def test_digest_search_finds_a_password_its_wordlist_holds():
    nonce = b"\x01" * 16
    for scheme in (AUTH_MD5, AUTH_SHA256):
        cred = base64.b64decode(make_credential(scheme, IMSI, "letmein2024", nonce).data)
        found, tried = digest_search(cred, IMSI, nonce, dictionary(100_000, IMSI), scheme)
        assert found == "letmein2024" and tried < 100_000
        assert digest_search(cred, IMSI, b"\x02" * 16, dictionary(1000, IMSI), scheme) == (None, 1000)


# -- userpin-guess ----------------------------------------------------------------------------------
def test_userpin_guess_scenario_compromises_every_pin_device(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_scenario(load_scenario(ROOT / "scenarios" / "attack_userpin_guess.yaml"), tmp_path / "run",
                          plots=False)
    got = outcome(result)
    assert got["verdict"] == "succeeded" and got["state_corrupted"]
    evidence = got["evidence"]
    pin_rows = [r for r in rows(result) if r["profile"] != "networkid"]
    assert {r["profile"] for r in pin_rows} == {"userpin", "userpin-networkid"}
    assert pin_rows and evidence["accepted"] == evidence["pins_found"] == evidence["captured"] == len(pin_rows)
    assert all(r["reason"] == "compromised" and r["attack_outcome"] == "succeeded" for r in pin_rows)
    assert all(r["outcome"] == "ok" and not r["attacks"] for r in rows(result) if r["profile"] == "networkid")
    assert evidence["guesses"] > 0 and evidence["attacker_cpu_seconds"] > 0 and evidence["pin_digits"] == 6
    assert evidence["simulated_search_seconds"] == pytest.approx(evidence["guesses"] / guessing.PIN_GUESS_RATE,
                                                                 abs=1e-3)


USERPIN_FLEET = """
seed: 2
duration: 600
fleet: {size: 3, profiles: [{name: pin, bootstrap_security: USERPIN, user_pin_digits: 4, dm_auth: md5}]}
server: {bootstrap_timeout: 30, bootstrap_retries: 1}
"""


def test_userpin_guess_is_blocked_when_the_pin_is_beyond_max_guesses(tmp_path):
    result = run(tmp_path, USERPIN_FLEET + "attacks: [{kind: userpin-guess, params: {max_guesses: 3}}]\n")
    got = outcome(result)
    assert got["verdict"] == "blocked" and "PIN not found" in got["mechanism"]
    assert got["evidence"]["guesses"] == 9 and got["evidence"]["pins_found"] == 0
    assert all(r["outcome"] == "ok" for r in rows(result))  # the jam ends: the server's resend gets through


def test_userpin_guess_is_blocked_when_the_device_stops_waiting_first(tmp_path):
    # 10 guesses/s: a 4-digit search takes up to 1000 s, the server gives up after 2 x 30 s
    result = run(tmp_path, USERPIN_FLEET + "attacks: [{kind: userpin-guess, params: {guess_rate: 10}}]\n")
    got = outcome(result)
    late = [r for r in rows(result) if r["reason"] == "bootstrap_lost"]
    assert got["verdict"] == "blocked" and "stopped waiting" in got["mechanism"] and late
    assert got["evidence"]["pins_found"] == 3 and got["evidence"]["forged"] < 3


def test_userpin_guess_cannot_run_without_a_pin_profile():
    with pytest.raises(ScenarioError, match="NETWORKID has no PIN"):
        parse_scenario("fleet: {size: 2}\nattacks: [{kind: userpin-guess}]\n", "x.yaml")


# -- md5-dictionary ---------------------------------------------------------------------------------
def md5_scenario(dm_auth: str, extra: str = "") -> str:
    return (f"seed: 4\nduration: 300\nfleet: {{size: 2, profiles: [{{name: p, dm_auth: {dm_auth}}}]}}\n{extra}"
            "attacks: [{kind: md5-dictionary, params: {dictionary_size: 2000}}]\n")


@pytest.mark.parametrize("dm_auth, verdict, mechanism", [
    ("basic", "succeeded", "B64(name:password) in clear"),
    ("md5", "blocked", "128-bit random passwords"),
    ("sha256", "blocked", "128-bit random passwords"),
    ("hmac", "blocked", "no Cred on the wire"),
])
def test_md5_dictionary_verdict_follows_the_scheme(tmp_path, dm_auth, verdict, mechanism):
    result = run(tmp_path, md5_scenario(dm_auth))
    got = outcome(result)
    assert got["verdict"] == verdict and mechanism in got["mechanism"]
    assert all(r["outcome"] == "ok" for r in rows(result))  # passive: the sessions are untouched
    if dm_auth in ("md5", "sha256"):
        assert got["evidence"]["creds"] == 2 and got["evidence"]["guesses"] == 4000
        assert got["evidence"]["guesses_per_second"] > 0
        assert got["evidence"]["expected_years_for_128_bit_password"] > 1e20
        assert got["evidence"]["messages_cred_without_nonce"] == 2  # package 1: its nonce crossed the SMS air
    if dm_auth == "basic":
        assert got["evidence"]["recovered"] == 2


def test_md5_dictionary_sees_only_ciphertext_under_tls(tmp_path):
    result = run(tmp_path, md5_scenario("md5", "components: {dm_server: {kind: virtual, tls: {mode: psk}}}\n"))
    got = outcome(result)
    assert got["verdict"] == "blocked" and "TLS" in got["mechanism"] and got["evidence"]["messages_http"] == 0


def test_md5_dictionary_pairs_nonce_and_cred_right(tmp_path, monkeypatch):
    """With a wordlist that holds the fleet's passwords (a test seam: the victims are unchanged),
    the Cred captured on the wire and the NextNonce before it give the password back."""
    from dmsim.sim.model import fleet
    issued: list[str] = []

    def recording(randbytes):
        issued.append(real(randbytes))
        return issued[-1]
    real = fleet.fresh_password
    monkeypatch.setattr(fleet, "fresh_password", recording)
    monkeypatch.setattr(guessing, "dictionary", lambda size, name: iter(["123456", *issued]))
    got = outcome(run(tmp_path, md5_scenario("md5")))
    assert got["verdict"] == "succeeded" and got["mechanism"] == "none: the password was in the dictionary"
    assert got["evidence"]["recovered"] == 2


def test_md5_dictionary_scenario_file_is_blocked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_scenario(load_scenario(ROOT / "scenarios" / "attack_md5_dictionary.yaml"), tmp_path / "run",
                          plots=False)
    assert outcome(result)["verdict"] == "blocked"
