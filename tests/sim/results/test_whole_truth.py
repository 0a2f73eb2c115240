"""Results that tell the whole truth (issue 12 §2): devices that never arrived are counted and
warned about, every estimate has its interval, results break down per sweep point and per
profile, each phase column is its own event, an old run is never silently mixed with a new one,
and sweeps take choices and grids."""
import csv
import json

import pytest
from click.testing import CliRunner

from dmsim.sim.cli.main import main
from dmsim.sim.model.arrivals import expected_span, fit_warning
from dmsim.sim.results.records import sweep_cell
from dmsim.sim.results.runner import run_scenario
from dmsim.sim.scenario.format import parse_scenario

BASE = """
name: truth
seed: 3
replicas: 2
duration: 200
fleet:
  size: 40
  profiles: [{name: a, weight: 1}, {name: b, weight: 1, dm_auth: basic}]
arrival: {kind: poisson, rate: 1}
links: {sms: {loss: 0.0, delay: {kind: fixed, value: 1.0}}}
"""


def run(tmp_path, *overrides, text=BASE):
    result = run_scenario(parse_scenario(text, "t.yaml", list(overrides)), tmp_path, plots=False)
    rows = list(csv.DictReader(open(tmp_path / "sessions.csv", newline="")))
    return result.summary, rows


def test_devices_that_never_arrived_are_counted_and_warned_about(tmp_path):
    summary, rows = run(tmp_path, "duration=20")  # 40 devices at 1/s: about half arrive
    fleet = summary["fleet"]
    assert fleet["size"] == 40 and fleet["runs"] == 2 and fleet["expected"] == 80
    assert fleet["arrived"] == len(rows) < 80 and fleet["not_arrived"] == 80 - len(rows)
    assert fleet["success_rate_of_fleet"] == pytest.approx(summary["ok"] / 80)
    text = tmp_path / "s.yaml"
    text.write_text(BASE.replace("duration: 200", "duration: 20"))
    res = CliRunner().invoke(main, ["run", str(text), "--out", str(tmp_path / "cli"), "--no-plots"])
    assert res.exit_code == 0
    assert "never arrived" in res.output and "WARNING" in res.output
    assert "warning: arrival poisson brings the 40 devices in over about 40 s" in res.output


def test_scenario_check_says_when_the_fleet_cannot_fit(tmp_path):
    text = tmp_path / "s.yaml"
    text.write_text(BASE)
    res = CliRunner().invoke(main, ["scenario", "check", str(text), "--set", "fleet.size=100000"])
    assert res.exit_code == 0 and "about 0% of the fleet will arrive" in res.output
    res = CliRunner().invoke(main, ["scenario", "check", str(text)])
    assert res.exit_code == 0 and "will arrive" not in res.output


def test_expected_span_of_each_arrival_kind():
    assert expected_span({"kind": "all_at_once"}, 10**6) == 0
    assert expected_span({"kind": "poisson", "rate": 20}, 100_000) == 5000
    ramp = {"kind": "ramp", "from_rate": 0, "to_rate": 10, "over": 100}
    assert expected_span(ramp, 500) == pytest.approx(100) and expected_span(ramp, 600) == pytest.approx(110)
    assert expected_span(ramp, 200) == pytest.approx(4000 ** 0.5)
    assert fit_warning({"kind": "poisson", "rate": 20}, 1000, 1800) is None
    assert "36%" in fit_warning({"kind": "poisson", "rate": 20}, 100_000, 1800)


def test_estimates_have_intervals_and_blocks_per_profile(tmp_path):
    summary, rows = run(tmp_path)
    est = summary["success_rate_estimate"]
    assert est["value"] == summary["success_rate"] and est["ci95_low"] is not None
    assert 0 <= est["ci95_low"] <= est["value"] <= est["ci95_high"] <= 1
    assert set(summary["per_profile"]) == {"a", "b"}
    for name, block in summary["per_profile"].items():
        assert block["sessions"] == sum(r["profile"] == name for r in rows)
        assert block["latency_s"]["p50"]["value"] is not None
    assert "window" in summary["throughput_definition"]
    windows = []
    for replica in ("0", "1"):
        mine = [r for r in rows if r["replica"] == replica]
        ends = [float(r["t_session_end"]) for r in mine if r["t_session_end"]] + [float(r["t_arrival"]) for r in mine]
        windows.append(max(ends) - min(float(r["t_arrival"]) for r in mine))
    assert summary["throughput_per_s"]["value"] == pytest.approx(summary["ok"] / sum(windows))
    assert summary["throughput_per_s"]["value"] > 40 / 200  # not diluted over the whole duration


def test_each_phase_column_is_its_own_event(tmp_path):
    _, rows = run(tmp_path, "client.connect_time={kind: fixed, value: 2.5}", "replicas=1")
    for r in rows:
        assert float(r["t_session_start"]) == pytest.approx(float(r["t_bootstrap_ok"]) + 2.5)
        assert float(r["t_bootstrap_sent"]) < float(r["t_bootstrap_ok"]) < float(r["t_session_end"])


