"""``fidelity: sampled`` (issue 17, ``sim/model/sampled.py``): a sample runs the protocol as one
shard; every other device gets a row drawn from the sample by profile and arrival time; the
summary says so and sets the sample beside the modelled devices."""
from __future__ import annotations

import csv
import random

import pytest

from dmsim.base.errors import DmsimError, ScenarioError
from dmsim.sim.model import sampled
from dmsim.sim.results.records import COLUMNS
from dmsim.sim.results.report import render_report
from dmsim.sim.results.runner import closing_lines, run_scenario
from dmsim.sim.scenario.format import parse_scenario

SCENARIO = """
name: sampled
seed: 11
duration: 1500
fleet: {size: %(size)d, profiles: [{name: a, weight: 0.8, dm_auth: hmac},
                                   {name: b, weight: 0.2, bootstrap_security: USERPIN}]}
arrival: {kind: poisson, rate: %(rate)g}
server: {max_sessions: 100}
links: {sms: {loss: 0.02}}
client: {connect_time: {kind: lognormal, median: 1.0, sigma: 0.5}}
"""


def scenario(*extra, size=2000, rate=20):
    return parse_scenario(SCENARIO % {"size": size, "rate": rate}, "sampled.yaml", list(extra))


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_the_row_positions_are_the_session_table_columns():
    names = [c.name for c in COLUMNS]
    assert sampled.ROW_WIDTH == len(COLUMNS)
    assert [names[i] for i in (sampled.INDEX, sampled.PROFILE, sampled.OUTCOME, sampled.REASON, sampled.T_ARRIVAL,
                               sampled.T_END, sampled.LATENCY)] == \
        ["device", "profile", "outcome", "reason", "t_arrival", "t_session_end", "latency"]
    assert all(names[i].startswith("t_") for i in sampled.TIMES)
    assert [n for i, n in enumerate(names) if n.startswith("t_") and i != sampled.T_ARRIVAL] == \
        [names[i] for i in sampled.TIMES]


def test_the_sample_is_a_shard_and_the_rest_is_modelled_from_it(tmp_path):
    result = run_scenario(scenario("fidelity=sampled", "fidelity_sample=0.1"), tmp_path / "s", plots=False)
    table = rows(tmp_path / "s" / "sessions.csv")
    assert sorted(int(r["device"]) for r in table) == list(range(2000))
    shard = rows(run_scenario(scenario("shards=10"), tmp_path / "k", plots=False).out_dir / "sessions.csv")
    assert [r for r in table if int(r["device"]) % 10 == 0] == [r for r in shard if int(r["device"]) % 10 == 0]
    block = result.summary["fidelity"]
    assert (block["sample_devices"], block["modelled_devices"], block["every"]) == (200, 1800, 10)
    assert block["calibration"]["a"]["modelled"]["phases_s"]["latency"]["p50"] is not None
    _lines, warnings = closing_lines("sampled", result)
    assert any("200 devices ran the real protocol" in w and "1,800 were modelled" in w for w in warnings)
    html = render_report(result.summary, {}, [], "sampled")
    assert "Sampled fidelity" in html and "<h2>Fidelity</h2>" in html and "modelled" in html


