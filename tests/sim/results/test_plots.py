"""Run plots (sim/results/plots.py) from a fake run folder made with the real writer and summarize."""
from __future__ import annotations

import json
import random

import matplotlib.pyplot as plt
import pytest

from dmsim.sim.results.atomic import write_json_atomic
from dmsim.base.errors import DmsimError
from dmsim.sim.results import plots
from dmsim.sim.results.plots import MAX_LINE_POINTS, plot_run, thin_indices
from dmsim.sim.results.records import COLUMN_NAMES, SessionTable, sweep_cell
from dmsim.sim.results.summary import summarize

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
BASE = ["latency_cdf.png", "latency_by_profile.png", "latency_by_phase.png", "completions.png",
        "failure_reasons.png"]


def make_run(run_dir, *, replicas=2, sweep_values=None, n=60, fail=True, manifest=True, reasons=None):
    run_dir.mkdir()
    rng = random.Random(7)
    points = list(enumerate(sweep_values)) if sweep_values else [(0, None)]
    with SessionTable(run_dir / "sessions.csv") as table:
        for sweep, value in points:
            for replica in range(replicas):
                for device in range(n):
                    t0 = rng.uniform(0, 50)
                    failed = fail and rng.random() < 0.2
                    lat = None if failed else rng.lognormvariate(0, 1.5)
                    v = dict(replica=replica, sweep=sweep, sweep_value=sweep_cell(value), device=device,
                             profile=("basic", "pin")[device % 2], outcome="failed" if failed else "ok",
                             reason=rng.choice(reasons or ["ip_timeout", "bootstrap_lost"]) if failed else "",
                             t_arrival=t0, t_bootstrap_sent=t0, t_bootstrap_ok=None if failed else t0 + lat / 2,
                             t_session_start=None if failed else t0 + lat / 2,
                             t_session_end=None if failed else t0 + lat,
                             latency=lat, bootstrap_sends=1, bootstrap_rejected=0, auth_retries=0,
                             ip_retries=0, sms_msgs=1, sms_bytes=100, ip_msgs=2, ip_bytes=300,
                             ota="" if failed or device % 3 else "ok",
                             ota_latency=None if failed or device % 3 else 2.0,
                             t_gpi_sent=None, t_gpi_received=None, t_gba_keys=None, t_ub_start=None, t_ub_ok=None, attacks=None, attack_outcome=None, protocol="dm")
                    table.write(tuple(v[name] for name in COLUMN_NAMES))
    key = "links.sms.loss" if sweep_values else None
    write_json_atomic(run_dir / "summary.json",
                      summarize(run_dir / "sessions.csv", sweep_key=key))
    if manifest:
        write_json_atomic(run_dir / "manifest.json", {"scenario_name": "fleet-basic"})
    return run_dir


def check_pngs(run_dir, paths, names):
    assert [p.name for p in paths] == names
    for p in paths:
        assert p.parent == run_dir
        data = p.read_bytes()
        assert len(data) > 1000 and data.startswith(PNG_MAGIC)
    assert not list(run_dir.glob("*.part"))
    assert plt.get_fignums() == []  # every figure closed


def test_plots_without_sweep(tmp_path):
    run = make_run(tmp_path / "run")
    paths = plot_run(run)
    check_pngs(run, paths, BASE)
    assert not (run / "latency_vs_sweep.png").exists()


def test_plots_with_sweep(tmp_path):
    run = make_run(tmp_path / "run", replicas=3, sweep_values=[0.0, 0.05, 0.1], n=30)
    paths = plot_run(run)
    check_pngs(run, paths, BASE + ["latency_vs_sweep.png"])


