"""The plots of a run folder, drawn from its session table and summary.

No spec clause. ``plot_run`` writes, each atomically (``.part`` then rename):

* ``latency_cdf.png``: empirical CDF of the latency of ok sessions, one line per sweep point (or
  one pooled line), p50/p90/p99 marked on each line; each legend entry says how many ok sessions
  the line holds out of how many sessions;
* ``latency_by_profile.png``: the same CDF, one line per device profile (pooled over sweep points
  and replicas);
* ``latency_by_phase.png``: side-by-side box plots of the phases of a session, pooled over the
  whole run: with gba_ub, GBA bootstrapping over Ub (``t_ub_ok - t_ub_start``); with GBA Push, GPI delivery (``t_gpi_received - t_gpi_sent``) and key derivation
  (``t_gba_keys - t_gpi_received``); SMS bootstrap (``t_bootstrap_ok - t_bootstrap_sent``), DM session
  (``t_session_end - t_session_start``) and OTA (``ota_latency``). A phase counts every session that
  has both of its timestamps, failed sessions included (a session that failed in its DM session
  still had a bootstrap). Boxes are the quartiles, whiskers the 5th and 95th percentiles, no
  outliers drawn. The TLS handshake is only known as totals (``summary.json``
  ``network.tls.handshakes`` / ``handshake_time``), so its mean is drawn as a single diamond;
* ``completions.png``: cumulative ok sessions over simulated time (``t_session_end``, solid) and
  cumulative arrivals (``t_arrival`` of every session, dashed, same colour): one pair per replica
  without a sweep (pooled when there are more than ``MAX_REPLICA_LINES``), one pair per sweep point
  (pooled over replicas) with a sweep;
* ``failure_reasons.png``: failed sessions by reason with integer ticks, each bar labelled with
  its count and its share of all sessions; with a sweep, a second panel stacks each point's failure
  share by reason. Without failures the axes are hidden and the figure says "no failures in N
  sessions";
* ``latency_vs_sweep.png`` (only when the summary has a sweep): latency p50/p90 with their 95 %
  CI, and the success rate with its CI (``success_rate_estimate``, when present) on a second axis,
  against the swept value. Non-numeric values are evenly spaced labelled ticks. The latency axis
  stops at ``CI_CLIP`` times the largest plotted value; a CI that reaches beyond is cut there and
  marked with an arrow and its real upper bound, so one wide interval cannot squash the chart.

Lines are reduced to about ``MAX_LINE_POINTS`` points so that a table of 10⁶ sessions draws fast.
Every key of ``summary.json`` beyond ``failure_reasons``, ``sessions`` and ``sweep`` is optional
(older run folders lack them).
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
from matplotlib.ticker import MaxNLocator, PercentFormatter  # noqa: E402

from dmsim.sim.results.atomic import atomic_target  # noqa: E402
from dmsim.base.errors import DmsimError  # noqa: E402
from dmsim.sim.results.records import OUTCOME_OK, read_sessions  # noqa: E402
from dmsim.sim.results.summary import PERCENTILES  # noqa: E402

MAX_LINE_POINTS = 2000
MAX_REPLICA_LINES = 8
LOG_SPREAD = 100.0  # auto log x axis when p99 / p1 of the latencies is at least this
CI_CLIP = 1.5       # the sweep plot's latency axis ends at this times its largest value

# boxplot's "orientation" arrived in matplotlib 3.10 and "vert" is deprecated since; both are allowed
_HORIZONTAL = ({"orientation": "horizontal"} if tuple(map(int, matplotlib.__version__.split(".")[:2])) >= (3, 10)
               else {"vert": False})
_QUANTILE_LEVELS = {name: q / 100.0 for name, q in PERCENTILES.items()}
_COLUMNS = ("replica", "sweep", "sweep_value", "profile", "outcome", "latency", "t_arrival",
            "t_bootstrap_sent", "t_bootstrap_ok", "t_session_start", "t_session_end", "ota_latency",
            "t_gpi_sent", "t_gpi_received", "t_gba_keys", "t_ub_start", "t_ub_ok")
PHASES = ("GBA bootstrapping (Ub)", "GPI delivery", "GBA key derivation", "SMS bootstrap", "DM session", "OTA")
TLS_PHASE = "TLS handshake"


def thin_indices(n: int, max_points: int = MAX_LINE_POINTS) -> np.ndarray:
    """Return at most about ``max_points`` sorted indices into ``range(n)``, first and last kept."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))


