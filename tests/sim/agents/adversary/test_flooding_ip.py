"""The package-1 storm (sim/agents/adversary/attacks/flooding_ip.py): unauthenticated package 1s
from invented DevIds, never followed up. Before issue 16 each kept a server slot
(sim/agents/serving.py), so a storm larger than max_sessions denied every later device (the
knockout server-slot-held-by-challenge brings that back); now a refused package 1 holds no slot
and the storm is only recorded."""
from __future__ import annotations

from pathlib import Path

import pytest

from dmsim.base.errors import ScenarioError
from dmsim.sim.cli import knockouts
from dmsim.sim.results.runner import run_scenario
from dmsim.sim.scenario.format import parse_scenario

SCENARIO = Path(__file__).resolve().parents[4] / "scenarios" / "attack_package1_storm.yaml"


def run(tmp_path: Path, text: str) -> dict:
    result = run_scenario(parse_scenario(text, "x.yaml"), tmp_path / "run", plots=False)
    return result.summary["attacks"]


def test_a_storm_past_max_sessions_is_recorded_and_holds_no_slot(tmp_path):
    attacks = run(tmp_path, SCENARIO.read_text(encoding="utf-8"))
    out = attacks["outcomes"][0]
    assert out["verdict"] == "detected" and not out["state_corrupted"]
    ev = out["evidence"]
    assert ev["slots_held_by_attacker"] == 0 and ev["legit_success_rate"] == 1.0 and ev["refusals_recorded"] == 100
    assert attacks["side_effects"]["legitimate"] == {**attacks["side_effects"]["legitimate"], "devices": 12,
                                                     "success_rate": 1.0, "failures": {}}


def test_before_the_fix_the_storm_held_every_slot_and_later_devices_failed(tmp_path, monkeypatch):
    knockouts.apply(knockouts.KNOCKOUTS["server-slot-held-by-challenge"], monkeypatch)
    attacks = run(tmp_path, SCENARIO.read_text(encoding="utf-8"))
    out = attacks["outcomes"][0]
    assert out["verdict"] == "succeeded" and "serving.py" in out["mechanism"]
    ev = out["evidence"]
    assert ev["slots_held_by_attacker"] == ev["slots"] == 20
    assert ev["legit_success_rate"] < 0.95
    assert ev["refusals_recorded"] == 20  # the rest never got a slot
    # the storm acted on no device: every record is a legitimate one, and the late ones timed out
    legit = attacks["side_effects"]["legitimate"]
    assert legit["devices"] == 12 and legit["failures"].get("ip_timeout", 0) >= 1


def test_before_the_fix_a_storm_within_the_slots_was_only_recorded(tmp_path, monkeypatch):
    knockouts.apply(knockouts.KNOCKOUTS["server-slot-held-by-challenge"], monkeypatch)
    text = SCENARIO.read_text(encoding="utf-8").replace("rate: 10,", "rate: 1,")
    out = run(tmp_path, text)["outcomes"][0]
    assert out["verdict"] == "detected"
    ev = out["evidence"]
    assert ev["legit_success_rate"] == 1.0 and ev.get("slowdown", 0.0) < 2.0 and ev["refusals_recorded"] == 10
    assert ev["slots_held_by_attacker"] == 10 and out["state_corrupted"]  # held for good, though not all


def test_the_same_storm_whose_sessions_end_leaves_the_slots_free(tmp_path):
    """With the client's retry after each Chal, the final refusal ends the session and frees its
    slot: what held the server was the unanswered package 1s, not the work they cost."""
    text = SCENARIO.read_text(encoding="utf-8").replace("seconds: 10}", "seconds: 10, answer: true}")
    out = run(tmp_path, text)["outcomes"][0]
    assert out["verdict"] == "detected" and not out["state_corrupted"]
    ev = out["evidence"]
    assert ev["slots_held_by_attacker"] == 0 and ev["legit_success_rate"] == 1.0 and ev["refusals_recorded"] == 200


def test_the_storm_needs_plain_http_and_a_known_claim():
    text = SCENARIO.read_text(encoding="utf-8")
    with pytest.raises(ScenarioError, match="claim"):
        parse_scenario(text.replace("seconds: 10}", "seconds: 10, claim: mine}"), "x.yaml")
    with pytest.raises(ScenarioError, match="plain HTTP"):
        parse_scenario(text.replace("duration: 600", "duration: 600\ncomponents: {dm_server: {kind: virtual, "
                                    "tls: {mode: psk}}}"), "x.yaml")
