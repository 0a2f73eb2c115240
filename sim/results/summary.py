"""The summary of a run: success rate, failure reasons, latency percentiles and throughput, with
95 % confidence intervals over replicas.

No spec clause. Choices (the statistics are the usual ones; these pin down what is pooled):

* A *run* is one (sweep point, replica) pair of the session table. A block of the summary covers a
  set of runs: the whole table at the top level, one sweep point in ``sweep.points``.
* ``value`` is computed over all sessions of the block pooled together. The CI is Student-t over
  the per-replica statistic: mean ± t(0.975, n-1)·sd/√n, sd with n-1; t from a table for
  df 1..30, 1.96 beyond. With fewer than two replicas that have the statistic the CI is null.
* At the top level of a sweep, "replica r" pools replica r of every sweep point.
* Percentiles use numpy's linear method over the latencies of ok sessions with a latency.
* Throughput is ok sessions per simulated second of one run: ok / (duration × runs in the block),
  so pooled value and per-replica values are on the same scale. It is null when ``duration`` is
  not a positive finite number.
* A failed session with an empty reason counts under ``"unknown"``.
* Missing data gives ``None`` (JSON null), never NaN and never an exception.
"""
from __future__ import annotations

import math
import os
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dmsim.base.errors import DmsimError
from dmsim.sim.results.records import OUTCOME_FAILED, OUTCOME_OK, read_sessions

# Two-sided 95 % Student-t quantiles t(0.975, df) for df = 1..30.
_T975 = (12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
         2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
         2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423)
_Z975 = 1.96

PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0}
UNKNOWN_REASON = "unknown"

_READ_COLUMNS = ("replica", "sweep", "sweep_value", "outcome", "reason", "latency")


def t975(df: int) -> float:
    """Return the 0.975 quantile of Student's t with ``df`` degrees of freedom (1.96 above 30)."""
    if df < 1:
        raise DmsimError(f"t quantile needs df >= 1, got {df}")
    return _T975[df - 1] if df <= len(_T975) else _Z975


def confidence_interval(values: list[float]) -> tuple[float | None, float | None]:
    """Return the 95 % Student-t interval (low, high) of the mean of ``values``.

    Returns (None, None) for fewer than two values.
    """
    n = len(values)
    if n < 2:
        return None, None
    arr = np.asarray(values, dtype=float)
    mean = float(arr.mean())
    half = t975(n - 1) * float(arr.std(ddof=1)) / math.sqrt(n)
    return mean - half, mean + half


@dataclass
class _Run:
    """Counts of one (sweep point, replica) run, gathered while streaming the table."""

    sessions: int = 0
    ok: int = 0
    reasons: Counter = field(default_factory=Counter)
    latencies: array = field(default_factory=lambda: array("d"))


@dataclass
class _Pool:
    """Several runs merged: what one replica (or a whole block) contributes to a statistic."""

    runs: int
    sessions: int
    ok: int
    latencies: np.ndarray

    @classmethod
    def of(cls, runs: list[_Run]) -> _Pool:
        lats = [np.frombuffer(r.latencies, dtype=float) for r in runs if len(r.latencies)]
        return cls(runs=len(runs), sessions=sum(r.sessions for r in runs),
                   ok=sum(r.ok for r in runs),
                   latencies=np.concatenate(lats) if lats else np.empty(0))

    def percentiles(self) -> dict[str, float | None]:
        """Return {"p50", "p90", "p99"} of the latencies (None when there are none)."""
        if not self.latencies.size:
            return {name: None for name in PERCENTILES}
        values = np.percentile(self.latencies, list(PERCENTILES.values()), method="linear")
        return {name: float(v) for name, v in zip(PERCENTILES, values)}

    def mean(self) -> float | None:
        """Return the mean latency, or None when there is none."""
        return float(self.latencies.mean()) if self.latencies.size else None

    def success_rate(self) -> float | None:
        """Return ok / sessions, or None without sessions."""
        return self.ok / self.sessions if self.sessions else None

    def throughput(self, duration: float) -> float | None:
        """Return ok sessions per simulated second of one run, or None without a duration."""
        if not self.runs or not (math.isfinite(duration) and duration > 0):
            return None
        return self.ok / (duration * self.runs)