def load_json(path: Path, *, required: bool) -> dict[str, Any]:
    """Return the JSON object in ``path`` ({} when it is missing and not ``required``).

    Raises DmsimError naming the file when it cannot be read, is not JSON or not an object.
    """
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


def format_value(value: Any) -> str:
    """Return a sweep value as text: numbers with ``%g``, anything else with ``str``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:g}"
    return str(value)


def point_text(point: dict[str, Any], fallback: Any = None) -> str:
    """Return a sweep point's value as tick text: its scalar ``value``, else its ``label``, else
    ``fallback`` (a grid point's value is a mapping, so its label says it better)."""
    value = point.get("value", fallback)
    if value is None or isinstance(value, (dict, list)):
        value = point.get("label", fallback)
    return format_value(value) if value is not None else "?"


def _duration(row: dict[str, Any], start: str, end: str) -> float | None:
    a, b = row[start], row[end]
    return None if a is None or b is None else b - a


class _RunData:
    """The columns plot_run needs, as sorted numpy arrays grouped by sweep point, replica,
    profile or phase, with the session counts that go with them."""

    def __init__(self, sessions_csv: Path, by_sweep: bool):
        latencies: defaultdict[int, array] = defaultdict(lambda: array("d"))
        by_profile: defaultdict[str, array] = defaultdict(lambda: array("d"))
        ends: defaultdict[int, array] = defaultdict(lambda: array("d"))
        arrivals: defaultdict[int, array] = defaultdict(lambda: array("d"))
        phases: dict[str, array] = {name: array("d") for name in PHASES}
        self.sessions: defaultdict[int, int] = defaultdict(int)          # per sweep point (or 0)
        self.profile_sessions: defaultdict[str, int] = defaultdict(int)
        replicas: set[int] = set()
        self.sweep_values: dict[int, Any] = {}
        for row in read_sessions(sessions_csv, columns=_COLUMNS):
            replicas.add(row["replica"])
            self.sweep_values.setdefault(row["sweep"], row["sweep_value"])
            point = row["sweep"] if by_sweep else 0
            group = row["sweep"] if by_sweep else row["replica"]
            self.sessions[point] += 1
            self.profile_sessions[row["profile"]] += 1
            if row["t_arrival"] is not None:
                arrivals[group].append(row["t_arrival"])
            for name, value in zip(PHASES, (_duration(row, "t_ub_start", "t_ub_ok"),
                                            _duration(row, "t_gpi_sent", "t_gpi_received"),
                                            _duration(row, "t_gpi_received", "t_gba_keys"),
                                            _duration(row, "t_bootstrap_sent", "t_bootstrap_ok"),
                                            _duration(row, "t_session_start", "t_session_end"),
                                            row["ota_latency"])):
                if value is not None:
                    phases[name].append(value)
            if row["outcome"] != OUTCOME_OK:
                continue
            if row["latency"] is not None:
                latencies[point].append(row["latency"])
                by_profile[row["profile"]].append(row["latency"])
            if row["t_session_end"] is not None:
                ends[group].append(row["t_session_end"])
        self.replicas = sorted(replicas)
        self.latencies = _sorted_arrays(latencies)
        self.by_profile = _sorted_arrays(by_profile)
        self.ends = _sorted_arrays(ends)
        self.arrivals = _sorted_arrays(arrivals)
        self.phases = {name: np.sort(np.frombuffer(v, dtype=float)) for name, v in phases.items()}


def _sorted_arrays(groups: dict[Any, array]) -> dict[Any, np.ndarray]:
    return {k: np.sort(np.frombuffer(v, dtype=float)) for k, v in sorted(groups.items())}


def _save(fig, path: Path) -> Path:
    with atomic_target(path) as part:
        fig.savefig(part, format="png", dpi=100)
    return path


def _point_labels(sweep: dict[str, Any] | None, data: _RunData) -> dict[int, str]:
    """Return a legend label per sweep point index: the summary point's ``label`` when present,
    else "key = value" with the value from the summary or else from the session table."""
    if not isinstance(sweep, dict):
        return {}
    key = sweep.get("key") or "sweep"
    points = sweep.get("points") or []
    labels = {}
    for index in sorted(set(data.sweep_values) | set(range(len(points)))):
        point = points[index] if index < len(points) and isinstance(points[index], dict) else {}
        if point.get("label") is not None:
            labels[index] = str(point["label"])
        else:
            labels[index] = f"{key} = {point_text(point, data.sweep_values.get(index) or None)}"
    return labels


def _use_log_x(samples: Iterable[np.ndarray]) -> bool:
    joined = [s for s in samples if s.size]
    if not joined:
        return False
    allv = np.concatenate(joined)
    low, high = np.percentile(allv, [1.0, 99.0])
    return bool(low > 0 and high / low >= LOG_SPREAD)


def _no_data(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)


def _plot_cdf(lines: dict[str, np.ndarray], title: str, path: Path, log_x: bool | None) -> Path:
    """Draw one CDF line per entry of ``lines`` (legend label -> sorted latencies); return path."""
    fig, ax = plt.subplots(figsize=(8, 5))
    try:
        if not any(v.size for v in lines.values()):
            _no_data(ax, "no completed sessions")
        for label, lats in lines.items():
            n = lats.size
            if not n:
                continue
            idx = thin_indices(n)
            (line,) = ax.plot(lats[idx], (idx + 1) / n, drawstyle="steps-post", label=label)
            marks = np.percentile(lats, list(PERCENTILES.values()), method="linear")
            ax.plot(marks, list(_QUANTILE_LEVELS.values()), "o", color=line.get_color(), ms=4)
        for name, level in _QUANTILE_LEVELS.items():
            ax.axhline(level, color="0.7", lw=0.6, ls=":")
            ax.annotate(name, (1.0, level), xycoords=("axes fraction", "data"), xytext=(3, 0),
                        textcoords="offset points", va="center", fontsize=8, color="0.4")
        if log_x if log_x is not None else _use_log_x(lines.values()):
            ax.set_xscale("log")
        ax.set_xlabel("latency of ok sessions (s)")
        ax.set_ylabel("fraction of ok sessions")
        ax.set_ylim(0, 1.02)
        ax.set_title(title)
        if any(v.size for v in lines.values()):
            ax.legend(loc="lower right", fontsize=8)
        ax.grid(True, alpha=0.3)
        return _save(fig, path)
    finally:
        plt.close(fig)


def _ok_of(n_ok: int, n_all: int) -> str:
    return f"ok n={n_ok:,} of {n_all:,}"


def _cdf_lines(data: _RunData, labels: dict[int, str]) -> dict[str, np.ndarray]:
    """Return the latency CDF's lines: per sweep point, or one for all sessions."""
    lines = {}
    for point, n_all in sorted(data.sessions.items()):
        lats = data.latencies.get(point, np.empty(0))
        name = labels.get(point, "all sessions") if labels else "all sessions"
        lines[f"{name} ({_ok_of(lats.size, n_all)})"] = lats
    return lines


def _profile_lines(data: _RunData) -> dict[str, np.ndarray]:
    """Return one latency CDF line per profile, labelled with its counts."""
    return {f"{name or '(no profile)'} ({_ok_of(data.by_profile.get(name, np.empty(0)).size, n)})":
            data.by_profile.get(name, np.empty(0))
            for name, n in sorted(data.profile_sessions.items())}


def _tls_mean(summary: dict[str, Any]) -> tuple[float, int] | None:
    """Return (mean handshake time, handshakes) from ``network.tls``, or None when absent."""
    tls = (summary.get("network") or {}).get("tls")
    if not isinstance(tls, dict):
        return None
    count, total = tls.get("handshakes"), tls.get("handshake_time")
    if not isinstance(count, (int, float)) or not isinstance(total, (int, float)) or count <= 0:
        return None
    return total / count, int(count)


def _plot_phases(data: _RunData, summary: dict[str, Any], title: str, path: Path,
                 log_x: bool | None) -> Path:
    phases = {name: v for name, v in data.phases.items() if v.size}
    tls = _tls_mean(summary)
    rows = list(phases) + ([TLS_PHASE] if tls else [])
    fig, ax = plt.subplots(figsize=(8, max(3.0, 1.6 + 0.8 * len(rows))))
    try:
        if not rows:
            _no_data(ax, "no phase timings")
            ax.set_yticks([])
        positions = {name: len(rows) - i for i, name in enumerate(rows)}  # first row on top
        if phases:
            ax.boxplot(list(phases.values()), positions=[positions[n] for n in phases],
                       **_HORIZONTAL, whis=(5, 95), showfliers=False, widths=0.5,
                       patch_artist=True, boxprops={"facecolor": "C0", "alpha": 0.5},
                       medianprops={"color": "C3"})
            for name, values in phases.items():
                ax.annotate(f"n={values.size:,}  p50 {np.median(values):.3g} s",
                            (1.0, positions[name] + 0.32), xycoords=("axes fraction", "data"),
                            xytext=(-4, 0), textcoords="offset points", ha="right", fontsize=8,
                            color="0.3")
        if tls:
            mean, count = tls
            ax.plot([mean], [positions[TLS_PHASE]], "D", color="C2", ms=8,
                    label=f"{TLS_PHASE}: mean of {count:,} handshakes")
            ax.annotate(f"mean {mean:.3g} s of {count:,}", (1.0, positions[TLS_PHASE] + 0.32),
                        xycoords=("axes fraction", "data"), xytext=(-4, 0),
                        textcoords="offset points", ha="right", fontsize=8, color="0.3")
        if rows:
            ax.set_yticks([positions[n] for n in rows], rows)
            ax.set_ylim(0.4, len(rows) + 0.7)
        if log_x if log_x is not None else _use_log_x(phases.values()):
            ax.set_xscale("log")
        ax.set_xlabel("duration (s); box: quartiles, whiskers: 5th-95th percentile")
        ax.set_title(f"{title}: latency per phase")
        ax.grid(True, axis="x", alpha=0.3)
        fig.tight_layout()
        return _save(fig, path)
    finally:
        plt.close(fig)


def _plot_completions(data: _RunData, labels: dict[int, str], title: str, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 5))
    try:
        ends, arrivals = data.ends, data.arrivals
        pooled = not labels and len(set(ends) | set(arrivals)) > MAX_REPLICA_LINES
        if pooled:
            ends = {0: np.sort(np.concatenate(list(ends.values())))} if ends else {}
            arrivals = {0: np.sort(np.concatenate(list(arrivals.values())))}
        if not arrivals:
            _no_data(ax, "no sessions")
        for i, key in enumerate(sorted(set(ends) | set(arrivals))):
            if labels:
                label = labels.get(key, f"point {key}")
            else:
                label = f"all {len(data.replicas)} replicas" if pooled else f"replica {key}"
            color = f"C{i % 10}"
            for series, style, what in ((ends.get(key), "-", "ok completions"),
                                        (arrivals.get(key), "--", "arrivals")):
                if series is not None and series.size:
                    idx = thin_indices(series.size)
                    ax.plot(series[idx], idx + 1, drawstyle="steps-post", ls=style, color=color,
                            label=f"{label}: {what}")
        ax.set_xlabel("simulated time (s)")
        ax.set_ylabel("sessions" + (" (all replicas)" if labels or pooled else ""))
        ax.set_title(f"{title}: arrivals (dashed) and ok completions (solid)")
        if arrivals:
            ax.legend(loc="upper left", fontsize=7, ncol=2 if len(arrivals) > 3 else 1)
        ax.grid(True, alpha=0.3)
        return _save(fig, path)
    finally:
        plt.close(fig)


