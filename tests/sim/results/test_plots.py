"""Run plots (sim/results/plots.py) from a fake run folder made with the real writer and summarize."""
from __future__ import annotations

import json
import random

import matplotlib.pyplot as plt
import pytest

from dmsim.sim.results.atomic import write_json_atomic
from dmsim.base.errors import DmsimError
from dmsim.sim.results.plots import MAX_LINE_POINTS, plot_run, thin_indices
from dmsim.sim.results.records import COLUMN_NAMES, SessionTable
from dmsim.sim.results.summary import summarize

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
BASE = ["latency_cdf.png", "completions.png", "failure_reasons.png"]


def make_run(run_dir, *, replicas=2, sweep_values=None, n=60, fail=True, manifest=True):
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
                    v = dict(replica=replica, sweep=sweep, sweep_value=value, device=device,
                             profile="basic", outcome="failed" if failed else "ok",
                             reason=rng.choice(["ip_timeout", "bootstrap_lost"]) if failed else "",
                             t_arrival=t0, t_bootstrap_sent=t0, t_bootstrap_ok=None,
                             t_session_start=None, t_session_end=None if failed else t0 + lat,
                             latency=lat, bootstrap_sends=1, bootstrap_rejected=0, auth_retries=0,
                             ip_retries=0, sms_msgs=1, sms_bytes=100, ip_msgs=2, ip_bytes=300, ota="", ota_latency=None)
                    table.write(tuple(v[name] for name in COLUMN_NAMES))
    key = "links.sms.loss" if sweep_values else None
    write_json_atomic(run_dir / "summary.json",
                      summarize(run_dir / "sessions.csv", duration=60.0, sweep_key=key))
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
