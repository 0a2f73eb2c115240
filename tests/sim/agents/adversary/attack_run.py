"""What the attack tests share: run a scenario text or a shipped ``scenarios/*.yaml``, and read its
first attack's outcome and its session rows."""
from __future__ import annotations

import csv
from pathlib import Path

from dmsim.sim.results.runner import run_scenario
from dmsim.sim.scenario.format import parse_scenario

SCENARIOS = Path(__file__).resolve().parents[4] / "scenarios"


def run(tmp_path: Path, text: str, **kwargs):
    """Run the scenario ``text`` into ``tmp_path/run``; return the RunResult."""
    return run_scenario(parse_scenario(text, "x.yaml"), tmp_path / "run", plots=False, **kwargs)


def outcome(result) -> dict:
    """The first attack's merged outcome in ``result``'s summary."""
    return result.summary["attacks"]["outcomes"][0]


def rows(result) -> list[dict]:
    """The session rows of ``result``, as sessions.csv holds them."""
    with open(result.out_dir / "sessions.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def shipped(name: str, *overrides: str):
    """The shipped scenario ``scenarios/<name>.yaml`` with ``--set`` ``overrides``."""
    path = SCENARIOS / f"{name}.yaml"
    return parse_scenario(path.read_text(encoding="utf-8"), str(path), list(overrides))


def run_shipped(tmp_path: Path, name: str, *overrides: str):
    """Run the shipped scenario ``name`` into ``tmp_path/run``; return the RunResult."""
    return run_scenario(shipped(name, *overrides), tmp_path / "run", plots=False)


def shipped_outcome(tmp_path: Path, name: str, *overrides: str) -> dict:
    """The first attack's outcome of the shipped scenario ``name``."""
    return outcome(run_shipped(tmp_path, name, *overrides))
