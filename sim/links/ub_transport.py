"""How a device's Ub requests reach the BSF (3GPP TS 24.109 §4, HTTP): the seam between the
simulated BSF and a real one, as ``transports.py`` is for the DM server.

``components.bsf.kind`` picks a Ub transport from the replica's component registry
(``sim/model/components.py``):

* ``virtual`` (:class:`SimulatedUb`, here): each request crosses the simulated ``ip`` uplink
  (message kind ``ub``) to the replica's BSF agent (``sim/agents/bsf.py``), which answers after a
  ``server.service_time`` sample through ``network/gba/bsf.Bsf``; the answer crosses the ``ip``
  downlink. Loss, delay, duplication and taps of ``links.ip`` apply to Ub as to DM.
* ``socket``: a real BSF (``dmsim bsf serve``) over real sockets, wall-clock latency added to
  simulated time (``sim/real/ub_transport.py``, registered by ``sim/real/components.py``).

A Ub transport has ``host`` (the Host header and first-request realm the device uses), ``uri``
(the BSF's request URI), ``exchange(dev, request, timeout)`` (a SimPy generator returning the
response octets, or None when it is lost: the device resends), ``subscriber_issued(sub)`` (the
operator issued a card whose subscriber the BSF's HSS must know; the simulated HSS agent already
has it), ``closed(dev)`` (the device's bootstrapping is over) and ``close()``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from dmsim.sim.links.ip_exchange import IpExchange
from dmsim.sim.links.link import Message

if TYPE_CHECKING:  # pragma: no cover
    from dmsim.network.gba.hss_store import Subscriber
    from dmsim.sim.model.replica import Replica


class UbTransport:
    """What the ``gba_ub`` step needs from a Ub transport (see the module docstring)."""

    host: str
    uri: str = "/"

    def exchange(self, dev, request: bytes, timeout: float):
        raise NotImplementedError

    def subscriber_issued(self, sub: "Subscriber") -> None:
        """The operator issued a card of subscriber ``sub`` (the simulated HSS has it already)."""

    def closed(self, dev) -> None:
        """The device's bootstrapping is over (its connection, if any, closes)."""

    def close(self) -> None:
        """Release what the transport opened."""


class SimulatedUb(UbTransport):
    """Ub over the simulated ``ip`` links to ``server`` (an object with ``receive(msg)`` that
    later calls :meth:`respond` with the response message; the replica's BSF agent)."""

    def __init__(self, model: "Replica", server, host: str):
        self.model = model
        self.server = server
        self.host = host
        self.ip = IpExchange(model, "ub", "bsf")

    def exchange(self, dev, request: bytes, timeout: float):
        return (yield from self.ip.request(dev, request, self.server.receive, timeout))

    def respond(self, msg: Message) -> None:
        """Carry the BSF's response ``msg`` (meta: the request's) back to the device."""
        self.ip.respond(msg)

    def closed(self, dev) -> None:
        self.ip.forget(dev)


def simulated_ub(spec: dict, model: "Replica") -> SimulatedUb:
    """Return the Ub transport to the replica's BSF agent (``components.bsf`` of kind ``virtual``)."""
    return SimulatedUb(model, model.agents["bsf"], model.data["gba"]["bsf_fqdn"])
