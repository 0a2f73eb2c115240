"""Run summary (sim/results/summary.py) against hand-computed values."""
from __future__ import annotations

import json

import pytest

from dmsim.sim.results.atomic import write_json_atomic
from dmsim.base.errors import DmsimError
from dmsim.sim.results.records import COLUMN_NAMES, SessionTable, sweep_cell
from dmsim.sim.results.summary import confidence_interval, summarize, t975

T2 = 4.3027  # t(0.975, df=2)


def row(replica, latency=None, reason=None, sweep=0, sweep_value=None, outcome=None, protocol="dm"):
    if outcome is None:
        outcome = "ok" if reason is None else "failed"
    v = dict(replica=replica, sweep=sweep, sweep_value=sweep_value, device=0, profile="p",
             outcome=outcome, reason=reason or "", t_arrival=0.0, t_bootstrap_sent=None,
             t_bootstrap_ok=None, t_session_start=None, t_session_end=latency, latency=latency,
             bootstrap_sends=1, bootstrap_rejected=0, auth_retries=0, ip_retries=0,
             sms_msgs=1, sms_bytes=100, ip_msgs=2, ip_bytes=300, ota="", ota_latency=None,
             t_gpi_sent=None, t_gpi_received=None, t_gba_keys=None, t_ub_start=None, t_ub_ok=None, attacks=None, attack_outcome=None, protocol=protocol)
    return tuple(v[name] for name in COLUMN_NAMES)


def table(tmp_path, rows, name="sessions.csv"):
    with SessionTable(tmp_path / name) as t:
        for r in rows:
            t.write(r)
    return t.path


# Replica 0: ok [1, 2, 3, 4] + ip_timeout; replica 1: ok [2, 6, 7] + ip_timeout + server_busy;
# replica 2: ok [10] + bootstrap_lost.
THREE = (
    [row(0, x) for x in (1.0, 2.0, 3.0, 4.0)] + [row(0, reason="ip_timeout")]
    + [row(1, x) for x in (2.0, 6.0, 7.0)] + [row(1, reason="ip_timeout"),
                                               row(1, reason="server_busy")]
    + [row(2, 10.0), row(2, reason="bootstrap_lost")]
)


def test_t_table():
    assert t975(1) == 12.7062 and t975(2) == T2 and t975(30) == 2.0423
    assert t975(31) == t975(1000) == 1.96
    with pytest.raises(DmsimError):
        t975(0)
    assert confidence_interval([3.0]) == (None, None)
    low, high = confidence_interval([1.0, 3.0])  # mean 2, sd sqrt(2), n 2
    assert low == pytest.approx(2 - 12.7062 * 1.0) and high == pytest.approx(2 + 12.7062)


