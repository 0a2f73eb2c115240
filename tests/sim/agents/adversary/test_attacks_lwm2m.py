"""The LwM2M attacks of the catalogue (seed 004 §7.1, §7.3) in small simulated fleets: each defence
holds (detected or blocked), and each succeeds once the defence is knocked out; the matrix gives
every attack a cell only in the profiles of its protocol."""
from __future__ import annotations

import pytest
import yaml

from dmsim.base.errors import ScenarioError
from dmsim.sim.agents.adversary.catalogue import load_catalogue
from dmsim.sim.cli.attack_matrix import PROFILES, _knocked_out, cell_scenario, protocol_mismatch, run_cell

from attack_run import outcome, rows, run

SMS_AES = "{bootstrap: psk, binding: S, sms_cipher: aes, updates: 1, sleep: 60}"
SMS_UICC = "{bootstrap: rpk, security_mode: rpk, binding: S, sms_termination: uicc, updates: 1, sleep: 60}"
SMS_3DES = "{bootstrap: certificate, security_mode: certificate, binding: S, sms_cipher: 3des, updates: 1, sleep: 60}"
PIN = "{bootstrap: low_entropy_psk, pin_digits: 4, security_mode: psk, binding: U, updates: 1, sleep: 60}"
PSK = "{bootstrap: psk, security_mode: psk, binding: U, updates: 1, sleep: 60}"


def scenario(lwm2m: str, attack: str, size: int = 4) -> str:
    return f"""
name: t
seed: 5
duration: 900
fleet: {{size: {size}, profiles: [{{name: p, device: lwm2m, lwm2m: {lwm2m}}}]}}
arrival: {{kind: poisson, rate: 0.2}}
links: {{sms: {{delay: {{kind: lognormal, median: 2.0, sigma: 0.3}}}}}}
smsc: {{}}
attacks: [{attack}]
"""


def attacked(tmp_path, lwm2m: str, attack: str, knockout: str = "", size: int = 4):
    with _knocked_out(knockout):
        result = run(tmp_path, scenario(lwm2m, attack, size))
    return outcome(result), result


# --- replay-lwm2m-sms ------------------------------------------------------------------------------

@pytest.mark.parametrize("profile, on, reason", [(SMS_AES, "sms_air", "counter_replayed"),
                                                 (SMS_AES, "smsc", "counter_lower"),
                                                 (SMS_3DES, "sms_air", "counter_replayed")])
def test_a_replayed_secured_sms_is_discarded_silently_and_counted(tmp_path, profile, on, reason):
    out, result = attacked(tmp_path, profile, f"{{kind: replay-lwm2m-sms, on: {on}}}")
    assert out["verdict"] == "detected" and out["evidence"]["verdicts"] == {"detected": 4}
    assert out["evidence"]["discards"] == {reason: 4}
    assert result.summary["success_rate"] == 1.0  # discarded silently: the devices' lives go on
    assert {r["attack_outcome"] for r in rows(result)} == {"detected"}


def test_the_uicc_counter_discards_the_replay(tmp_path):
    out, _ = attacked(tmp_path, SMS_UICC, "{kind: replay-lwm2m-sms}")
    assert out["verdict"] == "detected" and out["evidence"]["lwm2m_sms"].get("device_discarded.uicc", 0) >= 4


@pytest.mark.parametrize("profile", [SMS_AES, SMS_UICC])
def test_without_the_counter_check_the_replay_is_processed(tmp_path, profile):
    out, _ = attacked(tmp_path, profile, "{kind: replay-lwm2m-sms}", "sms-counter-equal-accepted")
    assert out["verdict"] == "succeeded" and out["state_corrupted"]


# --- wrong-kid-sms -----------------------------------------------------------------------------------

@pytest.mark.parametrize("profile, forge, reason", [(SMS_AES, "kid", "kic_mismatch"), (SMS_3DES, "kid", "kic_mismatch"),
                                                    (SMS_AES, "key", "bad_mac")])
def test_an_sms_with_unexpected_parameters_or_keys_is_discarded(tmp_path, profile, forge, reason):
    out, _ = attacked(tmp_path, profile, f"{{kind: wrong-kid-sms, params: {{forge: {forge}}}}}")
    assert out["verdict"] == "detected" and out["evidence"]["discards"] == {reason: 4}


