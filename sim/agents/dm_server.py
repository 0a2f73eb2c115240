"""The DM server as an agent: the sans-IO ``DmServer`` core (``network/dm/server.py``) driven in
simulated time, with the capacity of a real deployment and the SMS side of the operator.

What it does for a replica:

- **Provisioning** (:meth:`DmServerAgent.provision`): an account per device (``dm_auth``:
  auth-md5, auth-basic or auth-hmac-sha256, OMA-TS-DM_Security §5.4, §5.6); the transport adds
  the device's TLS PSK, if any (``account_provisioned``); with a profile's ``message_security``
  (seed 002 §5.3-§5.5) the device's DM session messages are signed / encrypted, one
  message-security object per profile (its hmac-md5 replay cache shared by the profile's devices).
- **Pushes over SMS** (:meth:`push_until`): the §5.10.2.3-protected bootstrap and package #0
  (OMA-TS-DM_Notification §6) as WAP Push, split into SMS-DELIVER TPDUs (TS 23.040) and sent
  over the ``sms`` link or, with an ``smsc`` block, submitted through the server's own ESME
  queue (``smsc_outbox.py``) to the store-and-forward SMSC; unanswered within
  ``server.bootstrap_timeout``, a push is sent again, up to ``server.bootstrap_retries`` times.
- **Personalisation** (:meth:`personalise`): for ``bootstrap_via: smartcard`` devices, the
  bootstrap document the operator writes to the card (seed 001 §8.1).
- **Serving DM requests** (``serving.py``): at most ``server.max_sessions`` sessions at once,
  each request a ``server.service_time`` sample.

The agent keeps no module-level state: everything comes from the replica's scenario data and
its named random streams (``server``, ``service``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import simpy

from dmsim.network.dm import notification, wbxml
from dmsim.network.dm.account import bootstrap_document
from dmsim.network.dm.auth import AUTH_BASIC, AUTH_MD5, AUTH_SHA256
from dmsim.network.dm.hmac_integrity import AUTH_HMAC_SHA256, HmacVerifier
from dmsim.network.dm.message_security import MessageSecurity, make as make_message_security
from dmsim.network.dm.server import DmServer
from dmsim.network.sms import segmentation, tpdu, wsp_push
from dmsim.network.sms.address import Address
from dmsim.network.sms.smsc import ShortMessage
from dmsim.sim.agents.agent import Agent
from dmsim.sim.agents.serving import Serving
from dmsim.sim.agents.smsc_outbox import SmscOutbox
from dmsim.sim.links.card_access import CardPersonalisation
from dmsim.sim.links.deadline import Deadlines
from dmsim.sim.links.link import Message

if TYPE_CHECKING:  # pragma: no cover
    from dmsim.sim.model.fleet import DeviceIdentity
    from dmsim.sim.model.replica import Replica

SERVER_SMS_ADDRESS = Address("12345")  # TP-OA of the server's pushes (a short code)
SERVER_URI = "http://dm.dmsim.test/dm"
DM_AUTH_SCHEMES = {"md5": AUTH_MD5, "sha256": AUTH_SHA256, "basic": AUTH_BASIC, "hmac": AUTH_HMAC_SHA256}  # fleet.profiles[].dm_auth


class DmServerAgent(Agent, Serving):
    """The replica's DM server: ``core`` is the sans-IO ``DmServer``. Every replica has one (a real
    server is reached through the transport, and this one then only provisions and pushes)."""

    name = "server"

    @classmethod
    def for_replica(cls, replica: "Replica") -> "DmServerAgent":
        """Return the replica's DM server."""
        return cls(replica)

    def __init__(self, replica: "Replica"):
        srv = replica.data["server"]
        self.spec = srv
        Serving.__init__(self, replica, DmServer(srv["name"], SERVER_URI, replica.stream("server").randbytes,
                                                 hmac_verifier=HmacVerifier(max_age=srv["hmac_window"])), "service")
        self.security: dict[str, MessageSecurity | None] = {}  # profile name -> its message security
        self.sms_ref = 0
        self.push_deadlines = Deadlines(self.env)  # push_until's waits: no SimPy timer per push
        # with an SMSC the server submits as an ESME, through a queue that waits out throttling
        smsc = replica.agents.get("smsc")
        self.outbox = SmscOutbox(self.env, smsc) if smsc is not None else None

    def stats(self) -> dict[str, dict]:
        """Return the counters this agent adds to ``summary.json``'s ``network`` block."""
        return {"smsc": {"server_submit_retries": self.outbox.retries}} if self.outbox is not None else {}

    # -- provisioning ------------------------------------------------------------------------
    def provision(self, ident: "DeviceIdentity") -> None:
        """Create the device's account (the transport adds its TLS PSK, if any)."""
        self.core.provision(ident.uri, client_name=ident.imsi, client_password=ident.client_password,
                            server_password=ident.server_password,
                            auth_scheme=DM_AUTH_SCHEMES[ident.profile["dm_auth"]],
                            message_security=self._security(ident.profile))
        self.replica.transport.account_provisioned(ident.uri)

    def _security(self, profile: dict) -> MessageSecurity | None:
        """Return the message security of ``profile`` (made once per profile)."""
        if profile["name"] not in self.security:
            self.security[profile["name"]] = make_message_security(profile.get("message_security", "none"),
                                                                   max_age=self.spec["hmac_window"])
        return self.security[profile["name"]]

    def bootstrap_push(self, ident: "DeviceIdentity") -> bytes:
        """Provision the device; return its protected bootstrap (§5.10.2.3) as a WAP Push PDU."""
        self.provision(ident)
        content_type, body = self.core.bootstrap_message(ident.uri, ident.imsi, ident.profile["bootstrap_security"],
                                                         ident.userpin)
        return wsp_push.encode_push(content_type, body, tid=ident.index & 0xFF)

    def notification_push(self, ident: "DeviceIdentity", session_id: int) -> bytes:
        """Return the package #0 for ``session_id`` as a WAP Push PDU (DM_Notification §6, §7)."""
        return notification.encode_push(self.core.notification(ident.uri, session_id), tid=ident.index & 0xFF)

    def personalise(self, ident: "DeviceIdentity") -> CardPersonalisation:
        """Return what the operator writes into the device's card before it ships: the server
        provisions the account, its bootstrap document goes to the PKCS#15 application as WBXML,
        and the device accepts bootstraps from this server alone (seed 001 §8.1)."""
        self.provision(ident)
        document = bootstrap_document(self.core.accounts[ident.uri], ident.uri)
        return CardPersonalisation(wbxml.encode(document), (self.core.server_id,))

    # -- pushes over SMS ---------------------------------------------------------------------
    def push_until(self, dev, push: bytes, done: simpy.Event, count: bool = True):
        """SimPy generator: send the WAP Push ``push`` to ``dev`` until ``done`` is triggered, again
        every ``server.bootstrap_timeout``, at most ``server.bootstrap_retries`` more times; return
        whether ``done`` was triggered. ``count``: each send counts in ``bootstrap_sends``."""
        srv, live = self.spec, self.replica.live
        for _ in range(srv["bootstrap_retries"] + 1):
            if count:
                dev.bootstrap_sends += 1
            self.send_sms(dev, push, lambda: not done.triggered and dev.ident.index in live)
            yield self.push_deadlines.first(done, srv["bootstrap_timeout"])
            if done.triggered:
                return True
        return False

    def send_sms(self, dev, push: bytes, wanted: Callable[[], bool]) -> None:
        """Send the WAP Push ``push`` to ``dev`` in SMS parts; through an SMSC, parts still in the
        server's outbox when ``wanted()`` turns False (the device no longer waits) are dropped."""
        self.sms_ref = (self.sms_ref + 1) & 0xFF
        parts = segmentation.split_parts(push, dest_port=wsp_push.WAP_PUSH_PORT, src_port=wsp_push.WAP_PUSH_SRC_PORT,
                                         ref=self.sms_ref)
        if self.outbox is not None:
            for ies, chunk in parts:
                self.outbox.submit(ShortMessage(src=SERVER_SMS_ADDRESS.digits, dst=dev.ident.imsi, user_data=chunk,
                                                pid=tpdu.PID_DEFAULT, dcs=tpdu.DCS_8BIT, ies=tuple(ies)),
                                   wanted=wanted)
            return
        scts = scts_of(self.env.now)
        send, uri, deliver = self.replica.sms.send, dev.ident.uri, dev.sms_from_link
        for ies, chunk in parts:
            pdu = tpdu.SmsDeliver(oa=SERVER_SMS_ADDRESS, pid=tpdu.PID_DEFAULT, dcs=tpdu.DCS_8BIT, scts=scts,
                                  ies=ies, user_data=chunk).encode()
            dev.sms_msgs += 1
            dev.sms_bytes += len(pdu)
            send(Message(pdu, "smsc", uri, "bootstrap", dev), deliver)


def scts_of(now: float) -> bytes:
    """Return a TP-SCTS (TS 23.040 §9.2.3.11) for simulated time ``now`` from 2026-01-01 00:00 UTC."""
    secs = int(now)
    day, rem = divmod(secs, 86400)
    h, rem = divmod(rem, 3600)
    mi, s = divmod(rem, 60)
    fields = (26, 1, 1 + day % 28, h, mi, s, 0)
    return bytes(((v % 10) << 4) | (v // 10) for v in fields)
