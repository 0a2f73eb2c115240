"""The fake BSF: the AKA authenticates the network, so a BSF without K is refused by the card."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from dmsim.base.errors import ScenarioError
from dmsim.sim.results.runner import run_scenario
from dmsim.sim.scenario.format import load_scenario, parse_scenario

SCENARIOS = Path(__file__).resolve().parents[4] / "scenarios"


def test_a_fake_bsf_is_refused_by_the_card_and_the_rest_bootstrap(tmp_path):
    result = run_scenario(load_scenario(SCENARIOS / "attack_fake_bsf.yaml"), tmp_path / "run", plots=False)
    outcome = result.summary["attacks"]["outcomes"][0]
    assert (outcome["verdict"], outcome["on"]) == ("detected", "bsf")
    assert "AUTN" in outcome["mechanism"] and outcome["state_corrupted"] is False
    with open(result.out_dir / "sessions.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    attacked = [r for r in rows if r["attacks"] == "fake-bsf"]
    assert attacked and {(r["reason"], r["attack_outcome"]) for r in attacked} == {("ub_unauthenticated", "detected")}
    assert {r["profile"] for r in attacked} == {"gba-u", "gba-me"}  # GBA_U and GBA_ME cards alike
    others = [r for r in rows if not r["attacks"]]
    assert others and all(r["outcome"] == "ok" and r["t_ub_ok"] for r in others)
    assert outcome["evidence"]["refused_by_card_or_me"] == len(attacked)


def test_the_fake_bsf_needs_a_ub_profile():
    with pytest.raises(ScenarioError, match="no profile bootstraps over Ub"):
        parse_scenario("fleet: {size: 2}\nattacks: [{kind: fake-bsf}]\n", "x.yaml")
