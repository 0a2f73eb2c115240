"""A finished simulated TLS connection is freed by reference counting (issue 17): its two Mbed TLS
endpoints (about 90 KiB of C memory a pair) must not wait for the cyclic garbage collector."""
from __future__ import annotations

import gc

from dmsim.network.dm.tls import TlsEndpoint
from dmsim.sim.model.replica import Replica
from dmsim.sim.scenario.format import parse_scenario

SCENARIO = """
name: tls-freed
seed: 4
duration: 600
fleet: {size: 40}
arrival: {kind: poisson, rate: 4}
links: {ip: {loss: 0.05}}
components: {dm_server: {kind: virtual, tls: {mode: psk}}}
"""


def test_finished_tls_connections_leave_no_endpoint_for_the_cyclic_collector():
    data = parse_scenario(SCENARIO, "t.yaml").data
    rows: list = []
    gc.collect()
    gc.disable()
    try:
        model = Replica(data, seed=4, replica=0, sweep=0, sweep_value=None, write=rows.append)
        model.run()
        assert sum(r[5] == "ok" for r in rows) >= 35
        assert model.transport.stats["retransmissions"] > 0  # lost flights were resent: RTO timers ran
        alive = [o for o in gc.get_objects() if isinstance(o, TlsEndpoint)]
        assert alive == []
    finally:
        gc.enable()
