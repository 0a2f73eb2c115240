"""Delay models: analytic mean and quantiles against seeded samples, and spec validation."""
from __future__ import annotations

import math
import random
import statistics

import pytest

from dmsim.sim.links.delays import (EmpiricalDelay, ExponentialDelay, FixedDelay, LognormalDelay,
                              make_delay)
from dmsim.base.errors import ScenarioError

N = 20000
TABLE = [[0.0, 0.5], [0.5, 1.0], [0.9, 3.0], [1.0, 10.0]]

MODELS = [
    pytest.param({"kind": "exponential", "mean": 2.0}, id="exponential"),
    pytest.param({"kind": "lognormal", "median": 1.5, "sigma": 0.6}, id="lognormal"),
    pytest.param({"kind": "empirical", "quantiles": TABLE}, id="empirical"),
]


def draw(spec: dict, seed: int = 7, n: int = N) -> list[float]:
    model, rng = make_delay(spec), random.Random(seed)
    return [model.sample(rng) for _ in range(n)]


def test_fixed_is_constant_and_draws_nothing():
    model = make_delay({"kind": "fixed", "value": 0.25})
    assert isinstance(model, FixedDelay)
    rng = random.Random(1)
    state = rng.getstate()
    assert [model.sample(rng) for _ in range(5)] == [0.25] * 5
    assert rng.getstate() == state
    assert model.mean() == 0.25
    assert model.quantile(0.0) == model.quantile(1.0) == 0.25


def test_builders_return_the_named_model():
    assert isinstance(make_delay({"kind": "exponential", "mean": 1}), ExponentialDelay)
    assert isinstance(make_delay({"kind": "lognormal", "median": 1, "sigma": 0}), LognormalDelay)
    assert isinstance(make_delay({"kind": "empirical", "quantiles": TABLE}), EmpiricalDelay)


@pytest.mark.parametrize("spec", MODELS)
def test_samples_are_non_negative_and_reproducible(spec):
    xs = draw(spec)
    assert min(xs) >= 0.0
    assert xs[:100] == draw(spec, n=100)
    assert xs[:100] != draw(spec, seed=8, n=100)


@pytest.mark.parametrize("spec", MODELS)
def test_sample_mean_matches_analytic_mean(spec):
    xs = draw(spec)
    se = statistics.stdev(xs) / math.sqrt(N)
    assert abs(statistics.fmean(xs) - make_delay(spec).mean()) < 4 * se


@pytest.mark.parametrize("spec", MODELS)
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_sample_quantiles_match_analytic_quantiles(spec, p):
    # The fraction of samples below quantile(p) is binomial(N, p) / N whatever the model.
    q = make_delay(spec).quantile(p)
    below = sum(x <= q for x in draw(spec)) / N
    assert abs(below - p) < 4 * math.sqrt(p * (1 - p) / N)


def test_sample_median_matches_analytic_median():
    exp = make_delay({"kind": "exponential", "mean": 2.0})
    assert exp.quantile(0.5) == pytest.approx(2.0 * math.log(2))
    logn = make_delay({"kind": "lognormal", "median": 1.5, "sigma": 0.6})
    assert logn.quantile(0.5) == pytest.approx(1.5)
    # Median standard error ~ 1 / (2 f(m) sqrt(N)); 3% is more than 4 of them for both.
    assert statistics.median(draw({"kind": "exponential", "mean": 2.0})) == pytest.approx(
        exp.quantile(0.5), rel=0.03)
    assert statistics.median(draw({"kind": "lognormal", "median": 1.5, "sigma": 0.6})) == (
        pytest.approx(1.5, rel=0.03))


def test_analytic_means_and_edges():
    logn = LognormalDelay(median=2.0, sigma=0.5)
    assert logn.mean() == pytest.approx(2.0 * math.exp(0.125))
    assert logn.quantile(0.0) == 0.0 and logn.quantile(1.0) == math.inf
    assert LognormalDelay(median=2.0, sigma=0.0).quantile(0.99) == 2.0
    exp = ExponentialDelay(3.0)
    assert exp.quantile(0.0) == 0.0 and exp.quantile(1.0) == math.inf
    assert exp.quantile(1 - math.exp(-1)) == pytest.approx(3.0)


def test_empirical_reproduces_the_table_and_interpolates():
    model = make_delay({"kind": "empirical", "quantiles": TABLE})
    for p, s in TABLE:
        assert model.quantile(p) == s
    assert model.quantile(0.25) == pytest.approx(0.75)
    assert model.quantile(0.95) == pytest.approx(6.5)
    assert model.mean() == pytest.approx(0.5 * 0.75 + 0.4 * 2.0 + 0.1 * 6.5)
    xs = draw({"kind": "empirical", "quantiles": TABLE})
    assert 0.5 <= min(xs) and max(xs) <= 10.0


def test_empirical_flat_segment_is_a_point_mass():
    model = make_delay({"kind": "empirical", "quantiles": [[0, 1], [0.5, 1], [1, 2]]})
    xs = draw({"kind": "empirical", "quantiles": [[0, 1], [0.5, 1], [1, 2]]})
    assert abs(sum(x == 1.0 for x in xs) / N - 0.5) < 4 * math.sqrt(0.25 / N)
    assert model.quantile(0.3) == 1.0


@pytest.mark.parametrize("spec", [
    None,
    [1, 2],
    {},
    {"kind": "gamma", "shape": 2},
    {"kind": 3},
    {"kind": "fixed"},
    {"kind": "fixed", "value": -1},
    {"kind": "fixed", "value": "1s"},
    {"kind": "fixed", "value": True},
    {"kind": "fixed", "value": float("nan")},
    {"kind": "fixed", "value": 1, "mean": 1},
    {"kind": "exponential", "mean": 0},
    {"kind": "exponential", "mean": float("inf")},
    {"kind": "lognormal", "median": 0, "sigma": 1},
    {"kind": "lognormal", "median": 1},
    {"kind": "lognormal", "median": 1, "sigma": -0.1},
    {"kind": "empirical"},
    {"kind": "empirical", "quantiles": [[0, 1]]},
    {"kind": "empirical", "quantiles": [[0, 1], [0.5]]},
    {"kind": "empirical", "quantiles": [[0, 1], "x"]},
    {"kind": "empirical", "quantiles": [[0.1, 1], [1, 2]]},
    {"kind": "empirical", "quantiles": [[0, 1], [0.9, 2]]},
    {"kind": "empirical", "quantiles": [[0, 1], [0.5, 2], [0.5, 3], [1, 4]]},
    {"kind": "empirical", "quantiles": [[0, 2], [1, 1]]},
    {"kind": "empirical", "quantiles": [[0, -1], [1, 1]]},
])
def test_bad_specs_raise_scenario_error(spec):
    with pytest.raises(ScenarioError):
        make_delay(spec)


def test_error_names_the_key_path():
    with pytest.raises(ScenarioError) as err:
        make_delay({"kind": "exponential", "mean": -2}, path="links.sms.delay")
    assert err.value.path == "links.sms.delay.mean"


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan"), "0.5"])
def test_quantile_level_out_of_range(p):
    with pytest.raises(ScenarioError):
        ExponentialDelay(1.0).quantile(p)
