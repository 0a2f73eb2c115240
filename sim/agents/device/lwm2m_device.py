"""An OMA LwM2M device as an agent (device kind ``lwm2m``): the sans-IO
:class:`~dmsim.devices.lwm2m_client.Lwm2mClient` over DTLS on the ip links or the SMS binding,
from power-on to its session record (seed 004 §7.1, §7.3; OMA-TS-LightweightM2M-V1_0 §5.1-§5.4).

The life, one SimPy process per device (:meth:`Lwm2mDevice.life`); a step returns "" or the
failure reason that ends it:

1. power-on: the ME reads the IMSI from its UICC with real APDUs (``replica.cards.read_imsi``,
   as the DM device); the operator's enrolment (``Lwm2mServers.enroll``) gives the factory store
   (the bootstrap account, or with ``bootstrap: factory`` the LwM2M server's accounts) and, for
   ``sms_termination: uicc``, the SMS keys personalised into the card (the card is kept for the
   binding); the device attaches to the SMSC when there is one;
2. bootstrap (not ``factory``): a DTLS association with the bootstrap server over the ip links,
   then the client-initiated bootstrap (``POST /bs?ep=``, the server's Delete/Write operations,
   Bootstrap-Finish); the association stays open (no close_notify) until the life ends, so that a
   Bootstrap-Finish whose 2.04 was lost can be answered again when the server retransmits it;
3. register with the LwM2M server (SSID 101) over the binding of its Server instance: ``U`` a
   DTLS association (NoSec: plain CoAP) with the credentials the bootstrap wrote; ``S`` the SMS
   binding with the SMS keys it wrote; the server then Reads /3/0 and the client answers;
4. ``updates`` times: sleep ``sleep`` seconds, then a Registration Update. Over U the DTLS
   association is suspended (sealed under a per-device storage key, ``DtlsEndpoint.suspend``) for
   the sleep and resumed after it, so the update needs no new handshake (seed 004 §7.1 "keep a
   DTLS session in use ... If a session persists across sleep cycles, encrypted and
   integrity-protected storage SHOULD be used");
5. De-register, then close_notify.

sessions.csv columns (the DM device's, reused): ``t_bootstrap_sent`` the ClientHello to the
bootstrap server (the Bootstrap-Request waits for the handshake); ``t_bootstrap_ok``
Bootstrap-Finish answered 2.04 by the client; ``t_session_start`` Register sent;
``t_session_end`` De-register acknowledged; ``latency`` arrival to that; ``bootstrap_sends`` the
Bootstrap-Requests the client started (CoAP retransmissions not counted); ``bootstrap_rejected`` SMS of the binding discarded silently by the device
(or its card); ``ip_retries`` DTLS flights the device re-sent on its timer plus its CoAP
retransmissions over ip; ``ip_msgs``/``ip_bytes`` every DTLS (or NoSec CoAP) datagram of its
associations, both ways; ``sms_msgs``/``sms_bytes`` its binding's SMS, MO and MT (CoAP
retransmissions over SMS show there). Failure reasons: ``card_error``, ``key_reused``,
``dtls_failed``, ``dtls_timeout``, ``dtls_closed``, ``bootstrap_refused``, ``bootstrap_rejected``, ``account_unusable`` (the bootstrapped Security instance
cannot open the binding: resources missing, or keys the client refuses),
``register_refused``, ``update_refused``, ``deregister_refused``, ``coap_timeout``, ``coap_reset``,
``coap_too_long``, ``sms_discarded`` (a CoAP timeout over SMS after the device discarded SMS of
the binding), ``resume_failed``, ``<step>_timeout`` (``lwm2m.step_timeout``).

Choices where the specs are silent: the Registration Update timer the client asks for (90 % of
the lifetime) is not run, the profile's ``updates``/``sleep`` drive the updates; a GET the server
retransmits while the device sleeps is lost (the device's radio is off); the Endpoint Client Name
is ``urn:imsi:<IMSI>`` (it fits one SMS with the Register's parameters).
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from dmsim.base.errors import DmsimError, ProtocolError
from dmsim.cards import lwm2m_applet
from dmsim.base.schema import Field, Int, Seconds, Str, Struct, validate
from dmsim.devices.lwm2m_client import (BootstrapFinished, BootstrapRejected, Deregistered, Lwm2mClient,
                                        Registered, RequestFailed, Updated)
from dmsim.network.coap.message import Code, Message
from dmsim.network.lwm2m import dtls
from dmsim.network.lwm2m.dtls_policy import HIGH
from dmsim.network.lwm2m.events import BOOTSTRAP, Send, Timer
from dmsim.network.lwm2m.objects import Sec, SecurityMode
from dmsim.network.lwm2m.sms_security import SmsBindingKeys, SmsKeyParameters
from dmsim.network.sms.smsc import AttemptResult
from dmsim.sim.agents.device import sms_stack
from dmsim.sim.agents.device.lwm2m_sms import DeviceSmsBinding
from dmsim.sim.agents.lwm2m_servers import SSID
from dmsim.sim.links.coap_channel import SMS, UDP, CoapChannel
from dmsim.sim.links.deadline import Deadlines
from dmsim.sim.links.dtls_link import DtlsClientLink

_ACK = AttemptResult.ack()

if TYPE_CHECKING:  # pragma: no cover
    from dmsim.sim.model.fleet import DeviceIdentity
    from dmsim.sim.model.replica import Replica

LWM2M_PROFILE = Struct({
    "bootstrap": Field(Str(choices=("psk", "low_entropy_psk", "certificate", "rpk", "factory")), "psk",
                       "How the client is provisioned for its LwM2M server (seed 004 §7.1): psk (client-initiated "
                       "bootstrap over DTLS with a high-entropy factory PSK, 16 random octets), low_entropy_psk (a "
                       "PIN of pin_digits digits as the PSK: ECDHE-PSK-AES128-CBC-SHA256 only), certificate (a device "
                       "certificate from a factory CA), rpk (a raw public key unique to the client), factory "
                       "(Manufacturer Pre-configuration: no bootstrap server)."),
    "pin_digits": Field(Int(4, 16), 6, "With bootstrap low_entropy_psk: digits of the PIN."),
    "security_mode": Field(Str(choices=("psk", "rpk", "certificate", "nosec")), "psk",
                           "Security Mode of the LwM2M server account the bootstrap server writes (fresh per-device "
                           "credentials; nosec: coap://, no DTLS)."),
    "binding": Field(Str(choices=("U", "S")), "U",
                     "U: CoAP over DTLS on the ip links; S: CoAP over the SMS binding (secured SMS through the "
                     "scenario's smsc, which it needs)."),
    "sms_termination": Field(Str(choices=("device", "uicc")), "device",
                             "Binding S: where the SMS security ends (seed 004 §7.3): the device (class 1, TP-PID 7D) "
                             "or the UICC (class 2, TP-PID 7F; the card is personalised with the keys; virtual "
                             "cards only)."),
    "sms_cipher": Field(Str(choices=("aes", "3des")), "aes",
                        "Binding S: AES-CBC + AES-CMAC (KIc/KID 0x12) or 3DES with three keys (0x19)."),
    "lifetime": Field(Int(60, 2**31 - 1), 86400, "Registration lifetime (s), written in the Server instance."),
    "updates": Field(Int(0, 1000), 1, "Registration Updates, each after a sleep."),
    "sleep": Field(Seconds(), 60.0, "Seconds asleep before each update (the DTLS association is suspended)."),
}, doc="An LwM2M device's provisioning and binding (device: lwm2m).")
"""The keys of a profile's ``lwm2m`` struct."""
_DEFAULTS = validate(LWM2M_PROFILE, {}, ("lwm2m",))


