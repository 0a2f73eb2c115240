"""The plots of a run folder, drawn from its session table and summary.

No spec clause. ``plot_run`` writes, each atomically (``.part`` then rename):

* ``latency_cdf.png``: empirical CDF of the latency of ok sessions, one line per sweep point (or
  one pooled line), p50/p90/p99 marked on each line;
* ``completions.png``: cumulative ok sessions over simulated time (``t_session_end``), one line
  per replica without a sweep (pooled when there are more than ``MAX_REPLICA_LINES``), one line
  per sweep point (pooled over replicas) with a sweep;
* ``failure_reasons.png``: counts by failure reason, or the text "no failures";
* ``latency_vs_sweep.png`` (only when the summary has a sweep): latency p50/p90 with their 95 %
  CI, and the success rate on a second axis, against the swept value.

Lines are reduced to about ``MAX_LINE_POINTS`` points so that a table of 10⁶ sessions draws fast.
"""
from __future__ import annotations

import json
from array import array
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from dmsim.sim.results.atomic import atomic_target  # noqa: E402
from dmsim.base.errors import DmsimError  # noqa: E402
from dmsim.sim.results.records import OUTCOME_OK, read_sessions  # noqa: E402
from dmsim.sim.results.summary import PERCENTILES  # noqa: E402

MAX_LINE_POINTS = 2000
MAX_REPLICA_LINES = 8
LOG_SPREAD = 100.0  # auto log x axis when p99 / p1 of the latencies is at least this

_QUANTILE_LEVELS = {name: q / 100.0 for name, q in PERCENTILES.items()}


