"""What became of one attack: the verdict, the defence that decided it, and what it cost.

No spec clause; the vocabulary is ours (issue 16). A verdict is one of:

- ``succeeded``: the attacker reached its goal (a device holds a forged account, the attacker
  authenticated as a device, a secret was recovered, legitimate traffic was denied). A defence
  failed, or the seeds allow the weakness; either way it is reported as a success.
- ``detected``: the attack failed and a defender *recorded* it: a refusal counter, an audit
  event, a rejected bootstrap, a TLS alert.
- ``blocked``: the attack failed and left no trace a defender could report (a duplicate
  dropped, a cached answer replayed with no new state).
- ``inconclusive``: the attack never got to act (nothing it waits for went by before the
  horizon, or its target was not in the run). Never counted as a defence that held.

``mechanism`` names what decided it (a clause where there is one: ``bootstrap MAC
(OMA-TS-DM_Security §5.10.2.3)``), or ``none`` when nothing stood in the way. ``time_to_outcome``
is simulated seconds from the attack's first act to the decision (None when it never acted).
``state_corrupted`` says whether any state of a device or server is not what it would have been
without the attack (a forged account stored, a nonce rotated by a stranger), even when the
attack as such failed. ``evidence`` holds the counts the verdict was read from.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SUCCEEDED, DETECTED, BLOCKED, INCONCLUSIVE = "succeeded", "detected", "blocked", "inconclusive"
VERDICTS = (SUCCEEDED, DETECTED, BLOCKED, INCONCLUSIVE)
FAILED_DEFENCE = SUCCEEDED  # a device that accepted forged state is a failed defence


@dataclass
class Outcome:
    """The verdict of one attack in one replica (``summary.json``'s ``attacks`` entries)."""

    kind: str
    on: str
    verdict: str
    mechanism: str
    time_to_outcome: float | None = None
    attempts: int = 0
    state_corrupted: bool = False
    evidence: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r} is not one of {VERDICTS}")

    def as_dict(self) -> dict[str, Any]:
        """Return the outcome as plain JSON data."""
        return asdict(self)


def merge(outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    """Return one verdict over several replicas' outcomes of the same attack: ``succeeded`` if it
    succeeded in any (one success is a success), else ``detected`` if any detected it, else
    ``blocked`` if any blocked it, else ``inconclusive``; ``replicas`` counts each verdict."""
    counts = {v: sum(1 for o in outcomes if o["verdict"] == v) for v in VERDICTS}
    verdict = next((v for v in VERDICTS if counts[v]), INCONCLUSIVE)
    first = next((o for o in outcomes if o["verdict"] == verdict), outcomes[0] if outcomes else {})
    times = [o["time_to_outcome"] for o in outcomes if o.get("time_to_outcome") is not None]
    return {"kind": first.get("kind"), "on": first.get("on"), "verdict": verdict,
            "mechanism": first.get("mechanism"), "time_to_outcome": min(times) if times else None,
            "attempts": sum(o.get("attempts", 0) for o in outcomes),
            "state_corrupted": any(o.get("state_corrupted") for o in outcomes),
            "replicas": {v: n for v, n in counts.items() if n}, "evidence": first.get("evidence", {})}
