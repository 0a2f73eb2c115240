"""The man-in-the-middle attacks (sim/agents/adversary/attacks/mitm.py), each run from a scenario
and judged from the state it left: tamper-bootstrap, fake-dm-server, tls-intercept,
downgrade-tls, downgrade-auth, strip-hmac and scp03-mitm, with the contrasts between profiles."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from dmsim.base.errors import ScenarioError
from dmsim.network.dm.tls import TlsEndpoint, TlsFailed, psk_client_config, psk_server_config, server_endpoint
from dmsim.sim.agents.adversary.attacks.mitm import rewrite_client_hello
from dmsim.sim.results.runner import run_scenario
from dmsim.sim.scenario.format import load_scenario, parse_scenario
from dmsim.sim.cli import knockouts

SCENARIOS = Path(__file__).resolve().parents[4] / "scenarios"
BASE = """
name: mitm
seed: 9
duration: 300
fleet: {size: 4, profiles: [{name: p, dm_auth: md5}]}
arrival: {kind: poisson, rate: 2}
links: {sms: {loss: 0}, ip: {loss: 0}}
server: {bootstrap_timeout: 30, bootstrap_retries: 1}
"""
TARGETS = "{devices: [0, 1]}"


def run(tmp_path: Path, attack: str, *overrides: str, name: str = "run"):
    """Run BASE with ``attack`` (a flow mapping) and ``overrides``; return (outcome, rows by device)."""
    scenario = parse_scenario(BASE, "mitm.yaml", [f"attacks=[{attack}]", *overrides])
    result = run_scenario(scenario, tmp_path / name, plots=False)
    with open(result.out_dir / "sessions.csv", newline="", encoding="utf-8") as f:
        rows = {int(r["device"]): r for r in csv.DictReader(f)}
    return result.summary["attacks"]["outcomes"][0], rows


def attacked(rows: dict) -> set[tuple[str, str]]:
    """Return the (reason, attack_outcome) pairs of the targeted devices 0 and 1."""
    return {(rows[i]["reason"], rows[i]["attack_outcome"]) for i in (0, 1)}


def untouched_ok(rows: dict) -> bool:
    """Return whether the devices the attack did not target ended ok, with no attack recorded."""
    others = [r for i, r in rows.items() if i not in (0, 1)]
    return bool(others) and all(r["outcome"] == "ok" and not r["attacks"] for r in others)


# --- tamper-bootstrap -----------------------------------------------------------------------------

@pytest.mark.parametrize("security", ["NETWORKID", "USERPIN", "USERPIN_NETWORKID"])
def test_a_bit_flipped_bootstrap_is_rejected_by_its_hmac(tmp_path, security):
    outcome, rows = run(tmp_path, f"{{kind: tamper-bootstrap, targets: {TARGETS}}}",
                        f"fleet.profiles=[{{name: p, bootstrap_security: {security}}}]")
    assert (outcome["verdict"], outcome["on"]) == ("detected", "sms_air")
    assert "§5.10.2.3" in outcome["mechanism"] and outcome["state_corrupted"] is False
    assert attacked(rows) == {("bootstrap_rejected", "detected")}
    assert all(int(rows[i]["bootstrap_rejected"]) == 2 for i in (0, 1))  # the first push and its resend
    assert outcome["evidence"]["bootstrap_rejected"] == 4 and untouched_ok(rows)


def test_tampering_through_an_smsc_is_detected_too(tmp_path):
    # the SMSC's deliveries are changed in flight, so the device still answers RP-ACK and the
    # SMSC sends the next part: the push completes and fails its HMAC
    outcome, rows = run(tmp_path, f"{{kind: tamper-bootstrap, targets: {TARGETS}}}", "smsc={}",
                        "fleet.profiles=[{name: p, bootstrap_security: USERPIN}]")
    assert outcome["verdict"] == "detected" and attacked(rows) == {("bootstrap_rejected", "detected")}
    assert outcome["evidence"]["bootstrap_rejected"] >= 2 and untouched_ok(rows)


def test_the_tamper_scenario_file_runs(tmp_path):
    result = run_scenario(load_scenario(SCENARIOS / "attack_tamper_bootstrap.yaml"), tmp_path / "run", plots=False)
    outcome = result.summary["attacks"]["outcomes"][0]
    assert outcome["verdict"] == "detected" and outcome["evidence"]["devices"] >= 1


# --- fake-dm-server -------------------------------------------------------------------------------

@pytest.mark.parametrize("auth, reason", [("md5", "server_auth_failed"), ("basic", "server_auth_failed"),
                                          ("hmac", "server_hmac_failed")])
def test_the_client_refuses_a_server_that_does_not_know_its_password(tmp_path, auth, reason):
    outcome, rows = run(tmp_path, f"{{kind: fake-dm-server, targets: {TARGETS}}}",
                        f"fleet.profiles=[{{name: p, dm_auth: {auth}}}]")
    assert outcome["verdict"] == "detected" and "§5.4" in outcome["mechanism"]
    assert attacked(rows) == {(reason, "detected")} and untouched_ok(rows)
    assert outcome["evidence"]["impostor_completed"] == 0
    if auth != "hmac":  # the client challenged the impostor once (§5.4.3) before giving up
        assert outcome["evidence"]["client_challenged"] == 2
    # a digest client takes the impostor's NextNonce before it authenticated it (dm_client's doc)
    assert outcome["state_corrupted"] is (auth == "md5")


def test_a_learned_basic_server_cred_lets_the_impostor_take_the_session_over(tmp_path):
    outcome, rows = run(tmp_path, f"{{kind: fake-dm-server, targets: {TARGETS}, params: {{learn: true}}}}",
                        "fleet.profiles=[{name: p, dm_auth: basic}]")
    assert outcome["verdict"] == "succeeded"
    assert attacked(rows) == {("", "succeeded")}  # the device's session ended ok, with the impostor
    assert outcome["evidence"]["impostor_completed"] == 2 and outcome["evidence"]["read"] == {"server_password": 2}


def test_a_learned_md5_server_cred_is_stale_the_client_renews_the_server_nonce(tmp_path):
    """The client gives the server a fresh NextNonce with every Status it accepts (§5.5), so the
    server Cred the impostor saw no longer verifies."""
    outcome, rows = run(tmp_path, f"{{kind: fake-dm-server, targets: {TARGETS}, params: {{learn: true}}}}",
                        "fleet.profiles=[{name: p, dm_auth: md5}]")
    assert outcome["verdict"] == "detected" and outcome["evidence"]["impostor_completed"] == 0
    assert attacked(rows) == {("server_auth_failed", "detected")} and untouched_ok(rows)


def test_before_the_fix_a_learned_md5_server_cred_took_the_session_over(tmp_path, monkeypatch):
    knockouts.apply(knockouts.KNOCKOUTS["client-keeps-server-nonce"], monkeypatch)
    outcome, rows = run(tmp_path, f"{{kind: fake-dm-server, targets: {TARGETS}, params: {{learn: true}}}}",
                        "fleet.profiles=[{name: p, dm_auth: md5}]")
    assert outcome["verdict"] == "succeeded" and outcome["evidence"]["read"] == {"syncml:auth-md5": 2}
    assert attacked(rows) == {("", "succeeded")}


def test_a_learning_impostor_is_still_refused_under_hmac(tmp_path):
    outcome, rows = run(tmp_path, f"{{kind: fake-dm-server, targets: {TARGETS}, params: {{learn: true}}}}",
                        "fleet.profiles=[{name: p, dm_auth: hmac}]")
    assert outcome["verdict"] == "detected" and outcome["evidence"]["learned"] == 0
    assert attacked(rows) == {("server_hmac_failed", "detected")}


def test_a_fake_server_cannot_answer_inside_tls():
    with pytest.raises(ScenarioError, match="tls-intercept"):
        parse_scenario(BASE, "mitm.yaml", ["attacks=[{kind: fake-dm-server}]", "components.dm_server.tls.mode=psk"])


# --- tls-intercept --------------------------------------------------------------------------------

@pytest.mark.parametrize("mode, credential", [("psk", "psk"), ("psk", "certificate"), ("x509", "certificate")])
def test_the_device_refuses_a_tls_endpoint_of_the_attacker(tmp_path, mode, credential):
    outcome, rows = run(tmp_path, f"{{kind: tls-intercept, targets: {TARGETS}, params: {{credential: {credential}}}}}",
                        f"components.dm_server.tls.mode={mode}")
    assert outcome["verdict"] == "detected" and "seed 000 §9.2.2" in outcome["mechanism"]
    assert attacked(rows) == {("tls_failed", "detected")} and untouched_ok(rows)
    evidence = outcome["evidence"]
    assert evidence["handshakes_with_attacker"] == 0 and evidence["tls"]["client_failures"] == 2
    if credential == "psk" and mode == "psk":  # the identity crossed in clear, the guessed key did not fit
        assert evidence["psk_identities_seen"] == 2


def test_without_tls_the_attacker_reads_the_basic_password(tmp_path):
    outcome, rows = run(tmp_path, f"{{kind: tls-intercept, targets: {TARGETS}}}",
                        "fleet.profiles=[{name: p, dm_auth: basic}]")
    assert outcome["verdict"] == "succeeded" and outcome["state_corrupted"] is False
    assert attacked(rows) == {("", "succeeded")}
    assert outcome["evidence"]["read"] == {"password": 4}  # packages 1 and 3 of two devices


# --- downgrade-tls --------------------------------------------------------------------------------

@pytest.mark.parametrize("mode, to, alert", [("psk", "ssl3", 70), ("psk", "tls1.0", 70), ("x509", "tls1.0", 70),
                                             ("x509", "weak-suite", 40), ("psk", "tls1.1", 20)])
def test_the_server_refuses_a_rewritten_client_hello(tmp_path, mode, to, alert):
    outcome, rows = run(tmp_path, f"{{kind: downgrade-tls, targets: {TARGETS}, params: {{to: {to}}}}}",
                        f"components.dm_server.tls.mode={mode}")
    assert outcome["verdict"] == "detected"
    assert attacked(rows) == {("tls_failed", "detected")} and untouched_ok(rows)
    tls = outcome["evidence"]["tls"]
    assert tls["server_failures"] == 2 and tls["alerts_to_device"] == {str(alert): 2}


def test_rewrite_client_hello_changes_only_what_it_is_asked():
    hello = TlsEndpoint(psk_client_config(b"id", b"k" * 32)).data_to_send()
    assert rewrite_client_hello(hello) == hello
    assert rewrite_client_hello(b"\x17\x03\x03\x00\x01\x00") is None  # application data, not a hello
    server = server_endpoint(psk_server_config({b"id": b"k" * 32}))
    events = server.receive_data(rewrite_client_hello(hello, version=0x0301))
    assert events == [TlsFailed("client offers TLSv1 at most", 70)]


def test_downgrade_tls_needs_tls():
    with pytest.raises(ScenarioError, match="tls.mode psk or x509"):
        parse_scenario(BASE, "mitm.yaml", ["attacks=[{kind: downgrade-tls}]"])


# --- downgrade-auth -------------------------------------------------------------------------------

@pytest.mark.parametrize("auth, verdict, reason", [("md5", "blocked", ""), ("basic", "succeeded", ""),
                                                   ("hmac", "detected", "server_hmac_failed")])
def test_a_rewritten_chal_does_not_change_the_clients_scheme(tmp_path, auth, verdict, reason):
    outcome, rows = run(tmp_path, f"{{kind: downgrade-auth, targets: {TARGETS}}}",
                        f"fleet.profiles=[{{name: p, dm_auth: {auth}}}]")
    assert outcome["verdict"] == verdict and attacked(rows) == {(reason, verdict)}
    evidence = outcome["evidence"]
    # auth-md5: the client answered every rewritten Chal with a digest again; auth-basic: the
    # password was in the first request, before any rewrite
    assert evidence["passwords_read"] == (2 if auth == "basic" else 0)
    assert evidence["read_without_downgrade"] == evidence["passwords_read"] and evidence["rewritten"] >= 2


# --- strip-hmac -----------------------------------------------------------------------------------

@pytest.mark.parametrize("direction, reason", [("up", "http_401"), ("down", "server_hmac_failed"),
                                               ("both", "http_401")])
def test_a_message_without_its_x_syncml_hmac_is_refused(tmp_path, direction, reason):
    outcome, rows = run(tmp_path, f"{{kind: strip-hmac, targets: {TARGETS}, params: {{direction: {direction}}}}}",
                        "fleet.profiles=[{name: p, dm_auth: hmac}]")
    assert outcome["verdict"] == "detected" and "§5.6.1" in outcome["mechanism"]
    assert attacked(rows) == {(reason, "detected")} and untouched_ok(rows)
    refused = outcome["evidence"]["server_refused"]
    assert refused == ({} if direction == "down" else {"missing_header": 2})


def test_strip_hmac_needs_an_hmac_profile():
    with pytest.raises(ScenarioError, match="dm_auth hmac"):
        parse_scenario(BASE, "mitm.yaml", ["attacks=[{kind: strip-hmac}]"])


# --- scp03-mitm -----------------------------------------------------------------------------------

def test_a_flipped_scp03_command_fails_the_cards_c_mac(tmp_path):
    outcome, rows = run(tmp_path, f"{{kind: scp03-mitm, targets: {TARGETS}}}",
                        "fleet.profiles=[{name: card, bootstrap_via: smartcard}]")
    assert (outcome["verdict"], outcome["on"]) == ("detected", "card")
    assert "C-MAC" in outcome["mechanism"] and outcome["state_corrupted"] is False
    assert attacked(rows) == {("smartcard_bootstrap_failed", "detected")} and untouched_ok(rows)
    assert outcome["evidence"]["card_reports"] == {"secure_channel_integrity": 2}


def test_scp03_mitm_needs_a_smartcard_profile():
    with pytest.raises(ScenarioError, match="bootstrap_via smartcard"):
        parse_scenario(BASE, "mitm.yaml", ["attacks=[{kind: scp03-mitm}]"])