def test_three_replicas(tmp_path):
    s = summarize(table(tmp_path, THREE), sweep_key=None)
    assert s["sessions"] == 12 and s["ok"] == 8 and s["replicas"] == 3
    assert s["success_rate"] == pytest.approx(8 / 12)
    assert s["failure_reasons"] == {"bootstrap_lost": 1, "ip_timeout": 2, "server_busy": 1}
    assert s["sweep"] is None

    lat = s["latency_s"]
    # pooled [1, 2, 2, 3, 4, 6, 7, 10]: p50 at rank 3.5, p90 at 6.3, p99 at 6.93 (linear)
    assert lat["p50"]["value"] == pytest.approx(3.5)
    assert lat["p90"]["value"] == pytest.approx(7.9)
    assert lat["p99"]["value"] == pytest.approx(9.79)
    assert lat["mean"]["value"] == pytest.approx(35 / 8)
    # per-replica p50 = [2.5, 6, 10]: mean 37/6, sd/sqrt(3) = 13/6
    assert 37 / 6 - T2 * 13 / 6 < 0 and lat["p50"]["ci95_low"] == 0.0  # the raw t bound is negative: cut at 0
    assert lat["p50"]["ci95_high"] == pytest.approx(37 / 6 + T2 * 13 / 6)
    # per-replica means = [2.5, 5, 10]: mean 35/6, variance 175/12
    half = T2 * (175 / 12 / 3) ** 0.5
    assert lat["mean"]["ci95_low"] == pytest.approx(max(0.0, 35 / 6 - half))
    assert lat["mean"]["ci95_high"] == pytest.approx(35 / 6 + half)
    # per-replica p90 = [3.7, 6.8, 10]
    p90 = [3.7, 6.8, 10.0]
    m = sum(p90) / 3
    sd = (sum((x - m) ** 2 for x in p90) / 2) ** 0.5
    assert lat["p90"]["ci95_high"] == pytest.approx(m + T2 * sd / 3 ** 0.5)

    # throughput over each run's active window (first arrival 0 to last session end): ok 4 in 4 s,
    # 3 in 7 s, 1 in 10 s -> 1, 3/7, 1/10; pooled 8 / 21
    thr = s["throughput_per_s"]
    assert thr["value"] == pytest.approx(8 / 21)
    per = [1.0, 3 / 7, 0.1]
    m = sum(per) / 3
    half = T2 * (sum((x - m) ** 2 for x in per) / 2 / 3) ** 0.5
    assert thr["ci95_low"] == pytest.approx(max(0.0, m - half))
    assert thr["ci95_high"] == pytest.approx(m + half)
    assert "window" in s["throughput_definition"]
    # success rate with its interval: per replica 0.8, 0.6, 0.5
    rate = [0.8, 0.6, 0.5]
    m = sum(rate) / 3
    half = T2 * (sum((x - m) ** 2 for x in rate) / 2 / 3) ** 0.5
    assert s["success_rate_estimate"] == {"value": pytest.approx(8 / 12), "ci95_low": pytest.approx(m - half),
                                          "ci95_high": pytest.approx(min(1.0, m + half))}
    assert s["failure_shares"] == {"bootstrap_lost": 1 / 12, "ip_timeout": 2 / 12, "server_busy": 1 / 12}
    assert s["per_profile"]["p"]["sessions"] == 12 and s["per_profile"]["p"]["ok"] == 8
    assert s["fleet"] is None  # the runner passes the fleet; a table alone does not know it

    assert s["per_replica"] == [
        {"replica": 0, "sessions": 5, "ok": 4, "success_rate": 0.8,
         "p50": pytest.approx(2.5), "p90": pytest.approx(3.7), "p99": pytest.approx(3.97)},
        {"replica": 1, "sessions": 5, "ok": 3, "success_rate": 0.6,
         "p50": pytest.approx(6.0), "p90": pytest.approx(6.8), "p99": pytest.approx(6.98)},
        {"replica": 2, "sessions": 2, "ok": 1, "success_rate": 0.5,
         "p50": 10.0, "p90": 10.0, "p99": 10.0},
    ]
    # JSON-ready: plain types, no NaN
    write_json_atomic(tmp_path / "summary.json", s)
    assert json.loads((tmp_path / "summary.json").read_text())["ok"] == 8


def test_one_replica_has_null_ci(tmp_path):
    s = summarize(table(tmp_path, [row(0, 1.0), row(0, 3.0)]), sweep_key=None)
    assert s["latency_s"]["p50"] == {"value": 2.0, "ci95_low": None, "ci95_high": None}
    assert s["throughput_per_s"] == {"value": pytest.approx(2 / 3), "ci95_low": None, "ci95_high": None}


def test_replica_without_ok_sessions_is_left_out_of_latency_ci(tmp_path):
    rows = [row(0, 1.0), row(1, 3.0), row(2, reason="")]
    s = summarize(table(tmp_path, rows), sweep_key=None)
    assert s["failure_reasons"] == {"unknown": 1}
    assert s["per_replica"][2]["p50"] is None and s["per_replica"][2]["success_rate"] == 0.0
    low, high = confidence_interval([1.0, 3.0])
    assert low < 0 and s["latency_s"]["p50"]["ci95_low"] == 0.0  # cut at 0
    assert s["latency_s"]["p50"]["ci95_high"] == pytest.approx(high)
    # throughput: 1 ok in 1 s, 1 in 3 s; replica 2 has no window (no session ended)
    assert s["throughput_per_s"]["value"] == pytest.approx(2 / 4)


def test_empty_table_gives_nulls(tmp_path):
    path = table(tmp_path, [])
    s = summarize(path, sweep_key=None)
    assert s["sessions"] == 0 and s["ok"] == 0 and s["replicas"] == 0
    assert s["success_rate"] is None and s["failure_reasons"] == {} and s["per_replica"] == []
    assert all(v == {"value": None, "ci95_low": None, "ci95_high": None}
               for v in s["latency_s"].values())
    assert s["throughput_per_s"]["value"] is None
    assert summarize(path, sweep_key="a.b")["sweep"] == {"key": "a.b", "keys": ["a.b"], "points": []}
    only_failed = summarize(table(tmp_path, [row(0, reason="ip_timeout")], "f.csv"),
                            sweep_key=None)
    assert only_failed["success_rate"] == 0.0 and only_failed["latency_s"]["p99"]["value"] is None
    assert only_failed["throughput_per_s"]["value"] is None  # no session ended: no window