def _stats(table):
    lat = sorted(float(r["latency"]) for r in table if r["outcome"] == "ok")
    return len(lat) / len(table), lat[len(lat) // 2], lat[int(0.9 * len(lat))]


def test_a_sampled_run_approximates_the_full_run(tmp_path):
    full = _stats(rows(run_scenario(scenario(size=3000, rate=30), tmp_path / "f", plots=False).out_dir
                       / "sessions.csv"))
    some = _stats(rows(run_scenario(scenario("fidelity=sampled", "fidelity_sample=0.1", size=3000, rate=30),
                                    tmp_path / "s", plots=False).out_dir / "sessions.csv"))
    assert abs(full[0] - some[0]) < 0.02
    assert abs(full[1] - some[1]) / full[1] < 0.10 and abs(full[2] - some[2]) / full[2] < 0.15


def test_a_sampled_run_is_the_same_in_one_process_or_several(tmp_path):
    sc = scenario("fidelity=sampled", "fidelity_sample=0.2", "replicas=2", size=400)
    one = run_scenario(sc, tmp_path / "one", plots=False, jobs=1)
    two = run_scenario(sc, tmp_path / "two", plots=False, jobs=2)
    assert (tmp_path / "one" / "sessions.csv").read_bytes() == (tmp_path / "two" / "sessions.csv").read_bytes()
    assert one.summary == two.summary


def test_a_modelled_time_past_the_horizon_is_not_finished():
    template = [0, 0, "", 10, "a", "ok", "", 5.0, 6.0, 9.0, 10.0, 12.0, 7.0] + [1] * 8 + ["", None] + [None] * 5 \
        + [None, None]
    row = sampled.shifted(tuple(template), 1, 0, "", 77, 95.0, duration=100.0)
    assert row[sampled.INDEX] == 77 and row[0] == 1 and row[sampled.T_ARRIVAL] == 95.0
    assert (row[sampled.OUTCOME], row[sampled.REASON], row[sampled.T_END], row[sampled.LATENCY]) == \
        ("failed", "not_finished", None, None)
    assert row[8] == 96.0 and row[10] is None  # bootstrap sent in time; the session start after the horizon
    ok = sampled.shifted(tuple(template), 0, 0, "", 3, 20.0, duration=100.0)
    assert (ok[sampled.OUTCOME], ok[sampled.T_END], ok[sampled.LATENCY]) == ("ok", 27.0, 7.0)


def test_a_draw_comes_from_the_same_profile_near_the_arrival():
    rows_ = [(0, 0, "", i, "a" if i % 2 else "b", "ok", "", float(i)) for i in range(100)]
    cal = sampled.Calibration(rows_, window=3.0)
    rng = random.Random(1)
    for t in (10.0, 50.5, 98.0):
        draw = cal.draw("a", t, rng)
        assert draw[4] == "a" and abs(draw[7] - t) <= 3.0
    assert cal.draw("a", 500.0, rng)[7] == 99.0  # none near: the nearest
    assert cal.draw("c", 5.0, rng) is None


def test_a_profile_without_a_sample_device_is_unmodelled_and_said(tmp_path):
    sc = parse_scenario(SCENARIO.replace("weight: 0.2", "weight: 0.004") % {"size": 300, "rate": 10}, "s.yaml",
                        ["fidelity=sampled", "fidelity_sample=0.1"])
    result = run_scenario(sc, tmp_path / "u", plots=False)
    table = rows(tmp_path / "u" / "sessions.csv")
    unmodelled = [r for r in table if r["reason"] == "unmodelled"]
    assert unmodelled and all(r["profile"] == "b" for r in unmodelled)
    assert result.summary["fidelity"]["unmodelled_devices"] == len(unmodelled)
    assert any("could not be modelled" in w for w in closing_lines("u", result)[1])


@pytest.mark.parametrize("extra, words", [
    (["fidelity=sampled", "shards=2"], "sharded already"),
    (["fidelity=sampled", "attacks=[{kind: stale-nonce}]"], "attacks act on devices"),
    (["fidelity=sampled", "fidelity_sample=0.001"], "less than one of the"),
    (["fidelity=sampled", "fidelity_sample=0"], "fidelity_sample"),
])
def test_what_cannot_be_sampled_is_refused(extra, words):
    with pytest.raises(ScenarioError, match=words):
        scenario(*extra)


def test_a_capture_of_a_sampled_run_is_refused(tmp_path):
    with pytest.raises(DmsimError, match="fidelity=full"):
        run_scenario(scenario("fidelity=sampled", size=50), tmp_path / "r", plots=False, pcap=tmp_path / "x.pcap")
