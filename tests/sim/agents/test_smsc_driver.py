"""SimPy driver of the SMSC: radio loss/delay, reachability, throughput, determinism."""
from __future__ import annotations

from collections import Counter

import pytest
import simpy

from dmsim.network.sms.smsc import AttemptResult, ShortMessage
from dmsim.network.sms.status_report import decode_status_report
from dmsim.network.sms.tpdu import SmsSubmit, decode_tpdu
from dmsim.network.sms.address import Address
from dmsim.base.errors import ScenarioError
from dmsim.sim.agents.smsc import SmscDriver, parse_smsc_spec

ESME = "999"


def fleet(spec: dict, n_dev: int, n_msg: int, *, seed: int = 1, paced: bool = True):
    """Submit ``n_msg`` messages round-robin to ``n_dev`` acking devices; return (driver, records)."""
    env = simpy.Environment()
    drv = SmscDriver(env, spec, seed=seed)
    got = Counter()
    for i in range(n_dev):
        drv.add_device(f"49{i:04d}", lambda tpdu, now: got.update([decode_tpdu(tpdu, mt=True).user_data])
                       or AttemptResult.ack())
    drv.add_application(ESME, lambda a, now: AttemptResult.ack())

    def esme():
        sent = 0
        while sent < n_msg:
            res = drv.submit(ShortMessage(ESME, f"49{sent % n_dev:04d}", sent.to_bytes(2, "big")))
            if res.accepted:
                sent += 1
            else:
                yield env.timeout(res.retry_after)

    env.process(esme())
    env.run()
    return drv, drv.core.drain_records(), got, env.now


def test_submit_rate_10_per_s_takes_100_s():
    drv, recs, got, end = fleet({"submit_rate": 10}, 50, 1000)
    delivered = [r for r in recs if r.outcome == "delivered"]
    assert len(delivered) == 1000 and len(got) == 1000
    assert max(r.submit_time for r in delivered) == pytest.approx(99.9)
    assert max(r.final_time for r in delivered) == pytest.approx(99.9)  # radio instantaneous
    assert end <= 99.9 + 30  # a stale wake (an acked attempt's timeout) may still fire


def test_radio_loss_20_percent_retried_to_delivery():
    spec = {"radio": {"loss": 0.2, "delay": {"kind": "fixed", "value": 0.5}}, "radio_up": {},
            "attempt_timeout": 2, "retry": {"initial": 1, "factor": 2, "max": 8}}
    drv, recs, got, _ = fleet(spec, 200, 4000)
    delivered = [r for r in recs if r.outcome == "delivered"]
    assert len(delivered) == 4000
    mean = sum(r.attempts for r in delivered) / 4000
    assert mean == pytest.approx(1.25, abs=0.03)  # geometric: 1 / (1 - 0.2)
    assert drv.down.lost / drv.down.sent == pytest.approx(0.2, abs=0.02)
    assert all(r.final_time - r.first_attempt >= 0.5 for r in delivered)  # the down delay


def test_device_off_then_on_gets_message_on_next_attempt():
    env = simpy.Environment()
    drv = SmscDriver(env, {"retry": {"initial": 10, "factor": 2, "max": 100}}, seed=3)
    inbox = []
    drv.add_device("4901", lambda tpdu, now: inbox.append(now) or AttemptResult.ack())
    drv.add_application(ESME, lambda a, now: AttemptResult.ack())
    drv.set_reachable("4901", False)
    drv.submit(ShortMessage(ESME, "4901", b"x"))
    env.timeout(25).callbacks.append(lambda e: drv.set_reachable("4901", True))
    env.run()
    assert inbox == [30.0]  # attempts at 0 (absent), 10 (absent), 30 (delivered)
    (rec,) = drv.core.drain_records()
    assert (rec.attempts, rec.outcome, rec.last_cause) == (3, "delivered", "")
    assert drv.counts["absent"] == 2


def test_alert_sc_delivers_when_device_is_back():
    env = simpy.Environment()
    drv = SmscDriver(env, {"alert_sc": True, "retry": {"initial": 10}}, seed=3)
    inbox = []
    drv.add_device("4901", lambda tpdu, now: inbox.append(now) or AttemptResult.ack())
    drv.set_reachable("4901", False)
    drv.add_application(ESME, lambda a, now: AttemptResult.ack())
    drv.submit(ShortMessage(ESME, "4901", b"x"))
    env.timeout(4).callbacks.append(lambda e: drv.set_reachable("4901", True))
    env.run()
    assert inbox == [4.0]