def test_with_an_smsc_links_sms_counts_what_it_carried(tmp_path):
    summary, _ = run(tmp_path, "smsc={submit_rate: 100, burst: 20}", "replicas=1")
    sms = summary["network"]["links.sms"]
    assert sms["sent"] > 0 and sms["sent"] >= sms["tap"]["seen"] > 0
    assert summary["network"]["links.sms.up"]["sent"] > 0  # the RP answers


def test_an_out_folder_with_a_run_is_refused_unless_overwritten(tmp_path):
    text = tmp_path / "s.yaml"
    text.write_text(BASE.replace("replicas: 2", "replicas: 1"))
    out = tmp_path / "out"
    assert CliRunner().invoke(main, ["run", str(text), "--out", str(out), "--no-plots", "-q"]).exit_code == 0
    (out / "latency_cdf.png").write_bytes(b"old plot")
    (out / "notes.txt").write_text("mine")
    res = CliRunner().invoke(main, ["run", str(text), "--out", str(out), "--no-plots", "-q"])
    assert res.exit_code == 2 and "already holds a run" in res.output and "--overwrite" in res.output
    res = CliRunner().invoke(main, ["run", str(text), "--out", str(out), "--no-plots", "-q", "--overwrite"])
    assert res.exit_code == 0
    assert not (out / "latency_cdf.png").exists() and (out / "notes.txt").read_text() == "mine"


def test_a_categorical_sweep(tmp_path):
    summary, rows = run(tmp_path, "sweep={key: fleet.profiles.1.dm_auth, values: [md5, hmac]}", "replicas=1")
    assert [p["value"] for p in summary["sweep"]["points"]] == ["md5", "hmac"]
    assert [p["label"] for p in summary["sweep"]["points"]] == ["fleet.profiles.1.dm_auth=md5",
                                                                 "fleet.profiles.1.dm_auth=hmac"]
    assert {r["sweep_value"] for r in rows} == {"md5", "hmac"}


def test_a_grid_sweep_runs_every_combination(tmp_path):
    grid = ("sweep={grid: [{key: links.sms.loss, values: [0, 0.5]}, "
            "{key: components.dm_server.tls.mode, values: [none, psk]}]}")
    summary, rows = run(tmp_path, grid, "replicas=1", "fleet.size=10")
    points = summary["sweep"]["points"]
    assert summary["sweep"]["keys"] == ["links.sms.loss", "components.dm_server.tls.mode"]
    assert [p["value"] for p in points] == [
        {"links.sms.loss": 0.0, "components.dm_server.tls.mode": "none"},
        {"links.sms.loss": 0.0, "components.dm_server.tls.mode": "psk"},
        {"links.sms.loss": 0.5, "components.dm_server.tls.mode": "none"},
        {"links.sms.loss": 0.5, "components.dm_server.tls.mode": "psk"}]
    assert points[0]["label"] == "links.sms.loss=0, components.dm_server.tls.mode=none"
    assert {r["sweep_value"] for r in rows} == {
        "links.sms.loss=0.000000;components.dm_server.tls.mode=none",
        "links.sms.loss=0.000000;components.dm_server.tls.mode=psk",
        "links.sms.loss=0.500000;components.dm_server.tls.mode=none",
        "links.sms.loss=0.500000;components.dm_server.tls.mode=psk"}
    psk = [p for p in points if p["value"]["components.dm_server.tls.mode"] == "psk"]
    assert all(p["sessions"] == 10 for p in points) and psk[0]["success_rate"] == 1.0
    assert summary["network"]["tls"]["handshakes"] > 0


def test_sweep_errors_name_the_key():
    from dmsim.base.errors import ScenarioError
    with pytest.raises(ScenarioError, match="sweep"):
        parse_scenario(BASE + "sweep: {key: links.sms.loss}\n", "t.yaml")
    with pytest.raises(ScenarioError, match="either key and values, or a grid"):
        parse_scenario(BASE + "sweep: {key: links.sms.loss, values: [0], grid: [{key: seed, values: [1]}]}\n", "t.yaml")
    with pytest.raises(ScenarioError, match="swept twice"):
        parse_scenario(BASE + "sweep: {grid: [{key: seed, values: [1]}, {key: seed, values: [2]}]}\n", "t.yaml")
    with pytest.raises(ScenarioError, match="neither a number nor a choice"):
        parse_scenario(BASE + "sweep: {key: name, values: [x]}\n", "t.yaml")
    with pytest.raises(ScenarioError, match="md6"):
        parse_scenario(BASE + "sweep: {key: fleet.profiles.0.dm_auth, values: [md6]}\n", "t.yaml")


def test_sweep_cell_keeps_numeric_sweeps_as_they_were():
    assert sweep_cell(None) == "" and sweep_cell(0.05) == "0.050000" and sweep_cell(3) == "3.000000"
    assert sweep_cell("md5") == "md5" and sweep_cell(True) == "true"
    assert sweep_cell({"a": 1, "b": "x"}) == "a=1.000000;b=x"
