"""Delay models for simulated links, built from scenario dicts.

No spec clause: these model transport latency (SMS store-and-forward, an HTTP round trip) around
the protocol cores. A scenario writes one of::

    {kind: fixed, value: s}
    {kind: exponential, mean: s}
    {kind: lognormal, median: s, sigma: x}
    {kind: empirical, quantiles: [[p0, s0], [p1, s1], ...]}

Every model draws only through the ``random.Random`` it is given, so a seeded stream reproduces
its samples. This module also holds the small spec-field readers that ``tap`` and ``link`` share.
"""
from __future__ import annotations

import bisect
import math
import random
from statistics import NormalDist

from dmsim.base.errors import ScenarioError

_MISSING = object()


# -- spec-field readers (shared with tap.py and link.py) ----------------------------------------

def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def require_dict(spec: object, path: str) -> dict:
    """Return ``spec`` if it is a dict, else raise ScenarioError at ``path``."""
    if not isinstance(spec, dict):
        raise ScenarioError(f"got {type(spec).__name__}", path=path, expected="a mapping")
    return spec


def check_keys(spec: dict, allowed: set[str], path: str) -> None:
    """Raise ScenarioError if ``spec`` has a key outside ``allowed``."""
    extra = sorted(str(k) for k in spec if k not in allowed)
    if extra:
        raise ScenarioError(f"unknown key(s) {', '.join(extra)}", path=path,
                            expected="one of " + ", ".join(sorted(allowed)))


def is_number(value: object) -> bool:
    """Return True if ``value`` is a finite int or float (bool excluded)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def spec_number(spec: dict, key: str, path: str, *, default: object = _MISSING,
                minimum: float = 0.0, positive: bool = False, maximum: float | None = None) -> float:
    """Return ``spec[key]`` as a float checked against the bounds (``default`` when absent)."""
    where = _join(path, key)
    if key not in spec or spec[key] is None:
        if default is _MISSING:
            raise ScenarioError("missing", path=where, expected="a number")
        return default  # type: ignore[return-value]
    value = spec[key]
    if not is_number(value):
        raise ScenarioError(f"{value!r} is not a finite number", path=where, expected="a number")
    if positive and value <= 0:
        raise ScenarioError(f"{value!r} is not > 0", path=where, expected="a number > 0")
    if value < minimum:
        raise ScenarioError(f"{value!r} is below {minimum}", path=where,
                            expected=f"a number >= {minimum}")
    if maximum is not None and value > maximum:
        raise ScenarioError(f"{value!r} is above {maximum}", path=where,
                            expected=f"a number <= {maximum}")
    return float(value)


def spec_probability(spec: dict, key: str, path: str, default: float = 0.0) -> float:
    """Return ``spec[key]`` checked to lie in [0, 1] (``default`` when absent)."""
    return spec_number(spec, key, path, default=default, minimum=0.0, maximum=1.0)


def _check_p(p: float) -> float:
    if not is_number(p) or not 0.0 <= p <= 1.0:
        raise ScenarioError(f"quantile level {p!r}", path="p", expected="a number in [0, 1]")
    return float(p)


# -- models --------------------------------------------------------------------------------------

class DelayModel:
    """A distribution of non-negative delays in seconds."""

    kind = ""

    def sample(self, rng: random.Random) -> float:
        """Return one delay in seconds (>= 0) drawn from ``rng``."""
        raise NotImplementedError

    def mean(self) -> float:
        """Return the distribution's mean in seconds."""
        raise NotImplementedError

    def quantile(self, p: float) -> float:
        """Return the delay below which a fraction ``p`` of samples fall (inf allowed at p=1)."""
        raise NotImplementedError


class FixedDelay(DelayModel):
    """Always ``value`` seconds; draws nothing from the stream."""

    kind = "fixed"

    def __init__(self, value: float):
        self.value = float(value)

    def sample(self, rng: random.Random) -> float:
        """Return ``value``."""
        return self.value

    def mean(self) -> float:
        """Return ``value``."""
        return self.value

    def quantile(self, p: float) -> float:
        """Return ``value`` for every p."""
        _check_p(p)
        return self.value

    def __repr__(self) -> str:
        return f"FixedDelay({self.value!r})"


class ExponentialDelay(DelayModel):
    """Exponential delay with the given mean (> 0), via ``Random.expovariate``."""

    kind = "exponential"

    def __init__(self, mean: float):
        self._mean = float(mean)
        self._rate = 1.0 / self._mean

    def sample(self, rng: random.Random) -> float:
        """Return one exponential draw."""
        return rng.expovariate(self._rate)

    def mean(self) -> float:
        """Return the configured mean."""
        return self._mean

    def quantile(self, p: float) -> float:
        """Return ``-mean * ln(1 - p)`` (inf at p=1)."""
        p = _check_p(p)
        return math.inf if p == 1.0 else -self._mean * math.log1p(-p)

    def __repr__(self) -> str:
        return f"ExponentialDelay(mean={self._mean!r})"


