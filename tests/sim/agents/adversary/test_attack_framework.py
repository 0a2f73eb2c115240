"""The adversary framework: the attacks block is checked like the rest of a scenario, outcomes
reach summary.json, sessions.csv, trace.jsonl and report.html, a user's own attack class runs,
and the forgery the seeds allow is reported as a success."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dmsim.base.errors import ScenarioError
from dmsim.sim.results.runner import run_scenario
from dmsim.sim.scenario.format import load_scenario, parse_scenario
from attack_run import outcome, rows, run

ROOT = Path(__file__).resolve().parents[4]
TWO_PROFILES = """
seed: 3
duration: 900
fleet:
  size: 12
  profiles: [{name: nid}, {name: pin, bootstrap_security: USERPIN, user_pin_digits: 6}]
"""




@pytest.mark.parametrize("attack, where, message", [
    ("{kind: no-such-attack}", "x.yaml:6", "unknown attack kind 'no-such-attack'"),
    ("{kind: forge-networkid-bootstrap, on: ip}", "x.yaml:6", "cannot sit on 'ip'"),
    ("{kind: forge-networkid-bootstrap, params: {nope: 1}}", "x.yaml:6", "unknown param 'nope'"),
    ("{kind: forge-networkid-bootstrap, params: 3}", "x.yaml:6", "expected a mapping"),
    ("{kind: 'no_module_here:Thing'}", "x.yaml:6", "cannot load attack"),
    ("{kind: forge-networkid-bootstrap, targets: {fraction: 2}}", "x.yaml:6", "attacks.0.targets.fraction"),
    ("{kind: package1-storm, params: {rate: 0}}", "x.yaml:6", "attacks.0.params.rate: got 0 (expected a number > 0)"),
    ("{kind: strip-hmac, params: {direction: sideways}}", "x.yaml:6",
     "attacks.0.params.direction: got 'sideways' (expected one of up, down, both)"),
    ("{kind: nonce-rotation-lockout, params: {hold: -1}}", "x.yaml:6", "expected a number >= 0"),
    ("{kind: downgrade-dtls}", "x.yaml:6", "downgrade-dtls attacks lwm2m devices and this fleet has none"),
])
def test_a_bad_attack_is_refused_with_its_line(attack, where, message):
    text = f"fleet: {{size: 2}}\nduration: 100\n\n\nattacks:\n  - {attack}\n"
    with pytest.raises(ScenarioError) as err:
        parse_scenario(text, "x.yaml")
    assert message in str(err.value) and where in str(err.value)


def test_a_dm_attack_on_an_lwm2m_only_fleet_is_refused_not_left_inconclusive():
    text = ("fleet: {size: 2, profiles: [{name: l, device: lwm2m}]}\nsmsc: {}\n"
            "attacks: [{kind: forge-networkid-bootstrap}]\n")
    with pytest.raises(ScenarioError, match="attacks dm devices and this fleet has none"):
        parse_scenario(text, "x.yaml")


def test_an_attack_that_cannot_run_in_the_scenario_says_why():
    text = "fleet: {size: 2, profiles: [{name: c, bootstrap_via: smartcard}]}\nattacks: [{kind: forge-networkid-bootstrap}]\n"
    with pytest.raises(ScenarioError, match="no bootstrap crosses the air"):
        parse_scenario(text, "x.yaml")


def test_networkid_forgery_succeeds_and_shows_as_compromised_devices(tmp_path):
    result = run(tmp_path, TWO_PROFILES + "attacks: [{kind: forge-networkid-bootstrap, targets: {devices: [0, 1, 2, 3]}}]\n",
                 trace=(0, 5))
    outcome = result.summary["attacks"]["outcomes"][0]
    assert outcome["verdict"] == "succeeded" and outcome["state_corrupted"] is True
    assert "IMSI" in outcome["mechanism"] and outcome["evidence"] == {"forged": 4, "accepted": 4, "refused": 0}
    table = {int(r["device"]): r for r in rows(result)}
    for index in range(4):  # both profiles: a USERPIN device takes a NETWORKID bootstrap too
        assert (table[index]["outcome"], table[index]["reason"]) == ("failed", "compromised")
        assert (table[index]["attacks"], table[index]["attack_outcome"]) == ("forge-networkid-bootstrap", "succeeded")
    untouched = [r for i, r in table.items() if i >= 4]
    assert untouched and all(r["attacks"] == "" and r["outcome"] == "ok" for r in untouched)
    effects = result.summary["attacks"]["side_effects"]
    assert effects["attacked"] == {"devices": 4, "success_rate": 0.0, "latency_p50": None,
                                   "failures": {"compromised": 4}}
    assert effects["legitimate"]["devices"] == 8 and effects["legitimate"]["success_rate"] == 1.0
    trace = [json.loads(line) for line in (result.out_dir / "trace.jsonl").read_text().splitlines()]
    acts = [t for t in trace if t["event"] == "attack"]
    assert [a["device"] for a in acts] == [0] and acts[0]["kind"] == "forge-networkid-bootstrap"


def test_a_guessed_pin_is_detected_by_userpin_devices_only(tmp_path):
    result = run(tmp_path, TWO_PROFILES + "attacks: [{kind: forge-bootstrap-guessed-pin, params: {guess: '123456'}}]\n")
    table = rows(result)
    pin = [r for r in table if r["profile"] == "pin"]
    nid = [r for r in table if r["profile"] == "nid"]
    assert pin and all(r["attack_outcome"] == "detected" and r["outcome"] == "ok" for r in pin)
    assert all(int(r["bootstrap_rejected"]) >= 1 for r in pin)
    assert nid and all(r["attack_outcome"] == "succeeded" and r["reason"] == "compromised" for r in nid)
    assert result.summary["attacks"]["outcomes"][0]["verdict"] == "succeeded"


def test_an_untargeted_fleet_is_untouched_and_the_run_reproducible(tmp_path):
    text = TWO_PROFILES + "attacks: [{kind: forge-networkid-bootstrap, targets: {fraction: 0.5}}]\n"
    first = rows(run(tmp_path / "a", text))
    second = rows(run(tmp_path / "b", text))
    assert first == second
    attacked = {r["device"] for r in first if r["attacks"]}
    assert 0 < len(attacked) < 12
    plain = {r["device"]: r for r in rows(run(tmp_path / "c", TWO_PROFILES))}
    for after in first:
        if after["device"] not in attacked:  # link delays shift (one stream per link), outcomes do not
            before = plain[after["device"]]
            assert (after["outcome"], after["reason"], after["attack_outcome"]) == (before["outcome"], before["reason"], "")


def test_the_readme_worked_example_runs_and_succeeds(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the attack's file is found beside the scenario, wherever dmsim runs
    scenario = load_scenario(ROOT / "scenarios" / "attack_custom.yaml")
    result = run_scenario(scenario, tmp_path / "run", plots=True)
    outcome = result.summary["attacks"]["outcomes"][0]
    assert outcome["kind"] == "bootstrap-jammer" and outcome["verdict"] == "succeeded"
    assert result.summary["attacks"]["side_effects"]["attacked"]["failures"] == {
        "bootstrap_lost": result.summary["attacks"]["side_effects"]["attacked"]["devices"]}
    page = (result.out_dir / "report.html").read_text(encoding="utf-8")
    assert "<h2>Attacks</h2>" in page and "1 of 1 attacks SUCCEEDED: bootstrap-jammer" in page


def test_a_user_attack_file_with_an_error_is_a_scenario_error(tmp_path, monkeypatch):
    bad = tmp_path / "broken.py"
    bad.write_text("this is not python\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ScenarioError, match="cannot load attack '.*broken.py:X': name 'this' is not defined"):
        parse_scenario("fleet: {size: 1}\nattacks: [{kind: 'broken.py:X'}]\n", "x.yaml")
    not_attack = tmp_path / "plain.py"
    not_attack.write_text("class X:\n    pass\n")
    with pytest.raises(ScenarioError, match="is not an Attack subclass"):
        parse_scenario("fleet: {size: 1}\nattacks: [{kind: 'plain.py:X'}]\n", "x.yaml")