def test_availability_markov_fraction_and_expiry():
    env = simpy.Environment()
    drv = SmscDriver(env, {"availability": {"mean_up": 30, "mean_down": 10}}, seed=5)
    for i in range(2000):
        drv.add_device(f"49{i:04d}", lambda tpdu, now: AttemptResult.ack())
    env.run(until=500)
    up = sum(drv.reachable(f"49{i:04d}") for i in range(2000))
    assert up / 2000 == pytest.approx(0.75, abs=0.04)


def test_mo_path_to_application_with_status_report_to_device():
    env = simpy.Environment()
    drv = SmscDriver(env, {"radio": {"delay": {"kind": "fixed", "value": 1}}}, seed=1)
    app_got, answers, reports = [], [], []
    drv.add_application(ESME, lambda a, now: app_got.append((now, a.message.user_data)) or AttemptResult.ack())
    drv.add_device("4901", lambda tpdu, now: AttemptResult.ack(),
                   on_report=lambda tpdu, now: reports.append((now, decode_status_report(tpdu))),
                   on_submitted=lambda res, now: answers.append((now, res.accepted)))
    assert drv.submit_from_device("4901", SmsSubmit(Address(ESME), mr=5, user_data=b"up",
                                                    status_report_request=True).encode())
    env.run()
    assert app_got == [(1.0, b"up")] and answers == [(2.0, True)]
    (t, rep), = reports
    assert t == 2.0 and rep.mr == 5 and rep.st == 0 and str(rep.ra) == ESME


def test_same_seed_same_run_other_seed_differs():
    spec = {"submit_rate": 50, "burst": 5, "radio": {"loss": 0.3, "delay": {"kind": "exponential", "mean": 1}},
            "availability": {"mean_up": 50, "mean_down": 20}, "attempt_timeout": 3,
            "retry": {"initial": 2, "factor": 2, "max": 30}, "validity": 120}
    rows = lambda seed: [r.row() for r in fleet(spec, 30, 300, seed=seed)[1]]
    first = rows(7)
    assert first == rows(7)
    assert first != rows(8)
    assert {r[9] for r in first} >= {"delivered", "refused"}


@pytest.mark.parametrize("spec,path", [
    ({"submit_rate": 0}, "smsc.submit_rate"),
    ({"retry": {"initial": 0}}, "smsc.retry.initial"),
    ({"retry": {"factor": 0.5}}, "smsc.retry.factor"),
    ({"availability": {"mean_up": 1}}, "smsc.availability.mean_down"),
    ({"queue_limit": 1.5}, "smsc.queue_limit"),
    ({"bogus": 1}, "smsc.bogus"),
    ({"alert_sc": "yes"}, "smsc.alert_sc"),
])
def test_bad_spec_is_scenario_error(spec, path):
    with pytest.raises(ScenarioError) as err:
        parse_smsc_spec(spec)
    assert err.value.path == path


def test_a_finished_device_is_not_held_by_the_smsc():
    """After its record the SMSC answers for a device through a handler that holds neither the
    device nor its DM client and tree (issue 17: about 19 KB a device, kept for the whole run)."""
    import gc

    from dmsim.sim.agents.device.dm_device import DmDevice
    from dmsim.sim.model.replica import Replica
    from dmsim.sim.scenario.format import parse_scenario
    data = parse_scenario("fleet: {size: 30}\nduration: 900\nsmsc: {}\narrival: {kind: poisson, rate: 1}\n",
                          "s.yaml").data
    rows = []
    model = Replica(data, seed=2, replica=0, sweep=0, sweep_value=None, write=rows.append)
    model.run()
    assert len(rows) == 30 and {r[5] for r in rows} == {"ok"}
    gc.collect()
    assert not [o for o in gc.get_objects() if isinstance(o, DmDevice)]
    smsc = model.agents["smsc"]
    assert len(smsc._devices) == 30  # still reachable, still answered (a late SMS is acknowledged)
    assert {dev.on_sms(b"", 0.0) for dev in smsc._devices.values()} == {AttemptResult.ack()}