def lwm2m_spec(profile: dict) -> dict:
    """Return the profile's ``lwm2m`` struct, every default when it has none (null)."""
    return profile.get("lwm2m") or _DEFAULTS


class Lwm2mDevice:
    """One LwM2M device's state and its life (``life`` is the SimPy process)."""

    protocol = "lwm2m"  # sessions.csv's protocol column

    __slots__ = ("replica", "ident", "spec", "address", "client", "core", "card", "t_arrival", "t_bootstrap_sent",
                 "t_bootstrap_ok", "t_session_start", "bootstrap_sends", "rejected", "ip_retries", "sms_msgs",
                 "sms_bytes", "ip_msgs", "ip_bytes", "ota", "ota_latency", "failure", "signal", "reached", "updated",
                 "channels", "links", "sms_binding", "enrolment", "coap_ip", "deadlines", "__weakref__")

    def __init__(self, replica: "Replica", ident: "DeviceIdentity"):
        self.replica, self.ident = replica, ident
        self.spec = lwm2m_spec(ident.profile)
        self.address = f"lwm2m-{ident.index}".encode()
        self.client = None  # sessions.csv's auth_retries is the DM client's
        self.core: Lwm2mClient | None = None
        self.card = None
        self.t_arrival = replica.env.now
        self.t_bootstrap_sent = self.t_bootstrap_ok = self.t_session_start = None
        self.bootstrap_sends = self.rejected = self.ip_retries = 0
        self.sms_msgs = self.sms_bytes = self.ip_msgs = self.ip_bytes = 0
        self.ota, self.ota_latency = "", None
        self.failure = ""
        self.signal = None
        self.reached: set[str] = set()
        self.updated = 0
        self.channels: dict = {}  # peer (BOOTSTRAP or SSID) -> CoapChannel
        self.links: dict = {}  # peer -> DtlsClientLink
        self.sms_binding: DeviceSmsBinding | None = None
        self.enrolment = None
        self.coap_ip: dict[str, int] = {}
        self.deadlines: Deadlines = replica.agents["lwm2m"].deadlines

    @classmethod
    def life(cls, replica: "Replica", ident: "DeviceIdentity"):
        """SimPy process: the device ``ident`` from its arrival to its session record."""
        dev = replica.admit(cls, ident)
        failure = ""
        for step in (power_on, bootstrap, register, updates, deregister):
            failure = yield from step(dev)
            if failure:
                break
        dev.close()
        replica.finish(dev, not failure, failure)

    # -- events from the transports and the core --------------------------------------------------
    def fail(self, reason: str) -> None:
        """End the current step with ``reason`` (the first failure wins)."""
        if not self.failure:
            if reason == "coap_timeout" and self.rejected:
                reason = "sms_discarded"
            self.failure = reason
        self.poke()

    def poke(self) -> None:
        if self.signal is not None and not self.signal.triggered:
            self.signal.succeed()

    def dispatch(self, events: list) -> None:
        """Carry out the core's events: sends to its peers, timers, progress and failures."""
        for event in events:
            kind = event.__class__
            if kind is Send:
                channel = self.channels.get(event.peer)
                if channel is not None:
                    channel.send(event.message)
            elif kind is Timer:
                if not event.key.startswith("update:"):
                    self.replica.env.timeout(event.delay, event.key).callbacks.append(self._timer)
            elif kind is BootstrapFinished:
                self.t_bootstrap_ok = self.replica.env.now
                self.reach("bootstrapped")
            elif kind is Registered:
                self.reach("registered")
            elif kind is Updated:
                self.updated += 1
                self.poke()
            elif kind is Deregistered:
                self.reach("deregistered")
            elif kind is BootstrapRejected:
                self.fail("bootstrap_rejected")
            elif kind is RequestFailed:
                self.fail({"bootstrap_request": "bootstrap_refused", "register": "register_refused",
                           "update": "update_refused"}.get(event.kind, "deregister_refused"))

    def reach(self, what: str) -> None:
        self.reached.add(what)
        self.poke()

    def _timer(self, event) -> None:
        if self.core is not None and not self.failure:
            self.dispatch(self.core.timer_fired(event.value))

    def receive(self, peer, msg: Message) -> None:
        """A CoAP message from ``peer`` for the core (the channel deduplicated it)."""
        if self.core is None:
            return
        events = self.core.receive(peer, msg)
        self.dispatch(events)
        if msg.is_request and msg.code == Code.GET and peer == SSID and msg.uri_path == ("3", "0"):
            if any(e.__class__ is Send and e.message.code == Code.CONTENT for e in events):
                self.reach("read")

    def until(self, what, step: str, timeout: float | None = None):
        """SimPy generator: wait until ``what()`` holds; return "", the failure reason, or
        ``<step>_timeout`` after ``timeout`` (default ``lwm2m.step_timeout``)."""
        env = self.replica.env
        if timeout is None:
            timeout = self.replica.agents["lwm2m"].spec["step_timeout"]
        end = env.now + timeout
        while not self.failure and not what():
            if env.now >= end:
                return f"{step}_timeout"
            self.signal = env.event()
            yield self.deadlines.first(self.signal, end - env.now)
        self.signal = None
        return self.failure

    # -- channels ------------------------------------------------------------------------------------
    def open_ip(self, peer, role: str, sec: dict, entropy: str):
        """Open the association with ``role``'s server for the Security instance ``sec`` and its
        CoAP channel; the channel is ``channels[peer]``."""
        servers = self.replica.agents["lwm2m"]
        mode = SecurityMode(sec[Sec.MODE])
        config = client_config(sec, entropy, self.enrolment.trust)
        holder: list = []
        channel = CoapChannel(self.replica.env, self.replica.stream("lwm2m", "coap", self.ident.index).randbytes,
                              lambda data: holder[0].send(data), lambda msg: self.receive(peer, msg), self.fail,
                              params=UDP, stats=self.coap_ip)
        link = DtlsClientLink(self.replica, self, servers.service(role, mode), config, self.address,
                              self.poke, channel.receive, self.fail)
        holder.append(link)
        self.channels[peer], self.links[peer] = channel, link
        link.start()
        return link

    def open_sms(self, sec: dict) -> None:
        """Open the SMS binding with the LwM2M server (keys of ``sec``) and its CoAP channel."""
        params, keys = SmsKeyParameters.decode(sec[Sec.SMS_KEY_PARAMETERS]), SmsBindingKeys.decode(
            sec[Sec.SMS_SECRET_KEYS])
        holder: list = []
        channel = CoapChannel(self.replica.env, self.replica.stream("lwm2m", "coap", self.ident.index).randbytes,
                              lambda data: holder[0].send(data), lambda msg: self.receive(SSID, msg), self.fail,
                              params=SMS)
        binding = DeviceSmsBinding(self, params, keys, self.spec["sms_termination"], sec[Sec.SMS_NUMBER],
                                   channel.receive)
        holder.append(binding)
        self.channels[SSID], self.sms_binding = channel, binding

    def close_peer(self, peer) -> None:
        channel = self.channels.pop(peer, None)
        if channel is not None:
            channel.close()
        link = self.links.pop(peer, None)
        if link is not None:
            link.close()

    def close(self) -> None:
        """The life is over: close every channel, count the CoAP retransmissions over ip."""
        for peer in list(self.channels):
            self.close_peer(peer)
        self.ip_retries += self.coap_ip.get("retransmissions", 0)
        self.coap_ip = {}
        servers = self.replica.agents["lwm2m"]
        if self.enrolment is not None:
            servers.forget(self.enrolment.endpoint, self.ident.imsi)

    def ended(self) -> None:
        """The record is written: the SMSC keeps answering for the device without holding it."""
        smsc = self.replica.agents.get("smsc")
        if smsc is not None:
            smsc.rehandle(self.ident.imsi, sms_stack.after_life(self.replica, self.ident.index))

    def sms_from_link(self, msg) -> None:
        """An SMS over the direct ``sms`` link: the LwM2M binding only runs through an SMSC."""

    def on_sms(self, tpdu: bytes, now: float) -> AttemptResult:
        """The SMSC delivered an SMS: the binding's, once it is open; acknowledged before. The
        pcap sees it as it reaches the device (as ``sms_stack.at_device``'s)."""
        replica = self.replica
        if replica.pcap is not None:
            replica.capture(replica.pcap.write_sms_mt, tpdu, sms_stack.SMSC_ADDRESS, device=self.ident.index)
        binding = self.sms_binding
        return _ACK if binding is None else binding.on_sms(tpdu, now)


