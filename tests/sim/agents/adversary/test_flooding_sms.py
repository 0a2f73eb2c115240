"""SMS floods through the SMSC (sim/agents/adversary/attacks/flooding.py): forged package #0 or
bootstraps submitted by an ESME with the server's short code. Without a submit throttle the
flood queues ahead of the server's package #0 in each device's SMSC queue (TS 23.040 §3): the
server's traffic is denied (succeeded). With one the SMSC refuses and counts most of it
(detected), but the throttle is shared: the server's own submits are throttled too."""
from __future__ import annotations


import pytest

from dmsim.base.errors import ScenarioError
from attack_run import shipped as scenario, shipped_outcome as outcome


# --- notification-storm -------------------------------------------------------------------------

def test_a_notification_storm_delays_the_servers_package0_past_its_timeout(tmp_path):
    out = outcome(tmp_path, "attack_notification_storm")
    ev = out["evidence"]
    assert out["verdict"] == "succeeded" and not out["state_corrupted"]
    assert ev["measurable"] == ev["denied"] == 6 and ev["sms_phase_p50"] > ev["late_after"] == 60.0
    assert ev["device_refusals"] > 0 and ev["throttled"] == 0  # every forged package refused, none throttled
    assert "TS 23.040" in out["mechanism"]


def test_the_smsc_submit_throttle_absorbs_the_storm_and_counts_it(tmp_path):
    out = outcome(tmp_path, "attack_notification_storm", "smsc.submit_rate=20")
    ev = out["evidence"]
    # some package #0 are still late (2 of 6), below the default threshold of half the devices
    assert out["verdict"] == "detected" and ev["denied"] < ev["measurable"] / 2
    assert ev["throttled"] > ev["accepted"] > 0
    assert ev["server_submit_throttled"] > 0  # the bucket is shared: the server is throttled as well


def test_a_storm_that_reaches_nobody_is_inconclusive(tmp_path):
    out = outcome(tmp_path, "attack_notification_storm", "attacks.0.at=590")
    assert out["verdict"] == "inconclusive" and out["attempts"] == 0


def test_a_storm_on_half_the_fleet_reports_the_others_as_control(tmp_path):
    out = outcome(tmp_path, "attack_notification_storm", "attacks.0.targets={devices: [0, 1, 2]}")
    ev = out["evidence"]
    assert ev["devices_flooded"] == 3 and ev["control"]["devices"] == 3
    assert ev["control"]["denied"] < ev["denied"]


# --- bootstrap-storm ----------------------------------------------------------------------------

def test_a_throttled_bootstrap_storm_is_detected(tmp_path):
    out = outcome(tmp_path, "attack_bootstrap_storm")
    ev = out["evidence"]
    assert out["verdict"] == "detected" and ev["denied"] == 0 and ev["forged_accepted"] == 0
    assert ev["throttled"] > 0 and ev["server_submit_throttled"] > 0


def test_an_unthrottled_bootstrap_storm_denies_the_package0(tmp_path):
    out = outcome(tmp_path, "attack_bootstrap_storm", "smsc.submit_rate=null", "server.session_trigger=notification")
    ev = out["evidence"]
    assert out["verdict"] == "succeeded" and ev["denied"] == ev["measurable"] == 6
    assert ev["forged_accepted"] == 0  # each forged bootstrap is MAC'd under another IMSI: refused or ignored


def test_a_bootstrap_storm_behind_the_servers_first_push_is_blocked(tmp_path):
    # no throttle, client-initiated sessions: the server's bootstrap is queued before the flood
    # and the devices ignore what comes after it: nobody records anything, nothing is late
    out = outcome(tmp_path, "attack_bootstrap_storm", "smsc.submit_rate=null")
    assert out["verdict"] == "blocked" and out["evidence"]["device_refusals"] == 0


def test_storms_need_an_smsc_and_sane_params():
    with pytest.raises(ScenarioError, match="smsc block"):
        scenario("attack_bootstrap_storm", "smsc=null")
    with pytest.raises(ScenarioError, match="threshold"):
        scenario("attack_bootstrap_storm", "attacks.0.params={threshold: 2}")
    with pytest.raises(ScenarioError, match="a number"):
        scenario("attack_bootstrap_storm", "attacks.0.params={count: many}")