def test_plots_of_degenerate_runs(tmp_path):
    # no sessions at all, no manifest; forced linear axis
    empty = make_run(tmp_path / "empty", n=0, manifest=False)
    check_pngs(empty, plot_run(empty, log_x=False), BASE)
    # no failures, many replicas (pooled completions line), one sweep point with one replica
    many = make_run(tmp_path / "many", replicas=12, n=5, fail=False)
    assert json.loads((many / "summary.json").read_text())["failure_reasons"] == {}
    check_pngs(many, plot_run(many, log_x=True), BASE)
    one = make_run(tmp_path / "one", replicas=1, sweep_values=[0.5], n=5)
    check_pngs(one, plot_run(one), BASE + ["latency_vs_sweep.png"])


def test_missing_summary_is_a_typed_error(tmp_path):
    with pytest.raises(DmsimError, match="summary.json"):
        plot_run(tmp_path)


def test_thin_indices_bounds_line_size():
    idx = thin_indices(1_000_000)
    assert len(idx) <= MAX_LINE_POINTS and idx[0] == 0 and idx[-1] == 999_999
    assert list(idx) == sorted(set(idx))
    assert list(thin_indices(5)) == [0, 1, 2, 3, 4]
    assert len(thin_indices(0)) == 0


# ---- what the figures say: each figure's text and lines, captured as plot_run saves it ----

@pytest.fixture
def drawn(monkeypatch):
    """Return {png name: [axes facts]} filled as plot_run saves each figure."""
    figures = {}
    save = plots._save

    def record(fig, path):
        figures[path.name] = [{
            "title": ax.get_title(), "on": ax.axison, "ylim": ax.get_ylim(),
            "legend": [t.get_text() for t in ax.get_legend().get_texts()] if ax.get_legend() else [],
            "texts": [t.get_text() for t in ax.texts],
            "segments": [seg.tolist() for c in ax.collections if hasattr(c, "get_segments")
                         for seg in c.get_segments()],
            "xticks": list(ax.get_xticks()), "xticklabels": [t.get_text() for t in ax.get_xticklabels()],
            "yticklabels": [t.get_text() for t in ax.get_yticklabels()],
            "lines": {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in ax.lines},
        } for ax in fig.axes]
        return save(fig, path)

    monkeypatch.setattr(plots, "_save", record)
    return figures


def rewrite_summary(run, **changes):
    summary = json.loads((run / "summary.json").read_text())
    summary.update(changes)
    write_json_atomic(run / "summary.json", summary)
    return summary


def test_cdf_legend_counts_ok_sessions_of_all_sessions(tmp_path, drawn):
    run = make_run(tmp_path / "run")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["ok"] < summary["sessions"]
    plot_run(run)
    assert drawn["latency_cdf.png"][0]["legend"] == [
        f"all sessions (ok n={summary['ok']:,} of {summary['sessions']:,})"]


def test_latency_per_profile_has_one_line_per_profile(tmp_path, drawn):
    run = make_run(tmp_path / "run")
    plot_run(run)
    legend = drawn["latency_by_profile.png"][0]["legend"]
    assert [entry.split(" (")[0] for entry in legend] == ["basic", "pin"]
    assert all("ok n=" in entry for entry in legend)


def test_latency_per_phase_rows_and_tls_mean(tmp_path, drawn):
    run = make_run(tmp_path / "run")
    plot_run(run)
    assert drawn["latency_by_phase.png"][0]["yticklabels"] == ["SMS bootstrap", "DM session", "OTA"]
    rewrite_summary(run, network={"tls": {"handshakes": 4, "handshake_time": 2.0}})
    plot_run(run)
    ax = drawn["latency_by_phase.png"][0]
    assert ax["yticklabels"] == ["SMS bootstrap", "DM session", "OTA", "TLS handshake"]
    assert ax["lines"]["TLS handshake: mean of 4 handshakes"][0] == [0.5]
    assert "mean 0.5 s of 4" in ax["texts"]


def test_completions_draw_arrivals_of_every_session(tmp_path, drawn):
    run = make_run(tmp_path / "run", replicas=2, n=40)
    plot_run(run)
    lines = drawn["completions.png"][0]["lines"]
    for replica in (0, 1):
        _, ys = lines[f"replica {replica}: arrivals"]
        assert ys[-1] == 40  # failed sessions arrived too
        _, ok = lines[f"replica {replica}: ok completions"]
        assert ok[-1] < 40