def client_config(sec: dict, entropy: str, trust: bytes) -> dtls.DtlsConfig | None:
    """Return the DTLS client config of a Security instance (seed 004 D.1.1), None for NoSec."""
    mode = SecurityMode(sec[Sec.MODE])
    if mode == SecurityMode.PSK:
        return dtls.psk_client_config(sec[Sec.PUBLIC_KEY_OR_IDENTITY], sec[Sec.SECRET_KEY], entropy=entropy)
    if mode == SecurityMode.RPK:
        return dtls.rpk_client_config(sec[Sec.SECRET_KEY], sec[Sec.SERVER_PUBLIC_KEY])
    if mode == SecurityMode.CERTIFICATE:
        return dtls.certificate_client_config(sec[Sec.PUBLIC_KEY_OR_IDENTITY], sec[Sec.SECRET_KEY], trust,
                                              server_certificate=sec[Sec.SERVER_PUBLIC_KEY])
    return None


# -- the steps ------------------------------------------------------------------------------------------

def power_on(dev: Lwm2mDevice):
    """SimPy generator: read the IMSI, enrol, personalise a UICC-terminated card, attach to the SMSC."""
    replica, ident = dev.replica, dev.ident
    uicc = dev.spec["binding"] == "S" and dev.spec["sms_termination"] == "uicc"
    try:
        imsi = yield from replica.cards.read_imsi(ident.index, ident.imsi,
                                                  issued=(lambda _profile: None) if uicc else None)
    except DmsimError:
        return "card_error"
    if imsi != ident.imsi:
        ident = dev.ident = dataclasses.replace(ident, imsi=imsi)
    servers = replica.agents["lwm2m"]
    enrolment = dev.enrolment = servers.enroll(dev, f"urn:imsi:{ident.imsi}")
    if enrolment.refusal:
        return enrolment.refusal
    dev.core = Lwm2mClient(enrolment.endpoint, enrolment.store,
                           randbytes=replica.stream("lwm2m", "client", ident.index).randbytes)
    if uicc:
        link = replica.cards.links.get(ident.index)
        if link is None:
            return "card_error"
        dev.card = link
        lwm2m_applet.personalise(link.card, *enrolment.sms)
    smsc = replica.agents.get("smsc")
    if smsc is not None:
        smsc.add_device(ident.imsi, dev.on_sms)
    return ""


