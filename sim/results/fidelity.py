"""summary.json's ``fidelity`` block of a sampled run: what ran, what was modelled, and the
calibration (the sample's phase quantiles and success rate beside the modelled devices').

The model itself is ``sim/model/sampled.py``. Quantiles of the modelled devices are taken over at
most ``KEEP`` values per profile and phase (every k-th value, k doubling as the count grows), so a
10M-device run holds a bounded amount in memory (the sample too, once it is larger than that).
"""
from __future__ import annotations

from dmsim.sim.model.sampled import OUTCOME, PHASES, PROFILE, REASON, every_of
from dmsim.sim.results.summary import percentiles

KEEP = 50_000


class _Values:
    """Values of one phase, thinned to at most KEEP by keeping every ``stride``-th."""

    def __init__(self):
        self.values: list[float] = []
        self.seen = 0
        self.stride = 1

    def add(self, value: float) -> None:
        if self.seen % self.stride == 0:
            self.values.append(value)
            if len(self.values) > KEEP:
                self.values = self.values[::2]
                self.stride *= 2
        self.seen += 1

    def quantiles(self) -> dict:
        """Return the summary's p50/p90/p99 of the kept values and how many values there were."""
        return percentiles(self.values) | {"n": self.seen}


class _Side:
    """The tally of one side (sample or modelled) of one profile."""

    def __init__(self):
        self.devices = self.ok = self.unmodelled = 0
        self.phases = {name: _Values() for name in PHASES}

    def add(self, row: tuple) -> None:
        self.devices += 1
        self.ok += row[OUTCOME] == "ok"
        self.unmodelled += row[REASON] == "unmodelled"
        if row[OUTCOME] != "ok":
            return
        for name, (start, end) in PHASES.items():
            if row[start] is not None and row[end] is not None:
                self.phases[name].add(row[end] - row[start])

    def block(self) -> dict:
        return {"devices": self.devices, "success_rate": self.ok / self.devices if self.devices else None,
                "phases_s": {name: values.quantiles() for name, values in self.phases.items()}}


class FidelityTally:
    """Counts the sample's rows and the modelled rows of a sampled run, per profile."""

    def __init__(self, data: dict):
        self.every = every_of(data)
        self.share = data["fidelity_sample"]
        self.sides: dict[str, dict[str, _Side]] = {}

    def add(self, row: tuple, modelled: bool) -> None:
        sides = self.sides.setdefault(row[PROFILE], {"sample": _Side(), "modelled": _Side()})
        sides["modelled" if modelled else "sample"].add(row)

    def block(self) -> dict:
        """Return summary.json's ``fidelity`` block."""
        sample = sum(s["sample"].devices for s in self.sides.values())
        modelled = sum(s["modelled"].devices for s in self.sides.values())
        unmodelled = sum(s["modelled"].unmodelled for s in self.sides.values())
        return {
            "mode": "sampled", "sample_share": self.share, "every": self.every,
            "ran_the_protocol": f"devices whose index % {self.every} == 0",
            "sample_devices": sample, "modelled_devices": modelled, "unmodelled_devices": unmodelled,
            "model": ("each modelled device copies the outcome, counters and phase times (relative to arrival) of a "
                      "sample device of its profile that arrived close to it; modelled devices add no load "
                      "(sim/model/sampled.py)"),
            "calibration": {profile: {side: tally.block() for side, tally in sides.items()}
                            for profile, sides in sorted(self.sides.items())},
        }
