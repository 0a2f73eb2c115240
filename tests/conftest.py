"""Shared test helpers: the published vectors, a one-replica runner and a tap that keeps payloads.

The vectors live in the repository (``tests/vectors/``, each with its source in ``source_notes``
and per vector): a clone needs nothing beside it.
"""
import json
from pathlib import Path

from dmsim.sim.links.tap import ObserveTap

VECTORS = Path(__file__).resolve().parent / "vectors"


def load_vectors(name: str, kind: str | None = None) -> list[dict]:
    """Return the vectors of ``tests/vectors/<name>.json`` (only those of ``kind`` if given)."""
    vectors = json.loads((VECTORS / f"{name}.json").read_text())["vectors"]
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


class PayloadTap(ObserveTap):
    """An observe tap that also keeps the payloads it sees."""

    def __init__(self):
        super().__init__()
        self.payloads = []

    def act(self, msg, now, rng):
        self.payloads.append(msg.payload)
        return super().act(msg, now, rng)
