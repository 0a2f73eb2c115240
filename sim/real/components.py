"""The real-world kinds of the component registry (``sim/model/components.py``).

``components.dm_server: socket`` (a real DM server over HTTP/HTTPS-PSK), ``components.bsf: socket``
(a real BSF's Ub over HTTP), ``components.card: pcsc``
(a card in a PC/SC reader) and ``components.modem: serial`` (an AT modem on a serial line). They
are registered from this floor, above the model, so the simulated world never imports a driver
that touches the real world. :data:`ALL` is what the runner gives every replica.
"""
from __future__ import annotations

from dmsim.cards.link import CardLink
from dmsim.sim.model.components import VIRTUAL, Components
from dmsim.sim.real.http_transport import real_transport
from dmsim.sim.real.serial_modem import ModemAccess
from dmsim.sim.real.ub_transport import real_ub


def open_pcsc(spec: dict) -> CardLink:
    """Return a link to the card in the PC/SC reader ``spec['reader']`` (an index or a name)."""
    from dmsim.sim.real.pcsc_link import PcscLink  # pyscard is an optional extra: imported when used
    reader = spec.get("reader")
    return PcscLink(int(reader) if str(reader).isdigit() else reader)


REAL = Components(dm_server={"socket": real_transport}, card_readers={"pcsc": open_pcsc},
                  modems={"serial": ModemAccess}, bsf={"socket": real_ub})
ALL = VIRTUAL.merged(REAL)
