"""The summary of a run: success rate, failure reasons, latency percentiles and throughput, with
95 % confidence intervals over replicas; per sweep point, per fleet profile, and how much of the
fleet ever arrived.

No spec clause. Choices (the statistics are the usual ones; these pin down what is pooled):

* A *run* is one (sweep point, replica) pair of the session table. A block of the summary covers a
  set of runs: the whole table at the top level, one sweep point in ``sweep.points``, one fleet
  profile in ``per_profile``.
* ``value`` is computed over all sessions of the block pooled together. The CI is Student-t over
  the per-replica statistic: mean ± t(0.975, n-1)·sd/√n, sd with n-1; t from a table for
  df 1..30, 1.96 beyond. With fewer than two replicas that have the statistic the CI is null.
* At the top level of a sweep, "replica r" pools replica r of every sweep point.
* ``success_rate`` stays a plain number (scripts read it as one); ``success_rate_estimate`` is the
  same value with its interval, like every other estimate. Both count the sessions that ran: the
  devices that never arrived before ``duration`` have no row; ``fleet`` counts them and gives
  ``success_rate_of_fleet``, ok sessions over every device of the fleet in every run.
* Percentiles use numpy's linear method over the latencies of ok sessions with a latency.
* Throughput (``throughput_definition``): ok sessions per simulated second of the window in which
  a run's sessions ran, from its first arrival to its last session end (the last arrival when no
  session reached its end); pooled, ok sessions over the sum of the runs' windows, so pooled and
  per-replica values are on the same scale. It is null without such a window.
* ``failure_shares``: each failure reason's count over the block's sessions.
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

_READ_COLUMNS = ("replica", "sweep", "sweep_value", "profile", "outcome", "reason", "latency", "t_arrival",
                 "t_session_end", "protocol")
THROUGHPUT_DEFINITION = ("ok sessions per simulated second of each run's active window, from its first arrival "
                         "to its last session end; pooled: ok sessions over the sum of the windows")


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
    first: float = math.inf   # first arrival
    last: float = -math.inf   # last session end, or last arrival when no session ended

    def window(self) -> float | None:
        """Return the seconds from the first arrival to the last end, None when empty or zero."""
        span = self.last - self.first
        return span if math.isfinite(span) and span > 0 else None


@dataclass
class _Pool:
    """Several runs merged: what one replica (or a whole block) contributes to a statistic."""

    runs: int
    sessions: int
    ok: int
    latencies: np.ndarray
    window: float  # the sum of the runs' active windows, seconds

    @classmethod
    def of(cls, runs: list[_Run]) -> _Pool:
        lats = [np.frombuffer(r.latencies, dtype=float) for r in runs if len(r.latencies)]
        return cls(runs=len(runs), sessions=sum(r.sessions for r in runs),
                   ok=sum(r.ok for r in runs),
                   latencies=np.concatenate(lats) if lats else np.empty(0),
                   window=sum(r.window() or 0.0 for r in runs))

    def percentiles(self) -> dict[str, float | None]:
        """Return {"p50", "p90", "p99"} of the latencies (None when there are none)."""
        return percentiles(self.latencies)

    def mean(self) -> float | None:
        """Return the mean latency, or None when there is none."""
        return float(self.latencies.mean()) if self.latencies.size else None

    def success_rate(self) -> float | None:
        """Return ok / sessions, or None without sessions."""
        return self.ok / self.sessions if self.sessions else None

    def throughput(self) -> float | None:
        """Return ok sessions per second of the runs' active windows, or None without a window."""
        return self.ok / self.window if self.window > 0 else None


def percentiles(values) -> dict[str, float | None]:
    """Return {"p50", "p90", "p99"} of ``values`` (linear interpolation; None when there are none)."""
    values = np.asarray(values, dtype=float)
    if not values.size:
        return {name: None for name in PERCENTILES}
    found = np.percentile(values, list(PERCENTILES.values()), method="linear")
    return {name: float(v) for name, v in zip(PERCENTILES, found)}


def _estimate(value: float | None, per_replica: list[float | None]) -> dict[str, float | None]:
    """Return the estimate block; latencies and throughputs cannot be negative, so the interval
    is cut at 0 (with few replicas the t interval can reach far below it)."""
    low, high = confidence_interval([v for v in per_replica if v is not None])
    return {"value": value, "ci95_low": None if low is None else max(0.0, low), "ci95_high": high}


def _block(by_replica: dict[int, list[_Run]]) -> dict[str, Any]:
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
    rate = total.success_rate()
    rate_estimate = _estimate(rate, [pools[r].success_rate() for r in replicas])
    if rate_estimate["ci95_high"] is not None:
        rate_estimate["ci95_high"] = min(1.0, rate_estimate["ci95_high"])

    return {
        "sessions": total.sessions,
        "ok": total.ok,
        "success_rate": rate,
        "success_rate_estimate": rate_estimate,
        "failure_reasons": dict(sorted(reasons.items())),
        "failure_shares": {k: v / total.sessions for k, v in sorted(reasons.items())} if total.sessions else {},
        "latency_s": latency,
        "throughput_per_s": _estimate(total.throughput(), [pools[r].throughput() for r in replicas]),
        "replicas": len(replicas),
        "per_replica": [
            {"replica": r, "sessions": pools[r].sessions, "ok": pools[r].ok,
             "success_rate": pools[r].success_rate(), **replica_pct[r]}
            for r in replicas
        ],
    }


