"""Shards of one fleet (issue 17, ``sim/model/shards.py``): every device runs once, in the shard of
its index, with its unsharded identity and arrival time; the merged tables depend on the seed and
the shard count only; the divided capacity approximates the whole one closely on a large fleet."""
from __future__ import annotations

import csv
import json

import pytest

from dmsim.base.errors import DmsimError, ScenarioError
from dmsim.sim.model.shards import owns, shard_data
from dmsim.sim.results.runner import run_scenario
from dmsim.sim.scenario.format import parse_scenario

SCENARIO = """
name: shards
seed: 5
duration: 1200
fleet: {size: %(size)d, profiles: [{name: a, weight: 0.8, dm_auth: hmac},
                                   {name: b, weight: 0.2, bootstrap_security: USERPIN}]}
arrival: {kind: poisson, rate: %(rate)g}
server: {max_sessions: %(slots)d}
smsc: {submit_rate: %(smsc_rate)g, burst: 7}
client: {connect_time: {kind: lognormal, median: 1.0, sigma: 0.5}}
"""


def scenario(shards: int, size: int = 60, rate: float = 3, slots: int = 10, smsc_rate: float = 50):
    return parse_scenario(SCENARIO % {"size": size, "rate": rate, "slots": slots, "smsc_rate": smsc_rate},
                          "shards.yaml", [f"shards={shards}"])


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_shard_data_divides_the_shared_capacity_and_the_parts_sum_to_the_whole():
    data = scenario(1, slots=10).data
    parts = [shard_data(data, k, 3) for k in range(3)]
    assert [p["server"]["max_sessions"] for p in parts] == [4, 3, 3]
    assert [p["smsc"]["burst"] for p in parts] == [3, 2, 2]
    assert sum(p["smsc"]["submit_rate"] for p in parts) == pytest.approx(50)
    assert data["server"]["max_sessions"] == 10  # the whole scenario is left as it was
    assert shard_data(data, 0, 1) is data
    assert [i for i in range(10) if owns(i, 1, 3)] == [1, 4, 7]


def test_every_device_runs_once_with_its_unsharded_identity_and_arrival(tmp_path):
    whole = rows(run_scenario(scenario(1), tmp_path / "whole", plots=False).out_dir / "sessions.csv")
    cut = rows(run_scenario(scenario(3), tmp_path / "cut", plots=False).out_dir / "sessions.csv")
    assert sorted(int(r["device"]) for r in cut) == list(range(60))
    by_device = {r["device"]: r for r in whole}
    for r in cut:
        assert (r["profile"], r["t_arrival"]) == (by_device[r["device"]]["profile"], by_device[r["device"]]["t_arrival"])
    # rows come shard by shard: device i in shard i % 3
    shard_of_row = [int(r["device"]) % 3 for r in cut]
    assert shard_of_row == sorted(shard_of_row)


def test_the_merged_tables_depend_on_the_seed_and_shard_count_only(tmp_path):
    one = run_scenario(scenario(3), tmp_path / "one", plots=False, jobs=1)
    two = run_scenario(scenario(3), tmp_path / "two", plots=False, jobs=2)
    for name in ("sessions.csv", "sms.csv"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    assert one.summary == two.summary
    assert one.summary["shards"]["count"] == 3 and "divided" in one.summary["shards"]["approximation"]
    assert not list((tmp_path / "two").glob(".unit-*"))  # the workers' spools are gone
    other = run_scenario(scenario(2), tmp_path / "other", plots=False, jobs=2)
    assert (tmp_path / "other" / "sessions.csv").read_bytes() != (tmp_path / "one" / "sessions.csv").read_bytes()
    assert other.summary["fleet"]["arrived"] == 60


def _percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def test_a_sharded_run_approximates_the_whole_fleet_closely(tmp_path):
    """A loaded server (arrivals near its capacity) and a throttled SMSC: the sharded run's success
    rate and latency percentiles stay near the unsharded run's."""
    results = {}
    for shards in (1, 4):
        sc = scenario(shards, size=1500, rate=25, slots=40, smsc_rate=60)
        out = run_scenario(sc, tmp_path / f"k{shards}", plots=False, jobs=2)
        table = rows(out.out_dir / "sessions.csv")
        latencies = [float(r["latency"]) for r in table if r["outcome"] == "ok"]
        results[shards] = (len(latencies) / len(table), _percentile(latencies, 0.5), _percentile(latencies, 0.9))
    (rate1, p50_1, p90_1), (rate4, p50_4, p90_4) = results[1], results[4]
    assert abs(rate1 - rate4) < 0.01
    assert abs(p50_4 - p50_1) / p50_1 < 0.05 and abs(p90_4 - p90_1) / p90_1 < 0.10


@pytest.mark.parametrize("extra, words", [
    (["shards=11"], "more than server.max_sessions"),
    (["shards=2", "attacks=[{kind: stale-nonce}]"], "attacks act on the whole fleet"),
    (["shards=2", "components.card={kind: pcsc}"], "real components"),
])
def test_what_cannot_be_sharded_is_refused_with_the_key(extra, words):
    with pytest.raises(ScenarioError) as err:
        parse_scenario(SCENARIO % {"size": 60, "rate": 3, "slots": 10, "smsc_rate": 50}, "shards.yaml", extra)
    assert words in str(err.value) and "shards" in str(err.value)


def test_a_capture_of_one_shard_is_refused(tmp_path):
    with pytest.raises(DmsimError, match="shards=1"):
        run_scenario(scenario(2), tmp_path / "run", plots=False, pcap=tmp_path / "x.pcap")
    with pytest.raises(DmsimError, match="shards=1"):
        run_scenario(scenario(2), tmp_path / "run2", plots=False, trace=(0,))


def test_the_hss_stores_of_shards_do_not_collide(tmp_path):
    sc = parse_scenario("""
name: gba-shards
seed: 3
shards: 2
fleet: {size: 8, profiles: [{name: g, bootstrap_via: gba_push}]}
gba: {}
""", "g.yaml")
    result = run_scenario(sc, tmp_path / "run", plots=False, jobs=2)
    assert sorted(p.name for p in (tmp_path / "run").glob("hss-*.sqlite")) == ["hss-r0-s0-k0.sqlite",
                                                                              "hss-r0-s0-k1.sqlite"]
    assert result.summary["ok"] == 8
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["jobs"] == 2
