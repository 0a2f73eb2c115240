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


def expected_span(spec: dict, size: int) -> float:
    """Return the expected arrival time of the last of ``size`` devices, in simulated seconds
    (the time at which the mean number of arrivals reaches ``size``): 0 for ``all_at_once``,
    ``size / rate`` for ``poisson``; for ``ramp`` the mean count is the integral of the rate,
    ``lo·t + (hi-lo)·t²/(2·over)`` up to ``over`` and ``to_rate`` per second after it."""
    kind = spec["kind"]
    if kind == "all_at_once" or size <= 0:
        return 0.0
    if kind == "poisson":
        return size / spec["rate"]
    lo, hi, over = spec["from_rate"], spec["to_rate"], spec["over"]
    in_ramp = (lo + hi) / 2 * over
    if size > in_ramp:
        return over + (size - in_ramp) / hi
    a, b = (hi - lo) / (2 * over), lo  # solve a·t² + b·t = size for t in [0, over]
    return size / b if a == 0 else (-b + (b * b + 4 * a * size) ** 0.5) / (2 * a)


def fit_warning(spec: dict, size: int, duration: float) -> str | None:
    """Return a warning when the arrival process cannot bring the whole fleet in within
    ``duration`` (expected last arrival after it), else None."""
    span = expected_span(spec, size)
    if span <= duration:
        return None
    share = min(1.0, duration / span) if spec["kind"] == "poisson" else None
    expected = f"about {share:.0%} of" if share is not None else "only part of"
    return (f"arrival {spec['kind']} brings the {size:,} devices in over about {span:,.0f} s, longer than "
            f"duration {duration:,.0f} s: {expected} the fleet will arrive; the rest never runs "
            f"(raise arrival rate or duration)")