def thin_indices(n: int, max_points: int = MAX_LINE_POINTS) -> np.ndarray:
    """Return at most about ``max_points`` sorted indices into ``range(n)``, first and last kept."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))


def _load_json(path: Path, *, required: bool) -> dict[str, Any]:
    if not path.exists() and not required:
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        raise DmsimError(f"{path}: cannot read JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise DmsimError(f"{path}: expected a JSON object")
    return data


class _RunData:
    """The columns plot_run needs, as numpy arrays grouped by sweep point / replica."""

    def __init__(self, sessions_csv: Path, by_sweep: bool):
        latencies: defaultdict[int, array] = defaultdict(lambda: array("d"))
        ends: defaultdict[int, array] = defaultdict(lambda: array("d"))
        replicas: set[int] = set()
        self.sweep_values: dict[int, float | None] = {}
        columns = ("replica", "sweep", "sweep_value", "outcome", "latency", "t_session_end")
        for row in read_sessions(sessions_csv, columns=columns):
            replicas.add(row["replica"])
            self.sweep_values.setdefault(row["sweep"], row["sweep_value"])
            if row["outcome"] != OUTCOME_OK:
                continue
            point = row["sweep"] if by_sweep else 0
            if row["latency"] is not None:
                latencies[point].append(row["latency"])
            if row["t_session_end"] is not None:
                group = row["sweep"] if by_sweep else row["replica"]
                ends[group].append(row["t_session_end"])
        self.replicas = sorted(replicas)
        self.latencies = _sorted_arrays(latencies)
        self.ends = _sorted_arrays(ends)


def _sorted_arrays(groups: dict[int, array]) -> dict[int, np.ndarray]:
    return {k: np.sort(np.frombuffer(v, dtype=float)) for k, v in sorted(groups.items())}


def _save(fig, path: Path) -> Path:
    with atomic_target(path) as part:
        fig.savefig(part, format="png", dpi=100)
    return path


def _point_label(sweep_key: str, value: float | None, index: int) -> str:
    return f"{sweep_key} = {value:g}" if value is not None else f"{sweep_key} point {index}"


def _use_log_x(samples: Iterable[np.ndarray]) -> bool:
    joined = [s for s in samples if s.size]
    if not joined:
        return False
    allv = np.concatenate(joined)
    low, high = np.percentile(allv, [1.0, 99.0])
    return bool(low > 0 and high / low >= LOG_SPREAD)


def _plot_cdf(data: _RunData, sweep_key: str | None, title: str, path: Path,
              log_x: bool | None) -> Path:
    fig, ax = plt.subplots(figsize=(8, 5))
    try:
        if not data.latencies:
            ax.text(0.5, 0.5, "no completed sessions", ha="center", va="center",
                    transform=ax.transAxes)
        for point, lats in data.latencies.items():
            n = lats.size
            idx = thin_indices(n)
            label = (_point_label(sweep_key, data.sweep_values.get(point), point)
                     if sweep_key else f"all sessions (n={n})")
            (line,) = ax.plot(lats[idx], (idx + 1) / n, drawstyle="steps-post", label=label)
            marks = np.percentile(lats, list(PERCENTILES.values()), method="linear")
            ax.plot(marks, list(_QUANTILE_LEVELS.values()), "o", color=line.get_color(), ms=4)
        for name, level in _QUANTILE_LEVELS.items():
            ax.axhline(level, color="0.7", lw=0.6, ls=":")
            ax.annotate(name, (1.0, level), xycoords=("axes fraction", "data"), xytext=(3, 0),
                        textcoords="offset points", va="center", fontsize=8, color="0.4")
        if log_x if log_x is not None else _use_log_x(data.latencies.values()):
            ax.set_xscale("log")
        ax.set_xlabel("latency of ok sessions (s)")
        ax.set_ylabel("fraction of ok sessions")
        ax.set_ylim(0, 1.02)
        ax.set_title(f"{title}: latency CDF")
        if data.latencies:
            ax.legend(loc="lower right", fontsize=8)
        ax.grid(True, alpha=0.3)
        return _save(fig, path)
    finally:
        plt.close(fig)


def _plot_completions(data: _RunData, sweep_key: str | None, title: str, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 5))
    try:
        groups = data.ends
        pooled = not sweep_key and len(groups) > MAX_REPLICA_LINES
        if pooled:
            groups = {0: np.sort(np.concatenate(list(groups.values())))}
        if not groups:
            ax.text(0.5, 0.5, "no completed sessions", ha="center", va="center",
                    transform=ax.transAxes)
        for key, ends in groups.items():
            idx = thin_indices(ends.size)
            if sweep_key:
                label = _point_label(sweep_key, data.sweep_values.get(key), key)
            else:
                label = f"all {len(data.replicas)} replicas" if pooled else f"replica {key}"
            ax.plot(ends[idx], idx + 1, drawstyle="steps-post", label=label)
        ax.set_xlabel("simulated time (s)")
        ax.set_ylabel("ok sessions completed" + (" (all replicas)" if sweep_key or pooled else ""))
        ax.set_title(f"{title}: completions")
        if groups:
            ax.legend(loc="upper left", fontsize=8)
        ax.grid(True, alpha=0.3)
        return _save(fig, path)
    finally:
        plt.close(fig)


def _plot_reasons(summary: dict[str, Any], title: str, path: Path) -> Path:
    reasons = sorted((summary.get("failure_reasons") or {}).items(), key=lambda kv: (kv[1], kv[0]))
    fig, ax = plt.subplots(figsize=(8, max(3.0, 1.0 + 0.4 * len(reasons))))
    try:
        if reasons:
            names = [name for name, _ in reasons]
            counts = [count for _, count in reasons]
            bars = ax.barh(names, counts)
            ax.bar_label(bars, padding=3, fontsize=8)
            ax.set_xlabel("failed sessions")
        else:
            ax.text(0.5, 0.5, "no failures", ha="center", va="center", transform=ax.transAxes)
            ax.set_yticks([])
        ax.set_title(f"{title}: failure reasons")
        fig.tight_layout()
        return _save(fig, path)
    finally:
        plt.close(fig)


def _plot_sweep(sweep: dict[str, Any], title: str, path: Path) -> Path:
    points = sweep.get("points") or []
    key = sweep.get("key") or "sweep"
    values = [p.get("value") for p in points]
    numeric = all(isinstance(v, (int, float)) for v in values)
    xs = np.asarray(values if numeric else range(len(points)), dtype=float)
    fig, ax = plt.subplots(figsize=(8, 5))
    try:
        for name, marker in (("p50", "o"), ("p90", "s")):
            est = [p.get("latency_s", {}).get(name, {}) for p in points]
            ys = np.array([e.get("value") if e.get("value") is not None else np.nan for e in est])
            (line,) = ax.plot(xs, ys, marker=marker, label=f"latency {name}")
            for x, e in zip(xs, est):
                if e.get("ci95_low") is not None and e.get("ci95_high") is not None:
                    ax.errorbar([x], [(e["ci95_low"] + e["ci95_high"]) / 2],
                                yerr=[[(e["ci95_high"] - e["ci95_low"]) / 2]],
                                fmt="none", ecolor=line.get_color(), capsize=3, alpha=0.8)
        ax.set_xlabel(key)
        ax.set_ylabel("latency of ok sessions (s), 95 % CI over replicas")
        if not numeric:
            ax.set_xticks(xs, [str(v) for v in values])
        rate_ax = ax.twinx()
        rates = [p.get("success_rate") for p in points]
        rate_ax.plot(xs, [r if r is not None else np.nan for r in rates], color="0.3",
                     ls="--", marker="^", label="success rate")
        rate_ax.set_ylim(0, 1.05)
        rate_ax.set_ylabel("success rate")
        handles = ax.get_legend_handles_labels()
        rate_handles = rate_ax.get_legend_handles_labels()
        ax.legend(handles[0] + rate_handles[0], handles[1] + rate_handles[1], fontsize=8,
                  loc="best")
        ax.set_title(f"{title}: latency and success rate vs {key}")
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        return _save(fig, path)
    finally:
        plt.close(fig)


def plot_run(run_dir: str | Path, *, log_x: bool | None = None) -> list[Path]:
    """Draw the plots of a run folder; return the paths of the PNG files written.

    Reads ``sessions.csv`` and ``summary.json`` (and ``manifest.json`` for ``scenario_name``,
    if present). ``log_x`` forces the CDF's x axis to log (True) or linear (False); None picks
    log when the 99th/1st percentile ratio of latencies is at least ``LOG_SPREAD``.
    """
    run_dir = Path(run_dir)
    summary = _load_json(run_dir / "summary.json", required=True)
    manifest = _load_json(run_dir / "manifest.json", required=False)
    title = str(manifest.get("scenario_name") or run_dir.name)
    sweep = summary.get("sweep")
    sweep_key = sweep.get("key") if isinstance(sweep, dict) else None
    data = _RunData(run_dir / "sessions.csv", by_sweep=sweep_key is not None)

    written = [
        _plot_cdf(data, sweep_key, title, run_dir / "latency_cdf.png", log_x),
        _plot_completions(data, sweep_key, title, run_dir / "completions.png"),
        _plot_reasons(summary, title, run_dir / "failure_reasons.png"),
    ]
    if isinstance(sweep, dict):
        written.append(_plot_sweep(sweep, title, run_dir / "latency_vs_sweep.png"))
    return written
