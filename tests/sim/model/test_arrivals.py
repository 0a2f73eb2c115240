"""Arrival processes: counts and rates within a few standard errors, lazily produced."""
import itertools
import math
import random

from dmsim.sim.model.arrivals import arrival_times


def test_all_at_once():
    assert list(arrival_times({"kind": "all_at_once"}, 5, random.Random(1))) == [0.0] * 5


def test_poisson_rate_and_monotonic():
    times = list(arrival_times({"kind": "poisson", "rate": 20.0}, 20000, random.Random(2)))
    assert all(b >= a for a, b in zip(times, times[1:]))
    mean_gap = times[-1] / len(times)
    assert abs(mean_gap - 1 / 20) < 4 * (1 / 20) / math.sqrt(len(times))


def test_ramp_follows_the_linear_rate():
    spec = {"kind": "ramp", "from_rate": 0.0, "to_rate": 100.0, "over": 100.0}
    times = list(arrival_times(spec, 20000, random.Random(3)))
    # expected arrivals in [0, 50): integral of t over 0..50 = 1250; in [50, 100): 3750
    first = sum(t < 50 for t in times)
    second = sum(50 <= t < 100 for t in times)
    assert abs(first - 1250) < 4 * math.sqrt(1250)
    assert abs(second - 3750) < 4 * math.sqrt(3750)
    after = [t for t in times if t >= 100]
    assert abs((after[-1] - after[0]) / (len(after) - 1) - 0.01) < 0.001


def test_arrivals_are_lazy():
    gen = arrival_times({"kind": "poisson", "rate": 1.0}, 10**9, random.Random(4))
    assert len(list(itertools.islice(gen, 3))) == 3
