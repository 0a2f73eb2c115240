"""``components.bsf: {kind: socket}``: a small gba_ub fleet bootstraps over Ub with a real
``dmsim bsf serve`` on 127.0.0.1 (sim/real/ub_transport.py); the simulation provisions its virtual
cards' subscribers into the real BSF's SQLite store (``components.bsf.db``)."""
import json
import signal
import subprocess
import sys
import time

import pytest

from conftest import run_replica
from dmsim.network.gba.hss_store import SubscriberStore

SCENARIO = """
name: t
seed: 7
duration: 900
fleet:
  size: 6
  profiles:
    - {name: u, gba_ub: true, gba_uicc: u}
    - {name: me, gba_ub: true, gba_uicc: me}
arrival: {kind: poisson, rate: 10}
links:
  ip: {delay: {kind: fixed, value: 0.01}}
server: {service_time: {kind: fixed, value: 0.0}}
client: {request_timeout: 5}
gba: {}
"""
REASON, T_UB_START, T_UB_OK = 6, 26, 27


@pytest.fixture()
def bsf(tmp_path):
    db = tmp_path / "hss.sqlite"
    proc = subprocess.Popen([sys.executable, "-m", "dmsim.sim.cli.main", "bsf", "serve", "--http", "127.0.0.1:0",
                             "--db", str(db), "--fqdn", "bsf.real.test"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = json.loads(proc.stdout.readline())
    yield {"url": line["listening"], "db": db}
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def test_a_fleet_bootstraps_with_a_real_bsf(bsf):
    results = {}

    def hook(model):
        finish = model.finish

        def wrapped(dev, ok, reason):
            results[dev.ident.index] = dev.ub
            finish(dev, ok, reason)
        model.finish = wrapped
    started = time.perf_counter()
    model, rows = run_replica(SCENARIO, f"components.bsf={{kind: socket, url: '{bsf['url']}', db: '{bsf['db']}'}}",
                              model_hook=hook)
    model.close()
    assert time.perf_counter() - started < 60
    assert all(not r[REASON].startswith("ub_") for r in rows), [r[REASON] for r in rows]
    assert all(r[T_UB_START] < r[T_UB_OK] for r in rows)
    assert len(results) == 6 and all(res is not None and res.btid.endswith("@bsf.real.test") for res in results.values())
    assert len({res.btid for res in results.values()}) == 6
    assert model.stats()["gba.ub"]["ok"] == 6
    assert "bsf_challenges" not in model.stats()["gba.ub"]  # the simulated BSF stayed idle
    with SubscriberStore(bsf["db"]) as store:
        assert len(store) == 6 and all(sub.seq_he == 1 for sub in store)


def test_without_provisioning_the_real_bsf_refuses_the_fleet(bsf):
    model, rows = run_replica(SCENARIO, "fleet.size=2", f"components.bsf={{kind: socket, url: '{bsf['url']}'}}")
    model.close()
    assert [r[REASON] for r in rows] == ["ub_refused"] * 2


def test_a_bsf_that_is_not_there_times_out():
    model, rows = run_replica(SCENARIO, "fleet.size=1", "client.request_retries=0",
                              "components.bsf={kind: socket, url: 'http://127.0.0.1:9/'}")
    model.close()
    assert [r[REASON] for r in rows] == ["ub_timeout"]
