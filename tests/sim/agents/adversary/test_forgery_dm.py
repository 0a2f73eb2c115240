"""Forgeries of the DM server's SMS: a package #0 without the server's password is refused and
counted (detected); a bootstrap spoofed through the SMSC under the server's short code takes
NETWORKID devices the server's bootstrap has not reached yet (succeeded), is ignored after it
(blocked), and is refused by a USERPIN key (detected)."""
from __future__ import annotations

from pathlib import Path

import pytest

from dmsim.base.errors import ScenarioError
from dmsim.sim.results.runner import run_scenario
from dmsim.sim.scenario.format import load_scenario, parse_scenario
from attack_run import outcome, rows, run

ROOT = Path(__file__).resolve().parents[4]





# -- forge-package0 ---------------------------------------------------------------------------------
def test_forged_package0_scenario_is_detected_and_the_resend_gets_through(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_scenario(load_scenario(ROOT / "scenarios" / "attack_forge_package0.yaml"), tmp_path / "run",
                          plots=False)
    got = outcome(result)
    assert got["verdict"] == "detected" and "OMA-TS-DM_Notification §6.2" in got["mechanism"]
    assert got["evidence"] == {"forged": 4, "accepted": 0, "refused": 4} and not got["state_corrupted"]
    table = rows(result)
    assert all(r["outcome"] == "ok" and r["attack_outcome"] == "detected" for r in table)
    # the genuine package #0 was jammed once: each session waits for the server's resend (60 s)
    assert all(float(r["t_session_start"]) - float(r["t_bootstrap_ok"]) >= 60 for r in table)


PKG0 = """
seed: 6
duration: 400
fleet: {size: 3, profiles: [{name: p, dm_auth: md5}]}
server: {session_trigger: notification, bootstrap_timeout: 60}
"""


def test_forged_package0_without_jam_is_detected_and_costs_nothing(tmp_path):
    result = run(tmp_path, PKG0 + "attacks: [{kind: forge-package0, params: {jam: false}, targets: {devices: [1]}}]\n")
    got = outcome(result)
    assert got["verdict"] == "detected" and got["evidence"]["refused"] == 1
    table = {int(r["device"]): r for r in rows(result)}
    assert all(r["outcome"] == "ok" for r in table.values())
    assert table[1]["attack_outcome"] == "detected" and not table[0]["attacks"]


def test_forged_package0_needs_the_notification_trigger():
    with pytest.raises(ScenarioError, match="session_trigger: notification"):
        parse_scenario("fleet: {size: 2}\nattacks: [{kind: forge-package0}]\n", "x.yaml")


# -- sms-spoof-bootstrap ----------------------------------------------------------------------------
def test_spoofed_bootstrap_scenario_compromises_the_devices_of_a_throttled_campaign(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_scenario(load_scenario(ROOT / "scenarios" / "attack_sms_spoof_bootstrap.yaml"), tmp_path / "run",
                          plots=False)
    got = outcome(result)
    assert got["verdict"] == "succeeded" and got["state_corrupted"] and "TP-OA" in got["mechanism"]
    assert got["evidence"]["accepted"] == 3 and got["evidence"]["submits_accepted"] > 0
    table = {int(r["device"]): r for r in rows(result)}
    assert all(table[i]["reason"] == "compromised" for i in (7, 8, 9))
    assert all(table[i]["outcome"] == "ok" for i in range(7))


SPOOF = """
seed: 6
duration: 600
fleet: {size: 10, profiles: [{name: p, bootstrap_security: %s, user_pin_digits: 6, dm_auth: hmac}]}
smsc: %s
attacks:
  - {kind: sms-spoof-bootstrap, at: 0.5, targets: {devices: [7, 8, 9]}, params: {key_type: %s}}
"""


def test_spoofed_bootstrap_after_the_servers_is_ignored(tmp_path):
    """Unthrottled, the server submits each bootstrap the instant its device attaches: the SMSC
    delivers it first (one destination's messages in order) and the device ignores the spoof."""
    result = run(tmp_path, SPOOF % ("NETWORKID", "{}", "NETWORKID"))
    got = outcome(result)
    assert got["verdict"] == "blocked" and got["evidence"]["accepted"] == 0
    assert all(r["outcome"] == "ok" for r in rows(result))


def test_spoofed_bootstrap_under_the_wrong_key_is_refused(tmp_path):
    result = run(tmp_path, SPOOF % ("USERPIN", "{submit_rate: 5, burst: 10}", "profile"))
    got = outcome(result)
    assert got["verdict"] == "detected" and got["evidence"]["refused"] == 3
    table = {int(r["device"]): r for r in rows(result)}
    assert all(int(table[i]["bootstrap_rejected"]) >= 1 and table[i]["outcome"] == "ok" for i in (7, 8, 9))


def test_spoofed_bootstrap_needs_an_smsc():
    with pytest.raises(ScenarioError, match="needs an smsc block"):
        parse_scenario("fleet: {size: 2}\nattacks: [{kind: sms-spoof-bootstrap}]\n", "x.yaml")