def test_a_receiver_that_takes_bad_sms_runs_the_forged_request(tmp_path):
    out, _ = attacked(tmp_path, SMS_AES, "{kind: wrong-kid-sms, params: {forge: key}}", "sms-binding-takes-bad-sms")
    assert out["verdict"] == "succeeded"


# --- low-entropy-psk-suite -----------------------------------------------------------------------------

def test_a_pin_client_refuses_the_forbidden_suite_before_its_finished(tmp_path):
    out, result = attacked(tmp_path, PIN, "{kind: low-entropy-psk-suite}")
    assert out["verdict"] == "detected" and out["evidence"]["alerts"] == {"client.47": 4}
    assert out["evidence"]["handshakes_recorded"] == 0 and out["evidence"]["pins_found"] == 0
    assert {r["reason"] for r in rows(result)} == {"dtls_failed"}


def test_a_recorded_ecdhe_psk_handshake_gives_no_oracle(tmp_path):
    out, result = attacked(tmp_path, PIN, "{kind: low-entropy-psk-suite, params: {rewrite: false}}")
    assert out["verdict"] == "blocked" and "no offline oracle" in out["mechanism"]
    assert out["evidence"]["suites"] == {"TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256": 4}
    assert result.summary["success_rate"] == 1.0


def test_a_pin_on_a_plain_psk_suite_is_recovered_although_the_server_refuses_it(tmp_path):
    out, _ = attacked(tmp_path, PIN, "{kind: low-entropy-psk-suite}", "lwm2m-client-low-entropy-on-plain-psk")
    assert out["verdict"] == "succeeded" and "too late" in out["mechanism"]
    evidence = out["evidence"]
    assert evidence["pins_found"] == 4 and evidence["alerts"] == {"server.71": 4}
    assert evidence["suites"] == {"TLS_PSK_WITH_AES_128_CCM_8": 4} and 0 < evidence["guesses"] <= 4 * 10 ** 4


def test_the_pin_search_stops_at_max_guesses(tmp_path):
    out, _ = attacked(tmp_path, PIN, "{kind: low-entropy-psk-suite, params: {max_guesses: 1}}",
                      "lwm2m-client-low-entropy-on-plain-psk", size=2)
    assert out["verdict"] == "blocked" and "max_guesses=1" in out["mechanism"]
    assert out["evidence"]["guesses"] == 2 and out["evidence"]["pins_found"] == 0


# --- fake-bootstrap-server ---------------------------------------------------------------------------

def test_a_fake_bootstrap_server_recovers_every_pin_although_the_suite_is_ecdhe_psk(tmp_path):
    out, result = attacked(tmp_path, PIN, "{kind: fake-bootstrap-server}")
    assert out["verdict"] == "succeeded" and "passive observer only" in out["mechanism"]
    evidence = out["evidence"]
    assert evidence["pins_found"] == 4 and evidence["hellos_answered"] == 4 and evidence["refusals"] == {}
    assert evidence["suites"] == {"TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256": 4} and 0 < evidence["guesses"] <= 4 * 10 ** 4
    assert evidence["simulated_search_seconds"] == round(evidence["guesses"] / 25_000, 3)
    assert out["time_to_outcome"] < 1.0  # a round trip and a 4-digit search
    network = result.summary["network"]
    assert "bootstraps" not in network["lwm2m"] and "handshakes" not in network["lwm2m.bootstrap_dtls.psk"]
    assert {(r["attack_outcome"], r["reason"]) for r in rows(result)} == {("succeeded", "coap_timeout")}


def test_the_fake_server_search_stops_at_max_guesses(tmp_path):
    out, _ = attacked(tmp_path, PIN, "{kind: fake-bootstrap-server, params: {max_guesses: 1}}", size=2)
    assert out["verdict"] == "blocked" and "max_guesses=1" in out["mechanism"]
    assert out["evidence"]["guesses"] == 2 and out["evidence"]["pins_found"] == 0