def _reason_counts(block: dict[str, Any]) -> dict[str, int]:
    return {str(k): int(v) for k, v in (block.get("failure_reasons") or {}).items()
            if isinstance(v, (int, float))}


def _plot_reasons(summary: dict[str, Any], title: str, path: Path) -> Path:
    reasons = sorted(_reason_counts(summary).items(), key=lambda kv: (kv[1], kv[0]))
    total = summary.get("sessions") or 0
    points = [p for p in ((summary.get("sweep") or {}).get("points") or []) if isinstance(p, dict)]
    stacked = bool(reasons and points)
    height = max(3.0, 1.2 + 0.45 * len(reasons)) + (3.5 if stacked else 0.0)
    fig, axes = plt.subplots(2 if stacked else 1, 1, figsize=(8, height), squeeze=False,
                             height_ratios=[max(1.0, 0.45 * len(reasons)), 3.0] if stacked else None)
    ax = axes[0][0]
    try:
        ax.set_title(f"{title}: failure reasons")
        if not reasons:
            _no_data(ax, f"no failures in {total:,} sessions")
            ax.set_axis_off()
        else:
            names = [name for name, _ in reasons]
            counts = [count for _, count in reasons]
            bars = ax.barh(names, counts, height=0.6, color=[_reason_color(n, names) for n in names])
            ax.set_ylim(-0.7, len(names) - 0.3)
            shares = [f"{c:,} ({100.0 * c / total:.1f} % of sessions)" if total else f"{c:,}"
                      for c in counts]
            ax.bar_label(bars, shares, padding=3, fontsize=8)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlim(0, max(counts) * 1.45)
            ax.set_xlabel(f"failed sessions, of {total:,} sessions"
                          + (" (all sweep points)" if points else ""))
        if stacked:
            _stack_points(axes[1][0], points, [n for n, _ in reversed(reasons)],
                          str(summary["sweep"].get("key") or "sweep point"))
        fig.tight_layout()
        return _save(fig, path)
    finally:
        plt.close(fig)


