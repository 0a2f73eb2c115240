"""The component registry: which driver serves each ``components.<name>.kind`` of a scenario.

A replica builds its DM-server transport, its Ub transport to the BSF, its real card reader and its modem from a
:class:`Components` it is given. The simulated kinds are registered here (:data:`VIRTUAL`); the
kinds that reach the real world (a socket, PC/SC, a serial line) are registered by
``sim/real/components.py``, a floor above this one, so that nothing in the simulated world
imports a real driver (import-linter checks it). The runner hands every replica the merged
registry; a test that builds a replica directly passes the one it needs.

Adding a kind is its driver (a class or factory in its room) and one line in one of these maps.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

from dmsim.sim.links.transports import simulated_transport
from dmsim.sim.links.ub_transport import simulated_ub

if TYPE_CHECKING:  # pragma: no cover
    from dmsim.cards.link import CardLink
    from dmsim.sim.links.transports import IpTransport
    from dmsim.sim.links.ub_transport import UbTransport


@dataclass(frozen=True)
class Components:
    """Factories by kind: ``dm_server[kind](spec, replica)`` returns an ``IpTransport``;
    ``card_readers[kind](spec)`` opens the real card of a non-virtual ``components.card``;
    ``modems[kind](spec)`` returns the modem of a non-virtual ``components.modem`` (an object
    with ``card_link()``, ``round_trip(tpdu)``, ``stats``, ``spec`` and ``close()``);
    ``bsf[kind](spec, replica)`` returns the ``UbTransport`` of ``components.bsf`` (built when
    the scenario has a ``gba`` block)."""

    dm_server: Mapping[str, Callable[[dict, Any], "IpTransport"]] = field(default_factory=dict)
    card_readers: Mapping[str, Callable[[dict], "CardLink"]] = field(default_factory=dict)
    modems: Mapping[str, Callable[[dict], Any]] = field(default_factory=dict)
    bsf: Mapping[str, Callable[[dict, Any], "UbTransport"]] = field(default_factory=dict)

    def merged(self, other: "Components") -> "Components":
        """Return this registry with ``other``'s kinds added (``other`` wins on a clash)."""
        return Components({**self.dm_server, **other.dm_server}, {**self.card_readers, **other.card_readers},
                          {**self.modems, **other.modems}, {**self.bsf, **other.bsf})


VIRTUAL = Components(dm_server={"virtual": simulated_transport}, bsf={"virtual": simulated_ub})
