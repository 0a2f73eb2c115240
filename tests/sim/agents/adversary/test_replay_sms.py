"""Replays on the SMS leg (sim/agents/adversary/attacks/replay_sms.py): a bootstrap replayed to
its device once it holds its account (ignored: blocked) or to another device first (the
§5.10.2.3 MAC binds the IMSI/PIN: detected); a package #0 replayed after its session (ignored:
blocked, but its digest still verifies); a GBA Push Info replayed (TS 33.223 replay memory:
detected); an OTA command packet replayed (TS 102 225 counter: PoR status 02, detected)."""
from __future__ import annotations


import pytest

from dmsim.base.errors import ScenarioError
from dmsim.network.sms import segmentation, tpdu, wsp_push
from dmsim.network.sms.address import Address
from dmsim.sim.agents.adversary.attacks.replay_sms import AirCapture, index_of_address
from attack_run import run_shipped as run, shipped as scenario, shipped_outcome as outcome


# --- replay-bootstrap ---------------------------------------------------------------------------

def test_a_replayed_bootstrap_is_ignored_by_a_device_that_holds_its_account(tmp_path):
    out = outcome(tmp_path, "attack_replay_bootstrap")
    ev = out["evidence"]
    assert out["verdict"] == "blocked" and not out["state_corrupted"]
    assert ev["captured"] == ev["replayed"] == ev["blocked"] == 6 and ev["device_gone"] == 0
    assert "§5.10.2.3" in out["mechanism"]


def test_another_devices_bootstrap_is_refused_by_the_mac_and_the_resend_still_bootstraps(tmp_path):
    result = run(tmp_path, "attack_replay_bootstrap_before")
    out = result.summary["attacks"]["outcomes"][0]
    ev = out["evidence"]
    assert out["verdict"] == "detected" and not out["state_corrupted"]
    assert ev["detected"] == ev["replayed"] == 5 and ev["jammed"] > 0  # device 0 is the victim, not a target
    rows = (tmp_path / "run" / "sessions.csv").read_text().splitlines()[1:]
    assert len(rows) == 6 and all(",ok," in row for row in rows)


def test_a_replay_after_the_devices_life_is_inconclusive(tmp_path):
    out = outcome(tmp_path, "attack_replay_bootstrap", "attacks.0.params={when: after, after: 100}")
    assert out["verdict"] == "inconclusive" and out["evidence"]["device_gone"] == 6
    assert "does not model a device after its session record" in out["mechanism"]


def test_replay_bootstrap_checks_its_params_and_profiles():
    with pytest.raises(ScenarioError, match="when"):
        scenario("attack_replay_bootstrap", "attacks.0.params={when: never}")
    with pytest.raises(ScenarioError, match="a profile with bootstrap_via sms"):
        scenario("attack_replay_gpi", "attacks.0.kind=replay-bootstrap")


# --- replay-package0 ----------------------------------------------------------------------------

def test_a_replayed_package0_is_ignored_and_its_digest_is_stale(tmp_path):
    out = outcome(tmp_path, "attack_replay_package0")
    ev = out["evidence"]
    assert out["verdict"] == "blocked" and ev["replayed"] == 6
    # under auth-md5 the client gives the server a new nonce with each message it accepts (§5.5),
    # so that device's copy no longer verifies (before issue 16 it did); the five auth-hmac-sha256
    # devices never renew the server nonce (no Cred, no NextNonce in HMAC mode, §5.6.1), so theirs
    # still do: only the device's one-notification life keeps those copies out
    assert ev["digest_still_verifies"] == 5


def test_replay_package0_needs_notification_sessions():
    with pytest.raises(ScenarioError, match="session_trigger"):
        scenario("attack_replay_package0", "server.session_trigger=client")


# --- replay-gpi ---------------------------------------------------------------------------------

def test_a_replayed_gpi_is_refused_and_counted(tmp_path):
    result = run(tmp_path, "attack_replay_gpi")
    out = result.summary["attacks"]["outcomes"][0]
    ev = out["evidence"]
    assert out["verdict"] == "detected" and "TS 33.223" in out["mechanism"]
    assert ev["detected"] == ev["replayed"] == ev["gpi_replayed"] == 4
    assert result.summary["network"]["gba.upa"] == {"accepted": 4, "replayed": 4}


def test_replay_gpi_needs_a_gba_push_profile():
    with pytest.raises(ScenarioError, match="gba_push"):
        scenario("attack_replay_package0", "attacks.0.kind=replay-gpi")


# --- replay-ota-packet --------------------------------------------------------------------------

@pytest.mark.parametrize("por", ["ack", "submit"])
def test_a_replayed_ota_packet_is_refused_with_por_status_cntr_low(tmp_path, por):
    result = run(tmp_path, "attack_replay_ota_packet", f"ota.por={por}")
    out = result.summary["attacks"]["outcomes"][0]
    ev = out["evidence"]
    assert out["verdict"] == "detected" and "status 02" in out["mechanism"]
    assert ev["replayed"] == 4 and ev["por_status"] == 2 and ev["card_counter"] == 1
    rows = (tmp_path / "run" / "sessions.csv").read_text().splitlines()
    ota = rows[0].split(",").index("ota")
    assert all(row.split(",")[ota] == "ok" for row in rows[1:])  # the operator's own command was run once


def test_replay_ota_packet_needs_an_ota_block():
    with pytest.raises(ScenarioError, match="ota block"):
        scenario("attack_replay_ota_packet", "ota=null")


# --- helpers ------------------------------------------------------------------------------------

def test_air_capture_reassembles_a_push_from_parts_in_any_order():
    push = wsp_push.encode_push("application/vnd.syncml.dm+wbxml", bytes(range(256)) * 2, tid=1)
    parts = [tpdu.SmsDeliver(oa=Address("12345"), ies=ies, user_data=chunk).encode()
             for ies, chunk in segmentation.split_parts(push, dest_port=2948, src_port=9200, ref=7)]
    assert len(parts) > 2
    capture = AirCapture()
    for pdu in reversed(parts[1:]):
        assert capture.feed(3, pdu) is None
    tpdus, payload, _ = capture.feed(3, parts[0])
    assert tpdus == parts and payload == push
    assert index_of_address("IMSI:001010000000042") == 42 and index_of_address("12345") is None
