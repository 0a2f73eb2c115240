"""The scenario and the server-side watch shared by the simulated-TLS tests of this folder
(test_tls_transport.py, test_tls_mutual_transport.py, test_tls_dhe_transport.py)."""
from string import Template

from dmsim.sim.links.transports import SimulatedHttps

SCENARIO = Template("""
name: t
seed: 3
duration: 900
fleet: {size: $size}
arrival: {kind: poisson, rate: 5}
links:
  sms: {delay: {kind: fixed, value: 1.0}}
  ip: {delay: {kind: fixed, value: 0.05}}
server: {max_sessions: 50, service_time: {kind: fixed, value: 0.0}}
components: {dm_server: {kind: virtual, tls: {mode: $mode}}}
""")


def tls_scenario(size, mode):
    """The scenario text of ``size`` devices and the virtual DM server in TLS ``mode``."""
    return SCENARIO.substitute(size=size, mode=mode)


def after_each_exchange(model, see):
    """Call ``see(dev, conn)`` after every exchange of ``model``'s transport that leaves the device
    a connection ``conn`` (its server endpoint is ``conn.server``)."""
    transport = model.transport
    original = SimulatedHttps.exchange

    def exchange(dev, *args, **kwargs):
        result = yield from original(transport, dev, *args, **kwargs)
        conn = transport.conns.get(dev.ident.index)
        if conn is not None:
            see(dev, conn)
        return result
    transport.exchange = exchange
