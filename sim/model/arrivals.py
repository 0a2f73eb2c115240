"""Fleet arrival processes: when each device's bootstrap is triggered, in simulated seconds.

* ``all_at_once``: every device at t = 0 (a mass re-bootstrap);
* ``poisson``: a homogeneous Poisson process of ``rate`` devices per second;
* ``ramp``: a Poisson process whose rate grows linearly from ``from_rate`` to ``to_rate`` over
  ``over`` seconds and stays at ``to_rate`` afterwards, drawn by thinning (Lewis & Shedler).

Times are produced lazily, one device at a time, so a million-device fleet costs no list.
"""
from __future__ import annotations

import random
from typing import Iterator


def arrival_times(spec: dict, size: int, rng: random.Random) -> Iterator[float]:
    """Yield ``size`` non-decreasing arrival times for the validated ``arrival`` spec."""
    kind = spec["kind"]
    if kind == "all_at_once":
        for _ in range(size):
            yield 0.0
        return
    t = 0.0
    if kind == "poisson":
        for _ in range(size):
            t += rng.expovariate(spec["rate"])
            yield t
        return
    if kind == "ramp":
        lo, hi, over = spec["from_rate"], spec["to_rate"], spec["over"]
        peak = max(lo, hi)
        produced = 0
        while produced < size:
            t += rng.expovariate(peak)
            rate = hi if t >= over else lo + (hi - lo) * t / over
            if rng.random() * peak <= rate:
                produced += 1
                yield t
        return
    raise ValueError(f"unknown arrival kind {kind!r}")  # the scenario schema refuses it earlier
