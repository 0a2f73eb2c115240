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
