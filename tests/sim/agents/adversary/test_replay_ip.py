"""Replays on the IP path to the DM server (sim/agents/adversary/attacks/replay_ip.py): a captured
auth-basic Cred authenticates the attacker (OMA-TS-DM_Security §5.4.1) while auth-md5's consumed
nonce (§5.5) and x-syncml-hmac (§5.6.1.2) refuse it; a finished session replayed byte for byte;
x-syncml-hmac inside and outside the window; TLS records replayed into a new and a live
connection (seed 000 §9.2.2)."""
from __future__ import annotations


import pytest

from dmsim.base.errors import ScenarioError
from dmsim.network.dm import http_binding
from dmsim.network.dm import messages as m
from dmsim.sim.agents.adversary.attacks.replay_ip import read_request, with_session_id
from dmsim.sim.model.replica import Replica
from dmsim.sim.results.runner import run_scenario
from attack_run import shipped as scenario, shipped_outcome as outcome



def replica(name: str, *overrides: str, tap=None) -> Replica:
    """Run the first replica of a scenario file (``tap``: on links.ip upwards) and return it."""
    data = scenario(name, *overrides).data
    model = Replica(data, seed=data["seed"], replica=0, sweep=0, sweep_value=None, write=lambda row: None)
    if tap is not None:
        model.ip_up.tap = tap
    model.run()
    return model


# --- replay-dm-credential -----------------------------------------------------------------------

def test_a_replayed_basic_cred_authenticates_the_attacker_as_the_device(tmp_path):
    out = outcome(tmp_path, "attack_replay_dm_credential_basic")
    assert out["verdict"] == "succeeded" and out["state_corrupted"]
    assert "§5.4.1" in out["mechanism"]
    ev = out["evidence"]
    assert ev["replays"] == ev["succeeded"] == 3
    assert ev["syncml_statuses"] == [212]  # authentication accepted
    assert "session opened or advanced" in ev["server_changes"]


def test_the_server_holds_a_session_the_attacker_opened_under_a_new_session_id():
    model = replica("attack_replay_dm_credential_basic")
    core = model.server.core
    attack = model.agents["adversary"].attacks[0]
    for r in attack.results:
        uri = model.fleet.device(r.index).uri
        own = f"{r.index + 1:04X}"  # the device's SessionID (dm_device: index + 1)
        opened = set(core.sessions.get(uri, {}))
        assert opened and own not in opened  # a live session the device never opened
        assert all(core.sessions[uri][sid].client_authenticated for sid in opened)


@pytest.mark.parametrize("auth, mechanism, http, syncml", [
    ("md5", "§5.5", "200", [401]),  # SyncML 401 with a new challenge
    ("hmac", "wrong_mac", "401", None),  # x-syncml-hmac covers the SessionID: a clean close
])
def test_a_replayed_credential_is_detected_by_md5_and_hmac(tmp_path, auth, mechanism, http, syncml):
    out = outcome(tmp_path, "attack_replay_dm_credential_md5", f"fleet.profiles.0.dm_auth={auth}")
    assert out["verdict"] == "detected" and not out["state_corrupted"]
    assert mechanism in out["mechanism"]
    assert out["evidence"]["http_statuses"] == [http] and out["evidence"].get("syncml_statuses") == syncml
    assert "lockout failure recorded" in out["evidence"]["refusal_records"]


def test_an_md5_replay_that_beats_the_device_to_the_server_spends_its_nonce(tmp_path):
    # after 0: the copy is sent as the original crosses, and wins the race for one device of three
    result = run_scenario(scenario("attack_replay_dm_credential_md5",
                                   "attacks=[{kind: replay-dm-credential, params: {after: 0}}]"),
                          tmp_path / "run", plots=False)
    out = result.summary["attacks"]["outcomes"][0]
    assert out["verdict"] == "succeeded" and "neither the SessionID nor the body" in out["mechanism"]
    assert out["evidence"]["succeeded"] == 1 and out["evidence"]["detected"] == 2
    assert result.summary["ok"] == 3  # the device lost its nonce, was challenged and recovered (§5.4.3)


def test_the_md5_scenario_file_shows_detection(tmp_path):
    out = outcome(tmp_path, "attack_replay_dm_credential_md5")
    assert out["verdict"] == "detected" and "challenge issued (§5.4.3)" in out["evidence"]["refusal_records"]


def test_under_tls_there_is_no_package_1_to_capture(tmp_path):
    out = outcome(tmp_path, "attack_replay_dm_credential_basic", "components.dm_server.tls.mode=psk")
    assert out["verdict"] == "blocked" and "TLS (seed 000" in out["mechanism"]
    assert out["evidence"] == {"tls_devices": 3}


