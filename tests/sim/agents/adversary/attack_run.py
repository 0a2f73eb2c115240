"""What the attack tests share: run a scenario text, and read its first attack's outcome and its
session rows."""
from __future__ import annotations

import csv
from pathlib import Path

from dmsim.sim.results.runner import run_scenario
from dmsim.sim.scenario.format import parse_scenario


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