def _reason_color(name: str, names: list[str]) -> str:
    return f"C{sorted(names).index(name) % 10}"


def _stack_points(ax, points: list[dict[str, Any]], names: list[str], key: str) -> None:
    """Draw each sweep point's failed share of its sessions as a bar stacked by reason."""
    xs = np.arange(len(points))
    bottom = np.zeros(len(points))
    for name in names:
        shares = np.array([_reason_counts(p).get(name, 0) / p["sessions"] if p.get("sessions") else 0.0
                           for p in points])
        bars = ax.bar(xs, shares, bottom=bottom, label=name, color=_reason_color(name, names))
        bottom += shares
    ax.bar_label(bars, [f"{100.0 * b:.1f} %" for b in bottom], padding=2, fontsize=8)
    ax.set_xticks(xs, [point_text(p) for p in points])
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylim(0, max(0.05, float(bottom.max()) * 1.15))
    ax.set_ylabel("failed share of the point's sessions")
    ax.set_xlabel(key)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(True, axis="y", alpha=0.3)


def _estimate_of(block: dict[str, Any], name: str) -> dict[str, Any]:
    """Return ``{value, ci95_low, ci95_high}`` for "p50"/"p90"/... or "success_rate" (whose CI
    is in ``success_rate_estimate``, when present); missing parts are None."""
    if name == "success_rate":
        est = block.get("success_rate_estimate")
        est = dict(est) if isinstance(est, dict) else {}
        est.setdefault("value", block.get("success_rate"))
        return est
    est = (block.get("latency_s") or {}).get(name)
    return est if isinstance(est, dict) else {}


