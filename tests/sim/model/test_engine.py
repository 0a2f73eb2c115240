"""The slice end to end in simulation: determinism, failure modes, tampering, capacity,
and an interrupted run."""
import csv
import json

import pytest

from dmsim.sim.results.progress import Progress
from dmsim.sim.results.runner import run_scenario
from dmsim.sim.scenario.format import parse_scenario

BASE = """
name: t
seed: 5
replicas: 2
duration: 900
fleet: {size: 60, profiles: [{name: a, bootstrap_security: NETWORKID}, {name: b, bootstrap_security: USERPIN},
                             {name: c, bootstrap_security: USERPIN_NETWORKID, dm_auth: basic}]}
arrival: {kind: poisson, rate: 5}
links:
  sms: {delay: {kind: lognormal, median: 2.0, sigma: 0.5}, loss: 0.05, duplicate: 0.02}
  ip: {delay: {kind: exponential, mean: 0.05}, loss: 0.01}
server: {max_sessions: 10, bootstrap_timeout: 60, bootstrap_retries: 3}
"""


def scenario(*overrides, text=BASE):
    return parse_scenario(text, "test.yaml", list(overrides))


def rows(run_dir):
    with open(run_dir / "sessions.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_same_seed_gives_byte_identical_sessions(tmp_path):
    run_scenario(scenario(), tmp_path / "a", plots=False)
    run_scenario(scenario(), tmp_path / "b", plots=False)
    run_scenario(scenario("seed=6"), tmp_path / "c", plots=False)
    a = (tmp_path / "a" / "sessions.csv").read_bytes()
    assert a == (tmp_path / "b" / "sessions.csv").read_bytes()
    assert a != (tmp_path / "c" / "sessions.csv").read_bytes()
    assert len(rows(tmp_path / "a")) == 120  # 60 devices x 2 replicas


def test_clean_network_bootstraps_and_authenticates_everyone(tmp_path):
    res = run_scenario(scenario("links.sms.loss=0", "links.ip.loss=0", "links.sms.duplicate=0"), tmp_path, plots=False)
    assert res.summary["success_rate"] == 1.0
    for r in rows(tmp_path):
        assert r["outcome"] == "ok" and r["bootstrap_sends"] == "1" and r["auth_retries"] == "0"
        assert float(r["t_bootstrap_ok"]) <= float(r["t_session_start"]) <= float(r["t_session_end"])
        assert int(r["sms_msgs"]) > 1 and int(r["ip_msgs"]) == 4  # concatenated SMS; packages 1-4
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["seed"] == 5


def test_lost_sms_is_retried_then_counted(tmp_path):
    run_scenario(scenario("links.sms.loss=1.0", "replicas=1"), tmp_path, plots=False)
    for r in rows(tmp_path):
        assert (r["outcome"], r["reason"], r["bootstrap_sends"]) == ("failed", "bootstrap_lost", "4")


def test_tampered_bootstrap_is_rejected_and_counted(tmp_path):
    run_scenario(scenario("links.sms.tap={kind: tamper, probability: 1.0, match: bootstrap}", "links.sms.loss=0",
                          "replicas=1"), tmp_path, plots=False)
    data = rows(tmp_path)
    # Every part of every bootstrap has one byte flipped: no device ever accepts one. A flip in the
    # MAC or the body is a rejected bootstrap; a flip in a part's header (its UDH concatenation
    # reference, or an originator that now reads as another, e.g. alphanumeric, address) leaves
    # the message incomplete: when that happens to every send, the bootstrap is lost, not rejected.
    assert all(r["outcome"] == "failed" and r["reason"] in ("bootstrap_rejected", "bootstrap_lost") for r in data)
    assert all(int(r["bootstrap_rejected"]) >= 1 for r in data if r["reason"] == "bootstrap_rejected")
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert sum(summary["failure_reasons"].values()) == 60 and summary["failure_reasons"]["bootstrap_rejected"] >= 55
    assert summary["network"]["links.sms"]["tap"]["tampered"] > 0


def test_partial_tampering_costs_retries_not_sessions(tmp_path):
    run_scenario(scenario("links.sms.tap={kind: tamper, probability: 0.05, match: bootstrap}", "links.sms.loss=0",
                          "replicas=1"), tmp_path, plots=False)
    data = rows(tmp_path)
    assert sum(int(r["bootstrap_rejected"]) for r in data) > 0
    assert sum(r["outcome"] == "ok" for r in data) >= 55


def test_ip_blackout_times_out(tmp_path):
    run_scenario(scenario("links.ip.loss=1.0", "links.sms.loss=0", "replicas=1", "client.request_retries=1"),
                 tmp_path, plots=False)
    for r in rows(tmp_path):
        assert (r["reason"], r["ip_retries"]) == ("ip_timeout", "1")


def test_server_capacity_queues_sessions(tmp_path):
    run_scenario(scenario("server.max_sessions=1", "server.service_time={kind: fixed, value: 1.0}", "arrival={kind: all_at_once}",
                          "links.sms.loss=0", "links.ip.loss=0", "fleet.size=10", "replicas=1", "duration=3600"),
                 tmp_path, plots=False)
    data = rows(tmp_path)
    assert all(r["outcome"] == "ok" for r in data)
    ends = sorted(float(r["t_session_end"]) for r in data)
    # one session at a time, two requests of 1 s each: completions about 2 s apart (give or take
    # the IP delay of the last reply), never overlapping
    assert all(b - a >= 1.5 for a, b in zip(ends, ends[1:]))
    assert ends[-1] - ends[0] >= 2.0 * 9


def test_horizon_records_unfinished_devices(tmp_path):
    run_scenario(scenario("duration=3", "replicas=1", "arrival={kind: all_at_once}"), tmp_path, plots=False)
    data = rows(tmp_path)
    assert len(data) == 60
    unfinished = [r for r in data if r["outcome"] != "ok"]
    assert len(unfinished) > 30 and {r["reason"] for r in unfinished} == {"not_finished"}
    assert all(r["t_session_end"] == "" and r["latency"] == "" for r in unfinished)


class _Interrupting(Progress):
    def __init__(self):
        super().__init__(1, 1, force=False)
        self.calls = 0

    def update(self, model):
        self.calls += 1
        if self.calls == 3:
            raise KeyboardInterrupt


def test_interrupted_run_leaves_readable_results_and_says_so(tmp_path):
    sc = scenario("fleet.size=3000", "replicas=1", "arrival={kind: poisson, rate: 50}")
    with pytest.raises(KeyboardInterrupt):
        run_scenario(sc, tmp_path, progress=_Interrupting(), plots=True)
    assert not list(tmp_path.glob("*.part"))
    data = rows(tmp_path)
    assert 0 < len(data) < 3000
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert manifest["status"] == "interrupted" and summary["status"] == "interrupted"
    assert summary["sessions"] == len(data)
    assert (tmp_path / "latency_cdf.png").stat().st_size > 0


def test_devices_read_their_imsi_from_their_card_with_real_apdus(tmp_path):
    run_scenario(scenario("replicas=1", "fleet.size=10", "components.card.apdu_time={kind: fixed, value: 0.01}"),
                 tmp_path, plots=False)
    for r in rows(tmp_path):
        card_time = float(r["t_bootstrap_sent"]) - float(r["t_arrival"])
        apdus = card_time / 0.01
        # VERIFY PIN, SELECT MF/EF_DIR, READ RECORDs, SELECT ADF.USIM/EF_IMSI, READ BINARY, GET RESPONSEs
        assert apdus == pytest.approx(round(apdus), abs=1e-6) and 5 <= round(apdus) <= 20
        assert r["outcome"] == "ok" or r["reason"] != "card_error"


def test_bootstrap_through_the_smsc_records_every_message(tmp_path):
    run_scenario(scenario("replicas=1", "fleet.size=20", "links.sms.loss=0.1", "server.bootstrap_timeout=600",
                          "smsc={retry: {initial: 5, factor: 2, max: 60}}"), tmp_path, plots=False)
    sessions = rows(tmp_path)
    # the SMSC's retries, not the server's, cover the radio loss
    assert all(r["outcome"] == "ok" and r["bootstrap_sends"] == "1" for r in sessions)
    with open(tmp_path / "sms.csv", newline="") as f:
        sms = list(csv.DictReader(f))
    assert {r["outcome"] for r in sms} == {"delivered"}
    assert len(sms) == 10 * len(sessions)  # one bootstrap of 10 parts per device
    assert sum(int(r["attempts"]) for r in sms) > len(sms)  # some parts needed a second attempt
    assert sum(int(r["sms_msgs"]) for r in sessions) >= len(sms)  # every part reached its device


def test_smsc_throttling_is_visible(tmp_path):
    run_scenario(scenario("replicas=1", "fleet.size=20", "arrival={kind: all_at_once}", "links.sms.loss=0",
                          "server.bootstrap_timeout=600", "smsc={submit_rate: 5, burst: 5}"), tmp_path, plots=False)
    with open(tmp_path / "sms.csv", newline="") as f:
        sms = list(csv.DictReader(f))
    refused = [r for r in sms if r["outcome"] == "refused"]
    assert refused and {r["last_cause"] for r in refused} == {"throttled"}
    assert len(refused) < 2 * 200  # one outbox: a throttled submit is retried once a token is due, not by all at once
    # the server retries a throttled part when the SMSC says a token is due: every bootstrap
    # gets through in its first send, at the submit rate (200 parts at 5/s: about 40 s)
    sessions = rows(tmp_path)
    assert all(r["outcome"] == "ok" and r["bootstrap_sends"] == "1" for r in sessions)
    delivered = [r for r in sms if r["outcome"] == "delivered"]
    assert len(delivered) == 10 * len(sessions)
    assert 35 <= max(float(r["submit_time"]) for r in delivered) <= 45
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["network"]["smsc"]["server_submit_retries"] == len(refused)


def test_smsc_block_is_validated_at_its_line():
    from dmsim.base.errors import ScenarioError
    with pytest.raises(ScenarioError) as err:
        scenario(text=BASE + "smsc: {submit_rat: 5}\n")
    assert "submit_rat" in str(err.value) and "test.yaml:" in err.value.where


@pytest.mark.parametrize("por", ["ack", "submit"])
def test_ota_campaign_through_the_smsc(tmp_path, por):
    """Each device's UICC runs the platform's RFM script; the PoR comes back in the RP-ACK or
    as a mobile-originated SMS-SUBMIT, and the platform verifies it with the device's keys."""
    run_scenario(scenario("replicas=1", "fleet.size=12", "links.sms.loss=0", "links.sms.duplicate=0", "smsc={}",
                          f"ota={{por: {por}}}"),
                 tmp_path, plots=False)
    sessions = rows(tmp_path)
    done = [r for r in sessions if r["outcome"] == "ok"]
    assert done and all(r["ota"] == "ok" and float(r["ota_latency"]) > 0 for r in done)
    with open(tmp_path / "sms.csv", newline="") as f:
        sms = list(csv.DictReader(f))
    commands = [r for r in sms if r["pid"] == str(0x7F) and r["origin"] == "esme"]
    assert len(commands) == len([r for r in sessions if r["ota"]])
    mo = [r for r in sms if r["origin"] == "ms"]
    if por == "submit":  # the PoR travelled the MO path to the platform
        assert {r["dst"] for r in mo} == {"55501"} and len(mo) == len(done)
        assert {r["outcome"] for r in mo} == {"delivered"}
    else:
        assert not mo
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["network"]["ota"] == {"ok": len([r for r in sessions if r["ota"]])}


def test_ota_needs_an_smsc():
    from dmsim.base.errors import ScenarioError
    with pytest.raises(ScenarioError) as err:
        scenario("ota={}")
    assert err.value.path == "ota"


def test_notification_initiated_sessions(tmp_path):
    """server.session_trigger=notification: after the bootstrap the server sends package #0 over
    WAP Push; the device checks its digest and opens the session with Alert 1200."""
    run_scenario(scenario("replicas=1", "fleet.size=15", "links.sms.loss=0", "links.sms.duplicate=0",
                          "server.session_trigger=notification"), tmp_path / "n", plots=False)
    run_scenario(scenario("replicas=1", "fleet.size=15", "links.sms.loss=0", "links.sms.duplicate=0"),
                 tmp_path / "c", plots=False)
    notified, plain = rows(tmp_path / "n"), rows(tmp_path / "c")
    assert all(r["outcome"] == "ok" for r in notified)
    # one more SMS per device: the package #0
    assert [int(r["sms_msgs"]) for r in notified] == [int(r["sms_msgs"]) + 1 for r in plain]


def test_notification_with_a_wrong_digest_is_not_acted_on(tmp_path, monkeypatch):
    from dmsim.network.dm.notification import build_pkg0
    from dmsim.network.dm.server import DmServer

    def forged(self, device_uri, session_id):  # an attacker who does not know the server password
        return build_pkg0(session_id=session_id, server_id=self.server_id, password="guess",
                          nonce=self.accounts[device_uri].server_nonce)
    monkeypatch.setattr(DmServer, "notification", forged)
    run_scenario(scenario("replicas=1", "fleet.size=5", "links.sms.loss=0", "server.bootstrap_retries=1",
                          "server.session_trigger=notification"), tmp_path, plots=False)
    sessions = rows(tmp_path)
    assert {(r["outcome"], r["reason"]) for r in sessions} == {("failed", "notification_rejected")}
    assert all(r["t_session_start"] == "" for r in sessions)  # no session was opened


def test_notification_initiated_sessions_through_the_smsc(tmp_path):
    """The package #0 travels through the SMSC too (the outbox keeps it while the device waits)."""
    run_scenario(scenario("replicas=1", "fleet.size=10", "links.sms.loss=0", "smsc={}",
                          "server.session_trigger=notification"), tmp_path, plots=False)
    assert {r["outcome"] for r in rows(tmp_path)} == {"ok"}