def test_a_changed_session_id_breaks_an_xml_signature(tmp_path):
    out = outcome(tmp_path, "attack_replay_dm_credential_basic", "fleet.profiles.0.message_security=xmldsig")
    assert out["verdict"] == "detected" and "bad_signature" in out["mechanism"]


def test_the_replayed_request_differs_from_the_captured_one_in_its_session_id_only():
    captured: list[bytes] = []
    model = replica("attack_replay_dm_credential_md5", "attacks=[]", tap=_Recorder(captured))
    first = read_request(captured[0], 0, "IMSI:001010000000000", 0.0)
    assert first is not None and first.header.msg_id == "1" and first.header.cred is not None
    host, path = model.transport.host, model.transport.path
    assert http_binding.encode_request(host, path, first.body, first.content_type, headers=first.headers) == first.raw
    changed = m.read_header(m.decode(with_session_id(first, "BEEF"), first.content_type))
    assert changed.session_id == "BEEF" and changed.cred == first.header.cred
    assert changed.msg_id == first.header.msg_id and changed.source == first.header.source


class _Recorder:
    """A pass-through tap keeping the payloads of DM messages."""

    counts: dict = {}

    def __init__(self, into: list):
        self.into = into

    def on_message(self, msg, now, rng):
        if msg.kind == "dm":
            self.into.append(msg.payload)
        return [(0.0, msg.payload)]


# --- replay-finished-session --------------------------------------------------------------------

def test_a_finished_basic_session_replayed_is_run_again_by_the_server(tmp_path):
    out = outcome(tmp_path, "attack_replay_finished_session")
    assert out["verdict"] == "succeeded" and out["state_corrupted"]
    assert {"session completed", "nonce rotated"} <= set(out["evidence"]["server_changes"])


@pytest.mark.parametrize("auth, refusal", [("md5", "challenge issued (§5.4.3)"), ("hmac", "replay")])
def test_a_finished_session_replayed_is_challenged_then_answered_from_the_cache(tmp_path, auth, refusal):
    out = outcome(tmp_path, "attack_replay_finished_session", f"fleet.profiles.0.dm_auth={auth}")
    ev = out["evidence"]
    assert out["verdict"] == "detected"
    assert ev["detected"] == 3 and ev["blocked"] == 3  # package 1 refused, package 3 cached
    assert ev["cached_replies"] == 3 and "server_changes" not in ev
    assert refusal in ev["refusal_records"]


# --- replay-hmac --------------------------------------------------------------------------------

@pytest.mark.parametrize("name, verdict", [("attack_replay_hmac_inside", "replay: 3"),
                                           ("attack_replay_hmac_outside", "outside_window: 3")])
def test_a_replayed_hmac_is_refused_by_the_cache_or_the_window(tmp_path, name, verdict):
    out = outcome(tmp_path, name)
    assert out["verdict"] == "detected" and verdict in out["mechanism"] and "§5.6.1.2" in out["mechanism"]
    assert out["evidence"]["http_statuses"] == ["401"]


def test_replay_hmac_needs_an_hmac_profile():
    with pytest.raises(ScenarioError, match="dm_auth hmac"):
        scenario("attack_replay_hmac_inside", "fleet.profiles.0.dm_auth=md5")


# --- replay-tls-records -------------------------------------------------------------------------

def test_replayed_tls_flights_fail_the_handshake_and_a_live_replay_kills_the_connection(tmp_path):
    result = run_scenario(scenario("attack_replay_tls_records"), tmp_path / "run", plots=False)
    out = result.summary["attacks"]["outcomes"][0]
    ev = out["evidence"]
    assert out["verdict"] == "detected" and "bad_record_mac" in out["mechanism"]
    assert ev["connections"] == 3 and ev["handshakes_completed"] == ev["requests_decrypted"] == 0
    assert ev["alerts"] == [20] and ev["live"] == ["refused"]
    assert ev["server_failures"] == 3 == result.summary["network"]["tls"]["server_failures"]
    assert out["state_corrupted"]  # the victims' connections were broken


def test_x509_replayed_certificate_verify_fails(tmp_path):
    out = outcome(tmp_path, "attack_replay_tls_records", "components.dm_server.tls.mode=x509",
                  "attacks=[{kind: replay-tls-records, params: {after: 30}}]")
    assert out["verdict"] == "detected" and not out["state_corrupted"]
    assert out["evidence"]["handshakes_completed"] == 0 and out["evidence"]["server_failures"] == 0
    assert any("signature" in f for f in out["evidence"]["failures"])


def test_replay_tls_records_needs_tls():
    with pytest.raises(ScenarioError, match="tls.mode psk or x509"):
        scenario("attack_replay_tls_records", "components.dm_server.tls.mode=none")