def test_sweep_block(tmp_path):
    # point 0 (loss 0.0): replica 0 ok [1, 3], replica 1 ok [2] + ip_timeout
    # point 1 (loss 0.1): replica 0 ok [5] + bootstrap_lost x2, replica 1 ok [7, 9]
    rows = [row(0, 1.0, sweep=0, sweep_value=sweep_cell(0.0)), row(0, 3.0, sweep=0, sweep_value=sweep_cell(0.0)),
            row(1, 2.0, sweep=0, sweep_value=sweep_cell(0.0)),
            row(1, reason="ip_timeout", sweep=0, sweep_value=sweep_cell(0.0)),
            row(0, 5.0, sweep=1, sweep_value=sweep_cell(0.1)),
            row(0, reason="bootstrap_lost", sweep=1, sweep_value=sweep_cell(0.1)),
            row(0, reason="bootstrap_lost", sweep=1, sweep_value=sweep_cell(0.1)),
            row(1, 7.0, sweep=1, sweep_value=sweep_cell(0.1)), row(1, 9.0, sweep=1, sweep_value=sweep_cell(0.1))]
    s = summarize(table(tmp_path, rows), sweep_key="links.sms.loss")
    assert s["sweep"]["key"] == "links.sms.loss"
    p0, p1 = s["sweep"]["points"]
    assert p0["value"] == 0.0 and p1["value"] == pytest.approx(0.1)
    assert "sweep" not in p0
    assert (p0["sessions"], p0["ok"], p0["replicas"]) == (4, 3, 2)
    assert p0["success_rate"] == 0.75 and p0["failure_reasons"] == {"ip_timeout": 1}
    assert p0["latency_s"]["p50"]["value"] == 2.0
    # per-replica p50 at point 0: [2, 2] -> zero-width CI
    assert p0["latency_s"]["p50"]["ci95_low"] == p0["latency_s"]["p50"]["ci95_high"] == 2.0
    assert p1["success_rate"] == pytest.approx(3 / 5)
    assert p1["failure_reasons"] == {"bootstrap_lost": 2}
    assert p1["latency_s"]["p50"]["value"] == 7.0
    assert p1["throughput_per_s"]["value"] == pytest.approx(3 / (5 + 9))  # windows 5 s and 9 s
    # top level pools both points; replica r pools replica r of both points
    assert s["sessions"] == 9 and s["ok"] == 6 and s["replicas"] == 2
    assert s["failure_reasons"] == {"bootstrap_lost": 2, "ip_timeout": 1}
    assert s["latency_s"]["p50"]["value"] == pytest.approx(4.0)  # [1, 2, 3, 5, 7, 9]
    assert s["per_replica"][0]["sessions"] == 5 and s["per_replica"][0]["p50"] == 3.0
    assert s["per_replica"][1]["p50"] == 7.0  # [2, 7, 9]
    assert s["throughput_per_s"]["value"] == pytest.approx(6 / (3 + 2 + 5 + 9))
    low, high = confidence_interval([3 / 8, 3 / 11])  # replica 0: 3 ok in 3 + 5 s; replica 1: 3 in 2 + 9 s
    assert s["throughput_per_s"]["ci95_high"] == pytest.approx(high)


def test_bad_rows_raise_typed_errors(tmp_path):
    with pytest.raises(DmsimError, match="outcome 'lost'"):
        summarize(table(tmp_path, [row(0, 1.0, outcome="lost")]), sweep_key=None)
    rows = [row(0, 1.0, sweep=0, sweep_value=sweep_cell(0.0)), row(1, 1.0, sweep=0, sweep_value=sweep_cell(0.5))]
    with pytest.raises(DmsimError, match="sweep point 0"):
        summarize(table(tmp_path, rows, "b.csv"), sweep_key="k")


def test_a_mixed_fleet_is_summarised_per_protocol(tmp_path):
    rows = [row(0, 1.0), row(0, reason="ip_timeout"), row(0, 5.0, protocol="lwm2m"),
            row(0, reason="dtls_failed", protocol="lwm2m"), row(0, reason="sms_discarded", protocol="lwm2m")]
    s = summarize(table(tmp_path, rows))
    assert {k: (b["sessions"], b["ok"]) for k, b in s["per_protocol"].items()} == {"dm": (2, 1), "lwm2m": (3, 1)}
    assert s["sessions"] == 5 and s["ok"] == 2
