"""An OMA DM device as an agent: its life from power-on to its last record, composed of steps.

The steps, each a module of this package, run in order in one SimPy process per device
(:meth:`DmDevice.life`); a step returns "" to go on or the failure reason that ends the life:

1. ``power_on``: the ME reads the IMSI from its UICC with real APDUs (emulated card, or a real one
   through the replica's card seam) and, for ``bootstrap_via: smartcard``, installs the account
   the operator personalised into the card over SCP03; the device then attaches to the SMSC;
2. ``bootstrap``: the server's §5.10.2.3-protected WAP Push bootstrap over SMS, the account
   the card gave, a DM session over PSK-TLS with the bootstrap server (seed 001 §9.3), or GBA
   Push then the 3GPP_GBA-protected bootstrap (§5.10.2.4, ``gba_push.py``);
3. ``notification``: with ``server.session_trigger: notification``, package #0 over WAP Push,
   acted on only when its digest verifies;
4. ``dm_session``: packages 1-4 (Alert 1201, or 1200 after a package #0) through the replica's
   DM-server transport, with the client's retries;
5. ``ota``: with an ``ota`` block, one secured command packet to the UICC and its PoR.

What reaches the device's modem between steps (bootstrap parts, a package #0, a data download,
an outside ESME's text) is handled by its SMS stack (``sms_stack.py``). The record written at the
end is the replica's business (:meth:`Replica.finish`). A device that ends its bootstrap
holding another server's account (a forged bootstrap it accepted, ``sim/agents/adversary/``) is
recorded as failed, reason ``compromised``: a failed defence shows as one.

The state is a few small values (``__slots__``), alive only while the device runs: a million
devices cost what their records and accounts cost, not a process per timer.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from dmsim.sim.agents.device import bootstrap, dm_session, gba_ub, notification, ota, power_on, sms_stack

if TYPE_CHECKING:  # pragma: no cover
    from dmsim.devices.dm_client import DmClient
    from dmsim.network.dm.account import DmAccount
    from dmsim.network.sms.segmentation import Reassembler
    from dmsim.sim.links.link import Message
    from dmsim.sim.model.fleet import DeviceIdentity
    from dmsim.sim.model.replica import Replica


COMPROMISED = "compromised"  # sessions.csv reason: the device holds an account the operator's server did not send


class DmDevice:
    """One device's session state and its life (``life`` is the SimPy process)."""

    protocol = "dm"  # sessions.csv's protocol column

    __slots__ = ("replica", "ident", "reasm", "accepted", "bootstrapped", "account", "client", "t_arrival",
                 "t_bootstrap_sent", "t_bootstrap_ok", "t_session_start", "bootstrap_sends", "rejected",
                 "ip_retries", "sms_msgs", "sms_bytes", "ip_msgs", "ip_bytes", "card", "ota", "ota_latency",
                 "ota_keys", "notified", "notice_rejected", "tree", "card_report", "session_id", "initiator",
                 "bearer_up", "gba", "t_gpi_sent", "t_gpi_received", "t_gba_keys", "ub", "t_ub_start", "t_ub_ok")

    def __init__(self, replica: "Replica", ident: "DeviceIdentity"):
        env = replica.env
        self.replica = replica
        self.ident = ident
        self.reasm: Reassembler | None = None
        self.accepted = False
        self.bootstrapped = env.event()
        self.account: DmAccount | None = None
        self.client: DmClient | None = None
        self.t_arrival = env.now
        self.t_bootstrap_sent = self.t_bootstrap_ok = self.t_session_start = None
        self.bootstrap_sends = self.rejected = self.ip_retries = 0
        self.sms_msgs = self.sms_bytes = self.ip_msgs = self.ip_bytes = 0
        self.card = None
        self.notified = None
        self.notice_rejected = 0
        self.ota = ""
        self.ota_latency = None
        self.ota_keys = None
        self.tree = None  # the DM tree a smartcard bootstrap filled (None: the client makes its own)
        self.card_report = None  # the smartcard bootstrap's report (None: bootstrap over SMS)
        self.session_id, self.initiator = ident.index + 1, "client"  # a package #0 sets them
        self.bearer_up = False  # the data bearer is set up before the first IP session
        self.gba = None  # bootstrap_via gba_push: the GPI's receiver and the keys it gave
        self.t_gpi_sent = self.t_gpi_received = self.t_gba_keys = None
        self.ub = None  # gba_ub: the UbResult (B-TID, lifetime; Ks for GBA_ME), kept for a later Ua
        self.t_ub_start = self.t_ub_ok = None

    @classmethod
    def life(cls, replica: "Replica", ident: "DeviceIdentity"):
        """SimPy process: the device ``ident`` from its arrival to its session record."""
        dev = replica.admit(cls, ident)
        for step in (power_on.power_on, gba_ub.gba_ub, bootstrap.bootstrap, notification.session_trigger):
            failure = yield from step(dev)
            if failure:
                replica.finish(dev, False, failure)
                return
        if dev.account is not None and dev.account.server_id != replica.server.core.server_id:
            # it took a forged bootstrap: its sessions go to another server now, a failed defence
            replica.finish(dev, False, COMPROMISED)
            return
        done = yield from dm_session.dm_session(dev)
        yield from ota.ota_download(dev)
        replica.finish(dev, done.ok, "" if done.ok else done.reason.split(":")[0])

    def ended(self) -> None:
        """The device's record is written: the SMSC keeps answering for it without holding it
        (``sms_stack.after_life``; a device behind a real modem keeps its radio)."""
        smsc = self.replica.agents.get("smsc")
        if smsc is not None and not sms_stack.behind_modem(self):
            smsc.rehandle(self.ident.imsi, sms_stack.after_life(self.replica, self.ident.index))

    def on_sms(self, pdu: bytes, now: float):
        """An SMS-DELIVER reached the device's modem (from the SMSC, or a false base station)."""
        return sms_stack.at_device(self, pdu)

    def sms_from_link(self, msg: "Message") -> None:
        """An SMS-DELIVER arrived over the direct ``sms`` link (no SMSC)."""
        sms_stack.from_link(self, msg.payload)