class LognormalDelay(DelayModel):
    """Log-normal delay: ``median * exp(sigma * Z)``, via ``Random.lognormvariate``."""

    kind = "lognormal"

    def __init__(self, median: float, sigma: float):
        self.median = float(median)
        self.sigma = float(sigma)
        self._mu = math.log(self.median)

    def sample(self, rng: random.Random) -> float:
        """Return one log-normal draw."""
        return rng.lognormvariate(self._mu, self.sigma)

    def mean(self) -> float:
        """Return ``median * exp(sigma**2 / 2)``."""
        return self.median * math.exp(self.sigma * self.sigma / 2.0)

    def quantile(self, p: float) -> float:
        """Return ``median * exp(sigma * Phi^-1(p))`` (0 at p=0, inf at p=1 when sigma > 0)."""
        p = _check_p(p)
        if self.sigma == 0.0:
            return self.median
        if p == 0.0:
            return 0.0
        if p == 1.0:
            return math.inf
        return self.median * math.exp(self.sigma * NormalDist().inv_cdf(p))

    def __repr__(self) -> str:
        return f"LognormalDelay(median={self.median!r}, sigma={self.sigma!r})"


class EmpiricalDelay(DelayModel):
    """Piecewise-linear inverse CDF through the ``(p, s)`` table; sampled by inverse transform."""

    kind = "empirical"

    def __init__(self, table: list[tuple[float, float]]):
        self._ps = [float(p) for p, _ in table]
        self._ss = [float(s) for _, s in table]

    def _at(self, u: float) -> float:
        ps, ss = self._ps, self._ss
        i = bisect.bisect_right(ps, u) - 1
        if i >= len(ps) - 1:
            return ss[-1]
        p0, p1 = ps[i], ps[i + 1]
        return ss[i] + (ss[i + 1] - ss[i]) * (u - p0) / (p1 - p0)

    def sample(self, rng: random.Random) -> float:
        """Return the interpolated quantile at one uniform draw."""
        return self._at(rng.random())

    def mean(self) -> float:
        """Return the integral of the piecewise-linear inverse CDF over [0, 1]."""
        ps, ss = self._ps, self._ss
        return sum((ps[i + 1] - ps[i]) * (ss[i] + ss[i + 1]) / 2.0 for i in range(len(ps) - 1))

    def quantile(self, p: float) -> float:
        """Return the table's value at ``p``, linearly interpolated between rows."""
        return self._at(_check_p(p))

    def __repr__(self) -> str:
        return f"EmpiricalDelay({list(zip(self._ps, self._ss))!r})"


# -- construction from scenario dicts -------------------------------------------------------------

def _fixed(spec: dict, path: str) -> DelayModel:
    check_keys(spec, {"kind", "value"}, path)
    return FixedDelay(spec_number(spec, "value", path))


def _exponential(spec: dict, path: str) -> DelayModel:
    check_keys(spec, {"kind", "mean"}, path)
    return ExponentialDelay(spec_number(spec, "mean", path, positive=True))


def _lognormal(spec: dict, path: str) -> DelayModel:
    check_keys(spec, {"kind", "median", "sigma"}, path)
    return LognormalDelay(spec_number(spec, "median", path, positive=True),
                          spec_number(spec, "sigma", path))


def _empirical(spec: dict, path: str) -> DelayModel:
    check_keys(spec, {"kind", "quantiles"}, path)
    where = _join(path, "quantiles")
    rows = spec.get("quantiles")
    if not isinstance(rows, (list, tuple)) or len(rows) < 2:
        raise ScenarioError(f"got {rows!r}", path=where, expected="a list of >= 2 [p, s] pairs")
    table: list[tuple[float, float]] = []
    for i, row in enumerate(rows):
        row_path = f"{where}[{i}]"
        if (not isinstance(row, (list, tuple)) or len(row) != 2
                or not is_number(row[0]) or not is_number(row[1])):
            raise ScenarioError(f"got {row!r}", path=row_path, expected="a [p, seconds] pair")
        p, s = float(row[0]), float(row[1])
        if s < 0:
            raise ScenarioError(f"negative delay {s!r}", path=row_path, expected="seconds >= 0")
        if table and p <= table[-1][0]:
            raise ScenarioError(f"p={p!r} does not increase", path=row_path,
                                expected="strictly increasing p")
        if table and s < table[-1][1]:
            raise ScenarioError(f"s={s!r} decreases", path=row_path, expected="non-decreasing s")
        table.append((p, s))
    if table[0][0] != 0.0 or table[-1][0] != 1.0:
        raise ScenarioError(f"p runs from {table[0][0]!r} to {table[-1][0]!r}", path=where,
                            expected="p from 0.0 to 1.0")
    return EmpiricalDelay(table)


_BUILDERS = {
    "fixed": _fixed,
    "exponential": _exponential,
    "lognormal": _lognormal,
    "empirical": _empirical,
}


def make_delay(spec: dict, path: str = "delay") -> DelayModel:
    """Return the DelayModel described by ``spec``; ScenarioError (at ``path``) if it is malformed."""
    require_dict(spec, path)
    kind = spec.get("kind")
    builder = _BUILDERS.get(kind) if isinstance(kind, str) else None
    if builder is None:
        raise ScenarioError(f"unknown delay kind {kind!r}", path=_join(path, "kind"),
                            expected="one of " + ", ".join(_BUILDERS))
    return builder(spec, path)