def bootstrap(dev: Lwm2mDevice):
    """SimPy generator: the client-initiated bootstrap over DTLS (nothing for ``factory``). With no
    Bootstrap-Finish ``lwm2m.bootstrap_timeout`` after its Bootstrap-Request the client sends a new
    one (the server restarts the plan), ``lwm2m.bootstrap_retries`` times. The association stays
    open for the rest of the life: the bootstrap server may resend its last request if the
    client's answer was lost, and the answer is sent again."""
    enrolment = dev.enrolment
    if enrolment.bootstrap is None:
        return ""
    spec = dev.replica.agents["lwm2m"].spec
    dev.t_bootstrap_sent = dev.replica.env.now
    entropy = "low" if dev.spec["bootstrap"] == "low_entropy_psk" else HIGH
    dev.open_ip(BOOTSTRAP, "bootstrap", dev.core.bootstrap_account(), entropy)
    for _attempt in range(spec["bootstrap_retries"] + 1):
        dev.bootstrap_sends += 1
        dev.dispatch(dev.core.start_bootstrap())
        failure = yield from dev.until(lambda: "bootstrapped" in dev.reached, "bootstrap", spec["bootstrap_timeout"])
        if failure != "bootstrap_timeout":
            return failure
    return failure


def register(dev: Lwm2mDevice):
    """SimPy generator: Register over the binding, then wait for the server's Read of /3/0."""
    sec = dev.core.account(SSID)
    if not sec:
        return "bootstrap_rejected"
    try:
        if dev.spec["binding"] == "S":
            dev.open_sms(sec)
        else:
            dev.open_ip(SSID, "server", sec, HIGH)
    except (KeyError, ValueError, DmsimError):
        # the Security instance the bootstrap wrote lacks what the binding needs, or holds keys the
        # client's policy refuses (single DES, a low-entropy PSK on a plain suite...): no channel
        return "account_unusable"
    dev.t_session_start = dev.replica.env.now
    dev.dispatch(dev.core.register(SSID))
    failure = yield from dev.until(lambda: "registered" in dev.reached, "register")
    if failure:
        return failure
    # the Read is the server's: a device whose answer never got through goes on after an exchange lifetime
    lifetime = (SMS if dev.spec["binding"] == "S" else UDP).exchange_lifetime
    failure = yield from dev.until(lambda: "read" in dev.reached, "read", lifetime)
    return "" if failure == "read_timeout" else failure


def updates(dev: Lwm2mDevice):
    """SimPy generator: ``updates`` times, sleep (DTLS suspended) then a Registration Update."""
    env = dev.replica.env
    storage_key = dev.replica.stream("lwm2m", "storage", dev.ident.index).randbytes(16)
    for generation in range(1, dev.spec["updates"] + 1):
        link = dev.links.get(SSID)
        sealed = None
        if link is not None and link.endpoint is not None:
            try:
                sealed = link.suspend(storage_key, generation.to_bytes(12, "big"), generation)
            except ProtocolError:
                return "resume_failed"
        yield env.timeout(dev.spec["sleep"])
        if sealed is not None:
            try:
                link.resume(sealed, storage_key, generation)
            except ProtocolError:
                return "resume_failed"
        dev.dispatch(dev.core.update(SSID))
        failure = yield from dev.until(lambda g=generation: dev.updated >= g, "update")
        if failure:
            return failure
    return ""


def deregister(dev: Lwm2mDevice):
    """SimPy generator: De-register and wait for its acknowledgement."""
    dev.dispatch(dev.core.deregister(SSID))
    return (yield from dev.until(lambda: "deregistered" in dev.reached, "deregister"))

