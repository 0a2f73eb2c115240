"""The agents a replica is made of, each registered once.

:data:`NETWORK_AGENTS`: the network elements, in the order a replica builds them (an agent may
use the ones built before it). Each entry is a class or factory with a ``name``, a
``wanted(data)`` predicate over the validated scenario, and a constructor taking the replica.
:data:`DEVICE_AGENTS`: the kinds of device; a kind's ``life(replica, identity)`` is the SimPy
process of one device from its arrival to its record.

Adding a network element (a BSF, an attacker that sits between two agents) or a kind of device
(an LwM2M client, a GBA Push device) is its module in ``sim/agents/`` and one line here; the
replica itself does not change.
"""
from __future__ import annotations

from dmsim.sim.agents.adversary.agent import Adversary
from dmsim.sim.agents.bootstrap_server import BootstrapServerAgent
from dmsim.sim.agents.bsf import BsfAgent
from dmsim.sim.agents.device import DmDevice, Lwm2mDevice
from dmsim.sim.agents.dm_server import DmServerAgent
from dmsim.sim.agents.hss import HssAgent
from dmsim.sim.agents.lwm2m_servers import Lwm2mServers
from dmsim.sim.agents.naf import NafAgent
from dmsim.sim.agents.ota_platform import OtaCampaign
from dmsim.sim.agents.smsc import SmscDriver

NETWORK_AGENTS = (
    SmscDriver,       # smsc: the store-and-forward SMSC, when the scenario has an ``smsc`` block
    DmServerAgent,    # server: the DM server (its outbox submits to the SMSC, if any)
    BootstrapServerAgent,  # bootstrap_server: when a profile has ``bootstrap_via: tls`` (seed 001 §9.3)
    HssAgent,         # hss: the GBA subscriber store, when the scenario has a ``gba`` block
    BsfAgent,         # bsf: Zpn of GBA Push (TS 33.223), on the gba.zpn links
    NafAgent,         # naf: the NAF inside the DM server or a proxy NAF (OMA-TS-DM_Security Appendix C)
    OtaCampaign,      # ota: the OTA platform, when the scenario has an ``ota`` block
    Lwm2mServers,     # lwm2m: the LwM2M Bootstrap Server and Server, when a profile has ``device: lwm2m``
    Adversary,        # adversary: the scenario's ``attacks`` (sim/agents/adversary/), built last: it sits on the others
)

DEVICE_AGENTS = {
    "dm": DmDevice,   # an OMA DM client with its UICC and modem
    "lwm2m": Lwm2mDevice,  # an OMA LwM2M client: bootstrap and registration over DTLS or the SMS binding
}
DEFAULT_DEVICE = "dm"