def test_a_client_that_refuses_the_fake_flight_detects_it(tmp_path, monkeypatch):
    """A fake flight on a suite the client did not offer (a careless attacker) is refused in clear
    (illegal_parameter, 47) before any Finished: detected, nothing to search."""
    from dmsim.sim.agents.adversary import dtls_fake_server
    real = dtls_fake_server.server_hello
    monkeypatch.setattr(dtls_fake_server, "server_hello", lambda random, suite, ext: real(random, 0x00A8, ext))
    out, _ = attacked(tmp_path, PIN, "{kind: fake-bootstrap-server}")
    assert out["verdict"] == "detected" and out["evidence"]["alerts"] == {"client.47": 4}
    assert out["evidence"]["handshakes_recorded"] == 0 and out["evidence"]["pins_found"] == 0


def test_a_client_that_offers_no_ecdhe_psk_is_left_to_the_server(tmp_path):
    """The fake server speaks ECDHE-PSK only: a PIN client knocked onto the plain PSK suites gets no
    answer from it (the real server then refuses the PIN with alert 71)."""
    out, _ = attacked(tmp_path, PIN, "{kind: fake-bootstrap-server}", "lwm2m-client-low-entropy-on-plain-psk")
    assert out["verdict"] == "blocked" and "no TLS_ECDHE_PSK" in out["mechanism"]
    assert out["evidence"]["hellos_answered"] == 0 and out["evidence"]["alerts"] == {"server.71": 4}


# --- downgrade-dtls ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("profile, alert", [(PSK, "server.20"), (PIN, "client.47"), (SMS_3DES, None)])
def test_a_rewritten_client_hello_never_completes(tmp_path, profile, alert):
    out, _ = attacked(tmp_path, profile, "{kind: downgrade-dtls}")
    assert out["verdict"] == "detected" and out["evidence"]["completed"] == 0
    assert any(k.startswith("failed.server") or k.startswith("failed.client") for k in out["evidence"]["dtls_failures"])
    if alert:
        assert out["evidence"]["alerts"] == {alert: 4}


def test_without_dtls_there_is_no_hello_to_rewrite():
    with pytest.raises(ScenarioError, match="DTLS association"):
        run(None, scenario("{bootstrap: factory, security_mode: nosec, binding: U}", "{kind: downgrade-dtls}"))


# --- checks and the matrix -------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, what", [("replay-lwm2m-sms", "binding S"), ("wrong-kid-sms", "binding S"),
                                        ("low-entropy-psk-suite", "low_entropy_psk"),
                                        ("fake-bootstrap-server", "low_entropy_psk")])
def test_each_attack_names_the_profile_it_needs(kind, what):
    with pytest.raises(ScenarioError, match=what):
        run(None, scenario(PSK, f"{{kind: {kind}}}"))


def test_the_matrix_gives_each_attack_the_profiles_of_its_protocol():
    load_catalogue()
    lwm2m = [p for p in PROFILES if p.startswith("lwm2m-")]
    assert set(lwm2m) == {"lwm2m-psk", "lwm2m-low-entropy", "lwm2m-sms-aes", "lwm2m-sms-3des", "lwm2m-sms-uicc"}
    assert "LwM2M devices" in protocol_mismatch("networkid", "replay-lwm2m-sms")
    assert "OMA DM devices" in protocol_mismatch("lwm2m-psk", "downgrade-tls")
    assert protocol_mismatch("lwm2m-sms-aes", "wrong-kid-sms") is None
    assert protocol_mismatch("networkid", "downgrade-tls") is None
    assert protocol_mismatch("userpin", "fake-bootstrap-server") is not None
    data = cell_scenario("lwm2m-sms-uicc", "replay-lwm2m-sms")
    assert data["smsc"] == {} and data["fleet"]["profiles"][0]["lwm2m"]["sms_termination"] == "uicc"
    assert yaml.safe_load(yaml.safe_dump(data)) == data


def test_the_fake_bootstrap_server_cells(tmp_path):
    """Its matrix row: succeeded on the PIN profile, n/a (the check's reason) on a high-entropy PSK."""
    load_catalogue()
    pin = run_cell(str(tmp_path), "lwm2m-low-entropy", "fake-bootstrap-server", "")
    assert pin["verdict"] == "succeeded" and pin["attacked_devices"] == 6
    psk = run_cell(str(tmp_path), "lwm2m-psk", "fake-bootstrap-server", "")
    assert psk["verdict"] == "n/a" and "low_entropy_psk" in psk["mechanism"]