def _estimate(value: float | None, per_replica: list[float | None]) -> dict[str, float | None]:
    """Return the estimate block; latencies and throughputs cannot be negative, so the interval
    is cut at 0 (with few replicas the t interval can reach far below it)."""
    low, high = confidence_interval([v for v in per_replica if v is not None])
    return {"value": value, "ci95_low": None if low is None else max(0.0, low), "ci95_high": high}


def _block(by_replica: dict[int, list[_Run]], duration: float) -> dict[str, Any]:
    """Return the summary block (everything but "sweep") of the runs grouped by replica."""
    replicas = sorted(by_replica)
    pools = {r: _Pool.of(by_replica[r]) for r in replicas}
    total = _Pool.of([run for r in replicas for run in by_replica[r]])
    reasons: Counter = Counter()
    for r in replicas:
        for run in by_replica[r]:
            reasons.update(run.reasons)

    total_pct = total.percentiles()
    replica_pct = {r: pools[r].percentiles() for r in replicas}
    latency = {name: _estimate(total_pct[name], [replica_pct[r][name] for r in replicas])
               for name in PERCENTILES}
    latency["mean"] = _estimate(total.mean(), [pools[r].mean() for r in replicas])

    return {
        "sessions": total.sessions,
        "ok": total.ok,
        "success_rate": total.success_rate(),
        "failure_reasons": dict(sorted(reasons.items())),
        "latency_s": latency,
        "throughput_per_s": _estimate(total.throughput(duration),
                                      [pools[r].throughput(duration) for r in replicas]),
        "replicas": len(replicas),
        "per_replica": [
            {"replica": r, "sessions": pools[r].sessions, "ok": pools[r].ok,
             "success_rate": pools[r].success_rate(), **replica_pct[r]}
            for r in replicas
        ],
    }


def _group(runs: dict[tuple[int, int], _Run], sweep: int | None = None) -> dict[int, list[_Run]]:
    by_replica: dict[int, list[_Run]] = {}
    for (s, replica), run in sorted(runs.items()):
        if sweep is None or s == sweep:
            by_replica.setdefault(replica, []).append(run)
    return by_replica


def summarize(sessions_csv: str | os.PathLike[str], *, duration: float,
              sweep_key: str | None) -> dict[str, Any]:
    """Return the JSON-ready summary of a session table (see the module docstring for its rules).

    ``duration`` is the simulated time of one run in seconds; ``sweep_key`` the dotted key of the
    swept parameter (None without a sweep, which gives ``"sweep": None``). Streams the table; only
    the latencies of ok sessions are kept in memory. Raises DmsimError for an outcome other than
    "ok"/"failed" or a sweep index whose value changes within the table.
    """
    path = Path(sessions_csv)
    runs: dict[tuple[int, int], _Run] = {}
    sweep_values: dict[int, float | None] = {}
    for line, row in enumerate(read_sessions(path, columns=_READ_COLUMNS), start=2):
        key = (row["sweep"], row["replica"])
        run = runs.get(key)
        if run is None:
            run = runs[key] = _Run()
            sweep = row["sweep"]
            if sweep not in sweep_values:
                sweep_values[sweep] = row["sweep_value"]
        if sweep_values[row["sweep"]] != row["sweep_value"]:
            raise DmsimError(f"{path}:{line}: sweep point {row['sweep']} has value "
                             f"{row['sweep_value']!r}, earlier {sweep_values[row['sweep']]!r}")
        run.sessions += 1
        outcome = row["outcome"]
        if outcome == OUTCOME_OK:
            run.ok += 1
            if row["latency"] is not None:
                run.latencies.append(row["latency"])
        elif outcome == OUTCOME_FAILED:
            run.reasons[row["reason"] or UNKNOWN_REASON] += 1
        else:
            raise DmsimError(f"{path}:{line}: outcome {outcome!r} "
                             f"(expected {OUTCOME_OK!r} or {OUTCOME_FAILED!r})")

    summary = _block(_group(runs), duration)
    if sweep_key is None:
        summary["sweep"] = None
    else:
        summary["sweep"] = {
            "key": sweep_key,
            "points": [{"value": sweep_values[s], **_block(_group(runs, s), duration)}
                       for s in sorted(sweep_values)],
        }
    return summary
