"""Shared test helpers: where the published vectors are.

``../shared/`` sits beside the checkout (on developer machines and in CI); DMSIM_SHARED
overrides it.
"""
import json
import os
from pathlib import Path

SHARED = Path(os.environ.get("DMSIM_SHARED", Path(__file__).resolve().parents[2] / "shared"))


def load_vectors(name: str, kind: str | None = None) -> list[dict]:
    """Return the vectors of ``shared/vectors/<name>.json`` (only those of ``kind`` if given)."""
    vectors = json.loads((SHARED / "vectors" / f"{name}.json").read_text())["vectors"]
    return [v for v in vectors if kind is None or v["kind"] == kind]


def run_replica(text: str, *overrides: str, model_hook=None):
    """Return (model, rows sorted by device) of one replica of the scenario ``text`` with ``overrides``;
    ``model_hook(model)`` runs before the model does (to add a tap, say)."""
    from dmsim.sim.model.replica import Replica
    from dmsim.sim.real.components import ALL
    from dmsim.sim.scenario.format import parse_scenario
    data = parse_scenario(text, "t.yaml", list(overrides)).data
    rows: list[tuple] = []
    model = Replica(data, seed=data["seed"], replica=0, sweep=0, sweep_value=None, write=rows.append, components=ALL)
    if model_hook is not None:
        model_hook(model)
    model.run()
    return model, sorted(rows, key=lambda r: r[3])
