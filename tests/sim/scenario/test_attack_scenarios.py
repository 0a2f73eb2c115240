"""Every shipped ``scenarios/attack_*.yaml`` runs and ends as its ``# expected:`` line says
(``# expected: kind=verdict, kind=verdict``, one entry per attack of the file)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from dmsim.sim.results.runner import run_scenario
from dmsim.sim.scenario.format import load_scenario

SCENARIOS = Path(__file__).resolve().parents[3] / "scenarios"
EXPECTED = re.compile(r"^# expected: (.+)$", re.M)


def expected(path: Path) -> dict[str, str]:
    found = EXPECTED.search(path.read_text(encoding="utf-8"))
    assert found, f"{path.name} has no '# expected: kind=verdict' line"
    return dict(item.strip().split("=") for item in found.group(1).split(","))


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("attack_*.yaml")), ids=lambda p: p.name)
def test_each_attack_scenario_ends_as_it_says(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_scenario(load_scenario(path), tmp_path / "run", plots=False)
    outcomes = result.summary["attacks"]["outcomes"]
    assert {o["kind"]: o["verdict"] for o in outcomes} == expected(path)