def _draw_estimates(ax, xs: np.ndarray, ests: list[dict[str, Any]], top: float | None,
                    cap: float, **style) -> None:
    """Plot values with 95 % CI bars (caps ``cap`` x units wide each side); a bar above ``top``
    is cut there, marked by an arrow and its real upper bound."""
    ys = np.array([e.get("value") if e.get("value") is not None else np.nan for e in ests], float)
    (line,) = ax.plot(xs, ys, **style)
    for x, e in zip(xs, ests):
        low, high = e.get("ci95_low"), e.get("ci95_high")
        if low is None or high is None:
            continue
        shown = min(high, top) if top is not None else high
        ax.vlines(x, low, shown, color=line.get_color(), alpha=0.8, lw=1.2)
        ax.hlines([low] + ([shown] if shown == high else []), x - cap, x + cap, color=line.get_color())
        if shown < high:
            ax.annotate(f"↑ {high:.3g}", (x, shown), xytext=(2, -10), textcoords="offset points",
                        fontsize=7, color=line.get_color())


def _plot_sweep(sweep: dict[str, Any], title: str, path: Path) -> Path:
    points = [p for p in (sweep.get("points") or []) if isinstance(p, dict)]
    key = sweep.get("key") or "sweep"
    values = [p.get("value") for p in points]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    xs = np.asarray(values if numeric and values else range(len(points)), dtype=float)
    span = float(xs.max() - xs.min()) if xs.size > 1 else 1.0
    cap = span * 0.008
    dodge = span * 0.012
    fig, ax = plt.subplots(figsize=(8, 5))
    try:
        ests = {name: [_estimate_of(p, name) for p in points] for name in ("p50", "p90")}
        finite = [e["value"] for es in ests.values() for e in es if e.get("value") is not None]
        top = max(finite) * CI_CLIP if finite and max(finite) > 0 else None
        for (name, marker), shift in zip((("p50", "o"), ("p90", "s")), (-dodge, dodge)):
            _draw_estimates(ax, xs + shift, ests[name], top, cap, marker=marker, label=f"latency {name}")
        if top is not None:
            ax.set_ylim(0, top * 1.05)
        ax.set_xlabel(key)
        ax.set_ylabel("latency of ok sessions (s), 95 % CI over replicas")
        if not numeric:
            ax.set_xticks(xs, [point_text(p) for p in points])
        rate_ax = ax.twinx()
        _draw_estimates(rate_ax, xs, [_estimate_of(p, "success_rate") for p in points], None, cap,
                        color="0.3", ls="--", marker="^", label="success rate")
        rate_ax.set_ylim(0, 1.05)
        rate_ax.set_ylabel("success rate, 95 % CI over replicas")
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
    """Draw the plots of a run folder; return the paths of the PNG files written, in the order
    a reader should see them.

    Reads ``sessions.csv`` and ``summary.json`` (and ``manifest.json`` for ``scenario_name``,
    if present). ``log_x`` forces the latency x axes to log (True) or linear (False); None picks
    log when the 99th/1st percentile ratio of latencies is at least ``LOG_SPREAD``.
    """
    run_dir = Path(run_dir)
    summary = load_json(run_dir / "summary.json", required=True)
    manifest = load_json(run_dir / "manifest.json", required=False)
    title = str(manifest.get("scenario_name") or run_dir.name)
    sweep = summary.get("sweep") if isinstance(summary.get("sweep"), dict) else None
    data = _RunData(run_dir / "sessions.csv", by_sweep=sweep is not None)
    labels = _point_labels(sweep, data)

    written = [
        _plot_cdf(_cdf_lines(data, labels), f"{title}: latency CDF", run_dir / "latency_cdf.png",
                  log_x),
        _plot_cdf(_profile_lines(data), f"{title}: latency CDF per profile",
                  run_dir / "latency_by_profile.png", log_x),
        _plot_phases(data, summary, title, run_dir / "latency_by_phase.png", log_x),
        _plot_completions(data, labels, title, run_dir / "completions.png"),
        _plot_reasons(summary, title, run_dir / "failure_reasons.png"),
    ]
    if sweep is not None:
        written.append(_plot_sweep(sweep, title, run_dir / "latency_vs_sweep.png"))
    return written