def _per(runs: dict[tuple[int, int, str], _Run], sweep: int | None = None) -> dict[str, dict[str, Any]]:
    """Return {name: block} over the runs of ``runs`` (keyed by sweep, replica, and a profile or protocol)."""
    names = sorted({p for (_s, _r, p) in runs})
    out = {}
    for name in names:
        by_run = {(s, r): run for (s, r, p), run in runs.items() if p == name}
        block = _block(_group(by_run, sweep))
        if block["sessions"]:
            block.pop("per_replica")
            out[name] = block
    return out


def _fleet(fleet: dict | None, runs: set[tuple[int, int]], sweep: int | None, ok: int) -> dict[str, Any] | None:
    """Return the fleet block: devices expected in the block's runs, how many arrived, how many never did."""
    if not fleet:
        return None
    keys = sorted(k for k in runs if sweep is None or k[0] == sweep)
    arrived_by_run = fleet.get("arrived") or {}
    expected = fleet["size"] * len(keys)
    arrived = sum(arrived_by_run.get(k, 0) for k in keys)
    return {"size": fleet["size"], "runs": len(keys), "expected": expected, "arrived": arrived,
            "not_arrived": max(0, expected - arrived),
            "success_rate_of_fleet": ok / expected if expected else None}


def _group(runs: dict[tuple[int, int], _Run], sweep: int | None = None) -> dict[int, list[_Run]]:
    by_replica: dict[int, list[_Run]] = {}
    for (s, replica), run in sorted(runs.items()):
        if sweep is None or s == sweep:
            by_replica.setdefault(replica, []).append(run)
    return by_replica


def summarize(sessions_csv: str | os.PathLike[str], *, sweep_key: str | None = None, sweep: dict | None = None,
              fleet: dict | None = None) -> dict[str, Any]:
    """Return the JSON-ready summary of a session table (see the module docstring for its rules).

    ``sweep``: the run's sweep as the runner knows it, ``{"key", "keys", "points": [{"value",
    "label"}]}`` (point i of the table is ``points[i]``); ``sweep_key`` alone is enough for a
    one-key sweep (the values then come from the table). ``fleet``: ``{"size": devices per run,
    "arrived": {(sweep, replica): devices that arrived}}``. Streams the table; only the latencies of ok
    sessions are kept in memory. Raises DmsimError for an outcome other than "ok"/"failed" or a
    sweep index whose value changes within the table.
    """
    path = Path(sessions_csv)
    runs: dict[tuple[int, int], _Run] = {}
    by_profile: dict[tuple[int, int, str], _Run] = {}
    by_protocol: dict[tuple[int, int, str], _Run] = {}
    sweep_values: dict[int, Any] = {}
    for line, row in enumerate(read_sessions(path, columns=_READ_COLUMNS), start=2):
        key = (row["sweep"], row["replica"])
        if key not in runs:
            runs[key] = _Run()
            if row["sweep"] not in sweep_values:
                sweep_values[row["sweep"]] = row["sweep_value"]
        if sweep_values[row["sweep"]] != row["sweep_value"]:
            raise DmsimError(f"{path}:{line}: sweep point {row['sweep']} has value "
                             f"{row['sweep_value']!r}, earlier {sweep_values[row['sweep']]!r}")
        outcome = row["outcome"]
        if outcome not in (OUTCOME_OK, OUTCOME_FAILED):
            raise DmsimError(f"{path}:{line}: outcome {outcome!r} "
                             f"(expected {OUTCOME_OK!r} or {OUTCOME_FAILED!r})")
        _count(runs[key], row)
        for part, column in ((by_profile, "profile"), (by_protocol, "protocol")):
            part_key = key + (row[column],)
            run = part.get(part_key)
            if run is None:
                run = part[part_key] = _Run()
            _count(run, row)

    summary = _block(_group(runs))
    summary["throughput_definition"] = THROUGHPUT_DEFINITION
    summary["per_profile"] = _per(by_profile)
    summary["per_protocol"] = _per(by_protocol)
    summary["fleet"] = _fleet(fleet, set(runs), None, summary["ok"])
    if sweep is None and sweep_key is not None:
        sweep = {"key": sweep_key, "keys": [sweep_key],
                 "points": [{"value": _number(sweep_values[s]), "label": f"{sweep_key}={sweep_values[s]}"}
                            for s in sorted(sweep_values)]}
    if sweep is None:
        summary["sweep"] = None
    else:
        meta = sweep["points"]
        points = []
        for s in sorted(set(sweep_values) | set(range(len(meta)))):
            block = _block(_group(runs, s))
            block["per_profile"] = _per(by_profile, s)
            block["per_protocol"] = _per(by_protocol, s)
            block["fleet"] = _fleet(fleet, set(runs), s, block["ok"])
            about = meta[s] if s < len(meta) else {"value": sweep_values.get(s), "label": str(sweep_values.get(s))}
            points.append({**about, **block})
        summary["sweep"] = {"key": sweep["key"], "keys": list(sweep.get("keys") or [sweep["key"]]),
                            "points": [p for p in points if p["sessions"] or p.get("fleet")]}
    return summary


def _count(run: _Run, row: dict[str, Any]) -> None:
    """Add one session row to ``run``."""
    run.sessions += 1
    if row["outcome"] == OUTCOME_OK:
        run.ok += 1
        if row["latency"] is not None:
            run.latencies.append(row["latency"])
    else:
        run.reasons[row["reason"] or UNKNOWN_REASON] += 1
    if row["t_arrival"] is not None:
        run.first = min(run.first, row["t_arrival"])
        run.last = max(run.last, row["t_arrival"])
    if row["t_session_end"] is not None:
        run.last = max(run.last, row["t_session_end"])


def _number(text: Any) -> Any:
    """Return a sweep value read from the table as a number when it is one (the column is text)."""
    if text is None or text == "":
        return None
    try:
        return float(text)
    except (TypeError, ValueError):
        return text