def test_failure_reasons_have_integer_ticks_and_shares(tmp_path, drawn):
    run = make_run(tmp_path / "run", n=10, replicas=1, reasons=["ip_timeout"])
    summary = json.loads((run / "summary.json").read_text())
    failed = summary["failure_reasons"]["ip_timeout"]
    assert 0 < failed < 10
    plot_run(run)
    ax = drawn["failure_reasons.png"][0]
    assert all(float(t).is_integer() for t in ax["xticks"])
    assert ax["yticklabels"] == ["ip_timeout"]
    share = 100.0 * failed / summary["sessions"]
    assert f"{failed} ({share:.1f} % of sessions)" in ax["texts"]


def test_no_failures_hides_the_axis(tmp_path, drawn):
    run = make_run(tmp_path / "run", n=7, fail=False)
    plot_run(run)
    (ax,) = drawn["failure_reasons.png"]
    assert not ax["on"] and "no failures in 14 sessions" in ax["texts"]


def test_sweep_failures_are_stacked_per_point(tmp_path, drawn):
    run = make_run(tmp_path / "run", sweep_values=[0.0, 0.1], n=30)
    plot_run(run)
    pooled, stacked = drawn["failure_reasons.png"]
    assert stacked["xticklabels"] == ["0", "0.1"]
    assert set(stacked["legend"]) == {"ip_timeout", "bootstrap_lost"}


def test_sweep_plot_clips_a_wide_ci_and_draws_the_success_rate_ci(tmp_path, drawn):
    run = make_run(tmp_path / "run", replicas=3, sweep_values=[0.0, 0.05, 0.1], n=30)
    summary = json.loads((run / "summary.json").read_text())
    points = summary["sweep"]["points"]
    points[1]["latency_s"]["p90"]["ci95_high"] = 1e6
    for p in points:
        p["success_rate_estimate"] = {"value": p["success_rate"], "ci95_low": 0.25, "ci95_high": 0.95}
    rewrite_summary(run, sweep=summary["sweep"])
    plot_run(run)
    latency_ax, rate_ax = drawn["latency_vs_sweep.png"]
    largest = max(p["latency_s"][n]["value"] for p in points for n in ("p50", "p90"))
    assert latency_ax["ylim"][1] <= largest * plots.CI_CLIP * 1.1
    assert "↑ 1e+06" in latency_ax["texts"]
    assert rate_ax["ylim"] == (0.0, 1.05)
    assert rate_ax["lines"]["success rate"][1] == pytest.approx([p["success_rate"] for p in points])
    rate_bars = [seg for seg in rate_ax["segments"] if seg[0][0] == seg[1][0]]  # vertical: the CIs
    assert len(rate_bars) == 3 and all([y for _, y in seg] == [0.25, 0.95] for seg in rate_bars)
    ci_bars = [seg for seg in latency_ax["segments"] if seg[0][0] == seg[1][0]]
    assert len(ci_bars) == 6 and max(seg[1][1] for seg in ci_bars) <= latency_ax["ylim"][1]


def test_categorical_sweep_values_are_labelled_ticks(tmp_path, drawn):
    run = make_run(tmp_path / "run", replicas=2, sweep_values=["psk", "x509", "none"], n=10)
    summary = json.loads((run / "summary.json").read_text())
    for p, name in zip(summary["sweep"]["points"], ["psk", "x509", "<none>"]):
        p["value"], p["label"] = name, f"tls.mode={name}"
    rewrite_summary(run, sweep=summary["sweep"])
    check_pngs(run, plot_run(run), BASE + ["latency_vs_sweep.png"])
    ax = drawn["latency_vs_sweep.png"][0]
    assert ax["xticks"] == [0.0, 1.0, 2.0] and ax["xticklabels"] == ["psk", "x509", "<none>"]
    assert drawn["latency_cdf.png"][0]["legend"][0].startswith("tls.mode=psk (ok n=")
